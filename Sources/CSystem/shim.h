#pragma once
// glibc pieces Swift's Glibc module does not export: mallopt (the relay's arena cap), mallinfo2, and the thread
// id that per-thread nice values need (gettid / syscall are not importable as such).
#include <malloc.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int stylize_set_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

static inline int stylize_thread_nice(void) {
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

/* Bytes the allocator holds from the OS (sbrk heap + mmapped chunks), all arenas. */
static inline size_t stylize_heap_bytes(void) {
    struct mallinfo2 m = mallinfo2();
    return m.arena + m.hblkhd;
}

/* Minor page faults of the whole process so far: a page touched for the first time. */
static inline long stylize_minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}
