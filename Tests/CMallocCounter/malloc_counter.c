#define _GNU_SOURCE
#include "malloc_counter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* ASan and TSan bring their own allocator and intercept malloc themselves: a second
 * definition here would clash with theirs (or bypass them), so under a sanitizer the
 * interposition is compiled out, the counter reports itself inactive and
 * stylize_malloc_counter_sanitized() says why (HotPathTests then skip). */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define STYLIZE_SANITIZED 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define STYLIZE_SANITIZED 1
#endif

static atomic_long calls, bytes, largest;

int stylize_malloc_counter_sanitized(void) {
#ifdef STYLIZE_SANITIZED
    return 1;
#else
    return 0;
#endif
}

#ifndef STYLIZE_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

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
#endif

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
