package dev.proxyso;

/**
 * Thrown by a call on direct {@link java.nio.ByteBuffer}s when the plugin needs more output room
 * than the output buffer has left. Neither buffer's position or limit changed; call again with an
 * output buffer that has at least {@link #getRequired()} bytes remaining. The plugin keeps
 * serving.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class OutputTooSmallException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /** The method that asked for more room. */
    private final String method;
    /** The least number of output bytes the plugin asked for. */
    private final int required;

    /**
     * Creates an exception.
     *
     * @param message the complete message, naming the room there was and the room asked for
     * @param key the key that was called
     * @param method the method that asked for more room
     * @param required the least number of output bytes the plugin asked for, saturated at
     *     {@link Integer#MAX_VALUE}
     */
    public OutputTooSmallException(String message, String key, String method, int required) {
        super(message, key);
        this.method = method;
        this.required = required;
    }

    /**
     * Returns the name of the method that asked for more room.
     *
     * @return the method name, or {@code null} if unknown
     */
    public String getMethod() {
        return method;
    }

    /**
     * Returns how many bytes the output buffer must have remaining, at least, for the call to get
     * past the point where it failed. The plugin may ask for more again on the next call (a
     * plugin that grows its output in steps reports each step), so this is a lower bound, not a
     * promise. A request beyond {@link Integer#MAX_VALUE} bytes, more than a buffer can hold,
     * reports {@link Integer#MAX_VALUE}.
     *
     * @return the least number of output bytes required
     */
    public int getRequired() {
        return required;
    }
}
