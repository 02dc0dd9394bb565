// proxyso.hpp - write a proxyso plugin in C++17, over the C ABI of proxyso.h.
//
// A plugin is a class. Its constructor is the plugin's `init` (it gets the configuration), its
// destructor is `destroy` (it runs once, after the last call returned), and its methods are
// member functions that read their input and write their result into a proxyso::output. One
// macro exports the descriptor:
//
//     #include <proxyso.hpp>
//
//     class Greeter {
//     public:
//         Greeter(proxyso::host host, std::string_view config) : greeting_(config) {
//             if (greeting_.empty()) throw proxyso::error(10, "the configuration must be a greeting");
//             host.info("greeter ready");
//         }
//         void greet(std::string_view input, proxyso::output &out) const {
//             out.write(greeting_);
//             out.write(", ");
//             out.write(input);
//         }
//         void size(proxyso::bytes input, proxyso::output &out) const {
//             out.write(std::to_string(input.size()));
//         }
//     private:
//         std::string greeting_;
//     };
//
//     PROXYSO_PLUGIN(Greeter, "greeter", "1.0.0",
//                    PROXYSO_METHOD(Greeter, greet),   // the first method is the default one
//                    PROXYSO_METHOD(Greeter, size));
//
// Build it with the CMake package (sdk/cpp/CMakeLists.txt installs it):
//
//     find_package(proxyso 1 CONFIG REQUIRED)
//     proxyso_add_plugin(greeter SOURCES greeter.cpp)    # -> libgreeter.so
//
// Constructors: the SDK calls the first of these the class has:
//     P(proxyso::host, std::string_view)   P(proxyso::host, proxyso::bytes)
//     P(std::string_view)                  P(proxyso::bytes)                  P()
// Methods: `void name(In input, proxyso::output &out)`, const or not, noexcept or not, where In
// is std::string_view, proxyso::bytes or std::string (a copy). Methods run on many threads at
// once: keep them const, or make the state they change thread-safe, or export with
// PROXYSO_PLUGIN_FLAGS(P, PROXYSO_FLAG_SERIALIZE, ...) so that the host runs one at a time.
//
// Errors: no exception ever leaves an entry point the SDK defines (each is noexcept and catches
// everything). From a constructor or a method,
//   - proxyso::error(code, message)   -> the call fails (PROXYSO_ERROR) with that code and message;
//   - any other std::exception        -> the call fails with proxyso::error::default_code (1) and
//                                        its what();
//   - anything else                   -> reported as a panic (PROXYSO_PANIC), code
//                                        proxyso::error::panic_code (-1), message
//                                        "unknown C++ exception".
// Java gets them in a PluginException (from the constructor, a LibraryLoadException). The
// version keeps serving after a failed call, so leave the object fit for the next call.
// A destructor that throws (it must be declared noexcept(false) to do so) is logged as an error;
// the library is closed all the same.
//
// What a plugin must not do (see proxyso.h): leave threads running after its destructor, or
// leave thread_local objects with destructors, atexit handlers or signal handlers behind; the
// host dlcloses the library right after the destructor returns. Build with the CMake package
// (or the same flags: -fno-gnu-unique, -fvisibility=hidden, -fvisibility-inlines-hidden, a
// version script exporting only proxyso_plugin), or the host can never unload the library.
#ifndef PROXYSO_HPP
#define PROXYSO_HPP

#if __cplusplus < 201703L
#error "proxyso.hpp needs C++17 (-std=c++17)"
#endif

#include "proxyso.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace proxyso {

/// A failure a plugin reports on purpose: Java gets `code` and `what()`.
class error : public std::runtime_error {
public:
    /// The code of a std::exception that is not a proxyso::error (and of a refused output).
    static constexpr std::int32_t default_code = 1;
    /// The code of an exception not derived from std::exception (reported as a panic).
    static constexpr std::int32_t panic_code = -1;

    error(std::int32_t code, const std::string &message) : std::runtime_error(message), code_(code) {}
    error(std::int32_t code, const char *message) : std::runtime_error(message), code_(code) {}

    /// The plugin-defined code.
    std::int32_t code() const noexcept { return code_; }

private:
    std::int32_t code_;
};

/// A read-only view of bytes (the input, or the configuration); valid only during the call.
class bytes {
public:
    constexpr bytes() noexcept = default;
    constexpr bytes(const std::uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}

    constexpr const std::uint8_t *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const std::uint8_t *begin() const noexcept { return data_; }
    constexpr const std::uint8_t *end() const noexcept { return data_ + size_; }
    constexpr std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }
    /// The same bytes as characters.
    std::string_view str() const noexcept {
        return std::string_view(reinterpret_cast<const char *>(data_), size_);
    }

private:
    const std::uint8_t *data_ = nullptr;
    std::size_t size_ = 0;
};

/// Log levels of host::log.
enum class level : std::int32_t {
    error = PROXYSO_LOG_ERROR,
    warn = PROXYSO_LOG_WARN,
    info = PROXYSO_LOG_INFO,
    debug = PROXYSO_LOG_DEBUG,
};

/// The host's services: its log. Cheap to copy; valid until the plugin's destructor returns,
/// from any thread. Lines logged after that are dropped.
class host {
public:
    explicit host(const proxyso_host *raw) noexcept : raw_(raw) {}

    /// Writes a log line (UTF-8) to the host's log.
    void log(level lvl, std::string_view text) const noexcept {
        raw_->log(raw_, static_cast<std::int32_t>(lvl), text.data(), text.size());
    }
    void error(std::string_view text) const noexcept { log(level::error, text); }
    void warn(std::string_view text) const noexcept { log(level::warn, text); }
    void info(std::string_view text) const noexcept { log(level::info, text); }
    void debug(std::string_view text) const noexcept { log(level::debug, text); }

    /// The host's ABI version (PROXYSO_ABI_VERSION).
    std::uint32_t abi_version() const noexcept { return raw_->abi_version; }
    /// The C struct, for code written against proxyso.h.
    const proxyso_host *raw() const noexcept { return raw_; }

private:
    const proxyso_host *raw_;
};

/// The host-owned output buffer of one call. Append with write(); or write in place: reserve()
/// room, fill data() (reread it after every reserve: the buffer may move), then resize().
/// A refused growth throws proxyso::error with error::default_code.
class output {
public:
    explicit output(proxyso_output *raw) noexcept : raw_(raw) {}
    output(const output &) = delete;
    output &operator=(const output &) = delete;

    /// Appends `len` bytes.
    void write(const void *data, std::size_t len) {
        if (proxyso_output_write(raw_, data, len) != PROXYSO_OK) {
            refused(len > SIZE_MAX - raw_->len ? SIZE_MAX : raw_->len + len);
        }
    }
    void write(std::string_view text) { write(text.data(), text.size()); }
    void write(bytes data) { write(data.data(), data.size()); }
    /// Appends one byte.
    void put(std::uint8_t byte) { write(&byte, 1); }

    /// Grows the buffer to at least `total` bytes, keeping what was written.
    void reserve(std::size_t total) {
        if (total > raw_->capacity && raw_->reserve(raw_, total) != PROXYSO_OK) {
            refused(total);
        }
    }
    /// Sets how many bytes of data() are the result; at most capacity().
    void resize(std::size_t len) {
        if (len > raw_->capacity) {
            throw error(error::default_code, "proxyso::output::resize(" + std::to_string(len) +
                                                 ") beyond the capacity of " +
                                                 std::to_string(raw_->capacity) + " bytes");
        }
        raw_->len = len;
    }
    /// Drops what was written so far.
    void clear() noexcept { raw_->len = 0; }

    std::uint8_t *data() noexcept { return raw_->data; }
    std::size_t size() const noexcept { return raw_->len; }
    std::size_t capacity() const noexcept { return raw_->capacity; }
    /// The C struct, for code written against proxyso.h.
    proxyso_output *raw() noexcept { return raw_; }

private:
    [[noreturn]] static void refused(std::size_t total) {
        throw error(error::default_code,
                    "the host refused to grow the output to " + std::to_string(total) + " bytes");
    }

    proxyso_output *raw_;
};

namespace detail {

inline void report(proxyso_error *slot, std::int32_t code, const char *message) noexcept {
    slot->set(slot, code, message, std::strlen(message));
}

// Runs body() and turns every exception into a status and a recorded code and message.
template <typename Body>
proxyso_status guarded(proxyso_error *slot, Body &&body) noexcept {
    try {
        body();
        return PROXYSO_OK;
    } catch (const proxyso::error &e) {
        report(slot, e.code(), e.what());
        return PROXYSO_ERROR;
    } catch (const std::exception &e) {
        report(slot, error::default_code, e.what());
        return PROXYSO_ERROR;
    } catch (...) {
        report(slot, error::panic_code, "unknown C++ exception");
        return PROXYSO_PANIC;
    }
}

template <typename P>
P construct(proxyso::host h, bytes config) {
    if constexpr (std::is_constructible_v<P, proxyso::host, std::string_view>) {
        return P(h, config.str());
    } else if constexpr (std::is_constructible_v<P, proxyso::host, bytes>) {
        return P(h, config);
    } else if constexpr (std::is_constructible_v<P, std::string_view>) {
        return P(config.str());
    } else if constexpr (std::is_constructible_v<P, bytes>) {
        return P(config);
    } else {
        static_assert(std::is_default_constructible_v<P>,
                      "a proxyso plugin class needs a constructor P(proxyso::host, "
                      "std::string_view), P(proxyso::host, proxyso::bytes), "
                      "P(std::string_view), P(proxyso::bytes) or P()");
        return P();
    }
}

// The context handed to the host: the plugin object and the host it may log to.
template <typename P>
struct instance {
    instance(proxyso::host h, bytes config) : host(h), plugin(construct<P>(h, config)) {}
    proxyso::host host;
    P plugin;
};

template <typename P>
proxyso_status init(const proxyso_host *raw_host, const std::uint8_t *config, std::size_t config_len,
                    void **context, proxyso_error *slot) noexcept {
    return guarded(slot, [&] {
        if (raw_host == nullptr || context == nullptr) {
            throw error(error::default_code, "init called with a null host or context pointer");
        }
        *context = new instance<P>(proxyso::host(raw_host), bytes(config, config_len));
    });
}

template <typename P>
void destroy(void *context) noexcept {
    auto *self = static_cast<instance<P> *>(context);
    if (self == nullptr) {
        return;
    }
    const proxyso::host h = self->host;
    try {
        delete self;
    } catch (const std::exception &e) {
        try {
            h.error(std::string("the plugin's destructor threw: ") + e.what());
        } catch (...) {
            h.error("the plugin's destructor threw");
        }
    } catch (...) {
        h.error("the plugin's destructor threw: unknown C++ exception");
    }
}

// What a member function pointer takes: its class and its input type.
template <typename M>
struct method_traits;
template <typename C, typename In>
struct method_traits<void (C::*)(In, output &)> {
    using cls = C;
    using input = In;
};
template <typename C, typename In>
struct method_traits<void (C::*)(In, output &) const> {
    using cls = C;
    using input = In;
};
template <typename C, typename In>
struct method_traits<void (C::*)(In, output &) noexcept> {
    using cls = C;
    using input = In;
};
template <typename C, typename In>
struct method_traits<void (C::*)(In, output &) const noexcept> {
    using cls = C;
    using input = In;
};

template <typename T>
struct always_false : std::false_type {};

template <typename In>
decltype(auto) input_as(bytes input) {
    using T = std::remove_cv_t<std::remove_reference_t<In>>;
    if constexpr (std::is_same_v<T, bytes>) {
        return input;
    } else if constexpr (std::is_same_v<T, std::string_view>) {
        return input.str();
    } else if constexpr (std::is_same_v<T, std::string>) {
        return std::string(input.str());
    } else {
        static_assert(always_false<T>::value,
                      "a proxyso method takes its input as std::string_view, proxyso::bytes or "
                      "std::string");
    }
}

template <typename P, auto M>
proxyso_status call(void *context, const std::uint8_t *input, std::size_t input_len,
                    proxyso_output *raw_output, proxyso_error *slot) noexcept {
    using traits = method_traits<decltype(M)>;
    static_assert(std::is_base_of_v<typename traits::cls, P>,
                  "PROXYSO_METHOD(P, m): m must be a member function of P");
    return guarded(slot, [&] {
        P &plugin = static_cast<instance<P> *>(context)->plugin;
        output out(raw_output);
        (plugin.*M)(input_as<typename traits::input>(bytes(input, input_len)), out);
    });
}

constexpr bool same_text(const char *a, const char *b) {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

constexpr bool nonempty_text(const char *s) { return s != nullptr && *s != '\0'; }

template <std::size_t N>
constexpr bool method_names_nonempty(const proxyso_method (&methods)[N]) {
    for (std::size_t i = 0; i < N; ++i) {
        if (!nonempty_text(methods[i].name)) {
            return false;
        }
    }
    return true;
}

template <std::size_t N>
constexpr bool method_names_unique(const proxyso_method (&methods)[N]) {
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t j = i + 1; j < N; ++j) {
            if (same_text(methods[i].name, methods[j].name)) {
                return false;
            }
        }
    }
    return true;
}

constexpr bool known_flags(std::uint32_t flags) {
    return (flags & ~std::uint32_t(PROXYSO_FLAG_SERIALIZE | PROXYSO_FLAG_KEEP_MAPPED)) == 0;
}

}  // namespace detail
}  // namespace proxyso

/// One method table entry: member function `fn` of plugin class `P`, under the name "fn".
#define PROXYSO_METHOD(P, fn) PROXYSO_METHOD_NAMED(#fn, P, fn)

/// One method table entry under a name of your choosing (a string literal).
#define PROXYSO_METHOD_NAMED(name, P, fn) \
    ::proxyso_method { name, &::proxyso::detail::call<P, &P::fn> }

/// Exports plugin class `P` as the library's descriptor, with PROXYSO_FLAG_* `flags`, a name, a
/// version and its methods (PROXYSO_METHOD entries; the first is the default one). At file
/// scope, once per library, followed by a semicolon.
#define PROXYSO_PLUGIN_FLAGS(P, flags, name, version, ...)                                     \
    namespace {                                                                                \
    constexpr ::proxyso_method proxyso_cpp_methods_[] = {__VA_ARGS__};                         \
    static_assert(::proxyso::detail::method_names_nonempty(proxyso_cpp_methods_),              \
                  "every proxyso method needs a non-empty name");                              \
    static_assert(::proxyso::detail::method_names_unique(proxyso_cpp_methods_),                \
                  "two proxyso methods have the same name");                                   \
    static_assert(::proxyso::detail::known_flags(flags),                                       \
                  "unknown flag bits: use PROXYSO_FLAG_SERIALIZE, PROXYSO_FLAG_KEEP_MAPPED");  \
    static_assert(::proxyso::detail::nonempty_text(name), "the plugin name must not be empty"); \
    static_assert(::proxyso::detail::nonempty_text(version),                                   \
                  "the plugin version must not be empty");                                     \
    }                                                                                          \
    PROXYSO_DEFINE_PLUGIN = {PROXYSO_ABI_VERSION,                                              \
                             (flags),                                                          \
                             (name),                                                           \
                             (version),                                                        \
                             &::proxyso::detail::init<P>,                                      \
                             &::proxyso::detail::destroy<P>,                                   \
                             sizeof proxyso_cpp_methods_ / sizeof proxyso_cpp_methods_[0],     \
                             proxyso_cpp_methods_}

/// PROXYSO_PLUGIN_FLAGS with no flags: methods may run concurrently.
#define PROXYSO_PLUGIN(P, name, version, ...) PROXYSO_PLUGIN_FLAGS(P, 0u, name, version, __VA_ARGS__)

#endif  // PROXYSO_HPP
