/*
 * The benchmark's one algorithm: an echo. Every way the benchmark measures reaches this one
 * function, in libproxyso_bench_echo.so: the hand-written JNI binding, the proxyso plugin and JNA.
 */
#ifndef PROXYSO_BENCH_ECHO_H
#define PROXYSO_BENCH_ECHO_H

#include <stddef.h>
#include <stdint.h>

/** Copies `n` bytes from `in` to `out` (which must not overlap) and returns `n`. */
size_t proxyso_bench_echo(const uint8_t *in, size_t n, uint8_t *out);

#endif /* PROXYSO_BENCH_ECHO_H */
