package dev.proxyso;

/**
 * The JNI contract between the Java API and {@code libproxy.so}. Nothing else in Java calls native
 * code, and the native side implements exactly these methods.
 *
 * <p>Every native method may throw the exception built by
 * {@link #exception(int, String, String, String, int, String)}. Arguments are checked for
 * {@code null} in Java before they reach native code, except {@code method} of
 * {@link #call(String, String, byte[])}, where {@code null} means the default method.
 */
final class NativeBridge {
    /** {@link NoSuchLibraryException}: the key is not loaded. */
    static final int NO_SUCH_LIBRARY = 0;
    /** {@link LibraryExistsException}: {@code load} of a key that is already loaded. */
    static final int LIBRARY_EXISTS = 1;
    /** {@link LibraryLoadException}: open, symbol, ABI or init failure; {@code path} is set. */
    static final int LOAD = 2;
    /** {@link PluginException}, not a panic: {@code method} and {@code code} are set. */
    static final int PLUGIN_ERROR = 3;
    /** {@link PluginException} for a caught panic: {@code method} and {@code code} are set. */
    static final int PLUGIN_PANIC = 4;
    /** {@link UnknownMethodException}: {@code method} is set. */
    static final int UNKNOWN_METHOD = 5;
    /** {@link IllegalArgumentException}, for example an empty key. */
    static final int ILLEGAL_ARGUMENT = 6;
    /** {@link ProxySoInternalError}: a bug inside the proxy. */
    static final int INTERNAL = 7;

    /**
     * Option bit of {@link #load} and {@link #replace}: keep every retired version of this load
     * mapped for the life of the process ({@code RTLD_NODELETE}); see
     * {@link LoadOptions#isKeepMapped()}.
     */
    static final int OPTION_KEEP_MAPPED = 1;
    /**
     * Option bit of {@link #load} and {@link #replace}: keep, and only log, a signal handler the
     * plugin changed during load and init; see {@link LoadOptions#isAllowSignalHandlers()}.
     */
    static final int OPTION_ALLOW_SIGNAL_HANDLERS = 2;

    private NativeBridge() {
    }

    /**
     * Loads a plugin under a new key.
     *
     * @param key the key, not loaded yet
     * @param path the plugin file
     * @param config configuration bytes for the plugin's init; never {@code null}
     * @param options a combination of the {@code OPTION_} bits of this class
     * @return the generation of the loaded version
     */
    static native long load(String key, String path, byte[] config, int options);

    /**
     * Loads a new version of a loaded key and swaps it in once it is fully initialised.
     *
     * @param key the loaded key
     * @param path the plugin file
     * @param config configuration bytes for the plugin's init; never {@code null}
     * @param options a combination of the {@code OPTION_} bits of this class
     * @return the new generation
     */
    static native long replace(String key, String path, byte[] config, int options);

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
     * Describes what is loaded under a key.
     *
     * @param key the key
     * @return the description, or {@code null} if the key is not loaded
     */
    static native LibraryInfo info(String key);

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
     * Builds the exception that a native method is about to throw. Called by native code only; it
     * never throws (a failure to build the exception returns the failure itself).
     *
     * @param kind one of the kind constants of this class
     * @param key the key, or {@code null}
     * @param path the plugin path, or {@code null}
     * @param method the method name, or {@code null}
     * @param code the plugin's error code, or 0
     * @param message the complete message
     * @return the exception to throw
     */
    static Throwable exception(int kind, String key, String path, String method, int code,
            String message) {
        try {
            String text = message != null ? message : defaultMessage(kind, key, path, method, code);
            switch (kind) {
                case NO_SUCH_LIBRARY:
                    return new NoSuchLibraryException(text, key);
                case LIBRARY_EXISTS:
                    return new LibraryExistsException(text, key);
                case LOAD:
                    return new LibraryLoadException(text, key, path);
                case PLUGIN_ERROR:
                    return new PluginException(text, key, method, code, false);
                case PLUGIN_PANIC:
                    return new PluginException(text, key, method, code, true);
                case UNKNOWN_METHOD:
                    return new UnknownMethodException(text, key, method);
                case ILLEGAL_ARGUMENT:
                    return new IllegalArgumentException(text);
                case INTERNAL:
                    return new ProxySoInternalError(text);
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
        return "proxyso failure of kind " + kind + " (key " + key + ", path " + path
                + ", method " + method + ", code " + code + ")";
    }
}
