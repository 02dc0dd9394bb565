package dev.proxyso;

/**
 * Thrown by {@code call} when the plugin loaded under the key has no method of the given name.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class UnknownMethodException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /** The method asked for. */
    private final String method;

    /**
     * Creates an exception.
     *
     * @param message the complete message, listing the methods the plugin has
     * @param key the key that was called
     * @param method the method name that is not known
     */
    public UnknownMethodException(String message, String key, String method) {
        super(message, key);
        this.method = method;
    }

    /**
     * Returns the method name that the plugin does not have.
     *
     * @return the method name
     */
    public String getMethod() {
        return method;
    }
}
