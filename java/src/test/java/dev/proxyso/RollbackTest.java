package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.overwriteInPlace;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.sha256;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * {@link ProxySo#rollback(String)} and {@link LoadOptions.Builder#keepVersions(int)}: a rollback
 * brings the previous version back (from its kept copy, with its configuration) under a new
 * generation, drops the version rolled back from, drains it like a replace, and without a kept
 * version changes nothing.
 */
public class RollbackTest {
    /** How long each slow call sleeps inside the plugin. */
    private static final long SLEEP_MILLIS = 1500;
    /** Time for the slow calls to get into the plugin. */
    private static final long SETTLE_MILLIS = 300;

    @Rule
    public final Keys keys = new Keys();

    private Path tempDir;
    private ExecutorService pool;

    @Before
    public void setUp() throws Exception {
        tempDir = TestSupport.tempDir("proxyso-rollback");
        pool = Executors.newCachedThreadPool();
    }

    @After
    public void tearDown() throws InterruptedException {
        pool.shutdownNow();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
        TestSupport.deleteTree(tempDir);
    }

    @Test
    public void rollbackBringsThePreviousVersionBackUnderANewGeneration() throws Exception {
        String key = keys.next("rollback");
        String v1 = plugin(EXAMPLE_V1);
        String v2 = plugin(EXAMPLE_V2);
        assertEquals(1, ProxySo.load(key, v1));
        assertEquals(1, ProxySo.info(key).getKeepVersions());
        assertEquals(Collections.<PreviousVersion>emptyList(),
                ProxySo.info(key).getPreviousVersions());
        assertEquals(2, ProxySo.replace(key, v2));
        assertEquals("x,ab", ProxySo.call(key, "x"));
        List<PreviousVersion> kept = ProxySo.info(key).getPreviousVersions();
        assertEquals(1, kept.size());
        assertEquals(1, kept.get(0).getGeneration());
        assertEquals(v1, kept.get(0).getPath());
        assertEquals(sha256(v1), kept.get(0).getSha256());

        assertEquals(3, ProxySo.rollback(key));
        assertEquals("calls reach v1 again", "x", ProxySo.call(key, "x"));
        LibraryInfo info = ProxySo.info(key);
        assertEquals(3, info.getGeneration());
        assertEquals("1.0.0", info.getVersion());
        assertEquals(v1, info.getPath());
        assertEquals(sha256(v1), info.getSha256());
        assertEquals(1, info.getStats().getRollbacks());
        assertEquals(1, info.getStats().getReplacements());
        // v2, rolled back from, is not kept: a second rollback has nothing to go back to.
        assertEquals(Collections.<PreviousVersion>emptyList(), info.getPreviousVersions());
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
        assertEquals(3, ProxySo.info(key).getGeneration());
        // The retired v2 leaves nothing mapped; v1 is mapped from a new private copy.
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        assertFalse(mappingsOf(info.getSnapshotPath()).isEmpty());
        // A replace after a rollback goes on counting generations.
        assertEquals(4, ProxySo.replace(key, v2));
        assertEquals("y,ab", ProxySo.call(key, "y"));
    }

    @Test
    public void rollbackRestoresTheKeptCopyEvenAfterThePathWasOverwrittenAndRemoved()
            throws Exception {
        String key = keys.next("rollback-copy");
        byte[] v1 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        byte[] v2 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        Path live = tempDir.resolve("live.so");
        Files.write(live, v1);
        String path = live.toString();
        ProxySo.load(key, path);
        // v2 over v1's path, in place (same inode), and replaced from there.
        overwriteInPlace(live, v2);
        assertEquals(2, ProxySo.replace(key, path));
        assertEquals("2.0.0", text(ProxySo.call(key, "version", new byte[0])));
        // The path holds v2 now, and then nothing at all.
        Files.delete(live);

        assertEquals(3, ProxySo.rollback(key));
        assertEquals("the old v1 came back from its kept copy", "1.0.0",
                text(ProxySo.call(key, "version", new byte[0])));
        assertEquals("x", ProxySo.call(key, "x"));
        assertEquals(sha256(v1), ProxySo.info(key).getSha256());
        assertEquals(path, ProxySo.info(key).getPath());
    }

    @Test
    public void rollbackWithoutAPreviousVersionChangesNothing() {
        final String key = keys.next("rollback-none");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        LibraryInfo before = ProxySo.info(key);
        NoPreviousVersionException e = assertThrows(NoPreviousVersionException.class,
                () -> ProxySo.rollback(key));
        assertEquals(key, e.getKey());
        assertTrue(e.getMessage(), e.getMessage().contains(key));
        assertEquals(before, ProxySo.info(key));
        assertEquals(1, ProxySo.info(key).getGeneration());
        assertEquals(0, ProxySo.info(key).getStats().getRollbacks());
        assertEquals("still v1", ProxySo.call(key, "still v1"));

        final String unknown = keys.next("rollback-unknown");
        NoSuchLibraryException gone = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.rollback(unknown));
        assertEquals(unknown, gone.getKey());
        // Unloaded: the kept versions went with the key.
        ProxySo.replace(key, plugin(EXAMPLE_V2));
        assertTrue(ProxySo.unload(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.rollback(key));
        ProxySo.load(key, plugin(EXAMPLE_V2));
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
    }

    @Test
    public void keepVersionsTwoAllowsTwoRollbacksEachWithItsOwnConfiguration() {
        final String key = keys.next("keep-two");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, LoadOptions.builder().config(utf8("a")).keepVersions(2).build());
        assertEquals(2, ProxySo.info(key).getKeepVersions());
        ProxySo.replace(key, path, utf8("b"));
        ProxySo.replace(key, path, utf8("c"));
        ProxySo.replace(key, path, utf8("d"));
        // A replace without keepVersions leaves the key's number as it was.
        LibraryInfo info = ProxySo.info(key);
        assertEquals(2, info.getKeepVersions());
        List<PreviousVersion> kept = info.getPreviousVersions();
        assertEquals("the most recent first, the oldest dropped: " + kept, 2, kept.size());
        assertEquals(3, kept.get(0).getGeneration());
        assertEquals(2, kept.get(1).getGeneration());
        assertEquals("d", ProxySo.call(key, ""));

        assertEquals(5, ProxySo.rollback(key));
        assertEquals("c", ProxySo.call(key, ""));
        assertEquals(1, ProxySo.info(key).getPreviousVersions().size());
        assertEquals(6, ProxySo.rollback(key));
        assertEquals("b", ProxySo.call(key, ""));
        assertEquals(Collections.<PreviousVersion>emptyList(),
                ProxySo.info(key).getPreviousVersions());
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
        assertEquals("b", ProxySo.call(key, ""));
        assertEquals(6, ProxySo.info(key).getGeneration());
        assertEquals(2, ProxySo.info(key).getStats().getRollbacks());
    }

    @Test
    public void keepVersionsZeroAllowsNoRollback() {
        final String key = keys.next("keep-zero");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, LoadOptions.builder().config(utf8("a")).keepVersions(0).build());
        ProxySo.replace(key, path, utf8("b"));
        LibraryInfo info = ProxySo.info(key);
        assertEquals(0, info.getKeepVersions());
        assertEquals(Collections.<PreviousVersion>emptyList(), info.getPreviousVersions());
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
        assertEquals("b", ProxySo.call(key, ""));
        // A version loaded while the key kept none has no kept copy, so it can never be rolled
        // back to, even once the key keeps versions again; the versions loaded after can.
        ProxySo.replace(key, path, LoadOptions.builder().config(utf8("c")).keepVersions(1).build());
        assertEquals(1, ProxySo.info(key).getKeepVersions());
        assertEquals(Collections.<PreviousVersion>emptyList(),
                ProxySo.info(key).getPreviousVersions());
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
        assertEquals("c", ProxySo.call(key, ""));
        ProxySo.replace(key, path, utf8("d"));
        assertEquals(3, ProxySo.info(key).getPreviousVersions().get(0).getGeneration());
        assertEquals(5, ProxySo.rollback(key));
        assertEquals("c", ProxySo.call(key, ""));
    }

    @Test
    public void keepVersionsOutsideZeroToSixtyFourIsRefused() {
        for (int bad : new int[] {-1, -2, 65, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LoadOptions.builder().keepVersions(bad));
            assertTrue(e.getMessage(), e.getMessage().contains(Integer.toString(bad)));
        }
        assertEquals(64, LoadOptions.builder().keepVersions(64).build().getKeepVersions());
        assertEquals(0, LoadOptions.builder().keepVersions(0).build().getKeepVersions());
        assertEquals(LoadOptions.KEEP_VERSIONS_DEFAULT, LoadOptions.defaults().getKeepVersions());
        assertNotEquals(LoadOptions.builder().keepVersions(3).build(), LoadOptions.defaults());
        assertEquals(LoadOptions.builder().keepVersions(3).build(),
                LoadOptions.builder().keepVersions(3).build());
    }

    @Test
    public void aCallInFlightOnTheVersionRolledBackFromFinishesThere() throws Exception {
        final String key = keys.next("rollback-drain");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, utf8("old"));
        ProxySo.replace(key, path, utf8("new"));
        String newSnapshot = ProxySo.info(key).getSnapshotPath();
        final int slowCalls = 2;
        final CountDownLatch started = new CountDownLatch(slowCalls);
        List<Future<String>> slow = new ArrayList<Future<String>>();
        for (int i = 0; i < slowCalls; i++) {
            slow.add(pool.submit(new Callable<String>() {
                @Override
                public String call() {
                    started.countDown();
                    return text(ProxySo.call(key, "sleep", utf8(Long.toString(SLEEP_MILLIS))));
                }
            }));
        }
        assertTrue(started.await(10, TimeUnit.SECONDS));
        Thread.sleep(SETTLE_MILLIS);

        long start = System.nanoTime();
        assertEquals(3, ProxySo.rollback(key));
        long rollbackMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue("rollback waited for the calls in flight: " + rollbackMillis + " ms",
                rollbackMillis < SLEEP_MILLIS - SETTLE_MILLIS);
        for (Future<String> call : slow) {
            assertFalse("a slow call ended before the rollback returned", call.isDone());
        }
        // New calls reach the old version at once; the slow ones still run in "new".
        assertEquals("old", ProxySo.call(key, ""));
        LibraryInfo during = ProxySo.info(key);
        assertEquals(2, during.getGenerations().size());
        assertEquals(3, during.getGenerations().get(0).getGeneration());
        assertEquals(0, during.getGenerations().get(0).getInFlight());
        assertEquals(2, during.getGenerations().get(1).getGeneration());
        assertEquals(slowCalls, during.getGenerations().get(1).getInFlight());
        assertEquals(slowCalls, during.getStats().getInFlight());
        assertFalse("the version rolled back from was closed under its calls",
                mappingsOf(newSnapshot).isEmpty());
        assertFalse(ProxySo.awaitRetired(key, 50, TimeUnit.MILLISECONDS));

        for (Future<String> call : slow) {
            assertEquals("a call in flight did not finish in its version", "new",
                    call.get(30, TimeUnit.SECONDS));
        }
        assertTrue(ProxySo.awaitRetired(key, 30, TimeUnit.SECONDS));
        assertEquals(Collections.<String>emptyList(), mappingsOf(newSnapshot));
        assertEquals(1, ProxySo.info(key).getGenerations().size());
        assertEquals("old", ProxySo.call(key, ""));
    }

    @Test
    public void rollbackUnderFourCallingThreadsFailsNoCall() throws Exception {
        final String key = keys.next("rollback-load");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, LoadOptions.builder().config(utf8("tag-0")).keepVersions(64)
                .build());
        final AtomicLong calls = new AtomicLong();
        final AtomicReference<String> failure = new AtomicReference<String>();
        final CountDownLatch stop = new CountDownLatch(1);
        List<Future<?>> callers = new ArrayList<Future<?>>();
        for (int t = 0; t < 4; t++) {
            callers.add(pool.submit(new Runnable() {
                @Override
                public void run() {
                    while (stop.getCount() > 0) {
                        try {
                            String answer = ProxySo.call(key, "");
                            if (!answer.startsWith("tag-")) {
                                failure.compareAndSet(null, "answer " + answer);
                            }
                            calls.incrementAndGet();
                        } catch (RuntimeException e) {
                            failure.compareAndSet(null, e.toString());
                        }
                    }
                }
            }));
        }
        try {
            for (int i = 1; i <= 10; i++) {
                ProxySo.replace(key, path, utf8("tag-" + i));
            }
            for (int i = 9; i >= 0; i--) {
                long before = calls.get();
                ProxySo.rollback(key);
                assertEquals("tag-" + i, ProxySo.call(key, ""));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (calls.get() < before + 100 && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
            }
        } finally {
            stop.countDown();
            for (Future<?> caller : callers) {
                caller.get(30, TimeUnit.SECONDS);
            }
        }
        assertEquals(null, failure.get());
        assertTrue(calls.get() > 0);
        assertEquals(21, ProxySo.info(key).getGeneration());
        assertEquals(10, ProxySo.info(key).getStats().getRollbacks());
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
        assertTrue(ProxySo.awaitRetired(key, 30, TimeUnit.SECONDS));
    }
}
