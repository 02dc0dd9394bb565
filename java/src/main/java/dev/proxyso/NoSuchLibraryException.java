package dev.proxyso;

/**
 * Thrown when no library is loaded under the key given to {@code call} or {@code replace}.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class NoSuchLibraryException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key that is not loaded
     */
    public NoSuchLibraryException(String message, String key) {
        super(message, key);
    }
}
