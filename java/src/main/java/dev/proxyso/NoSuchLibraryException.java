package dev.proxyso;

/** Thrown when no library is loaded under the key given to {@code call} or {@code replace}. */
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
