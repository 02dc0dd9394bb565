package dev.proxyso;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Hands the native log to {@code java.util.logging}: the daemon thread {@value #THREAD_NAME}
 * drains the native record queue ({@link NativeBridge#drainLog(long)}) and publishes each record
 * ({@link NativeBridge#logged}) to the logger {@value #PROXY_LOGGER} (the proxy's own events: load,
 * replace, rollback, unload, retire, failures) or {@value #PLUGIN_LOGGER} (lines plugins write
 * through the host). Each record's message starts with {@code [key#generation] } and its
 * parameters are the key and the generation, so a filter or formatter can use them.
 *
 * <p>Until the first {@code drainLog} the native side writes its records to standard error; if
 * the library lacks {@code drainLog} they stay there and no thread starts.
 */
final class LogBridge {
    /** The logger of the proxy's own events. */
    static final String PROXY_LOGGER = "dev.proxyso";
    /** The logger of the lines plugins write. */
    static final String PLUGIN_LOGGER = "dev.proxyso.plugin";
    /** The name of the draining thread. */
    static final String THREAD_NAME = "proxyso-log";
    /** How long one {@code drainLog} waits for a record. */
    private static final long DRAIN_MILLIS = 1000;

    /** Held strongly: java.util.logging keeps only weak references to its loggers. */
    private static final Logger PROXY = Logger.getLogger(PROXY_LOGGER);
    private static final Logger PLUGIN = Logger.getLogger(PLUGIN_LOGGER);
    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private LogBridge() {
    }

    /**
     * Switches the native log to the queue and starts the draining thread, once per class loader;
     * later calls do nothing. The first {@code drainLog} runs here, on the caller's thread, so
     * that every record logged after this method returns goes to {@code java.util.logging}, even
     * if the new thread has not run yet.
     */
    static void start() {
        if (!STARTED.compareAndSet(false, true)) {
            return;
        }
        try {
            NativeBridge.drainLog(0);
        } catch (UnsatisfiedLinkError e) {
            PROXY.log(Level.WARNING, "the loaded libproxy.so cannot hand its log to "
                    + "java.util.logging (no drainLog); it keeps writing to standard error", e);
            return;
        } catch (RuntimeException | Error e) {
            // The thread tries again.
            PROXY.log(Level.SEVERE, "draining the native log failed", e);
        }
        Thread thread = new Thread(new Runnable() {
            @Override
            public void run() {
                drain();
            }
        }, THREAD_NAME);
        thread.setDaemon(true);
        thread.start();
    }

    private static void drain() {
        while (true) {
            try {
                NativeBridge.drainLog(DRAIN_MILLIS);
            } catch (UnsatisfiedLinkError e) {
                PROXY.log(Level.WARNING, "the loaded libproxy.so cannot hand its log to "
                        + "java.util.logging (no drainLog); it keeps writing to standard error", e);
                return;
            } catch (Throwable e) {
                // A bug on either side: say so, and do not spin on it.
                try {
                    PROXY.log(Level.SEVERE, "draining the native log failed", e);
                    Thread.sleep(DRAIN_MILLIS);
                } catch (Throwable ignored) {
                    // Go on draining.
                }
            }
        }
    }

    /** Publishes one native record; see {@link NativeBridge#logged}. Never throws. */
    static void publish(int level, boolean fromPlugin, String key, long generation,
            String message) {
        Logger logger = fromPlugin ? PLUGIN : PROXY;
        Level julLevel = level(level);
        if (!logger.isLoggable(julLevel)) {
            return;
        }
        String text = prefix(key, generation) + (message == null ? "" : message);
        // The text as it is: a formatter takes a text holding "{0" for a MessageFormat pattern
        // (java.util.logging.Formatter.formatMessage) and puts the key there; that is all.
        LogRecord record = new LogRecord(julLevel, text);
        record.setLoggerName(logger.getName());
        // Set, so that the formatter does not walk this thread's stack for a caller.
        record.setSourceClassName(logger.getName());
        record.setSourceMethodName(null);
        record.setParameters(new Object[] {key, generation});
        logger.log(record);
    }

    /** ERROR, WARN, INFO, DEBUG as SEVERE, WARNING, INFO, FINE; anything quieter as FINER. */
    static Level level(int level) {
        switch (level) {
            case NativeContract.LOG_ERROR:
                return Level.SEVERE;
            case NativeContract.LOG_WARN:
                return Level.WARNING;
            case NativeContract.LOG_INFO:
                return Level.INFO;
            case NativeContract.LOG_DEBUG:
                return Level.FINE;
            default:
                return level < NativeContract.LOG_ERROR ? Level.SEVERE : Level.FINER;
        }
    }

    /**
     * {@code [key#generation] }, {@code [key] } for a record about no one generation, nothing for
     * a record about no key: the prefix of the native standard-error form.
     */
    static String prefix(String key, long generation) {
        if (key == null) {
            return "";
        }
        return generation == 0 ? "[" + key + "] " : "[" + key + "#" + generation + "] ";
    }
}
