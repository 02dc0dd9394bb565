package dev.proxyso;

/**
 * One replacement a {@link Watch} attempted after the watched file changed and settled, or a
 * rollback the proxy made on its own (an {@linkplain LoadOptions#isIsolated() isolated} version
 * loaded with {@link LoadOptions#isRollbackOnCrash()} crashed within its probation; then
 * {@link #isRollback()} is {@code true}): handed to {@link WatchListener#onReplace(WatchEvent)}.
 * Immutable.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its methods throw
 * none.
 */
public final class WatchEvent {
    private final String key;
    private final String path;
    private final long generation;
    private final ProxySoException error;
    private final String rollbackReason;

    WatchEvent(String key, String path, long generation, ProxySoException error,
            String rollbackReason) {
        this.key = key;
        this.path = path;
        this.generation = generation;
        this.error = error;
        this.rollbackReason = rollbackReason;
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
     * Tells whether this event is a rollback the proxy made on its own, not a replacement from
     * the watched file: an isolated version crashed within its probation, and the previous kept
     * version serves again as generation {@link #getGeneration()}. A later change of the file
     * replaces the key from it as before.
     *
     * @return {@code true} for a rollback after a crash
     */
    public boolean isRollback() {
        return rollbackReason != null;
    }

    /**
     * Returns why the proxy rolled the key back, for a {@linkplain #isRollback() rollback}.
     *
     * @return the reason, naming the generation that crashed, or {@code null} for a replacement
     */
    public String getRollbackReason() {
        return rollbackReason;
    }

    /**
     * Describes the event, for logs.
     *
     * @return the key, the path and the generation or the error
     */
    @Override
    public String toString() {
        return "WatchEvent{key=" + key + ", path=" + path
                + (error == null ? ", generation=" + generation : ", error=" + error)
                + (rollbackReason == null ? "" : ", rollback=" + rollbackReason) + "}";
    }
}
