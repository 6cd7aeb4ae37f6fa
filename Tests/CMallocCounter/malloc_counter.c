#define _GNU_SOURCE
#include "malloc_counter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long calls, bytes, largest;

static void count(size_t n) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes, (long)n, memory_order_relaxed);
    long seen = atomic_load_explicit(&largest, memory_order_relaxed);
    while ((long)n > seen && !atomic_compare_exchange_weak(&largest, &seen, (long)n)) {}
}

void *malloc(size_t n) { count(n); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { count(k * n); return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { count(n); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(n); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(n); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count(n);
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

stylize_malloc_counts stylize_malloc_counter_read(void) {
    stylize_malloc_counts c = {atomic_load(&calls), atomic_load(&bytes), atomic_load(&largest)};
    return c;
}

void stylize_malloc_counter_reset_largest(void) { atomic_store(&largest, 0); }

int stylize_malloc_counter_active(void) {
    long before = atomic_load(&calls);
    void *volatile p = malloc(24);
    free(p);
    return atomic_load(&calls) > before;
}
