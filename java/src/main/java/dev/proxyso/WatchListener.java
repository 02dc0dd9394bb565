package dev.proxyso;

/**
 * Hears every replacement a {@link Watch} attempts: {@link #onReplace(WatchEvent)} runs once per
 * attempt, successful or not, on the watch thread ({@value Watcher#THREAD_NAME}) that all watches
 * share. It should return promptly: while it runs, no watch replaces anything. An exception it
 * throws is caught and logged to the {@code dev.proxyso} logger; the watch goes on.
 *
 * <p>Thread-safety: the listener is called on the one watch thread, never by two threads at once;
 * it must itself be safe to call from that thread. Exceptions: see above; an exception it throws
 * never reaches the code that started the watch.
 */
@FunctionalInterface
public interface WatchListener {
    /**
     * Called after the watch tried to replace the key with the changed file.
     *
     * @param event what was tried and how it ended
     */
    void onReplace(WatchEvent event);
}
