package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * The guards for plugins that leave code behind, and a JVM exit with calls in flight.
 *
 * <p>{@code libfx_pthread_key.so} creates a pthread_key whose destructor lives in the plugin; a
 * thread that called its {@code set} runs that destructor when it exits. Kept mapped (the load
 * option, or the plugin flag of {@code libfx_pthread_key_flagged.so}), the retired version's code
 * is still there and the JVM lives on; without it the JVM dies, which only a child JVM is allowed
 * to show.
 */
public class GuardTest {
    @Rule
    public final Keys keys = new Keys();

    private Path errorDir;

    @Before
    public void makeErrorDir() throws IOException {
        Path base = Paths.get(System.getProperty("proxyso.test.tmp",
                System.getProperty("java.io.tmpdir")));
        Files.createDirectories(base);
        errorDir = Files.createTempDirectory(base, "guard-");
    }

    @After
    public void removeErrorDir() {
        TestSupport.deleteTree(errorDir);
    }

    /** The JVM options of a child that may crash: its hs_err file goes to errorDir, no core. */
    private List<String> crashOptions() {
        return Arrays.asList("-XX:ErrorFile=" + errorDir.resolve("hs_err_%p.log"),
                "-XX:-CreateCoredumpOnCrash");
    }

    /** The hs_err files a child left. */
    private List<String> errorFiles() {
        List<String> found = new ArrayList<String>();
        File[] files = errorDir.toFile().listFiles();
        if (files != null) {
            for (File file : files) {
                if (file.getName().startsWith("hs_err")) {
                    found.add(file.getPath());
                }
            }
        }
        return found;
    }

    /**
     * Loads the pthread_key fixture under a fresh key, has a thread call "set", replaces the key
     * with example v1, waits for the old version to retire, then lets the thread exit.
     */
    private void threadExitsAfterItsVersionRetired(String fixtureFile, LoadOptions options)
            throws Exception {
        final String key = keys.next("pthread-key");
        assertEquals(1, ProxySo.load(key, fixture(fixtureFile), options));
        LibraryInfo old = ProxySo.info(key);
        assertTrue("the version must be kept mapped: " + old, old.isKeptMapped());
        assertTrue(old.getMethods().containsAll(Arrays.asList("set", "tag")));

        final CountDownLatch stored = new CountDownLatch(1);
        final CountDownLatch exit = new CountDownLatch(1);
        final AtomicReference<String> answer = new AtomicReference<String>();
        Thread caller = new Thread(new Runnable() {
            @Override
            public void run() {
                answer.set(text(ProxySo.call(key, "set", new byte[0])));
                stored.countDown();
                try {
                    exit.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }, "pthread-key-caller");
        caller.start();
        assertTrue(stored.await(10, TimeUnit.SECONDS));
        assertEquals("set", answer.get());

        long generation = ProxySo.replace(key, plugin(EXAMPLE_V1));
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        LibraryInfo now = ProxySo.info(key);
        assertEquals(generation, now.getGeneration());
        assertFalse("example v1 was loaded without the option: " + now, now.isKeptMapped());
        assertEquals("the replaced version must be counted as retired: " + now, 1,
                now.getRetiredVersions());
        assertEquals("kept on purpose is not pinned: " + now, 0, now.getPinnedVersions());
        assertFalse("a kept version must stay mapped after it retired",
                mappingsOf(old.getSnapshotPath()).isEmpty());

        // The thread exits: glibc runs the plugin's destructor, which must still be mapped.
        exit.countDown();
        caller.join(10_000);
        assertFalse(caller.isAlive());
        // Still alive, still serving, still mapped.
        assertEquals("after", ProxySo.call(key, "after"));
        assertFalse(mappingsOf(old.getSnapshotPath()).isEmpty());
        assertNotEquals(old.getSnapshotPath(), now.getSnapshotPath());
    }

    @Test
    public void keepMappedOptionLetsAThreadRunAPluginDestructorAfterTheVersionRetired()
            throws Exception {
        threadExitsAfterItsVersionRetired("libfx_pthread_key.so",
                LoadOptions.builder().keepMapped(true).build());
    }

    @Test
    public void keepMappedPluginFlagLetsAThreadRunAPluginDestructorAfterTheVersionRetired()
            throws Exception {
        threadExitsAfterItsVersionRetired("libfx_pthread_key_flagged.so", LoadOptions.defaults());
    }

    @Test
    public void withoutKeepMappedTheSameThreadExitCrashesTheJvm() throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(), crashOptions(),
                GuardProbe.class.getName(), "pthread-key-unguarded");
        // The probe got as far as the trap: the version retired and was unmapped.
        for (String step : Arrays.asList("probe: loaded fx-pthread-key, kept mapped false",
                "probe: set returned set",
                "probe: replaced; old version retired and closed: true",
                "probe: old version still mapped: false",
                "probe: the calling thread exits now")) {
            assertTrue("the probe did not get to '" + step + "': " + result.describe(),
                    result.output.contains(step));
        }
        assertFalse("the JVM survived a pthread_key destructor in unmapped code; if it no "
                + "longer crashes, this test no longer documents the trap: " + result.describe(),
                result.output.contains(GuardProbe.SURVIVED));
        // Died of the signal: the JVM's fatal error handler wrote its hs_err file, or the
        // signal's default action ended the process (exit code 128 + signal).
        List<String> errors = errorFiles();
        assertTrue("the child did not die of a signal (exit code " + result.exitCode
                + ", hs_err files " + errors + "): " + result.describe(),
                !errors.isEmpty() || result.exitCode > 128);
        assertNotEquals("the child exited normally: " + result.describe(), 0, result.exitCode);
    }

    @Test
    public void aRefusedSigtermHandlerLeavesSigtermToTheJvmShutdown() throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(), crashOptions(),
                GuardProbe.class.getName(), "signal-term");
        int refused = result.output.indexOf("probe: refused: ");
        assertTrue("the plugin that takes SIGTERM and SIGINT was not refused: "
                + result.describe(), refused >= 0);
        String line = result.output.substring(refused, result.output.indexOf('\n', refused));
        assertTrue(line, line.contains("SIGTERM") && line.contains("SIGINT"));
        assertTrue("SIGTERM did not run the JVM's shutdown hook: " + result.describe(),
                result.output.contains(GuardProbe.SHUTDOWN_HOOK));
        assertFalse(result.describe(), result.output.contains(GuardProbe.SIGTERM_IGNORED));
        assertEquals("a JVM ended by SIGTERM exits with 128 + 15: " + result.describe(), 143,
                result.exitCode);
        assertEquals("the child left an hs_err file: " + result.describe(),
                new ArrayList<String>(), errorFiles());
    }

    @Test
    public void jvmExitWithCallsInFlightEndsCleanly() throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(), crashOptions(),
                GuardProbe.class.getName(), "exit-in-flight");
        assertEquals("exit with calls in flight: " + result.describe(), 0, result.exitCode);
        assertTrue(result.describe(),
                result.output.contains("probe: exiting with 2 slow calls in flight (0 returned)"));
        assertEquals("the child left an hs_err file: " + result.describe(),
                new ArrayList<String>(), errorFiles());
        assertFalse(result.describe(), result.output.contains("wrong answer"));
        result.assertNoJniWarnings();
    }
}
