package dev.proxyso;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A file watched for one key, from {@link ProxySo#watch(String, String, WatchListener)}: whenever
 * the file is created, written or moved into place and has then stayed the same for the settle
 * time, the key is replaced from it. Close it (or call {@link ProxySo#unwatch(String)}) to stop;
 * {@link ProxySo#unload(String)} of the key stops it too.
 *
 * <pre>{@code
 * try (Watch watch = ProxySo.watch("model", "/opt/models/libdetector.so", event -> {
 *     if (!event.isSuccess()) {
 *         alert("model update refused", event.getError());
 *     }
 * })) {
 *     serve();
 * }
 * }</pre>
 *
 * <p>Thread-safety: thread-safe; {@link #close()} may be called from any thread, any number of
 * times, and only the first call does anything. Exceptions: {@link #getSettleTime(TimeUnit)}
 * throws {@link NullPointerException} for a {@code null} unit; the other methods throw none (a
 * failed replacement reaches the listener as a {@link WatchEvent}, never the caller).
 */
public final class Watch implements AutoCloseable {
    private final String key;
    private final String path;
    private final long settleNanos;
    /** Set once, when the watch stops for any reason. */
    private final AtomicBoolean closed = new AtomicBoolean();

    Watch(String key, String path, long settleNanos) {
        this.key = key;
        this.path = path;
        this.settleNanos = settleNanos;
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
     * Returns the watched path, as it was given; every replacement loads it.
     *
     * @return the path
     */
    public String getPath() {
        return path;
    }

    /**
     * Returns how long the file's size and modification time must stay the same after a change
     * before it is loaded.
     *
     * @param unit the unit of the answer
     * @return the settle time in {@code unit}, rounded down
     * @throws NullPointerException if {@code unit} is {@code null}
     */
    public long getSettleTime(TimeUnit unit) {
        return unit.convert(settleNanos, TimeUnit.NANOSECONDS);
    }

    long settleNanos() {
        return settleNanos;
    }

    /**
     * Tells whether the watch has stopped: closed, unwatched, or its key unloaded.
     *
     * @return {@code true} once the watch has stopped
     */
    public boolean isClosed() {
        return closed.get();
    }

    /** Marks the watch stopped; for {@link Watcher}. */
    boolean markClosed() {
        return closed.compareAndSet(false, true);
    }

    /**
     * Stops the watch, as {@link ProxySo#unwatch(String)} does; later calls do nothing. A
     * replacement the watch is running finishes first; none starts after this method returns,
     * and the listener hears of no further attempt (a listener call already under way may still
     * be running).
     */
    @Override
    public void close() {
        Watcher.close(this);
    }

    /**
     * Describes the watch, for logs.
     *
     * @return the key, the path, and whether it is closed
     */
    @Override
    public String toString() {
        return "Watch[key=" + key + ", path=" + path + (closed.get() ? ", closed]" : "]");
    }
}
