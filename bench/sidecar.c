/*
 * proxyso_bench_sidecar: what a team would build instead of an isolated plugin, a child process
 * that answers requests over its standard input and output. Each request is a 4-byte
 * native-endian length and that many bytes; the answer is the same framing around what
 * proxyso_bench_echo (the benchmark's one algorithm) made of them. It ends at end of input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "echo.h"

static int read_all(uint8_t *buf, size_t n) {
    while (n > 0) {
        ssize_t got = read(0, buf, n);
        if (got <= 0) {
            return -1;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

static int write_all(const uint8_t *buf, size_t n) {
    while (n > 0) {
        ssize_t put = write(1, buf, n);
        if (put <= 0) {
            return -1;
        }
        buf += put;
        n -= (size_t)put;
    }
    return 0;
}

int main(void) {
    size_t capacity = 0;
    uint8_t *in = NULL;
    uint8_t *out = NULL;
    for (;;) {
        uint32_t len;
        if (read_all((uint8_t *)&len, sizeof len) != 0) {
            return 0;
        }
        if (len > capacity) {
            free(in);
            free(out);
            capacity = len;
            in = malloc(capacity);
            out = malloc(capacity);
            if (in == NULL || out == NULL) {
                return 1;
            }
        }
        if (read_all(in, len) != 0) {
            return 1;
        }
        uint32_t answer = (uint32_t)proxyso_bench_echo(in, len, out);
        if (write_all((const uint8_t *)&answer, sizeof answer) != 0 ||
            write_all(out, answer) != 0) {
            return 1;
        }
    }
}
