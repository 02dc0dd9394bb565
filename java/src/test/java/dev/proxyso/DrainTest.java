package dev.proxyso;

import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * A slow plugin method (the fixture's {@code sleep}) in flight while its version is replaced or
 * unloaded: the calls finish in the old version, {@code replace} and {@code unload} do not wait
 * for them, and {@code awaitRetired} reports the drain: {@code false} while a call still runs in
 * a retired version, {@code true} once it returned and the version was closed, and at once for a
 * timeout of 0.
 */
public class DrainTest {
    /** How long each slow call sleeps inside the plugin. */
    private static final long SLEEP_MILLIS = 1500;
    /** Time for the slow calls to get into the plugin before the version is retired. */
    private static final long SETTLE_MILLIS = 300;
    /** What counts as "at once" for a call that must not block (generous for a loaded machine). */
    private static final long PROMPT_MILLIS = 250;
    private static final int SLOW_CALLS = 3;

    @Rule
    public final Keys keys = new Keys();

    private ExecutorService pool;

    @Before
    public void startPool() {
        pool = Executors.newCachedThreadPool();
    }

    @After
    public void stopPool() throws InterruptedException {
        pool.shutdownNow();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
    }

    /** Starts {@code count} calls of {@code sleep} and returns once they have all begun. */
    private List<Future<String>> startSlowCalls(final String key, int count, final long millis)
            throws InterruptedException {
        final CountDownLatch started = new CountDownLatch(count);
        List<Future<String>> calls = new ArrayList<Future<String>>();
        for (int i = 0; i < count; i++) {
            calls.add(pool.submit(new Callable<String>() {
                @Override
                public String call() {
                    started.countDown();
                    return text(ProxySo.call(key, "sleep", utf8(Long.toString(millis))));
                }
            }));
        }
        assertTrue(started.await(10, TimeUnit.SECONDS));
        Thread.sleep(SETTLE_MILLIS);
        assertFalse("a slow call ended before the version was retired", anyDone(calls));
        return calls;
    }

    /** Runs awaitRetired and returns how long it took, in milliseconds, with its result. */
    private static long[] timedAwait(String key, long timeout, TimeUnit unit) {
        long start = System.nanoTime();
        boolean retired = ProxySo.awaitRetired(key, timeout, unit);
        return new long[] {retired ? 1 : 0,
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)};
    }

    @Test
    public void slowCallsFinishInTheOldVersionDuringReplaceAndAwaitRetiredWaitsForThem()
            throws Exception {
        String key = keys.next("drain-replace");
        ProxySo.load(key, fixture(FIXTURE), utf8("old"));
        String oldSnapshot = ProxySo.info(key).getSnapshotPath();
        List<Future<String>> slow = startSlowCalls(key, SLOW_CALLS, SLEEP_MILLIS);

        long start = System.nanoTime();
        long generation = ProxySo.replace(key, fixture(FIXTURE), utf8("new"));
        long replaceMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue("replace waited for the calls in flight: " + replaceMillis + " ms",
                replaceMillis < SLEEP_MILLIS - SETTLE_MILLIS && !anyDone(slow));
        // New calls reach the new version at once, while the old one still runs the slow calls.
        assertEquals("new", ProxySo.call(key, ""));
        assertEquals(generation, ProxySo.info(key).getGeneration());
        assertFalse("the old version is closed while calls still run in it",
                mappingsOf(oldSnapshot).isEmpty());

        long[] notYet = timedAwait(key, 100, TimeUnit.MILLISECONDS);
        assertEquals("awaitRetired returned true while calls ran in the old version", 0, notYet[0]);
        assertTrue("awaitRetired(100 ms) returned after " + notYet[1] + " ms", notYet[1] >= 90);

        long[] drained = timedAwait(key, 30, TimeUnit.SECONDS);
        assertEquals("the old version did not retire after its calls returned", 1, drained[0]);
        assertTrue("awaitRetired(30 s) waited " + drained[1] + " ms for calls of "
                + SLEEP_MILLIS + " ms", drained[1] < 10_000);
        for (Future<String> call : slow) {
            assertEquals("a call in flight did not finish in the old version", "old",
                    call.get(10, TimeUnit.SECONDS));
        }
        assertEquals("the retired version stays mapped", Collections.<String>emptyList(),
                mappingsOf(oldSnapshot));
        assertEquals(1, ProxySo.info(key).getRetiredVersions());
        assertEquals(0, ProxySo.info(key).getPinnedVersions());
        assertEquals("new", ProxySo.call(key, ""));
    }

    @Test
    public void slowCallsFinishInTheOldVersionDuringUnloadAndAwaitRetiredWaitsForThem()
            throws Exception {
        final String key = keys.next("drain-unload");
        ProxySo.load(key, fixture(FIXTURE), utf8("leaving"));
        String snapshot = ProxySo.info(key).getSnapshotPath();
        List<Future<String>> slow = startSlowCalls(key, SLOW_CALLS, SLEEP_MILLIS);

        long start = System.nanoTime();
        assertTrue(ProxySo.unload(key));
        long unloadMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue("unload waited for the calls in flight: " + unloadMillis + " ms",
                unloadMillis < SLEEP_MILLIS - SETTLE_MILLIS && !anyDone(slow));
        assertNull(ProxySo.info(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, ""));

        long[] notYet = timedAwait(key, 100, TimeUnit.MILLISECONDS);
        assertEquals("awaitRetired returned true while calls ran in the unloaded version", 0,
                notYet[0]);
        assertFalse(mappingsOf(snapshot).isEmpty());

        long[] drained = timedAwait(key, 30, TimeUnit.SECONDS);
        assertEquals("the unloaded version did not retire after its calls returned", 1,
                drained[0]);
        for (Future<String> call : slow) {
            assertEquals("leaving", call.get(10, TimeUnit.SECONDS));
        }
        assertEquals(Collections.<String>emptyList(), mappingsOf(snapshot));
    }

    @Test
    public void awaitRetiredWithATimeoutOfZeroDoesNotBlock() throws Exception {
        String key = keys.next("drain-zero");
        ProxySo.load(key, fixture(FIXTURE), utf8("zero"));
        // Nothing retired yet: true at once.
        long[] nothing = timedAwait(key, 0, TimeUnit.SECONDS);
        assertEquals(1, nothing[0]);
        assertTrue("took " + nothing[1] + " ms", nothing[1] < PROMPT_MILLIS);

        List<Future<String>> slow = startSlowCalls(key, 1, 3 * SLEEP_MILLIS);
        ProxySo.replace(key, fixture(FIXTURE), utf8("zero-2"));
        for (long timeout : new long[] {0, -1, Long.MIN_VALUE}) {
            long[] check = timedAwait(key, timeout, TimeUnit.MILLISECONDS);
            assertEquals("awaitRetired(" + timeout + ") with a call in flight", 0, check[0]);
            assertTrue("awaitRetired(" + timeout + ") blocked for " + check[1] + " ms",
                    check[1] < PROMPT_MILLIS);
        }
        long[] nanos = timedAwait(key, 0, TimeUnit.NANOSECONDS);
        assertEquals(0, nanos[0]);
        assertTrue(nanos[1] < PROMPT_MILLIS);
        assertFalse("the slow call ended early", slow.get(0).isDone());

        assertEquals("zero", slow.get(0).get(30, TimeUnit.SECONDS));
        assertTrue(ProxySo.awaitRetired(key, 30, TimeUnit.SECONDS));
        long[] after = timedAwait(key, 0, TimeUnit.SECONDS);
        assertEquals(1, after[0]);
        assertTrue(after[1] < PROMPT_MILLIS);
    }

    @Test
    public void awaitRetiredCoversEveryRetiredVersionOfTheKey() throws Exception {
        String key = keys.next("drain-several");
        ProxySo.load(key, fixture(FIXTURE), utf8("first"));
        List<Future<String>> onFirst = startSlowCalls(key, 1, SLEEP_MILLIS);
        ProxySo.replace(key, fixture(FIXTURE), utf8("second"));
        // The second version gets a longer call of its own, then is replaced too.
        long secondStarted = System.nanoTime();
        List<Future<String>> onSecond = startSlowCalls(key, 1, 2 * SLEEP_MILLIS);
        ProxySo.replace(key, fixture(FIXTURE), utf8("third"));

        assertEquals("first", onFirst.get(0).get(30, TimeUnit.SECONDS));
        // The first version has drained; the second still runs its call.
        assertFalse("awaitRetired ignored the second retired version",
                ProxySo.awaitRetired(key, 50, TimeUnit.MILLISECONDS));
        assertFalse(onSecond.get(0).isDone());
        assertTrue(ProxySo.awaitRetired(key, 30, TimeUnit.SECONDS));
        // The version closes once the call has left the plugin; the Java caller may still be on
        // its way back, so measure against the plugin's sleep rather than the future.
        long waitedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - secondStarted);
        assertTrue("awaitRetired returned after " + waitedMillis + " ms, before the second "
                + "version's " + (2 * SLEEP_MILLIS) + " ms call ended",
                waitedMillis >= 2 * SLEEP_MILLIS);
        assertEquals("second", onSecond.get(0).get(30, TimeUnit.SECONDS));
        assertEquals(2, ProxySo.info(key).getRetiredVersions());
        assertEquals("third", ProxySo.call(key, ""));
    }

    @Test
    public void awaitRetiredOfOneKeyDoesNotWaitForAnother() throws Exception {
        String slowKey = keys.next("drain-slow");
        String otherKey = keys.next("drain-other");
        ProxySo.load(slowKey, fixture(FIXTURE), utf8("slow"));
        ProxySo.load(otherKey, fixture(FIXTURE), utf8("other"));
        List<Future<String>> slow = startSlowCalls(slowKey, 1, 2 * SLEEP_MILLIS);
        ProxySo.replace(slowKey, fixture(FIXTURE), utf8("slow-2"));
        ProxySo.replace(otherKey, fixture(FIXTURE), utf8("other-2"));

        long[] other = timedAwait(otherKey, 10, TimeUnit.SECONDS);
        assertEquals(1, other[0]);
        assertTrue("awaitRetired of an idle key took " + other[1] + " ms",
                other[1] < PROMPT_MILLIS);
        assertFalse(ProxySo.awaitRetired(slowKey, 0, TimeUnit.SECONDS));
        assertEquals("slow", slow.get(0).get(30, TimeUnit.SECONDS));
        assertTrue(ProxySo.awaitRetired(slowKey, 30, TimeUnit.SECONDS));
    }

    private static boolean anyDone(List<Future<String>> futures) {
        for (Future<String> future : futures) {
            if (future.isDone()) {
                return true;
            }
        }
        return false;
    }
}
