#ifndef STYLIZE_MALLOC_COUNTER_H
#define STYLIZE_MALLOC_COUNTER_H

/* Counts every malloc-family call in the test process (HotPathTests): the test bundle
 * defines malloc, calloc, realloc and the aligned variants, forwarding to glibc's own
 * __libc_* entry points, so calls from the Swift runtime and every library are seen. */
typedef struct {
    long calls;
    long bytes;
    long largest;
} stylize_malloc_counts;

stylize_malloc_counts stylize_malloc_counter_read(void);
/* Starts a new window for `largest` (calls and bytes only grow; take differences). */
void stylize_malloc_counter_reset_largest(void);
/* 1 when this process's malloc is the counting one (the interposition took effect). */
int stylize_malloc_counter_active(void);
/* 1 when this bundle was built with ASan or TSan: the interposition is compiled out (the
 * sanitizer owns malloc), so the counter is inactive by design and the tests that need
 * it skip. 0 in a normal build, where an inactive counter is a failure. */
int stylize_malloc_counter_sanitized(void);

#endif
