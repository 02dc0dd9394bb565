package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.overwriteInPlace;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.sha256;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * {@link ProxySo#watch(String, String, WatchListener)}: a changed file replaces the key once it
 * has settled, whether copied over in place or renamed into place; a file written slowly is loaded
 * once, complete; a broken file is reported and changes nothing; unwatch, close and unload stop
 * the watch. Timeouts are generous: the CI machine has two noisy cores.
 */
public class WatchTest {
    /** The longest wait for an event that must come. */
    private static final long EVENT_SECONDS = 30;
    /** How long to make sure an event does not come: several default settle times. */
    private static final long QUIET_MILLIS = 1500;

    @Rule
    public final Keys keys = new Keys();

    private Path dir;
    private Path live;
    private byte[] v1;
    private byte[] v2;
    private final List<Watch> watches = new ArrayList<Watch>();
    private final BlockingQueue<WatchEvent> events = new LinkedBlockingQueue<WatchEvent>();
    /** When each event arrived, System.nanoTime(), in the order of {@link #events}. */
    private final BlockingQueue<Long> arrivals = new LinkedBlockingQueue<Long>();
    private final WatchListener listener = new WatchListener() {
        @Override
        public void onReplace(WatchEvent event) {
            arrivals.add(System.nanoTime());
            events.add(event);
        }
    };

    @Before
    public void makeLiveFile() throws Exception {
        dir = TestSupport.tempDir("proxyso-watch");
        live = dir.resolve("live.so");
        v1 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        v2 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        Files.write(live, v1);
    }

    @After
    public void stopWatchesAndRemoveTheDirectory() {
        for (Watch watch : watches) {
            watch.close();
        }
        TestSupport.deleteTree(dir);
    }

    /** A watch closed after the test. */
    private Watch watch(String key, String path, WatchListener to) {
        Watch watch = ProxySo.watch(key, path, to);
        watches.add(watch);
        return watch;
    }

    private WatchEvent nextEvent() throws InterruptedException {
        WatchEvent event = events.poll(EVENT_SECONDS, TimeUnit.SECONDS);
        assertNotNull("no replacement within " + EVENT_SECONDS + " s", event);
        return event;
    }

    private void assertQuiet() throws InterruptedException {
        WatchEvent event = events.poll(QUIET_MILLIS, TimeUnit.MILLISECONDS);
        assertNull("an event nothing caused: " + event, event);
    }

    private static void assertSuccess(WatchEvent event, String key, String path, long generation) {
        assertTrue("the replacement failed: " + event + " " + event.getError(), event.isSuccess());
        assertNull(event.getError());
        assertEquals(key, event.getKey());
        assertEquals(path, event.getPath());
        assertEquals(generation, event.getGeneration());
    }

    @Test
    public void copyingANewVersionOverTheWatchedFileReplacesTheKey() throws Exception {
        String key = keys.next("watch-copy");
        String path = live.toString();
        ProxySo.load(key, path);
        Watch watch = watch(key, path, listener);
        assertEquals(key, watch.getKey());
        assertEquals(path, watch.getPath());
        assertEquals(Watcher.DEFAULT_SETTLE_MILLIS, watch.getSettleTime(TimeUnit.MILLISECONDS));
        assertFalse(watch.isClosed());

        // cp v2 live.so: the same inode, truncated and written.
        overwriteInPlace(live, v2);
        assertSuccess(nextEvent(), key, path, 2);
        assertEquals("calls reach v2", "x,ab", ProxySo.call(key, "x"));
        assertEquals("2.0.0", ProxySo.info(key).getVersion());
        assertEquals(sha256(v2), ProxySo.info(key).getSha256());
        assertQuiet();

        overwriteInPlace(live, v1);
        assertSuccess(nextEvent(), key, path, 3);
        assertEquals("x", ProxySo.call(key, "x"));
        assertQuiet();
    }

    @Test
    public void renamingANewVersionIntoPlaceReplacesTheKey() throws Exception {
        String key = keys.next("watch-rename");
        String path = live.toString();
        ProxySo.load(key, path);
        watch(key, path, listener);

        Path staged = dir.resolve(".live.so.new");
        Files.write(staged, v2);
        // Writing another file of the directory changes nothing.
        assertQuiet();
        Files.move(staged, live, StandardCopyOption.ATOMIC_MOVE,
                StandardCopyOption.REPLACE_EXISTING);
        assertSuccess(nextEvent(), key, path, 2);
        assertEquals("x,ab", ProxySo.call(key, "x"));

        // The file removed, then a new one renamed in: the watch waits for it.
        Files.delete(live);
        assertQuiet();
        Files.write(staged, v1);
        Files.move(staged, live, StandardCopyOption.ATOMIC_MOVE);
        assertSuccess(nextEvent(), key, path, 3);
        assertEquals("x", ProxySo.call(key, "x"));
        assertQuiet();
    }

    @Test
    public void aFileWrittenSlowlyInChunksIsLoadedOnceAndComplete() throws Exception {
        String key = keys.next("watch-slow");
        String path = live.toString();
        ProxySo.load(key, path);
        // Pauses a twentieth of the settle time: a noisy machine may stretch them a lot.
        long settleMillis = 2000;
        long pauseMillis = 100;
        Watch watch = ProxySo.watch(key, path, listener, settleMillis, TimeUnit.MILLISECONDS);
        watches.add(watch);
        assertEquals(settleMillis, watch.getSettleTime(TimeUnit.MILLISECONDS));

        int chunks = 20;
        int chunk = (v2.length + chunks - 1) / chunks;
        long lastWrite;
        FileChannel channel = FileChannel.open(live, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            for (int offset = 0; offset < v2.length; offset += chunk) {
                Thread.sleep(pauseMillis);
                ByteBuffer part = ByteBuffer.wrap(v2, offset, Math.min(chunk, v2.length - offset));
                while (part.hasRemaining()) {
                    channel.write(part);
                }
            }
            lastWrite = System.nanoTime();
        } finally {
            channel.close();
        }
        assertTrue("a replacement was tried while the file was being written: " + events,
                events.isEmpty());

        WatchEvent event = nextEvent();
        long arrived = arrivals.take();
        assertSuccess(event, key, path, 2);
        assertTrue("loaded " + TimeUnit.NANOSECONDS.toMillis(arrived - lastWrite)
                + " ms after the last write, before the settle time",
                arrived - lastWrite >= TimeUnit.MILLISECONDS.toNanos(settleMillis));
        assertEquals("x,ab", ProxySo.call(key, "x"));
        assertEquals(sha256(v2), ProxySo.info(key).getSha256());
        WatchEvent second = events.poll(2 * settleMillis + QUIET_MILLIS, TimeUnit.MILLISECONDS);
        assertNull("loaded more than once: " + second, second);
        assertEquals(2, ProxySo.info(key).getGeneration());
    }

    @Test
    public void aBrokenFileIsReportedAndTheOldVersionKeepsServing() throws Exception {
        String key = keys.next("watch-broken");
        String path = live.toString();
        ProxySo.load(key, path);
        watch(key, path, listener);

        overwriteInPlace(live, utf8("this is not a shared library\n"));
        WatchEvent event = nextEvent();
        assertFalse(event.isSuccess());
        assertEquals(-1, event.getGeneration());
        assertEquals(key, event.getKey());
        assertTrue("not a LibraryLoadException: " + event.getError(),
                event.getError() instanceof LibraryLoadException);
        assertEquals(path, ((LibraryLoadException) event.getError()).getPath());
        assertTrue(event.toString(), event.toString().contains("error="));
        assertEquals("v1 still serves", "x", ProxySo.call(key, "x"));
        assertEquals(1, ProxySo.info(key).getGeneration());

        // Truncated to half an ELF file: refused as well.
        overwriteInPlace(live, Arrays.copyOf(v2, v2.length / 2));
        WatchEvent truncated = nextEvent();
        assertFalse(truncated.isSuccess());
        assertEquals("x", ProxySo.call(key, "x"));

        // The watch goes on: a good file next is loaded.
        overwriteInPlace(live, v2);
        assertSuccess(nextEvent(), key, path, 2);
        assertEquals("x,ab", ProxySo.call(key, "x"));
    }

    @Test
    public void unwatchAndCloseStopTheWatch() throws Exception {
        String key = keys.next("watch-stop");
        String path = live.toString();
        ProxySo.load(key, path);
        Watch first = watch(key, path, listener);
        assertTrue(ProxySo.unwatch(key));
        assertTrue(first.isClosed());
        assertFalse(ProxySo.unwatch(key));
        overwriteInPlace(live, v2);
        assertQuiet();
        assertEquals(1, ProxySo.info(key).getGeneration());
        assertEquals("x", ProxySo.call(key, "x"));

        // Watched again; closing the old, stopped watch does not stop the new one.
        Watch second = watch(key, path, listener);
        first.close();
        assertFalse(second.isClosed());
        overwriteInPlace(live, v1);
        assertSuccess(nextEvent(), key, path, 2);

        second.close();
        assertTrue(second.isClosed());
        second.close();
        assertFalse(ProxySo.unwatch(key));
        overwriteInPlace(live, v2);
        assertQuiet();
        assertEquals(2, ProxySo.info(key).getGeneration());
    }

    @Test
    public void unloadStopsTheWatch() throws Exception {
        String key = keys.next("watch-unload");
        String path = live.toString();
        ProxySo.load(key, path);
        Watch watch = watch(key, path, listener);
        assertTrue(ProxySo.unload(key));
        assertTrue(watch.isClosed());
        assertFalse(ProxySo.unwatch(key));
        overwriteInPlace(live, v2);
        assertQuiet();
        // Loaded again, the key can be watched again.
        ProxySo.load(key, path);
        watch(key, path, listener);
        overwriteInPlace(live, v1);
        assertSuccess(nextEvent(), key, path, 2);
    }

    @Test
    public void theOptionsOfTheLastLoadAreReusedButNeverTheDigest() throws Exception {
        String key = keys.next("watch-options");
        byte[] fixture = Files.readAllBytes(Paths.get(fixture(FIXTURE)));
        Files.write(live, fixture);
        String path = live.toString();
        ProxySo.load(key, path, LoadOptions.builder().config(utf8("watched")).keepVersions(3)
                .sha256(sha256(fixture)).build());
        watch(key, path, listener);

        // The same bytes written again: replaced, with the configuration of the load.
        overwriteInPlace(live, fixture);
        assertSuccess(nextEvent(), key, path, 2);
        assertEquals("watched", ProxySo.call(key, ""));
        assertEquals(3, ProxySo.info(key).getKeepVersions());

        // Another file: the load's digest named the fixture, and is not asked of it.
        overwriteInPlace(live, v1);
        assertSuccess(nextEvent(), key, path, 3);
        assertEquals("x", ProxySo.call(key, "x"));

        // A replace by hand with other options: the watch uses those from now on.
        ProxySo.replace(key, fixture(FIXTURE), utf8("by hand"));
        overwriteInPlace(live, fixture);
        assertSuccess(nextEvent(), key, path, 5);
        assertEquals("by hand", ProxySo.call(key, ""));
        assertEquals(3, ProxySo.info(key).getPreviousVersions().size());
    }

    @Test
    public void aListenerThatThrowsIsLoggedAndTheWatchGoesOn() throws Exception {
        final String key = keys.next("watch-throws");
        String path = live.toString();
        ProxySo.load(key, path);
        final BlockingQueue<LogRecord> warnings = new LinkedBlockingQueue<LogRecord>();
        Handler handler = new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (record.getLevel().intValue() >= Level.WARNING.intValue()
                        && record.getMessage() != null && record.getMessage().contains(key)) {
                    warnings.add(record);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger logger = Logger.getLogger("dev.proxyso");
        logger.addHandler(handler);
        try {
            watch(key, path, new WatchListener() {
                @Override
                public void onReplace(WatchEvent event) {
                    listener.onReplace(event);
                    throw new IllegalStateException("listener fails on purpose");
                }
            });
            overwriteInPlace(live, v2);
            assertSuccess(nextEvent(), key, path, 2);
            LogRecord warning = warnings.poll(EVENT_SECONDS, TimeUnit.SECONDS);
            assertNotNull("the listener's exception was not logged", warning);
            assertEquals("listener fails on purpose", warning.getThrown().getMessage());
            overwriteInPlace(live, v1);
            assertSuccess(nextEvent(), key, path, 3);
        } finally {
            logger.removeHandler(handler);
        }
    }

    @Test
    public void watchRefusesWhatItCannotDo() throws Exception {
        final String key = keys.next("watch-refused");
        final String path = live.toString();
        NoSuchLibraryException notLoaded = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.watch(key, path, listener));
        assertEquals(key, notLoaded.getKey());
        ProxySo.load(key, path);
        Watch watch = watch(key, path, listener);
        IllegalStateException twice = assertThrows(IllegalStateException.class,
                () -> ProxySo.watch(key, path, listener));
        assertTrue(twice.getMessage(), twice.getMessage().contains(key));
        assertFalse(watch.isClosed());
        assertTrue(ProxySo.unwatch(key));

        final String nowhere = dir.resolve("no-such-dir").resolve("live.so").toString();
        IllegalArgumentException noDir = assertThrows(IllegalArgumentException.class,
                () -> ProxySo.watch(key, nowhere, listener));
        assertTrue(noDir.getMessage(), noDir.getMessage().contains(nowhere));
        assertThrows(IllegalArgumentException.class,
                () -> ProxySo.watch(key, path, listener, -1, TimeUnit.MILLISECONDS));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.watch("", path, listener));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.watch(key, "", listener));
        assertThrows(NullPointerException.class, () -> ProxySo.watch(null, path, listener));
        assertThrows(NullPointerException.class, () -> ProxySo.watch(key, null, listener));
        assertThrows(NullPointerException.class, () -> ProxySo.watch(key, path, null));
        assertThrows(NullPointerException.class,
                () -> ProxySo.watch(key, path, listener, 1, null));
        assertThrows(NullPointerException.class, () -> ProxySo.unwatch(null));
        // None of that left a watch behind.
        assertFalse(ProxySo.unwatch(key));
        assertEquals("x", text(ProxySo.call(key, utf8("x"))));
    }

    @Test
    public void theWatchThreadIsADaemonAndGoesAwayWithTheLastWatch() throws Exception {
        String key = keys.next("watch-thread");
        String path = live.toString();
        ProxySo.load(key, path);
        Watch watch = watch(key, path, listener);
        Thread thread = findThread(Watcher.THREAD_NAME);
        assertNotNull("no " + Watcher.THREAD_NAME + " thread", thread);
        assertTrue(thread.isDaemon());
        // The tests run one at a time and each closes its watches: this was the only one.
        watch.close();
        thread.join(10_000);
        assertFalse("the watch thread outlived the last watch", thread.isAlive());
        assertNull(findThread(Watcher.THREAD_NAME));

        // A new watch starts a new thread.
        watch(key, path, listener);
        assertNotNull(findThread(Watcher.THREAD_NAME));
        overwriteInPlace(live, v2);
        assertSuccess(nextEvent(), key, path, 2);
    }

    private static Thread findThread(String name) {
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().equals(name) && thread.isAlive()) {
                return thread;
            }
        }
        return null;
    }
}
