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
import org.junit.Rule;
import org.junit.Test;

/** Unload: calls in flight finish in the old version, new calls fail, then nothing stays mapped. */
public class UnloadTest {
    private static final int SLEEPERS = 4;
    private static final long SLEEP_MILLIS = 1500;

    @Rule
    public final Keys keys = new Keys();

    @Test
    public void unloadWhileCallsAreInFlight() throws Exception {
        final String key = keys.next("in-flight");
        ProxySo.load(key, fixture(FIXTURE), utf8("old-tag"));
        String snapshot = ProxySo.info(key).getSnapshotPath();
        assertFalse(mappingsOf(snapshot).isEmpty());

        final CountDownLatch started = new CountDownLatch(SLEEPERS);
        ExecutorService pool = Executors.newFixedThreadPool(SLEEPERS);
        List<Future<String>> sleepers = new ArrayList<Future<String>>();
        try {
            for (int i = 0; i < SLEEPERS; i++) {
                sleepers.add(pool.submit(new Callable<String>() {
                    @Override
                    public String call() {
                        started.countDown();
                        return text(ProxySo.call(key, "sleep", utf8(Long.toString(SLEEP_MILLIS))));
                    }
                }));
            }
            assertTrue(started.await(10, TimeUnit.SECONDS));
            // Let every sleeper get into the plugin (it sleeps there for SLEEP_MILLIS).
            Thread.sleep(SLEEP_MILLIS / 3);
            assertFalse("a sleeper ended before unload", anyDone(sleepers));
            assertTrue(ProxySo.unload(key));
            // New calls fail at once, while the old ones are still running.
            NoSuchLibraryException e = assertThrows(NoSuchLibraryException.class,
                    () -> ProxySo.call(key, "tag", new byte[0]));
            assertEquals(key, e.getKey());
            assertNull(ProxySo.info(key));
            assertFalse(ProxySo.unload(key));
            assertFalse("unload must not wait for the calls in flight", allDone(sleepers));

            for (Future<String> sleeper : sleepers) {
                assertEquals("old-tag", sleeper.get(30, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        assertEquals("unloaded version still mapped", Collections.<String>emptyList(),
                mappingsOf(snapshot));
    }

    @Test
    public void awaitRetiredReportsAVersionStillDraining() throws Exception {
        final String key = keys.next("draining");
        ProxySo.load(key, fixture(FIXTURE), utf8("slow"));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            final CountDownLatch started = new CountDownLatch(1);
            Future<String> sleeper = pool.submit(new Callable<String>() {
                @Override
                public String call() {
                    started.countDown();
                    return text(ProxySo.call(key, "sleep", utf8(Long.toString(SLEEP_MILLIS))));
                }
            });
            assertTrue(started.await(10, TimeUnit.SECONDS));
            Thread.sleep(SLEEP_MILLIS / 3);
            ProxySo.replace(key, fixture(FIXTURE), utf8("fast"));
            assertEquals("fast", ProxySo.call(key, ""));
            // The old version is still running the sleeper: it cannot be retired yet.
            assertFalse(ProxySo.awaitRetired(key, 50, TimeUnit.MILLISECONDS));
            assertEquals("slow", sleeper.get(30, TimeUnit.SECONDS));
            assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    public void unloadedKeyCanBeLoadedAgain() {
        String key = keys.next("reload");
        assertFalse(NativeBridge.isLoaded(key));
        ProxySo.load(key, fixture(FIXTURE), utf8("first"));
        assertTrue(NativeBridge.isLoaded(key));
        assertTrue(ProxySo.unload(key));
        assertFalse("isLoaded answers as info does", NativeBridge.isLoaded(key));
        assertNull(ProxySo.info(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, ""));
        ProxySo.load(key, fixture(FIXTURE), utf8("second"));
        assertTrue(NativeBridge.isLoaded(key));
        assertEquals("second", ProxySo.call(key, ""));
    }

    private static boolean anyDone(List<Future<String>> futures) {
        for (Future<String> future : futures) {
            if (future.isDone()) {
                return true;
            }
        }
        return false;
    }

    private static boolean allDone(List<Future<String>> futures) {
        for (Future<String> future : futures) {
            if (!future.isDone()) {
                return false;
            }
        }
        return true;
    }
}
