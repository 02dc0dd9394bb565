// example.cpp - the example proxyso plugin in C++, written with the C++ SDK (sdk/cpp/proxyso.hpp).
//
// One source, two versions (build.sh and CMakeLists.txt build both): -DEXAMPLE_VERSION=1 gives
// libexample_cpp_v1.so (version "1.0.0"), -DEXAMPLE_VERSION=2 gives libexample_cpp_v2.so
// (version "2.0.0"), whose "echo" appends ",ab" to its input.
//
// Methods (the first is the default):
//   echo     the input (v2: followed by ",ab")
//   version  the version string
//   sum      the sum of comma-separated integers, "1,2,3" -> "6"; bad input is error code 2
//
// The SDK turns the class into the C ABI: the constructor is init, the destructor destroy, and
// every exception is caught at the boundary and reported (a proxyso::error with its code, any
// other std::exception with code 1, anything else as a panic).

#include "proxyso.hpp"

#include <string>
#include <string_view>

#ifndef EXAMPLE_VERSION
#error "build with -DEXAMPLE_VERSION=1 or -DEXAMPLE_VERSION=2 (see build.sh)"
#endif

namespace {

constexpr const char *kVersion = EXAMPLE_VERSION == 2 ? "2.0.0" : "1.0.0";
constexpr std::string_view kEchoSuffix = ",ab";

// Error code of bad input to sum; Java sees it in PluginException.
constexpr int kErrBadInput = 2;

// One comma-separated term. std::stoll throws std::invalid_argument or std::out_of_range,
// rethrown with the offending term added, since stoll's own what() is just "stoll".
long long parse_term(const std::string &term) {
    size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(term, &used);
    } catch (const std::out_of_range &e) {
        throw proxyso::error(kErrBadInput,
                             "sum: term out of range: \"" + term + "\" (" + e.what() + ")");
    } catch (const std::invalid_argument &e) {
        throw proxyso::error(kErrBadInput,
                             "sum: not an integer: \"" + term + "\" (" + e.what() + ")");
    }
    if (used != term.size()) {
        throw proxyso::error(kErrBadInput, "sum: not an integer: \"" + term + "\"");
    }
    return value;
}

// One object per loaded version: built by init, used by every call (from many threads at once,
// hence const methods), destroyed by destroy. A real plugin would keep its model or tables here.
class Example {
public:
    Example(proxyso::host host, std::string_view config) : config_(config) {
        host.info(std::string("example-cpp ") + kVersion + " loaded with " +
                  std::to_string(config_.size()) + " bytes of config");
    }

    void echo(proxyso::bytes input, proxyso::output &out) const {
        out.write(input);
        if constexpr (EXAMPLE_VERSION == 2) {
            out.write(kEchoSuffix);
        }
    }

    void version(proxyso::bytes, proxyso::output &out) const { out.write(kVersion); }

    void sum(std::string_view input, proxyso::output &out) const {
        const std::string text(input);
        long long total = 0;
        // An empty input is the empty sum; otherwise every term must be an integer.
        for (size_t start = 0; !text.empty() && start <= text.size();) {
            size_t comma = text.find(',', start);
            if (comma == std::string::npos) {
                comma = text.size();
            }
            if (__builtin_add_overflow(total, parse_term(text.substr(start, comma - start)),
                                       &total)) {
                throw proxyso::error(kErrBadInput, "sum: the total overflows a 64-bit integer");
            }
            start = comma + 1;
        }
        out.write(std::to_string(total));
    }

private:
    std::string config_;
};

}  // namespace

// The descriptor, the one exported symbol. No flags: the methods are safe to call concurrently.
PROXYSO_PLUGIN(Example, "example-cpp", kVersion,
               PROXYSO_METHOD(Example, echo),
               PROXYSO_METHOD(Example, version),
               PROXYSO_METHOD(Example, sum));
