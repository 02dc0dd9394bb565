/**
 * Load, call, hot-replace and unload native plugin libraries from a running JVM.
 *
 * <p>{@link dev.proxyso.ProxySo} is the entry point: every plugin library (a {@code .so} written in
 * C, C++ or Rust against {@code include/proxyso.h}) lives under a caller-chosen key, and
 * {@link dev.proxyso.ProxySo#replace(String, String) replace} swaps a new version in atomically
 * while calls already running in the old version finish there. The JNI library that does the work,
 * {@code libproxy.so}, travels inside the jar and is loaded on first use.
 *
 * <p>For operators: {@link dev.proxyso.ProxySo#rollback(String) rollback} to a kept previous
 * version, a required SHA-256 digest ({@link dev.proxyso.LoadOptions.Builder#sha256(String)}),
 * call statistics in {@link dev.proxyso.LibraryInfo} and one {@link dev.proxyso.LibraryMXBean} per
 * key, {@link dev.proxyso.ProxySo#watch(String, String, dev.proxyso.WatchListener) watching} a
 * plugin file to replace its key when it changes, and the native log in
 * {@code java.util.logging} (loggers {@code dev.proxyso} and {@code dev.proxyso.plugin}).
 *
 * <p>Every failure is an unchecked {@link dev.proxyso.ProxySoException} (one subclass per kind of
 * failure), an {@link java.lang.IllegalArgumentException} or {@link java.lang.NullPointerException}
 * for a bad argument, or a {@link dev.proxyso.ProxySoInternalError} for a bug inside the proxy.
 */
package dev.proxyso;
