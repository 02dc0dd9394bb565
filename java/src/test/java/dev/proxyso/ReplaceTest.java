package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.inode;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.overwriteInPlace;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.After;
import org.junit.Rule;
import org.junit.Test;

/** Replacement: under load, in place, back to back, and that retired versions leave nothing mapped. */
public class ReplaceTest {
    private static final int THREADS = 4;

    @Rule
    public final Keys keys = new Keys();

    private Path tempDir;

    @After
    public void removeTempDir() {
        TestSupport.deleteTree(tempDir);
    }

    /**
     * Callers that run the default method of the example plugin in a loop and check every answer:
     * v1 returns the input, v2 the input + ",ab". The replacing thread bumps {@link #phase} to an
     * odd value before each replace and to the next even value after it returned; a call that began
     * and ended within one even phase must answer from exactly the version of that phase, so new
     * calls see the new version as soon as replace returns, and never the old one again.
     */
    private static final class Callers {
        final String key;
        final List<Thread> threads = new ArrayList<Thread>();
        final AtomicLong v1 = new AtomicLong();
        final AtomicLong v2 = new AtomicLong();
        final AtomicLong checked = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicReference<String> firstFailure = new AtomicReference<String>();
        /** Twice the number of replacements that returned, plus one while one is running. */
        final AtomicInteger phase = new AtomicInteger();
        /** The version (1 or 2) loaded after each completed replacement, by index. */
        final List<Integer> versionAfter = Collections.synchronizedList(new ArrayList<Integer>());
        volatile boolean stop;

        Callers(String key, int initialVersion) {
            this.key = key;
            versionAfter.add(initialVersion);
        }

        void start(int count) {
            for (int t = 0; t < count; t++) {
                final int id = t;
                Thread thread = new Thread(new Runnable() {
                    @Override
                    public void run() {
                        long n = 0;
                        while (!stop) {
                            String input = "req-" + id + "-" + n++;
                            int before = phase.get();
                            try {
                                String answer = ProxySo.call(key, input);
                                int after = phase.get();
                                int version;
                                if (answer.equals(input)) {
                                    version = 1;
                                } else if (answer.equals(input + ",ab")) {
                                    version = 2;
                                } else {
                                    fail("unexpected answer to " + input + ": " + answer);
                                    continue;
                                }
                                if (before == after && before % 2 == 0) {
                                    int expected = versionAfter.get(before / 2);
                                    if (version != expected) {
                                        fail("answer from v" + version + " in phase " + before
                                                + " where only v" + expected + " is loaded");
                                        continue;
                                    }
                                    checked.incrementAndGet();
                                }
                                (version == 1 ? v1 : v2).incrementAndGet();
                            } catch (RuntimeException e) {
                                fail(e.toString());
                            }
                        }
                    }
                }, "caller-" + t);
                threads.add(thread);
                thread.start();
            }
        }

        /** Replaces the key with the given version's file, moving through the phases. */
        long replace(String path, int version) {
            phase.incrementAndGet();
            boolean replaced = false;
            try {
                long generation = ProxySo.replace(key, path);
                replaced = true;
                return generation;
            } finally {
                // Recorded before the phase becomes even again, so callers find it.
                versionAfter.add(replaced ? version : versionAfter.get(versionAfter.size() - 1));
                phase.incrementAndGet();
            }
        }

        void fail(String why) {
            failed.incrementAndGet();
            firstFailure.compareAndSet(null, why);
        }

        long total() {
            return v1.get() + v2.get() + failed.get();
        }

        /** Waits until the callers made at least {@code more} further calls. */
        void awaitCalls(long more) throws InterruptedException {
            long target = total() + more;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (total() < target && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertTrue("callers stalled", total() >= target);
        }

        void stop() throws InterruptedException {
            stop = true;
            for (Thread thread : threads) {
                thread.join(30_000);
                assertFalse(thread.getName() + " did not stop", thread.isAlive());
            }
        }

        void assertNoFailure() {
            assertEquals("failed calls, first: " + firstFailure.get(), 0, failed.get());
        }
    }

    @Test
    public void replaceUnderFourCallingThreadsFailsNoCall() throws Exception {
        String key = keys.next("under-load");
        String v1 = plugin(EXAMPLE_V1);
        String v2 = plugin(EXAMPLE_V2);
        ProxySo.load(key, v1);
        Callers callers = new Callers(key, 1);
        callers.start(THREADS);
        long last = ProxySo.info(key).getGeneration();
        try {
            for (int round = 0; round < 20; round++) {
                callers.awaitCalls(5000);
                int next = round % 2 == 0 ? 2 : 1;
                long generation = callers.replace(next == 2 ? v2 : v1, next);
                assertTrue("generation " + generation + " after " + last, generation > last);
                last = generation;
                long v1Before = callers.v1.get();
                long v2Before = callers.v2.get();
                callers.awaitCalls(5000);
                if (next == 2) {
                    assertTrue("no answer from v2 after replace", callers.v2.get() > v2Before);
                } else {
                    assertTrue("no answer from v1 after replace", callers.v1.get() > v1Before);
                }
            }
        } finally {
            callers.stop();
        }
        callers.assertNoFailure();
        assertTrue("too few calls checked against the loaded version: " + callers.checked.get(),
                callers.checked.get() > 1000);
        assertTrue(callers.v1.get() > 0);
        assertTrue(callers.v2.get() > 0);
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
    }

    @Test
    public void sameFileOverwrittenInPlaceIsReplacedBackAndForth() throws Exception {
        String key = keys.next("in-place");
        byte[] v1 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        byte[] v2 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        tempDir = TestSupport.tempDir("proxyso-inplace");
        Path live = tempDir.resolve("live.so");
        Files.write(live, v1);
        Object inode = inode(live);
        String path = live.toString();

        long generation = ProxySo.load(key, path);
        assertEquals("in place", ProxySo.call(key, "in place"));
        List<String> snapshots = new ArrayList<String>();
        snapshots.add(ProxySo.info(key).getSnapshotPath());
        // Callers keep running the loaded version while its source file is rewritten under it.
        Callers callers = new Callers(key, 1);
        callers.start(THREADS);
        try {
            for (int round = 1; round <= 8; round++) {
                int next = round % 2 == 1 ? 2 : 1;
                callers.awaitCalls(1000);
                overwriteInPlace(live, next == 2 ? v2 : v1);
                assertEquals("the file must keep its inode", inode, inode(live));
                // Overwriting the file changes nothing that is loaded.
                callers.awaitCalls(1000);
                assertEquals(next == 2 ? "x" : "x,ab", ProxySo.call(key, "x"));

                long replaced = callers.replace(path, next);
                assertTrue(replaced > generation);
                generation = replaced;
                LibraryInfo info = ProxySo.info(key);
                assertEquals(path, info.getPath());
                assertEquals(next == 2 ? "2.0.0" : "1.0.0", info.getVersion());
                assertEquals(next == 2 ? "x,ab" : "x", ProxySo.call(key, "x"));
                assertFalse(snapshots.contains(info.getSnapshotPath()));
                snapshots.add(info.getSnapshotPath());
            }
            callers.awaitCalls(1000);
        } finally {
            callers.stop();
        }
        callers.assertNoFailure();
        assertTrue(callers.checked.get() > 1000);
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        for (String retired : snapshots.subList(0, snapshots.size() - 1)) {
            assertEquals("retired snapshot still mapped", Collections.<String>emptyList(),
                    mappingsOf(retired));
        }
        assertTrue(ProxySo.unload(key));
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        assertEquals(Collections.<String>emptyList(), mappingsOf(snapshots.get(snapshots.size() - 1)));
    }

    @Test
    public void replaceRightAfterReplaceUnderLoadEndsOnTheLastVersion() throws Exception {
        final String key = keys.next("back-to-back");
        final String path = fixture(FIXTURE);
        final int replacements = 20;
        ProxySo.load(key, path, utf8("tag-0"));
        // Each caller checks that the versions it sees never go backwards.
        final AtomicInteger failures = new AtomicInteger();
        final AtomicReference<String> firstFailure = new AtomicReference<String>();
        final AtomicLong calls = new AtomicLong();
        final boolean[] stop = new boolean[1];
        final Object lock = new Object();
        List<Thread> threads = new ArrayList<Thread>();
        for (int t = 0; t < THREADS; t++) {
            Thread thread = new Thread(new Runnable() {
                @Override
                public void run() {
                    int seen = 0;
                    while (true) {
                        synchronized (lock) {
                            if (stop[0]) {
                                return;
                            }
                        }
                        try {
                            String answer = ProxySo.call(key, "");
                            int tag = Integer.parseInt(answer.substring("tag-".length()));
                            if (tag < seen) {
                                throw new IllegalStateException("saw tag-" + tag + " after tag-" + seen);
                            }
                            seen = tag;
                            calls.incrementAndGet();
                        } catch (RuntimeException e) {
                            failures.incrementAndGet();
                            firstFailure.compareAndSet(null, e.toString());
                        }
                    }
                }
            });
            threads.add(thread);
            thread.start();
        }
        long last = 1;
        try {
            for (int i = 1; i <= replacements; i++) {
                long generation = ProxySo.replace(key, path, utf8("tag-" + i));
                assertTrue("generation " + generation + " after " + last, generation > last);
                last = generation;
                assertEquals(generation, ProxySo.info(key).getGeneration());
            }
        } finally {
            synchronized (lock) {
                stop[0] = true;
            }
            for (Thread thread : threads) {
                thread.join(30_000);
            }
        }
        assertEquals("failed calls, first: " + firstFailure.get(), 0, failures.get());
        assertTrue(calls.get() > 0);
        assertEquals("tag-" + replacements, ProxySo.call(key, ""));
        assertEquals(last, ProxySo.info(key).getGeneration());
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
    }

    @Test
    public void noRetiredVersionStaysMappedAfterSeveralReplacements() throws Exception {
        String key = keys.next("maps");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, utf8("m-0"));
        List<String> snapshots = new ArrayList<String>();
        snapshots.add(ProxySo.info(key).getSnapshotPath());
        for (int i = 1; i <= 5; i++) {
            ProxySo.replace(key, path, utf8("m-" + i));
            assertEquals("m-" + i, ProxySo.call(key, ""));
            String snapshot = ProxySo.info(key).getSnapshotPath();
            assertFalse("snapshot path reused: " + snapshot, snapshots.contains(snapshot));
            snapshots.add(snapshot);
        }
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        String current = snapshots.get(snapshots.size() - 1);
        assertFalse("the current version must be mapped", mappingsOf(current).isEmpty());
        for (String retired : snapshots.subList(0, snapshots.size() - 1)) {
            assertEquals("retired " + retired + " still mapped", Collections.<String>emptyList(),
                    mappingsOf(retired));
            assertNotEquals(current, retired);
        }
        assertTrue(ProxySo.unload(key));
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        for (String snapshot : snapshots) {
            assertEquals(Collections.<String>emptyList(), mappingsOf(snapshot));
        }
    }
}
