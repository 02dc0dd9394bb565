package dev.proxyso;

import java.util.ArrayList;
import java.util.List;
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
