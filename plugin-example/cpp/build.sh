#!/usr/bin/env bash
# Builds the C++ example plugin twice from one source, without CMake (CMakeLists.txt builds the
# same with the SDK's CMake package, and these are the flags its proxyso_add_plugin sets):
#   OUT_DIR/libexample_cpp_v1.so  (-DEXAMPLE_VERSION=1, version "1.0.0")
#   OUT_DIR/libexample_cpp_v2.so  (-DEXAMPLE_VERSION=2, version "2.0.0")
# and checks that each exports the descriptor and nothing else.
#
# Usage: build.sh OUT_DIR    (CXX, CXXFLAGS and LDFLAGS are honoured)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
include="$(cd "$here/../../include" && pwd)"   # proxyso.h
sdk="$(cd "$here/../../sdk/cpp" && pwd)"          # proxyso.hpp and the version script
out="$1"
mkdir -p "$out"
cxx="${CXX:-g++}"

flags=(-std=c++17 -O2 -fPIC -shared -Wall -Wextra -Werror)
# Export only the descriptor (marked PROXYSO_EXPORT) ...
flags+=(-fvisibility=hidden -fvisibility-inlines-hidden)
# ... and not the weak template instantiations from libstdc++'s headers either (here
# std::to_string and an operator+), which keep default visibility whatever -fvisibility says.
flags+=("-Wl,--version-script=$sdk/cmake/proxyso-exports.map")
# An undefined symbol fails the link here rather than the load inside the JVM.
flags+=(-Wl,-z,defs)
# Without -fno-gnu-unique, g++ gives a static variable of an inline function or template the
# binding STB_GNU_UNIQUE ("u" in nm; here the digit table behind std::to_string), and glibc
# never unloads a library that defines one: dlclose silently does nothing, so every
# hot-replaced version would stay mapped, statics and all, until the JVM exits. Clang never
# emits such symbols and may not know the option.
if "$cxx" -fno-gnu-unique -x c++ -fsyntax-only /dev/null 2>/dev/null; then
    flags+=(-fno-gnu-unique)
fi

for version in 1 2; do
    lib="$out/libexample_cpp_v$version.so"
    # CXXFLAGS and LDFLAGS are split on spaces on purpose, as make would.
    # shellcheck disable=SC2086
    "$cxx" "${flags[@]}" -DEXAMPLE_VERSION="$version" -I"$include" -I"$sdk" ${CXXFLAGS:-} \
        -o "$lib" "$here/example.cpp" ${LDFLAGS:-}

    if command -v nm >/dev/null; then
        exported="$(nm -D --defined-only "$lib" | awk '{ print $2 " " $3 }')"
        if [[ "$exported" != "D proxyso_plugin" && "$exported" != "R proxyso_plugin" ]]; then
            echo "$lib: must export only proxyso_plugin, exports:" >&2
            echo "$exported" >&2
            exit 1
        fi
    fi
done
