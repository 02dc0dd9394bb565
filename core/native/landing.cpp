// The landing pad: every call the host makes into plugin code (a method, init, destroy) goes
// through one of these functions, which catch whatever C++ exception a plugin lets escape.
//
// Rust cannot catch a foreign exception: one that reaches a Rust frame's catch_unwind aborts the
// process ("Rust cannot catch foreign exceptions"), and with it the JVM. So the frame that
// catches must be C++. The plugin ABI is unchanged: a plugin should still catch its own
// exceptions and report them (PROXYSO_ERROR or PROXYSO_PANIC); these catch only what escapes.
//
// What is caught is reported in a host-owned `proxyso_landing` (core/src/landing.rs declares the
// same layout): `caught` says what it was, and the text (what() of a std::exception, or a
// description of anything else) is copied, bounded by `capacity`, into `text`. Nothing is
// allocated on the normal path, and the try block costs nothing until something is thrown.
//
// abi::__forced_unwind (pthread_cancel, pthread_exit) is not an exception but the unwinding of
// a thread that is ending: swallowing it makes libstdc++ abort ("exception not rethrown"), so it
// is rethrown, and the Rust side declares these functions "C-unwind" to let it pass.

#include <cxxabi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <typeinfo>

#include "proxyso.h"

namespace {

// Values of `proxyso_landing.caught`.
constexpr int32_t kNothing = 0;
constexpr int32_t kStdException = 1;
constexpr int32_t kOther = 2;

}  // namespace

extern "C" {

// What the landing pad caught; filled only when `caught` is not kNothing.
struct proxyso_landing {
    // kNothing on entry (the host sets it); kStdException or kOther once something was caught.
    int32_t caught;
    // Non-zero when the text was longer than `capacity` and was cut.
    int32_t truncated;
    // Bytes of `text` written (not NUL-terminated).
    size_t len;
    // Bytes at `text`, set by the host.
    size_t capacity;
    // The host's buffer of `capacity` bytes, uninitialised until something is caught.
    char *text;
};

}  // extern "C"

namespace {

// Appends up to the room left of the NUL-terminated `s` to the landing's text.
void append(proxyso_landing *landing, const char *s) noexcept {
    if (s == nullptr) {
        return;
    }
    size_t room = landing->capacity - landing->len;
    // One byte more than fits tells a cut text from one that fits exactly.
    size_t n = strnlen(s, room + 1);
    if (n > room) {
        n = room;
        landing->truncated = 1;
    }
    memcpy(landing->text + landing->len, s, n);
    landing->len += n;
}

// Records a std::exception: its what().
void caught_std(proxyso_landing *landing, const std::exception &e) noexcept {
    landing->caught = kStdException;
    landing->truncated = 0;
    landing->len = 0;
    append(landing, e.what());
}

// Records anything else, with its type's name when the runtime knows it. Must run inside the
// catch handler (__cxa_current_exception_type reads the exception being handled).
void caught_other(proxyso_landing *landing) noexcept {
    landing->caught = kOther;
    landing->truncated = 0;
    landing->len = 0;
    append(landing, "unknown C++ exception");
    const std::type_info *type = abi::__cxa_current_exception_type();
    if (type == nullptr) {
        return;
    }
    int status = 0;
    char *demangled = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
    append(landing, " (of type ");
    append(landing, status == 0 && demangled != nullptr ? demangled : type->name());
    append(landing, ")");
    free(demangled);
}

}  // namespace

extern "C" {

proxyso_status proxyso_landing_method(proxyso_method_fn call, void *context,
                                      const uint8_t *input, size_t input_len,
                                      proxyso_output *output, proxyso_error *error,
                                      proxyso_landing *landing) {
    try {
        return call(context, input, input_len, output, error);
    } catch (abi::__forced_unwind &) {
        throw;
    } catch (const std::exception &e) {
        caught_std(landing, e);
    } catch (...) {
        caught_other(landing);
    }
    return PROXYSO_PANIC;
}

proxyso_status proxyso_landing_init(proxyso_status (*init)(const proxyso_host *, const uint8_t *,
                                                           size_t, void **, proxyso_error *),
                                    const proxyso_host *host, const uint8_t *config,
                                    size_t config_len, void **context, proxyso_error *error,
                                    proxyso_landing *landing) {
    try {
        return init(host, config, config_len, context, error);
    } catch (abi::__forced_unwind &) {
        throw;
    } catch (const std::exception &e) {
        caught_std(landing, e);
    } catch (...) {
        caught_other(landing);
    }
    return PROXYSO_PANIC;
}

void proxyso_landing_destroy(void (*destroy)(void *), void *context, proxyso_landing *landing) {
    try {
        destroy(context);
    } catch (abi::__forced_unwind &) {
        throw;
    } catch (const std::exception &e) {
        caught_std(landing, e);
    } catch (...) {
        caught_other(landing);
    }
}

}  // extern "C"
