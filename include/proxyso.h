/*
 * proxyso.h - the plugin ABI of proxyso, version 1.
 *
 * A proxyso plugin is a shared library that exports one symbol, its descriptor,
 *
 *     PROXYSO_DEFINE_PLUGIN = { PROXYSO_ABI_VERSION, flags, "name", "1.0.0",
 *                               init, destroy, method_count, methods };
 *
 * and nothing else the host relies on. The host (libproxy.so, inside the JVM) opens a private
 * snapshot of the file with dlopen(RTLD_NOW | RTLD_LOCAL), reads `abi_version` first and refuses
 * the library unless it equals PROXYSO_ABI_VERSION, then validates the rest of the descriptor,
 * runs `init`, and only then makes the new version visible to callers.
 *
 * Lifetimes
 *   - The descriptor, its strings and its method table must stay valid and unchanged for as long
 *     as the library is loaded (static storage is the natural choice).
 *   - `init` runs once per loaded version, before any method call. The context it returns is
 *     passed to every method and finally to `destroy`.
 *   - `destroy` runs exactly once, after the last call into this version has returned: when the
 *     version is replaced, its calls in flight finish first. It may run on any thread (often a
 *     host thread of its own, never a thread inside a call). After `destroy` returns the host
 *     dlcloses the library, so by then the plugin must have stopped every thread it started,
 *     and must not leave thread-local or pthread_key destructors, atexit handlers or signal
 *     handlers pointing into its code (or must set PROXYSO_FLAG_KEEP_MAPPED).
 *
 * Signals
 *   - The JVM relies on its own handlers (SIGSEGV, SIGBUS, SIGFPE, SIGQUIT, SIGUSR2, ...; SIGTERM,
 *     SIGINT and SIGHUP run its shutdown hooks) and the application may own others. If loading
 *     or `init` changes the handler of any signal, the host restores it and fails the load
 *     naming the signals (unless the load allows it; the version is then kept mapped).
 *
 * Threading
 *   - Methods are called from many threads at once (JVM threads calling ProxySo.call) unless the
 *     descriptor sets PROXYSO_FLAG_SERIALIZE, in which case the host runs at most one method call
 *     of this version at a time. `init` and `destroy` never run concurrently with a method call
 *     of the same version.
 *
 * Memory: whoever allocates frees.
 *   - The plugin never frees host memory and the host never frees plugin memory. Output goes into
 *     a host-owned buffer (`proxyso_output`) that the plugin may grow only through `reserve`.
 *   - Error messages are copied by the host inside `proxyso_error.set`; the plugin keeps
 *     ownership of the string it passes.
 *   - The input buffer belongs to the host and is valid only during the call; it is never NULL,
 *     even when its length is 0.
 *
 * Errors
 *   - Every entry point returns a proxyso_status. On PROXYSO_ERROR the plugin should have called
 *     `error->set` with its own code and message; both reach Java in a PluginException (or, from
 *     `init`, a LibraryLoadException). PROXYSO_PANIC says the plugin caught a panic or an
 *     exception of its own; the host treats it like an error and keeps the version serving.
 *   - Catch your own C++ exceptions (`catch (...)`) and Rust panics (`catch_unwind`, which the
 *     Rust SDK does for you) and report them: only the plugin can choose the code and message
 *     and leave its context in a state fit for the next call.
 *   - In process, a C++ exception that escapes a plugin function anyway is caught by the host
 *     and reported, not left to abort the process. From a method it is a failure like
 *     PROXYSO_PANIC (code 0; Java gets a PluginException whose isPanic() is true and whose
 *     message ends "C++ exception: <what()>", or "C++ exception: unknown C++ exception (of type
 *     T)" for one not derived from std::exception; what() is cut at 1024 bytes) and the version
 *     keeps serving, with its context in whatever state the exception left it. From `init` the
 *     load fails the same way (a LibraryLoadException; `destroy` is not called and nothing stays
 *     loaded). From `destroy` it is logged as an error naming the key and generation, and the
 *     library is closed all the same. Thread cancellation (abi::__forced_unwind) is not caught.
 *     A Rust panic that leaves an extern "C" function aborts the process in the plugin itself,
 *     before the host sees it.
 *
 * Building
 *   - C++ plugins: compile with -fno-gnu-unique, or a template static or inline variable becomes
 *     an STB_GNU_UNIQUE symbol and glibc silently refuses to ever unload the library.
 *   - Export only the descriptor: -fvisibility=hidden (PROXYSO_DEFINE_PLUGIN stays visible), and
 *     for C++ also a linker version script (`{ global: proxyso_plugin; local: *; };`), since
 *     template code instantiated from libstdc++'s headers keeps default visibility.
 *
 * Example: a complete plugin, greeter.c. Its configuration is a greeting; "greet" (the default
 * method) answers "<greeting>, <input>", "upper" answers its input in upper case and fails on an
 * empty one. Build it as
 *
 *     cc -std=c11 -O2 -fPIC -shared -fvisibility=hidden -I include -o libgreeter.so greeter.c
 *
 * tests/header_example.rs builds the lines between the fences with that command plus
 * -Wall -Wextra -Wpedantic -Werror, and loads and calls the result through the host, so this
 * example cannot go stale.
 *
 * ```c
 * #include <stdlib.h>
 * #include <string.h>
 *
 * #include "proxyso.h"
 *
 * // The context: built by init, read by every call (from many threads at once), freed by
 * // destroy.
 * typedef struct greeter {
 *     size_t len;
 *     char greeting[];
 * } greeter;
 *
 * static proxyso_status greeter_init(const proxyso_host *host, const uint8_t *config,
 *                                    size_t config_len, void **context, proxyso_error *error) {
 *     if (config_len == 0)
 *         return proxyso_fail(error, 10, "the configuration must be a greeting");
 *     greeter *g = malloc(sizeof *g + config_len);
 *     if (g == NULL)
 *         return proxyso_fail(error, 11, "out of memory");
 *     g->len = config_len;
 *     memcpy(g->greeting, config, config_len);
 *     static const char ready[] = "greeter ready";
 *     host->log(host, PROXYSO_LOG_INFO, ready, sizeof ready - 1);
 *     *context = g;
 *     return PROXYSO_OK;
 * }
 *
 * static void greeter_destroy(void *context) {
 *     free(context);
 * }
 *
 * // Appends through proxyso_output_write, which grows the host's buffer as needed.
 * static proxyso_status greet(void *context, const uint8_t *input, size_t input_len,
 *                             proxyso_output *output, proxyso_error *error) {
 *     const greeter *g = context;
 *     if (proxyso_output_write(output, g->greeting, g->len) != PROXYSO_OK ||
 *         proxyso_output_write(output, ", ", 2) != PROXYSO_OK ||
 *         proxyso_output_write(output, input, input_len) != PROXYSO_OK)
 *         return proxyso_fail(error, 1, "the host refused to grow the output");
 *     return PROXYSO_OK;
 * }
 *
 * // Writes in place: reserve the room first, then reread output->data, which may have moved.
 * static proxyso_status upper(void *context, const uint8_t *input, size_t input_len,
 *                             proxyso_output *output, proxyso_error *error) {
 *     (void)context;
 *     if (input_len == 0)
 *         return proxyso_fail(error, 2, "upper: the input is empty");
 *     if (input_len > output->capacity && output->reserve(output, input_len) != PROXYSO_OK)
 *         return proxyso_fail(error, 1, "the host refused to grow the output");
 *     for (size_t i = 0; i < input_len; i++) {
 *         uint8_t c = input[i];
 *         output->data[i] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
 *     }
 *     output->len = input_len;
 *     return PROXYSO_OK;
 * }
 *
 * static const proxyso_method methods[] = {
 *     {"greet", greet}, // the first method is the default one
 *     {"upper", upper},
 * };
 *
 * PROXYSO_DEFINE_PLUGIN = {
 *     .abi_version = PROXYSO_ABI_VERSION,
 *     .flags = 0,
 *     .name = "greeter",
 *     .version = "1.0.0",
 *     .init = greeter_init,
 *     .destroy = greeter_destroy,
 *     .method_count = sizeof methods / sizeof methods[0],
 *     .methods = methods,
 * };
 * ```
 */
#ifndef PROXYSO_H
#define PROXYSO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; the host refuses any other value. */
#define PROXYSO_ABI_VERSION 1u

/** Name of the one symbol every plugin exports: its `proxyso_descriptor`. */
#define PROXYSO_DESCRIPTOR_SYMBOL "proxyso_plugin"

/** Marks the descriptor as exported even under -fvisibility=hidden. */
#define PROXYSO_EXPORT __attribute__((visibility("default")))

/** Result of every plugin entry point. */
typedef int32_t proxyso_status;

/** The call succeeded. */
#define PROXYSO_OK 0
/** The call failed; `error->set` holds the plugin's code and message. */
#define PROXYSO_ERROR 1
/** The plugin caught a panic or an exception; `error->set` holds what it said. */
#define PROXYSO_PANIC 2

/** Descriptor flag: the host must not run two method calls of one version at once. */
#define PROXYSO_FLAG_SERIALIZE 0x1u
/**
 * Descriptor flag: once retired, keep this version mapped for the life of the process
 * (RTLD_NODELETE); `destroy` still runs. For plugins that cannot avoid leaving code behind: a
 * pthread_key or thread-local destructor, or a thread that outlives `destroy`.
 */
#define PROXYSO_FLAG_KEEP_MAPPED 0x2u
/**
 * Descriptor flag: methods may run long or block (I/O, locks, a time that depends on the input),
 * so the host never calls them in a way that holds off the JVM's garbage collector. Without it,
 * on JDK 22 and later, a method whose calls on inputs of one size have been measured short (32
 * timed calls in a row under 20 us) is called through a critical FFM downcall, during which no
 * collection can start; a method that is fast for some inputs and slow for others of the same
 * size (a power of two) should set this flag.
 */
#define PROXYSO_FLAG_LONG_CALLS 0x4u

/* Log levels for `proxyso_host.log`. */
/** Log level: something failed. */
#define PROXYSO_LOG_ERROR 1
/** Log level: something looks wrong. */
#define PROXYSO_LOG_WARN 2
/** Log level: normal operation. */
#define PROXYSO_LOG_INFO 3
/** Log level: detail for debugging. */
#define PROXYSO_LOG_DEBUG 4

/**
 * Host-owned output buffer of one call.
 *
 * On entry `data` points to `capacity` writable bytes and `len` is 0. The method writes its
 * result at `data` and sets `len` (never above `capacity`). To get more room it calls
 * `reserve`, which keeps the first `len` bytes and may move `data`: reread `data` and
 * `capacity` after it. The buffer is valid only until the method returns.
 */
typedef struct proxyso_output {
    /** Start of the writable buffer. */
    uint8_t *data;
    /** Bytes of output written so far; set by the plugin, at most `capacity`. */
    size_t len;
    /** Writable bytes at `data`. */
    size_t capacity;
    /**
     * Grow the buffer to at least `capacity` bytes. Returns PROXYSO_OK, or PROXYSO_ERROR when
     * the host refuses (more than it will hand to Java, or out of memory); on refusal the buffer
     * is unchanged.
     */
    proxyso_status (*reserve)(struct proxyso_output *self, size_t capacity);
    /** Host bookkeeping; do not touch. */
    void *host_data;
} proxyso_output;

/** Host-owned error slot of one call (or of `init`). */
typedef struct proxyso_error {
    /**
     * Record the failure: a plugin-defined code and a UTF-8 message of `len` bytes (need not be
     * NUL-terminated; invalid UTF-8 is replaced). The host copies the message. Calling it again
     * replaces what was recorded.
     */
    void (*set)(struct proxyso_error *self, int32_t code, const char *message, size_t len);
    /** Host bookkeeping; do not touch. */
    void *host_data;
} proxyso_error;

/**
 * Services the host offers to `init`; valid until `destroy` returns, usable from any thread. For
 * a version kept mapped (PROXYSO_FLAG_KEEP_MAPPED or the load option) the struct stays valid for
 * the life of the process, so a thread that outlives `destroy` may still call `log`; lines logged
 * after `destroy` returned are dropped.
 */
typedef struct proxyso_host {
    /** The host's ABI version (PROXYSO_ABI_VERSION). */
    uint32_t abi_version;
    /** Reserved, 0. */
    uint32_t reserved;
    /** Write a log line (UTF-8, `len` bytes) at one of the PROXYSO_LOG_* levels. */
    void (*log)(const struct proxyso_host *self, int32_t level, const char *message, size_t len);
    /** Host bookkeeping; do not touch. */
    void *host_data;
} proxyso_host;

/**
 * A method: reads `input_len` bytes at `input`, writes its result into `output`.
 * `context` is what `init` returned (NULL if the plugin has no `init`).
 */
typedef proxyso_status (*proxyso_method_fn)(void *context, const uint8_t *input,
                                            size_t input_len, proxyso_output *output,
                                            proxyso_error *error);

/** One entry of the method table. */
typedef struct proxyso_method {
    /** NUL-terminated UTF-8 name, unique within the plugin, not empty. */
    const char *name;
    /** The function; never NULL. */
    proxyso_method_fn call;
} proxyso_method;

/**
 * The descriptor: the only symbol the host looks up, named PROXYSO_DESCRIPTOR_SYMBOL and
 * defined with PROXYSO_DEFINE_PLUGIN. `abi_version` comes first and is the only field read
 * before it is checked.
 */
typedef struct proxyso_descriptor {
    /** PROXYSO_ABI_VERSION. */
    uint32_t abi_version;
    /** PROXYSO_FLAG_* bits; unknown bits make the load fail. */
    uint32_t flags;
    /** The plugin's name (NUL-terminated UTF-8, not empty). */
    const char *name;
    /** The plugin's version string (NUL-terminated UTF-8, not empty). */
    const char *version;
    /**
     * Optional (may be NULL). Builds the context from `config_len` bytes of configuration
     * (`config` is never NULL). On PROXYSO_OK `*context` is handed to every method; on failure
     * the load fails with the recorded message, `destroy` is not called, and the library is
     * closed again.
     */
    proxyso_status (*init)(const proxyso_host *host, const uint8_t *config, size_t config_len,
                           void **context, proxyso_error *error);
    /** Optional (may be NULL). Frees the context; runs once, after the last call returned. */
    void (*destroy)(void *context);
    /** Number of entries in `methods`; at least 1. */
    size_t method_count;
    /** The methods; the first is the default one. */
    const proxyso_method *methods;
} proxyso_descriptor;

/**
 * Defines the exported descriptor: `PROXYSO_DEFINE_PLUGIN = { ... };` at file scope.
 * (In C++ a const at namespace scope would otherwise have internal linkage.)
 */
#ifdef __cplusplus
#define PROXYSO_DEFINE_PLUGIN extern "C" PROXYSO_EXPORT const proxyso_descriptor proxyso_plugin
#else
#define PROXYSO_DEFINE_PLUGIN PROXYSO_EXPORT const proxyso_descriptor proxyso_plugin
#endif

/**
 * Append `len` bytes to `output`, growing it through `reserve` as needed. Returns PROXYSO_ERROR
 * when the host refuses to grow it; the caller then reports the failure with `error->set`.
 */
static inline proxyso_status proxyso_output_write(proxyso_output *output, const void *data,
                                                  size_t len) {
    if (len > output->capacity - output->len) {
        if (len > SIZE_MAX - output->len) {
            return PROXYSO_ERROR;
        }
        proxyso_status status = output->reserve(output, output->len + len);
        if (status != PROXYSO_OK) {
            return status;
        }
        if (len > output->capacity - output->len) {
            return PROXYSO_ERROR;
        }
    }
    if (len > 0) {
        memcpy(output->data + output->len, data, len);
        output->len += len;
    }
    return PROXYSO_OK;
}

/** Record an error with a NUL-terminated message and return PROXYSO_ERROR. */
static inline proxyso_status proxyso_fail(proxyso_error *error, int32_t code, const char *message) {
    error->set(error, code, message, strlen(message));
    return PROXYSO_ERROR;
}

#ifdef __cplusplus
}
#endif

#endif /* PROXYSO_H */
