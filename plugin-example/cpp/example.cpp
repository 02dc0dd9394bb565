// example.cpp - the example proxyso plugin in C++, using nothing but include/proxyso.h.
//
// One source, two versions (build.sh builds both): -DEXAMPLE_VERSION=1 gives
// libexample_cpp_v1.so (version "1.0.0"), -DEXAMPLE_VERSION=2 gives libexample_cpp_v2.so
// (version "2.0.0"), whose "echo" appends ",ab" to its input.
//
// Methods (the first is the default):
//   echo     the input (v2: followed by ",ab")
//   version  the version string
//   sum      the sum of comma-separated integers, "1,2,3" -> "6"; bad input is an error
//
// The rule that shapes this file: no C++ exception may cross the C boundary (the caller is
// Rust inside a JVM, and unwinding into it ends the process). Every entry point runs its body
// through guarded(), which turns exceptions into a status and a recorded message.

#include "proxyso.h"

#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#ifndef EXAMPLE_VERSION
#error "build with -DEXAMPLE_VERSION=1 or -DEXAMPLE_VERSION=2 (see build.sh)"
#endif

namespace {

constexpr const char *kVersion = EXAMPLE_VERSION == 2 ? "2.0.0" : "1.0.0";
constexpr const char kEchoSuffix[] = ",ab";

// Error codes this plugin reports; Java sees them in PluginException.
constexpr int32_t kErrFailed = 1;    // any other std::exception (std::bad_alloc, a refused reserve)
constexpr int32_t kErrBadInput = 2;  // std::invalid_argument, std::out_of_range
constexpr int32_t kErrUnknown = -1;  // an exception not derived from std::exception

void record(proxyso_error *error, int32_t code, const char *message) noexcept {
    error->set(error, code, message, std::strlen(message));
}

// Runs body() and returns its status; an exception becomes PROXYSO_ERROR (a std::exception,
// with its what()) or PROXYSO_PANIC (anything else). noexcept, so that a bug here ends in
// std::terminate rather than in unwinding through the host.
template <typename Body>
proxyso_status guarded(proxyso_error *error, Body &&body) noexcept {
    try {
        return body();
    } catch (const std::invalid_argument &e) {
        record(error, kErrBadInput, e.what());
        return PROXYSO_ERROR;
    } catch (const std::out_of_range &e) {
        record(error, kErrBadInput, e.what());
        return PROXYSO_ERROR;
    } catch (const std::exception &e) {
        record(error, kErrFailed, e.what());
        return PROXYSO_ERROR;
    } catch (...) {
        record(error, kErrUnknown, "unknown C++ exception");
        return PROXYSO_PANIC;
    }
}

// Appends to the host's buffer; a refused reserve becomes an exception like any other failure.
void write(proxyso_output *output, const void *data, size_t len) {
    if (proxyso_output_write(output, data, len) != PROXYSO_OK) {
        throw std::length_error("the host refused to grow the output to " +
                                std::to_string(output->len + len) + " bytes");
    }
}

void write(proxyso_output *output, const std::string &s) { write(output, s.data(), s.size()); }

// The context: the configuration given at load time. A real plugin would keep its model or
// tables here, built once in init and read by every call (from many threads at once).
using Context = std::string;

proxyso_status init(const proxyso_host *host, const uint8_t *config, size_t config_len,
                    void **context, proxyso_error *error) {
    return guarded(error, [&] {
        // Owned by the unique_ptr until the end, so that an exception on the way cannot leak
        // it (the host does not call destroy after a failed init).
        auto state = std::make_unique<Context>(reinterpret_cast<const char *>(config), config_len);
        std::string line = std::string("example-cpp ") + kVersion + " loaded with " +
                           std::to_string(state->size()) + " bytes of config";
        host->log(host, PROXYSO_LOG_INFO, line.data(), line.size());
        *context = state.release();
        return PROXYSO_OK;
    });
}

void destroy(void *context) {
    // The host calls this once, after the last method call on this context returned.
    delete static_cast<Context *>(context);
}

proxyso_status echo(void *, const uint8_t *input, size_t input_len, proxyso_output *output,
                    proxyso_error *error) {
    return guarded(error, [&] {
        write(output, input, input_len);
        if constexpr (EXAMPLE_VERSION == 2) {
            write(output, kEchoSuffix, sizeof kEchoSuffix - 1);
        }
        return PROXYSO_OK;
    });
}

proxyso_status version(void *, const uint8_t *, size_t, proxyso_output *output,
                       proxyso_error *error) {
    return guarded(error, [&] {
        write(output, kVersion, std::strlen(kVersion));
        return PROXYSO_OK;
    });
}

// One comma-separated term. std::stoll throws std::invalid_argument or std::out_of_range,
// rethrown with the offending term added, since stoll's own what() is just "stoll".
long long parse_term(const std::string &term) {
    size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(term, &used);
    } catch (const std::out_of_range &e) {
        throw std::out_of_range("sum: term out of range: \"" + term + "\" (" + e.what() + ")");
    } catch (const std::invalid_argument &e) {
        throw std::invalid_argument("sum: not an integer: \"" + term + "\" (" + e.what() + ")");
    }
    if (used != term.size()) {
        throw std::invalid_argument("sum: not an integer: \"" + term + "\"");
    }
    return value;
}

proxyso_status sum(void *, const uint8_t *input, size_t input_len, proxyso_output *output,
                   proxyso_error *error) {
    return guarded(error, [&] {
        const std::string text(reinterpret_cast<const char *>(input), input_len);
        long long total = 0;
        // An empty input is the empty sum; otherwise every term must be an integer.
        for (size_t start = 0; !text.empty() && start <= text.size();) {
            size_t comma = text.find(',', start);
            if (comma == std::string::npos) {
                comma = text.size();
            }
            if (__builtin_add_overflow(total, parse_term(text.substr(start, comma - start)),
                                       &total)) {
                throw std::out_of_range("sum: the total overflows a 64-bit integer");
            }
            start = comma + 1;
        }
        write(output, std::to_string(total));
        return PROXYSO_OK;
    });
}

const proxyso_method kMethods[] = {
    {"echo", echo},
    {"version", version},
    {"sum", sum},
};

}  // namespace

// The descriptor, the one exported symbol (visible under -fvisibility=hidden).
PROXYSO_DEFINE_PLUGIN = {
    PROXYSO_ABI_VERSION,                   // abi_version
    0,                                     // flags: methods are safe to call concurrently
    "example-cpp",                         // name
    kVersion,                              // version
    init,                                  // init
    destroy,                               // destroy
    sizeof kMethods / sizeof kMethods[0],  // method_count
    kMethods,                              // methods
};
