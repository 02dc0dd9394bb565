package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.Rule;
import org.junit.Test;

/**
 * The native log through {@code java.util.logging}: the proxy's events on logger
 * {@code dev.proxyso}, the plugins' lines on {@code dev.proxyso.plugin}, each with the key and
 * generation as parameters and in a {@code [key#generation] } prefix, delivered by the daemon
 * thread {@code proxyso-log}.
 */
public class LogTest {
    /** The longest wait for a record that must arrive. */
    private static final long RECORD_SECONDS = 30;

    @Rule
    public final Keys keys = new Keys();

    /** Every record of dev.proxyso and below while a test runs. */
    @Rule
    public final LogCapture log = new LogCapture();
    private final List<LogRecord> records = log.records;
    /** Held strongly, so that a level set on it stays. */
    private final Logger proxyLogger = Logger.getLogger("dev.proxyso");

    /** What a record must be to be waited for. */
    private interface Match {
        boolean matches(LogRecord record);
    }

    /** Waits for a record that matches; fails after {@link #RECORD_SECONDS}. */
    private LogRecord await(String what, Match match) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(RECORD_SECONDS);
        synchronized (records) {
            while (true) {
                for (LogRecord record : records) {
                    if (match.matches(record)) {
                        return record;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("no record " + what + " within " + RECORD_SECONDS
                            + " s; records: " + describe(records));
                }
                records.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            }
        }
    }

    /** A record of this logger about this key and generation. */
    private static boolean about(LogRecord record, String logger, String key, long generation) {
        Object[] parameters = record.getParameters();
        return logger.equals(record.getLoggerName()) && parameters != null
                && parameters.length == 2 && key.equals(parameters[0])
                && Long.valueOf(generation).equals(parameters[1]);
    }

    private static String describe(List<LogRecord> records) {
        StringBuilder text = new StringBuilder();
        for (LogRecord record : records) {
            text.append("\n  ").append(record.getLoggerName()).append(' ')
                    .append(record.getLevel()).append(' ').append(record.getMessage());
        }
        return text.toString();
    }

    @Test
    public void aPluginLineArrivesWithItsKeyAndGeneration() throws Exception {
        final String key = keys.next("log-plugin");
        ProxySo.load(key, plugin(EXAMPLE_V1), utf8("12345"));
        LogRecord record = await("of the example's init", new Match() {
            @Override
            public boolean matches(LogRecord record) {
                return about(record, "dev.proxyso.plugin", key, 1);
            }
        });
        assertEquals(Level.INFO, record.getLevel());
        assertEquals("[" + key + "#1] example 1.0.0 loaded with 5 bytes of config",
                record.getMessage());
        assertArrayEquals(new Object[] {key, 1L}, record.getParameters());
        assertEquals("the formatted message is the text itself", record.getMessage(),
                new SimpleFormatter().formatMessage(record));
    }

    @Test
    public void proxyEventsArriveOnTheProxyLogger() throws Exception {
        final String key = keys.next("log-proxy");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        ProxySo.replace(key, plugin(EXAMPLE_V2));
        LogRecord replaced = await("of the replace", new Match() {
            @Override
            public boolean matches(LogRecord record) {
                return about(record, "dev.proxyso", key, 2)
                        && record.getMessage().toLowerCase(Locale.ROOT).contains("replace");
            }
        });
        assertEquals(Level.INFO, replaced.getLevel());
        assertTrue(replaced.getMessage(), replaced.getMessage().startsWith("[" + key + "#2] "));

        final String missing = plugin(EXAMPLE_V2) + ".missing";
        assertThrows(LibraryLoadException.class, () -> ProxySo.replace(key, missing));
        LogRecord failed = await("of the failed replace", new Match() {
            @Override
            public boolean matches(LogRecord record) {
                return "dev.proxyso".equals(record.getLoggerName())
                        && record.getLevel() == Level.WARNING
                        && record.getParameters() != null
                        && key.equals(record.getParameters()[0])
                        && record.getMessage().contains(missing);
            }
        });
        assertTrue(failed.getMessage(), failed.getMessage().startsWith("[" + key));

        ProxySo.rollback(key);
        LogRecord rolledBack = await("of the rollback", new Match() {
            @Override
            public boolean matches(LogRecord record) {
                return about(record, "dev.proxyso", key, 3)
                        && record.getMessage().toLowerCase(Locale.ROOT).contains("roll");
            }
        });
        assertEquals(Level.INFO, rolledBack.getLevel());
    }

    @Test
    public void theLogThreadIsADaemonStartedWithTheLibrary() {
        ProxySo.list();
        Thread found = null;
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().equals(LogBridge.THREAD_NAME)) {
                assertTrue("two log threads", found == null);
                found = thread;
            }
        }
        assertNotNull("no " + LogBridge.THREAD_NAME + " thread", found);
        assertTrue(found.isDaemon());
        assertTrue(found.isAlive());
    }

    @Test
    public void levelsPrefixesAndParametersAreMappedAsTheContractSays() throws Exception {
        String key = keys.next("log-mapping");
        Level saved = proxyLogger.getLevel();
        proxyLogger.setLevel(Level.ALL);
        try {
            NativeBridge.logged(NativeContract.LOG_ERROR, false, key, 7, "error text");
            NativeBridge.logged(NativeContract.LOG_WARN, true, key, 7, "warn text");
            NativeBridge.logged(NativeContract.LOG_INFO, false, key, 0, "info text");
            NativeBridge.logged(NativeContract.LOG_DEBUG, true, key, 8, "debug text");
            NativeBridge.logged(99, false, key, 9, "odd level");
            NativeBridge.logged(NativeContract.LOG_INFO, false, null, 0, "about no key " + key);
            NativeBridge.logged(NativeContract.LOG_INFO, true, key, 10, null);
            NativeBridge.logged(NativeContract.LOG_INFO, false, key, 11, "braces {0} {1} 'q' {x}");
        } finally {
            proxyLogger.setLevel(saved);
        }
        List<LogRecord> mine = new ArrayList<LogRecord>();
        synchronized (records) {
            for (LogRecord record : records) {
                if (record.getMessage().contains(key)) {
                    mine.add(record);
                }
            }
        }
        assertEquals(describe(mine), 8, mine.size());
        assertRecord(mine.get(0), "dev.proxyso", Level.SEVERE, "[" + key + "#7] error text");
        assertRecord(mine.get(1), "dev.proxyso.plugin", Level.WARNING, "[" + key + "#7] warn text");
        assertRecord(mine.get(2), "dev.proxyso", Level.INFO, "[" + key + "] info text");
        assertRecord(mine.get(3), "dev.proxyso.plugin", Level.FINE, "[" + key + "#8] debug text");
        assertRecord(mine.get(4), "dev.proxyso", Level.FINER, "[" + key + "#9] odd level");
        assertRecord(mine.get(5), "dev.proxyso", Level.INFO, "about no key " + key);
        assertArrayEquals(new Object[] {null, 0L}, mine.get(5).getParameters());
        assertRecord(mine.get(6), "dev.proxyso.plugin", Level.INFO, "[" + key + "#10] ");
        assertArrayEquals(new Object[] {key, 7L}, mine.get(0).getParameters());
        // The message is the text as it is, whatever it holds.
        assertRecord(mine.get(7), "dev.proxyso", Level.INFO,
                "[" + key + "#11] braces {0} {1} 'q' {x}");
    }

    @Test
    public void aHandlerThatThrowsNeverReachesNativeCode() {
        String key = keys.next("log-throws");
        Handler throwing = new Handler() {
            @Override
            public void publish(LogRecord record) {
                throw new IllegalStateException("handler fails on purpose");
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger plugin = Logger.getLogger("dev.proxyso.plugin");
        plugin.addHandler(throwing);
        try {
            // Returns normally: logged() is what native code calls, and it must never throw.
            NativeBridge.logged(NativeContract.LOG_ERROR, true, key, 1, "to a broken handler");
        } finally {
            plugin.removeHandler(throwing);
        }
    }

    private static void assertRecord(LogRecord record, String logger, Level level,
            String message) {
        assertEquals(message, logger, record.getLoggerName());
        assertEquals(message, level, record.getLevel());
        assertEquals(message, record.getMessage());
    }
}
