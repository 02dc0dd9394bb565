package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.sha256;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * Files written while they are watched, and plugins whose loading crashes: the watch never loads
 * a half-written file and the JVM outlives what used to kill it ({@link PreflightProbe} in a
 * child JVM); {@code preflight(true)} turns a constructor's SIGSEGV into a
 * {@link LibraryLoadException}; a {@code .sha256} marker makes the watch wait for the writer.
 */
public class PreflightTest {
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
    private Watch watch;
    private final BlockingQueue<WatchEvent> events = new LinkedBlockingQueue<WatchEvent>();

    @Before
    public void makeLiveFile() throws Exception {
        dir = TestSupport.tempDir("proxyso-preflight");
        live = dir.resolve("live.so");
        v1 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        v2 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        Files.write(live, v1);
    }

    @After
    public void stopAndClean() {
        if (watch != null) {
            watch.close();
        }
        TestSupport.deleteTree(dir);
    }

    /** Runs a case of the probe in a child JVM that may crash; returns its output. */
    private static ChildJvm.Result probe(String name) throws Exception {
        Path base = Paths.get(System.getProperty("proxyso.test.tmp",
                System.getProperty("java.io.tmpdir")));
        Files.createDirectories(base);
        Path errors = Files.createTempDirectory(base, "preflight-");
        try {
            List<String> options = Arrays.asList("-XX:ErrorFile=" + errors.resolve("hs_err_%p.log"),
                    "-XX:-CreateCoredumpOnCrash");
            ChildJvm.Result result = ChildJvm.run(120, ChildJvm.testClassPath(), options,
                    PreflightProbe.class.getName(), name);
            assertTrue("the JVM did not live through it: " + result.describe(),
                    result.output.contains(PreflightProbe.ALIVE));
            assertEquals(result.describe(), 0, result.exitCode);
            result.assertNoJniWarnings();
            return result;
        } finally {
            TestSupport.deleteTree(errors);
        }
    }

    private static void assertSays(ChildJvm.Result result, String line) {
        assertTrue("the probe did not say '" + line + "': " + result.describe(),
                result.output.contains("probe: " + line + "\n"));
    }

    @Test
    public void aWatchedFileOverwrittenInPlaceWithAPauseNeverKillsTheJvm() throws Exception {
        ChildJvm.Result result = probe("in-place");
        // v1 served while the file was half written, and only v2 was ever loaded.
        assertSays(result, "answers during the pause: [x]");
        assertSays(result, "loaded versions: [v2]");
        assertSays(result, "serving at the end: x,ab");
    }

    @Test
    public void aWatchedFileTruncatedAndWrittenWithAPauseAt90PercentIsNeverLoadedMixed()
            throws Exception {
        ChildJvm.Result result = probe("truncate-90");
        assertSays(result, "answers during the pause: [x]");
        assertSays(result, "loaded versions: [v2]");
        assertSays(result, "serving at the end: x,ab");
    }

    @Test
    public void preflightTurnsAConstructorsSegfaultIntoALoadFailure() throws Exception {
        ChildJvm.Result result = probe("ctor-segv");
        String crashing = TestSupport.fixture("libfx_ctor_segv.so");
        assertTrue(result.describe(), result.output.contains("probe: load refused: cannot load '"
                + crashing + "' under key 'crash': pre-flight dlopen in a child process failed: "
                + "the child was killed by SIGSEGV (signal 11"));
        assertSays(result, "load refused path: " + crashing);
        assertSays(result, "after the load: nothing loaded");
        assertTrue(result.describe(), result.output.contains(
                "probe: replace refused: cannot load '" + crashing + "' under key 'serving': "
                        + "pre-flight dlopen in a child process failed: the child was killed by "
                        + "SIGSEGV"));
        assertSays(result, "after the replace: generation 1 answers still");
        assertFalse(result.describe(), result.output.contains("which it must not"));
    }

    @Test
    public void preflightIsAnOptionAndEveryWatchUsesIt() throws IOException {
        LoadOptions on = LoadOptions.builder().preflight(true).build();
        assertTrue(on.isPreflight());
        assertFalse(LoadOptions.defaults().isPreflight());
        assertFalse(on.equals(LoadOptions.defaults()));
        assertTrue(on.toString(), on.toString().contains("preflight=true"));
        assertEquals(NativeContract.OPTION_PREFLIGHT, on.bits());
        assertTrue(LoadOptions.defaults().forWatch(null).isPreflight());
        // A good plugin loads with it, through the worker the jar carries (the test JVM sets no
        // proxyso.worker), extracted beside libproxy.so, opened by native code and deleted.
        assertNull(System.getProperty(NativeLoader.WORKER_PROPERTY));
        String key = keys.next("preflight-good");
        assertEquals(1, ProxySo.load(key, plugin(EXAMPLE_V1), on));
        assertEquals("x", ProxySo.call(key, "x"));
        Path extraction = Paths.get(System.getProperty("proxyso.tempdir"));
        try (java.nio.file.DirectoryStream<Path> dirs = Files.newDirectoryStream(extraction,
                "proxyso-*")) {
            for (Path candidate : dirs) {
                assertFalse("the extracted worker is deleted once opened: " + candidate,
                        Files.exists(candidate.resolve(NativeLoader.WORKER_NAME),
                                java.nio.file.LinkOption.NOFOLLOW_LINKS));
            }
        }
        // It still runs: a second pre-flight, after the name is gone.
        assertEquals(2, ProxySo.replace(key, plugin(EXAMPLE_V2), on));
    }

    @Test
    public void aWorkerNamedByThePropertyIsTheOneRun() throws Exception {
        ChildJvm.Result result = ChildJvm.run(120, ChildJvm.testClassPath(),
                Arrays.asList("-D" + NativeLoader.WORKER_PROPERTY + "=/no/such/worker"),
                PreflightProbe.class.getName(), "named-worker");
        assertTrue(result.describe(), result.output.contains("probe: load refused: "));
        assertTrue(result.describe(), result.output.contains("/no/such/worker"));
        assertTrue(result.describe(), result.output.contains("probe: without pre-flight: x"));
        assertEquals(result.describe(), 0, result.exitCode);
    }

    @Test
    public void aMarkerThatIsAFifoNeitherHangsTheWatchNorLoads() throws Exception {
        String key = keys.next("marker-fifo");
        String path = live.toString();
        ProxySo.load(key, path);
        watch = ProxySo.watch(key, path, new WatchListener() {
            @Override
            public void onReplace(WatchEvent event) {
                events.add(event);
            }
        });
        // A FIFO where the marker goes: reading it would block the one watch thread for good.
        Path marker = dir.resolve("live.so.sha256");
        Process mkfifo = new ProcessBuilder("mkfifo", marker.toString()).start();
        assertEquals(0, mkfifo.waitFor());
        TestSupport.overwriteInPlace(live, v2);
        WatchEvent early = events.poll(QUIET_MILLIS, TimeUnit.MILLISECONDS);
        assertNull("loaded while its marker is no regular file: " + early, early);
        assertEquals("x", ProxySo.call(key, "x"));
        // The watch thread is free: a real marker is read and the file loaded.
        Files.delete(marker);
        Files.write(marker, (sha256(v2) + "  live.so\n").getBytes(StandardCharsets.US_ASCII));
        WatchEvent done = events.poll(EVENT_SECONDS, TimeUnit.SECONDS);
        assertNotNull("the watch thread hung on the FIFO", done);
        assertTrue(done + " " + done.getError(), done.isSuccess());
        assertEquals("x,ab", ProxySo.call(key, "x"));
    }

    @Test
    public void theMarkerMakesTheWatchWaitForTheWritersDigest() throws Exception {
        String key = keys.next("marker");
        String path = live.toString();
        ProxySo.load(key, path);
        watch = ProxySo.watch(key, path, new WatchListener() {
            @Override
            public void onReplace(WatchEvent event) {
                events.add(event);
            }
        });
        Path marker = dir.resolve("live.so.sha256");
        // The writer names what it is about to write, then writes it slowly: truncated, 90 %,
        // then a pause of several settle times.
        Files.write(marker, (sha256(v2) + "  live.so\n").getBytes(StandardCharsets.US_ASCII));
        FileChannel channel = FileChannel.open(live, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            int first = v2.length * 9 / 10;
            channel.write(ByteBuffer.wrap(v2, 0, first));
            channel.force(true);
            WatchEvent early = events.poll(QUIET_MILLIS, TimeUnit.MILLISECONDS);
            assertNull("the watch tried the unfinished file: " + early, early);
            assertEquals("x", ProxySo.call(key, "x"));
            channel.write(ByteBuffer.wrap(v2, first, v2.length - first));
        } finally {
            channel.close();
        }
        WatchEvent done = events.poll(EVENT_SECONDS, TimeUnit.SECONDS);
        assertNotNull("the finished file was not loaded", done);
        assertTrue(done + " " + done.getError(), done.isSuccess());
        assertEquals(2, done.getGeneration());
        assertEquals(sha256(v2), ProxySo.info(key).getSha256());
        assertEquals("x,ab", ProxySo.call(key, "x"));

        // Another file that the marker does not name: not finished, however long it stays.
        TestSupport.overwriteInPlace(live, v1);
        WatchEvent stale = events.poll(QUIET_MILLIS, TimeUnit.MILLISECONDS);
        assertNull("loaded a file its marker does not name: " + stale, stale);
        assertEquals("x,ab", ProxySo.call(key, "x"));
        // The writer finishes by writing the marker (sha256sum's binary form): loaded.
        Files.write(marker, (sha256(v1) + " *" + live + "\n").getBytes(StandardCharsets.US_ASCII));
        WatchEvent marked = events.poll(EVENT_SECONDS, TimeUnit.SECONDS);
        assertNotNull("the marked file was not loaded", marked);
        assertTrue(marked + " " + marked.getError(), marked.isSuccess());
        assertEquals(sha256(v1), ProxySo.info(key).getSha256());
        assertEquals("x", ProxySo.call(key, "x"));

        // Without a marker, the watch loads what settled, as before.
        Files.delete(marker);
        TestSupport.overwriteInPlace(live, v2);
        WatchEvent unmarked = events.poll(EVENT_SECONDS, TimeUnit.SECONDS);
        assertNotNull(unmarked);
        assertTrue(unmarked.isSuccess());
        assertEquals("x,ab", ProxySo.call(key, "x"));
    }

    @Test
    public void markersAreReadAsSha256sumWritesThem() throws IOException {
        String hex = sha256(v1);
        byte[] digest = LoadOptions.parseSha256(hex);
        assertArrayEquals(digest, Watcher.markerDigest(hex + "  live.so\n", "live.so"));
        assertArrayEquals(digest, Watcher.markerDigest(hex + " */opt/m/live.so\n", "live.so"));
        assertArrayEquals(digest, Watcher.markerDigest(hex.toUpperCase() + "\n", "live.so"));
        assertArrayEquals(digest, Watcher.markerDigest(sha256(v2) + "  other.so\n" + hex
                + "  live.so\n", "live.so"));
        assertNull(Watcher.markerDigest(hex.substring(1) + "  live.so\n", "live.so"));
        assertNull(Watcher.markerDigest("", "live.so"));
        assertNull(Watcher.markerDigest(hex + "  a.so\n" + hex + "  b.so\n", "live.so"));
    }
}
