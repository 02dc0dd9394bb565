/**
 * Load, call, hot-replace and unload native plugin libraries from a running JVM.
 *
 * <p>{@link dev.proxyso.ProxySo} is the entry point: every plugin library (a {@code .so} written in
 * C, C++ or Rust against {@code include/proxyso.h}) lives under a caller-chosen key, and
 * {@link dev.proxyso.ProxySo#replace(String, String) replace} swaps a new version in atomically
 * while calls already running in the old version finish there. The JNI library that does the work,
 * {@code libproxy.so}, travels inside the jar and is loaded on first use.
 *
 * <p>Every failure is an unchecked {@link dev.proxyso.ProxySoException} (one subclass per kind of
 * failure), an {@link java.lang.IllegalArgumentException} or {@link java.lang.NullPointerException}
 * for a bad argument, or a {@link dev.proxyso.ProxySoInternalError} for a bug inside the proxy.
 */
package dev.proxyso;
