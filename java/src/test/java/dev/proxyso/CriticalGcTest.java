package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Rule;
import org.junit.Test;

/**
 * A long plugin call never holds off the garbage collector: a method that sleeps 500 ms, called
 * while another thread runs {@code System.gc()}, delays that collection by less than 50 ms. On
 * JDK 22 and later a critical downcall would hold it off for the whole call; the method is not
 * known to be short, so its calls take ordinary downcalls, and never for a plugin that sets
 * {@code PROXYSO_FLAG_LONG_CALLS}. On JDK 17 (JNI) the same holds.
 */
public class CriticalGcTest {
    /** The longest a collection may be delayed. */
    private static final long MAX_DELAY_MILLIS = 50;

    @Rule
    public final Keys keys = new Keys();
    @Rule
    public final LogCapture log = new LogCapture();

    /**
     * From {@link ExchangeCalls#PIN_FROM} bytes on, a call of a method known to be short runs
     * critically on either path: the arrays pinned (JNI) or in a critical downcall (FFM). Seen from
     * outside when the method turns long: the two long calls in a row that strike it ran
     * critically, and that is logged, naming the input's size.
     */
    @Test
    public void aShortMethodThatTurnsLongRanCriticallyAndIsLogged() throws Exception {
        String key = keys.next("gc-turns-long");
        ProxySo.load(key, TestSupport.fixture(TestSupport.FIXTURE), LoadOptions.builder()
                .config(TestSupport.utf8("slept")).exactTiming(true).build());
        CallPathProbe.turnLong(key, ExchangeCalls.PIN_FROM * 2);
        log.await("method 'sleep' ran ");
        log.await(" us on " + ExchangeCalls.PIN_FROM * 2 + " bytes in a critical call");
    }

    /** {@code -Dproxyso.criticalMicros=0}: no call is ever critical. */
    @Test
    public void aCriticalLimitOfZeroMakesNoCallCritical() throws Exception {
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.singletonList("-Dproxyso.criticalMicros=0"),
                CallPathProbe.class.getName(), "turn-long");
        assertEquals(child.describe(), 0, child.exitCode);
        assertTrue(child.describe(), child.output.contains(CallPathProbe.CRITICAL + "no"));
        ChildJvm.Result normal = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.<String>emptyList(), CallPathProbe.class.getName(), "turn-long");
        assertTrue(normal.describe(), normal.output.contains(CallPathProbe.CRITICAL + "yes"));
    }

    /** A critical limit that is not a whole number of microseconds is refused, naming it. */
    @Test
    public void aCriticalLimitThatIsNoNumberIsRefused() throws Exception {
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.singletonList("-Dproxyso.criticalMicros=5ms"),
                CallPathProbe.class.getName(), "path");
        assertTrue(child.describe(), child.exitCode != 0);
        assertTrue(child.describe(), child.output.contains("proxyso.criticalMicros must be a "
                + "whole number of microseconds (0 or more), not '5ms'"));
    }

    @Test
    public void aSleepingCallByKeyDoesNotDelayACollection() throws Exception {
        final String key = keys.next("gc-key");
        ProxySo.load(key, TestSupport.fixture(TestSupport.FIXTURE), TestSupport.utf8("slept"));
        assertCollectsWhileCalling(key, new Runnable() {
            @Override
            public void run() {
                assertEquals("slept", TestSupport.text(
                        ProxySo.call(key, "sleep", TestSupport.utf8("500"))));
            }
        });
    }

    @Test
    public void aSleepingCallOnDirectBuffersDoesNotDelayACollection() throws Exception {
        String key = keys.next("gc-direct");
        ProxySo.load(key, TestSupport.fixture(TestSupport.FIXTURE), TestSupport.utf8("slept"));
        final LibraryHandle handle = ProxySo.handle(key, "sleep");
        try {
            assertCollectsWhileCalling(key, new Runnable() {
                @Override
                public void run() {
                    ByteBuffer in = ByteBuffer.allocateDirect(3);
                    in.put(TestSupport.utf8("500"));
                    in.flip();
                    assertEquals(5, handle.call(in, ByteBuffer.allocateDirect(16)));
                }
            });
        } finally {
            handle.close();
        }
    }

    @Test
    public void aPluginThatSaysItsCallsAreLongIsNeverCalledCritically() throws Exception {
        // Without PROXYSO_FLAG_LONG_CALLS, 200 quick calls on 3 bytes ("000") would make the
        // method known to be short for 3-byte inputs, and the 500 ms call on "500" would then
        // run in a critical downcall (JDK 22+): measured history cannot foresee it.
        final String key = keys.next("gc-flag");
        ProxySo.load(key, TestSupport.fixture("libfx_long_calls.so"),
                LoadOptions.builder().exactTiming(true).build());
        for (int i = 0; i < 200; i++) {
            assertEquals("slept", TestSupport.text(
                    ProxySo.call(key, "sleep", TestSupport.utf8("000"))));
        }
        assertCollectsWhileCalling(key, new Runnable() {
            @Override
            public void run() {
                assertEquals("slept", TestSupport.text(
                        ProxySo.call(key, "sleep", TestSupport.utf8("500"))));
            }
        });
    }

    /** Runs {@code call} (500 ms in the plugin) and collects while it is in the plugin. */
    private static void assertCollectsWhileCalling(String key, Runnable call) throws Exception {
        // What a collection takes here with no call running.
        long alone = 0;
        for (int i = 0; i < 3; i++) {
            alone = Math.max(alone, collect());
        }
        final AtomicReference<Throwable> failed = new AtomicReference<Throwable>();
        Thread caller = new Thread(() -> {
            try {
                call.run();
            } catch (Throwable t) {
                failed.set(t);
            }
        }, "sleeping-call");
        caller.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (ProxySo.info(key).getStats().getInFlight() == 0) {
            assertTrue("the call never started", System.nanoTime() < deadline);
            Thread.sleep(1);
        }
        // Well inside the 500 ms sleep.
        Thread.sleep(50);
        long during = collect();
        boolean stillInside = ProxySo.info(key).getStats().getInFlight() == 1;
        caller.join();
        if (failed.get() != null) {
            throw new AssertionError("the call failed", failed.get());
        }
        assertTrue("the collection ran after the call returned", stillInside);
        assertTrue("a collection during a 500 ms call took " + during + " ms, alone " + alone
                + " ms (" + CallPath.name() + ")", during < alone + MAX_DELAY_MILLIS);
    }

    /** Milliseconds of one {@code System.gc()}. */
    private static long collect() {
        long start = System.nanoTime();
        System.gc();
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    }
}
