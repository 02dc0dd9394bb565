package dev.proxyso;

/**
 * Thrown for a bug inside the proxy itself (for example a panic in {@code libproxy.so}), never for
 * a failure of a plugin or a bad argument. The state of the proxy is still consistent, but the
 * operation that failed had no effect that can be relied on.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none.
 */
public class ProxySoInternalError extends Error {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an error.
     *
     * @param message what went wrong
     */
    public ProxySoInternalError(String message) {
        super(message);
    }
}
