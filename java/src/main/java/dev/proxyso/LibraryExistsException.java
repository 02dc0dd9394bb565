package dev.proxyso;

/**
 * Thrown by {@code load} when a library is already loaded under the key; {@code replace} is the
 * operation that swaps in a new version.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class LibraryExistsException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key that is already loaded
     */
    public LibraryExistsException(String message, String key) {
        super(message, key);
    }
}
