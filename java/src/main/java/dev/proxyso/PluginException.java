package dev.proxyso;

/**
 * Thrown by {@code call} when the plugin method reported an error, or caught a panic or exception
 * of its own, or let a C++ exception escape, which the host caught (then {@link #isPanic()} is
 * {@code true}, the code is 0 and the message ends with {@code "C++ exception: "} and the
 * exception's {@code what()}). The plugin keeps serving: the next call runs normally.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class PluginException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /** The method that failed. */
    private final String method;
    /** The plugin's own error code. */
    private final int code;
    /** Whether the plugin reported a caught panic or exception. */
    private final boolean panic;

    /**
     * Creates an exception.
     *
     * @param message the complete message, including the plugin's own message
     * @param key the key that was called
     * @param method the method that failed
     * @param code the plugin's error code
     * @param panic {@code true} if the plugin reported a caught panic or exception
     */
    public PluginException(String message, String key, String method, int code, boolean panic) {
        super(message, key);
        this.method = method;
        this.code = code;
        this.panic = panic;
    }

    /**
     * Returns the name of the method that failed.
     *
     * @return the method name, or {@code null} if unknown
     */
    public String getMethod() {
        return method;
    }

    /**
     * Returns the error code the plugin reported; its meaning is the plugin's.
     *
     * @return the plugin's error code
     */
    public int getCode() {
        return code;
    }

    /**
     * Tells whether the plugin caught a panic (Rust) or an exception (C++) rather than reporting an
     * ordinary error, or let a C++ exception escape that the host caught (its message then ends
     * with {@code "C++ exception: "} and the exception's {@code what()}).
     *
     * @return {@code true} for a caught panic or exception
     */
    public boolean isPanic() {
        return panic;
    }
}
