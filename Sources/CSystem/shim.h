#pragma once
// glibc pieces Swift's Glibc module does not export: mallopt, and the thread id that
// per-thread nice values need (gettid / syscall are not importable as such).
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
