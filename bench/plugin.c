/*
 * The benchmark's proxyso plugin: its default method, "echo", hands the input to
 * proxyso_bench_echo, which writes straight into the host's output buffer after one reserve.
 *
 * A second method, "where", reports the addresses it was handed, so that the benchmark can show
 * that a call on direct ByteBuffers copies neither.
 *
 * Built twice: libproxyso_bench_plugin.so, and with -DPROXYSO_BENCH_PAD
 * libproxyso_bench_plugin_1mib.so, the same plugin carrying 1 MiB of initialised data, so that
 * the file (and what a load copies and maps) is over 1 MiB, for the replacement timing.
 */
#include "proxyso.h"

#include "echo.h"

#ifdef PROXYSO_BENCH_PAD
/* Initialised (not zero) so that it takes room in the file; `used` keeps it in. */
__attribute__((used)) static const uint8_t padding[1 << 20] = {1, 2, 3, 4, 5, 6, 7, 8};
#endif

static proxyso_status echo(void *context, const uint8_t *input, size_t input_len,
                           proxyso_output *output, proxyso_error *error) {
    (void)context;
    if (input_len > output->capacity && output->reserve(output, input_len) != PROXYSO_OK) {
        return proxyso_fail(error, 1, "echo: the host refused the output size");
    }
    output->len = proxyso_bench_echo(input, input_len, output->data);
    return PROXYSO_OK;
}

/*
 * Where the call's input and output are: the two addresses, as two native-endian 64-bit values
 * (16 bytes). With direct ByteBuffers they must be the buffers' own memory, which shows that
 * neither was copied.
 */
static proxyso_status where(void *context, const uint8_t *input, size_t input_len,
                            proxyso_output *output, proxyso_error *error) {
    (void)context;
    (void)input_len;
    uint64_t addresses[2] = {(uint64_t)(uintptr_t)input, (uint64_t)(uintptr_t)output->data};
    if (output->capacity < sizeof addresses) {
        return proxyso_fail(error, 2, "where: needs 16 bytes of output");
    }
    memcpy(output->data, addresses, sizeof addresses);
    output->len = sizeof addresses;
    return PROXYSO_OK;
}

static const proxyso_method methods[] = {{"echo", echo}, {"where", where}};

PROXYSO_DEFINE_PLUGIN = {
    PROXYSO_ABI_VERSION, 0, "proxyso-bench", "1.0.0", NULL, NULL,
    sizeof methods / sizeof methods[0], methods,
};
