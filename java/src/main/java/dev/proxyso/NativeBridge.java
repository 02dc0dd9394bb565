package dev.proxyso;

import java.nio.ByteBuffer;

/**
 * The JNI contract between the Java API and {@code libproxy.so}. Nothing else in Java calls native
 * code but the FFM downcalls of the JDK 22+ {@code CallPath} (the {@code proxyso_ffm_*} functions,
 * whose failures {@link #ffmThrow()} throws), and the native side implements exactly these
 * methods.
 *
 * <p>Every native method may throw the exception built by
 * {@link #exception(int, String, String, String, int, String)}. Arguments are checked for
 * {@code null} in Java before they reach native code, except {@code method} of
 * {@link #call(String, String, byte[])} and {@link #open(String, String)}, where {@code null}
 * means the default method, and of {@link #callHandle(long, String, byte[], boolean)} and
 * {@link #callDirect}, where it means the handle's own method.
 *
 * <p>A handle id from {@link #open(String, String)} names a key's library, not one version of it:
 * each call through it reaches the version current at that moment. Once the key is unloaded the id
 * answers {@link NoSuchLibraryException} for good, even if the key is loaded again (that is another
 * library). An id that was closed, or never existed, answers {@link IllegalStateException}
 * ({@link NativeContract#KIND_HANDLE_CLOSED}), never another handle's library.
 */
final class NativeBridge {
    // The exception kinds, log levels and option bits this class exchanges with native code
    // are in NativeContract, generated from the Rust side.

    private NativeBridge() {
    }

    /**
     * Loads a plugin under a new key.
     *
     * @param key the key, not loaded yet
     * @param path the plugin file
     * @param config configuration bytes for the plugin's init; never {@code null}
     * @param options a combination of the {@code OPTION_} bits of {@link NativeContract}
     * @param sha256 the file's expected SHA-256 digest, exactly 32 bytes, or {@code null} for no
     *     check; a mismatch is a {@link LibraryLoadException} naming the path and both digests
     * @param keepVersions how many previous versions the key keeps for {@link #rollback}, 0 to 64,
     *     or {@link #KEEP_VERSIONS_UNCHANGED} for the default (1)
     * @param limits an isolated load's limits, laid out as the {@code LIMITS_} indices of
     *     {@link NativeContract} say, or {@code null} for a load into the JVM
     * @return the generation of the loaded version
     */
    static native long load(String key, String path, byte[] config, int options, byte[] sha256,
            int keepVersions, long[] limits);

    /**
     * Loads a new version of a loaded key and swaps it in once it is fully initialised; the
     * version it replaces is kept for {@link #rollback} if the key keeps any.
     *
     * @param key the loaded key
     * @param path the plugin file
     * @param config configuration bytes for the plugin's init; never {@code null}
     * @param options a combination of the {@code OPTION_} bits of {@link NativeContract}
     * @param sha256 the file's expected SHA-256 digest, exactly 32 bytes, or {@code null} for no
     *     check; a mismatch is a {@link LibraryLoadException} naming the path and both digests
     * @param keepVersions how many previous versions the key keeps from now on, 0 to 64, or
     *     {@link #KEEP_VERSIONS_UNCHANGED}
     * @param limits an isolated load's limits, or {@code null}; see {@link #load}
     * @return the new generation
     */
    static native long replace(String key, String path, byte[] config, int options,
            byte[] sha256, int keepVersions, long[] limits);

    /**
     * Swaps the most recent kept previous version of a key back in, re-opened from its kept
     * private copy with the configuration and options it was loaded with. The version rolled back
     * from is not kept. Drains as {@link #replace} does.
     *
     * @param key the loaded key
     * @return the new generation (generations only go up)
     */
    static native long rollback(String key);

    /**
     * Removes a key; its version is closed once its calls in flight have returned.
     *
     * @param key the key
     * @return {@code false} if the key was not loaded
     */
    static native boolean unload(String key);

    /**
     * Calls a plugin method.
     *
     * @param key the loaded key
     * @param method the method name, or {@code null} for the default method
     * @param input the input bytes
     * @return the output bytes
     */
    static native byte[] call(String key, String method, byte[] input);

    /**
     * Resolves a key once, for {@link #callHandle} and {@link #callDirect}.
     *
     * @param key the loaded key
     * @param method the method the handle calls by default, or {@code null} for the library's
     *     default method; checked against the version loaded now
     * @return a handle id, to be given back to {@link #close(long)}
     */
    static native long open(String key, String method);

    /**
     * Frees a handle id. An id that is already closed, or never existed, is ignored.
     *
     * @param handle the id from {@link #open(String, String)}
     */
    static native void close(long handle);

    /**
     * Calls a plugin method through a handle.
     *
     * @param handle the id from {@link #open(String, String)}
     * @param method the method name, or {@code null} for the handle's own method
     * @param input the input bytes
     * @param cached for {@link HandleCache}: answer {@code null}, rather than throw, when the
     *     handle went stale (its id was closed, or its key unloaded), so that the cache opens the
     *     key again; {@code false} for {@link LibraryHandle}, whose stale calls throw
     * @return the output bytes; with {@code cached}, {@code null} for a stale handle
     */
    static native byte[] callHandle(long handle, String method, byte[] input, boolean cached);

    /**
     * A direct view of the calling thread's exchange input: native memory that
     * {@link #callExchange} reads a call's input from. Valid on this thread only, until the next
     * call of this method on it or the thread's end; a view handed out before is then dangling
     * and must not be used again.
     *
     * @param minCapacity the fewest bytes it must hold, 0 to {@link ExchangeCalls#MAX_INPUT}
     * @return the view, of at least {@code minCapacity} bytes
     */
    static native ByteBuffer exchangeInput(int minCapacity);

    /**
     * A direct view of the calling thread's output buffer, where {@link #callExchange} leaves a
     * call's output. Valid on this thread only, until an exchange call answers
     * {@link ExchangeCalls#OUTPUT_MOVED}, {@link #exchangeRelease()}, or the thread's end.
     *
     * @return the view, over the buffer's whole capacity
     */
    static native ByteBuffer exchangeOutput();

    /**
     * Gives back the calling thread's output buffer if it is oversized, once the last exchange
     * call's output was copied out; the next exchange call then answers
     * {@link ExchangeCalls#OUTPUT_MOVED}.
     */
    static native void exchangeRelease();

    /**
     * Calls a plugin method through a handle on the first {@code inLength} bytes of the calling
     * thread's exchange input ({@link #exchangeInput(int)}), leaving the output in its output
     * buffer ({@link #exchangeOutput()}): no array crosses JNI.
     *
     * @param handle the id from {@link #open(String, String)}
     * @param method the method name, or {@code null} for the handle's own method
     * @param inLength the input's length, at most the exchange input's capacity
     * @param cached as for {@link #callHandle(long, String, byte[], boolean)}
     * @return the output's length, with {@link ExchangeCalls#OUTPUT_MOVED} set when a view of
     *     the output buffer taken before is out of date; with {@code cached}, -1 for a stale
     *     handle
     */
    static native long callExchange(long handle, String method, int inLength, boolean cached);

    /**
     * Calls a plugin method through a handle on direct buffers, without copying: the plugin reads
     * {@code inLength} bytes at {@code inOffset} of {@code in} and writes at most {@code outLength}
     * bytes at {@code outOffset} of {@code out}. Neither buffer's position or limit is touched.
     *
     * @param handle the id from {@link #open(String, String)}
     * @param method the method name, or {@code null} for the handle's own method
     * @param in a direct buffer
     * @param inOffset where the input starts, in bytes from the buffer's address
     * @param inLength the input's length
     * @param out a direct, writable buffer
     * @param outOffset where the output goes, in bytes from the buffer's address
     * @param outLength the most bytes the output may take
     * @param cached as for {@link #callHandle(long, String, byte[], boolean)}
     * @return the number of bytes written at {@code outOffset}, at most {@code outLength}; with
     *     {@code cached}, -1 for a stale handle
     */
    static native int callDirect(long handle, String method, ByteBuffer in, int inOffset,
            int inLength, ByteBuffer out, int outOffset, int outLength, boolean cached);

    /**
     * Throws the exception of this thread's last failed FFM call (the JDK 22+ {@code CallPath},
     * whose downcalls answer {@link NativeContract#FFM_FAILED}): the exception the JNI method of
     * the same call would have thrown, with the same message. Called right after the failed
     * downcall, on the same thread; throws {@link ProxySoInternalError} if no FFM call failed.
     */
    static native void ffmThrow();

    /**
     * Describes what is loaded under a key.
     *
     * @param key the key
     * @return the description, or {@code null} if the key is not loaded
     */
    static native LibraryInfo info(String key);

    /**
     * Tells whether a key is loaded: one map lookup, where {@link #info(String)} would build the
     * whole description and wait for the load's SHA-256.
     *
     * @param key the key
     * @return {@code true} if a library is loaded under it
     */
    static native boolean isLoaded(String key);

    /**
     * Lists the loaded keys.
     *
     * @return the keys, sorted
     */
    static native String[] keys();

    /**
     * Waits until every version of the key that was replaced or unloaded has been closed.
     *
     * @param key the key
     * @param timeoutMillis the longest wait, in milliseconds; 0 only checks
     * @return {@code true} if no retired version of the key remains
     */
    static native boolean awaitRetired(String key, long timeoutMillis);

    /**
     * Tells the native side where to write the private snapshots of plugin files. Called once,
     * right after the library is loaded and before any other native method.
     *
     * @param snapshotDir the directory in which the snapshot directory is created
     */
    static native void configure(String snapshotDir);

    /**
     * Tells the native side which {@code proxyso-worker} executable runs the pre-flight loads of
     * {@link NativeContract#OPTION_PREFLIGHT}. Called once, right after {@link #configure(String)}.
     *
     * @param path the executable's absolute path, or {@code null} if there is none; a load that
     *     asks for a pre-flight then fails with a {@link LibraryLoadException} saying so
     */
    static native void setWorker(String path);

    /**
     * Waits up to {@code timeoutMillis} for log records, then delivers every queued record, in
     * order, to {@link #logged} on the calling thread. Until the first call the native side writes
     * its records to standard error; from then on they queue (at most 4096: when full the oldest
     * are dropped, and a warning saying how many follows).
     *
     * @param timeoutMillis the longest wait for a first record, in milliseconds
     * @return how many records were delivered
     */
    static native int drainLog(long timeoutMillis);

    /**
     * Receives one log record from {@link #drainLog(long)}. Called by native code only; it never
     * throws.
     *
     * @param level one of the {@code LOG_} levels of this class
     * @param fromPlugin {@code true} for a line a plugin wrote, {@code false} for the proxy's own
     *     events
     * @param key the key the record is about, or {@code null}
     * @param generation the generation the record is about, or 0
     * @param message the text
     */
    static void logged(int level, boolean fromPlugin, String key, long generation,
            String message) {
        try {
            LogBridge.publish(level, fromPlugin, key, generation, message);
        } catch (Throwable ignored) {
            // Nothing may go back into native code; a record lost here is all the harm.
        }
    }

    /**
     * Receives, from {@link #drainLog(long)}, a rollback the proxy made on its own: an isolated
     * version loaded with {@link LoadOptions#isRollbackOnCrash()} crashed within its probation.
     * Called by native code only; it never throws.
     *
     * @param key the key that rolled back
     * @param from the generation that crashed
     * @param to the generation that serves now
     * @param reason why, in words
     */
    static void rolledBack(String key, long from, long to, String reason) {
        try {
            Watcher.rolledBack(key, to, reason);
        } catch (Throwable ignored) {
            // Nothing may go back into native code; the rollback is logged anyway.
        }
    }

    /**
     * Builds the exception that a native method is about to throw. Called by native code only; it
     * never throws (a failure to build the exception returns the failure itself).
     *
     * @param kind one of the {@code KIND_} constants of {@link NativeContract}
     * @param key the key, or {@code null}
     * @param path the plugin path, or {@code null}
     * @param method the method name, or {@code null}
     * @param code the plugin's error code, the output size asked for
     *     ({@link NativeContract#KIND_OUTPUT_TOO_SMALL}),
     *     or 0
     * @param message the complete message
     * @return the exception to throw
     */
    static Throwable exception(int kind, String key, String path, String method, int code,
            String message) {
        try {
            String text = message != null ? message : defaultMessage(kind, key, path, method, code);
            switch (kind) {
                case NativeContract.KIND_NO_SUCH_LIBRARY:
                    return new NoSuchLibraryException(text, key);
                case NativeContract.KIND_LIBRARY_EXISTS:
                    return new LibraryExistsException(text, key);
                case NativeContract.KIND_LOAD:
                    return new LibraryLoadException(text, key, path);
                case NativeContract.KIND_PLUGIN_ERROR:
                    return new PluginException(text, key, method, code, false);
                case NativeContract.KIND_PLUGIN_PANIC:
                    return new PluginException(text, key, method, code, true);
                case NativeContract.KIND_UNKNOWN_METHOD:
                    return new UnknownMethodException(text, key, method);
                case NativeContract.KIND_ILLEGAL_ARGUMENT:
                    return new IllegalArgumentException(text);
                case NativeContract.KIND_INTERNAL:
                    return new ProxySoInternalError(text);
                case NativeContract.KIND_HANDLE_CLOSED:
                    return new IllegalStateException(text);
                case NativeContract.KIND_OUTPUT_TOO_SMALL:
                    return new OutputTooSmallException(text, key, method, code);
                case NativeContract.KIND_NO_PREVIOUS_VERSION:
                    return new NoPreviousVersionException(text, key);
                case NativeContract.KIND_PLUGIN_CRASHED:
                    return new PluginCrashedException(text, key, method, code >>> 16,
                            (code & 0xffff) - 1);
                case NativeContract.KIND_PLUGIN_TIMEOUT:
                    return new PluginTimeoutException(text, key, method, code);
                default:
                    return new ProxySoInternalError("unknown exception kind " + kind + ": " + text);
            }
        } catch (Throwable failure) {
            // Out of memory or similar: hand native code something throwable all the same.
            return failure;
        }
    }

    /** A message for the rare case native code passed none. */
    private static String defaultMessage(int kind, String key, String path, String method,
            int code) {
        return "proxyso failure of kind " + kind + " (key " + Text.shown(key) + ", path "
                + Text.shown(path) + ", method " + Text.shown(method) + ", code " + code + ")";
    }
}
