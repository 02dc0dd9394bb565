package dev.proxyso;

/**
 * Thrown by {@code load} or {@code replace} when a library cannot be loaded: the file cannot be
 * read or opened, the descriptor symbol is missing or invalid, the ABI version differs, a symbol
 * cannot be resolved, or the plugin's {@code init} failed, panicked or let a C++ exception escape.
 * Nothing changed: on a failed {@code replace} the previous version keeps serving.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class LibraryLoadException extends ProxySoException {
    private static final long serialVersionUID = 1L;

    /** The source path as given; may be {@code null}. */
    private final String path;

    /**
     * Creates an exception.
     *
     * @param message the complete message, naming key, path and cause
     * @param key the key the library was meant for
     * @param path the source path as given
     */
    public LibraryLoadException(String message, String key, String path) {
        super(message, key);
        this.path = path;
    }

    /**
     * Returns the path of the library that could not be loaded, as it was given.
     *
     * @return the source path, or {@code null} if unknown
     */
    public String getPath() {
        return path;
    }
}
