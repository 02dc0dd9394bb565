package dev.proxyso;

/**
 * Thrown by {@link ProxySo#rollback(String)} when the key keeps no previous version to go back
 * to: it was never replaced, every kept version was rolled back to already, or it keeps none
 * ({@link LoadOptions.Builder#keepVersions(int) keepVersions(0)}). Nothing changed: the current
 * version keeps serving.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class NoPreviousVersionException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key that has no previous version
     */
    public NoPreviousVersionException(String message, String key) {
        super(message, key);
    }
}
