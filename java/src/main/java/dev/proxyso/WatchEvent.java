package dev.proxyso;

/**
 * One replacement a {@link Watch} attempted after the watched file changed and settled: handed to
 * {@link WatchListener#onReplace(WatchEvent)}. Immutable.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its methods throw
 * none.
 */
public final class WatchEvent {
    private final String key;
    private final String path;
    private final long generation;
    private final ProxySoException error;

    WatchEvent(String key, String path, long generation, ProxySoException error) {
        this.key = key;
        this.path = path;
        this.generation = generation;
        this.error = error;
    }

    /**
     * Returns the watched key.
     *
     * @return the key
     */
    public String getKey() {
        return key;
    }

    /**
     * Returns the watched path, as given to {@link ProxySo#watch(String, String, WatchListener)}.
     *
     * @return the path
     */
    public String getPath() {
        return path;
    }

    /**
     * Returns the generation the replacement created.
     *
     * @return the new generation, or -1 if the replacement failed
     */
    public long getGeneration() {
        return generation;
    }

    /**
     * Returns why the replacement failed: most often a {@link LibraryLoadException} (the file is
     * not a loadable plugin; the old version keeps serving). A failure that is not a
     * {@link ProxySoException} arrives wrapped in one, as its cause.
     *
     * @return the failure, or {@code null} if the replacement succeeded
     */
    public ProxySoException getError() {
        return error;
    }

    /**
     * Tells whether the replacement succeeded.
     *
     * @return {@code true} if the new version serves now
     */
    public boolean isSuccess() {
        return error == null;
    }

    /**
     * Describes the event, for logs.
     *
     * @return the key, the path and the generation or the error
     */
    @Override
    public String toString() {
        return "WatchEvent{key=" + key + ", path=" + path
                + (error == null ? ", generation=" + generation : ", error=" + error) + "}";
    }
}
