package dev.proxyso;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.rules.ExternalResource;

/**
 * A JUnit rule that keeps every {@code java.util.logging} record of {@code dev.proxyso} and below
 * while a test runs.
 */
final class LogCapture extends ExternalResource {
    /** The records, in order: lock it to read it, wait on it for more (each add notifies). */
    final List<LogRecord> records = new ArrayList<LogRecord>();
    /** Held strongly, so that the logger and its handler stay. */
    private final Logger proxyLogger = Logger.getLogger("dev.proxyso");
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            synchronized (records) {
                records.add(record);
                records.notifyAll();
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    /**
     * Waits up to 10 seconds for a record whose message contains {@code part}.
     *
     * @param part the text to find
     * @throws AssertionError if none came, listing the messages that did
     * @throws InterruptedException if interrupted while waiting
     */
    void await(String part) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        synchronized (records) {
            while (true) {
                if (contains(part)) {
                    return;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("no log record with \"" + part + "\" in "
                            + messages());
                }
                records.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            }
        }
    }

    /**
     * Whether a record kept so far has a message containing {@code part}.
     *
     * @param part the text to find
     * @return true if one has
     */
    boolean contains(String part) {
        synchronized (records) {
            for (LogRecord record : records) {
                if (record.getMessage() != null && record.getMessage().contains(part)) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * The messages of the records kept so far.
     *
     * @return them, in order
     */
    List<String> messages() {
        synchronized (records) {
            List<String> messages = new ArrayList<String>();
            for (LogRecord record : records) {
                messages.add(record.getMessage());
            }
            return messages;
        }
    }

    @Override
    protected void before() {
        handler.setLevel(Level.ALL);
        proxyLogger.addHandler(handler);
    }

    @Override
    protected void after() {
        proxyLogger.removeHandler(handler);
    }
}
