package dev.proxyso;

/**
 * Thrown by {@code call} on an {@linkplain LoadOptions#isIsolated() isolated} key whose call ran
 * longer than its {@linkplain LoadOptions#getCallTimeout(java.util.concurrent.TimeUnit) timeout}.
 * The worker process serving it was killed, the only way to stop native code; other calls in it
 * throw a {@link PluginCrashedException} naming the timeout, and the next call starts a new
 * worker for the same version.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class PluginTimeoutException extends PluginException {
    private static final long serialVersionUID = 1L;

    /** The timeout that passed, in milliseconds. */
    private final long timeoutMillis;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key that was called
     * @param method the method that was called
     * @param timeoutMillis the timeout that passed, in milliseconds
     */
    public PluginTimeoutException(String message, String key, String method, long timeoutMillis) {
        super(message, key, method, 0, false);
        this.timeoutMillis = timeoutMillis;
    }

    /**
     * Returns the timeout the call ran past.
     *
     * @return the timeout in milliseconds
     */
    public long getTimeoutMillis() {
        return timeoutMillis;
    }
}
