package dev.proxyso;

import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.Rule;
import org.junit.Test;

/**
 * Retired versions close key by key: a plugin whose {@code destroy} blocks
 * ({@code libfx_slow_destroy.so}, until the file named by its config appears) holds up no other
 * key's retired versions, and once it has run past the slow-destroy limit (5 s) it is logged as a
 * warning naming key and generation and counted in {@link LibraryInfo} and the key's
 * {@link LibraryMXBean}, while it still runs.
 */
public class RetireTest {
    private static final String FIXTURE = "libfx_slow_destroy.so";

    @Rule
    public final Keys keys = new Keys();

    /** Every record of dev.proxyso and below while a test runs. */
    @Rule
    public final LogCapture log = new LogCapture();
    private final List<LogRecord> records = log.records;

    /** What must come true. */
    private interface Condition {
        boolean holds() throws Exception;
    }

    /** Polls every 10 ms until {@code condition} holds; fails after {@code seconds}. */
    private static void eventually(String what, long seconds, Condition condition)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.holds()) {
            if (System.nanoTime() > deadline) {
                fail("not within " + seconds + " s: " + what);
            }
            Thread.sleep(10);
        }
    }

    /**
     * Replaces {@code key} while a call is in flight, so that the calling thread lets go of the
     * old version last and hands it to a reaper thread.
     */
    private static void replaceUnderACall(final String key) throws Exception {
        final AtomicReference<String> answer = new AtomicReference<String>();
        Thread caller = new Thread(new Runnable() {
            @Override
            public void run() {
                answer.set(text(ProxySo.call(key, "sleep", utf8("400"))));
            }
        }, "slow-destroy-caller");
        caller.start();
        eventually("a call in flight in " + key, 10, new Condition() {
            @Override
            public boolean holds() {
                return ProxySo.info(key).getStats().getInFlight() == 1;
            }
        });
        ProxySo.replace(key, fixture(FIXTURE));
        caller.join(10_000);
        assertEquals("slept", answer.get());
    }

    private List<LogRecord> warningsAbout(String key, long generation) {
        List<LogRecord> found = new ArrayList<LogRecord>();
        synchronized (records) {
            for (LogRecord record : records) {
                Object[] parameters = record.getParameters();
                if (record.getLevel() == Level.WARNING && parameters != null
                        && parameters.length == 2 && key.equals(parameters[0])
                        && Long.valueOf(generation).equals(parameters[1])) {
                    found.add(record);
                }
            }
        }
        return found;
    }

    @Test
    public void aBlockingDestroyHoldsUpNoOtherKeyAndIsCountedAsSlow() throws Exception {
        Path dir = TestSupport.tempDir("retire-");
        Path gate = dir.resolve("open");
        final String slow = keys.next("slow-destroy");
        final String other = keys.next("other-key");
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        ObjectName bean = new ObjectName("dev.proxyso:type=Library,key=" + ObjectName.quote(slow));
        try {
            ProxySo.load(slow, fixture(FIXTURE), utf8(gate.toString()));
            replaceUnderACall(slow);
            eventually("the old version of " + slow + " is being destroyed", 10, new Condition() {
                @Override
                public boolean holds() {
                    return ProxySo.info(slow).getDestroysRunning() == 1;
                }
            });
            assertFalse(ProxySo.awaitRetired(slow, 100, TimeUnit.MILLISECONDS));

            // Another key meanwhile: its retired version closes at once.
            ProxySo.load(other, fixture(FIXTURE));
            replaceUnderACall(other);
            long started = System.nanoTime();
            assertTrue("the other key's retired version waited for the blocked destroy",
                    ProxySo.awaitRetired(other, 5, TimeUnit.SECONDS));
            long waitedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            assertTrue("waited " + waitedMillis + " ms", waitedMillis < 2000);
            LibraryInfo otherInfo = ProxySo.info(other);
            assertEquals(otherInfo.toString(), 1, otherInfo.getRetiredVersions());
            assertEquals(otherInfo.toString(), 0, otherInfo.getDestroysRunning());
            assertEquals(otherInfo.toString(), 0, otherInfo.getSlowDestroys());

            // Past the 5 s limit the blocked destroy is counted and logged, still running.
            eventually("the slow destroy counted", 30, new Condition() {
                @Override
                public boolean holds() {
                    return ProxySo.info(slow).getSlowDestroys() == 1;
                }
            });
            LibraryInfo info = ProxySo.info(slow);
            assertEquals(info.toString(), 1, info.getDestroysRunning());
            assertEquals(info.toString(), 0, info.getRetiredVersions());
            assertEquals(1L, server.getAttribute(bean, "SlowDestroys"));
            assertEquals(1L, server.getAttribute(bean, "DestroysRunning"));
            eventually("a warning about " + slow + "#1", 10, new Condition() {
                @Override
                public boolean holds() {
                    return !warningsAbout(slow, 1).isEmpty();
                }
            });
            String message = warningsAbout(slow, 1).get(0).getMessage();
            assertTrue(message, message.startsWith("[" + slow + "#1] destroy has run for "));
            assertTrue(message, message.contains("longer than the 5.0 s limit"));
        } finally {
            Files.write(gate, new byte[0]);
        }
        assertTrue(ProxySo.awaitRetired(slow, 10, TimeUnit.SECONDS));
        LibraryInfo info = ProxySo.info(slow);
        assertEquals(info.toString(), 1, info.getRetiredVersions());
        assertEquals(info.toString(), 0, info.getDestroysRunning());
        assertEquals(info.toString(), 1, info.getSlowDestroys());
        assertEquals(0L, server.getAttribute(bean, "DestroysRunning"));
        assertEquals("one warning a slow destroy", 1, warningsAbout(slow, 1).size());
        TestSupport.deleteTree(dir);
    }
}
