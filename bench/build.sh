#!/usr/bin/env bash
# Builds the benchmark's native code into OUT_DIR (gradle bench runs it through benchNative):
#
#   libproxyso_bench_echo.so         the algorithm, proxyso_bench_echo (echo.c)
#   libproxyso_bench_jni.so          the hand-written JNI binding of it (direct_echo.c)
#   libproxyso_bench_plugin.so       the proxyso plugin whose default method calls it (plugin.c)
#   libproxyso_bench_plugin_1mib.so  the same plugin with 1 MiB of initialised data
#   proxyso_bench_sidecar            a child process that echoes framed requests on stdin/stdout
#
# The binding and the plugins call proxyso_bench_echo in libproxyso_bench_echo.so (found through
# an absolute RUNPATH, since the host maps a plugin from a snapshot elsewhere), and JNA opens the
# same library: every way of the benchmark runs the same machine code.
#
# Usage: build.sh OUT_DIR JNI_INCLUDE_DIR    (JNI_INCLUDE_DIR holds jni.h and linux/jni_md.h;
# CC is honoured)
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 OUT_DIR JNI_INCLUDE_DIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
include="$(cd "$here/../include" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
jni="$2"
cc="${CC:-cc}"
flags=(-O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -I"$here" -I"$include")

"$cc" "${flags[@]}" -Wl,-soname,libproxyso_bench_echo.so \
    -o "$out/libproxyso_bench_echo.so" "$here/echo.c"
"$cc" "${flags[@]}" -I"$jni" -I"$jni/linux" -o "$out/libproxyso_bench_jni.so" \
    "$here/direct_echo.c" -L"$out" -lproxyso_bench_echo -Wl,-rpath,"$out"
"$cc" "${flags[@]}" -o "$out/libproxyso_bench_plugin.so" \
    "$here/plugin.c" -L"$out" -lproxyso_bench_echo -Wl,-rpath,"$out"
"$cc" "${flags[@]}" -DPROXYSO_BENCH_PAD -o "$out/libproxyso_bench_plugin_1mib.so" \
    "$here/plugin.c" -L"$out" -lproxyso_bench_echo -Wl,-rpath,"$out"
"$cc" -O2 -Wall -Wextra -Werror -I"$here" -o "$out/proxyso_bench_sidecar" "$here/sidecar.c" \
    -L"$out" -lproxyso_bench_echo -Wl,-rpath,"$out"
