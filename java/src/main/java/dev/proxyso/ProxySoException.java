package dev.proxyso;

/**
 * Base class of every expected failure reported by {@link ProxySo}.
 *
 * <p>The message is complete and human-readable: it names the key, and where they apply the path,
 * the method and the cause. Subclasses carry the same facts as fields.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. It is unchecked, as every exception of this API is.
 */
public class ProxySoException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The key the failed operation was about; may be {@code null}. */
    private final String key;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key the failed operation was about, or {@code null}
     */
    public ProxySoException(String message, String key) {
        super(message);
        this.key = key;
    }

    /**
     * Returns the key the failed operation was about.
     *
     * @return the key, or {@code null} if the failure concerned no key
     */
    public String getKey() {
        return key;
    }
}
