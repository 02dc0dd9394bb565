package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Test;

/**
 * A short run of the soak program ({@code dev.proxyso.soak.Soak}, what {@code gradle soak} runs
 * for a minute), in a child JVM of its own so that other tests disturb none of its measurements.
 * The volume goals (10,000 replacements, 1,000,000 calls) belong to the full run; this one checks
 * the rest at a smaller scale: no failed call, load, replace or unload, both versions answered,
 * the mapped plugin copies back to the one live version, file descriptors and threads back to the
 * baseline, RSS growth under 5 MiB, and nothing mapped once every key is unloaded.
 */
public class SoakTest {
    private static final String SOAK = "dev.proxyso.soak.Soak";
    private static final String THREADS = "4";
    private static final String SECONDS = "5";

    @Test
    public void shortSoakMeetsEveryScaledGoal() throws Exception {
        ChildJvm.Result result = soak();

        assertEquals("the soak failed: " + result.describe(), 0, result.exitCode);
        result.assertNoJniWarnings();
        for (String goal : Arrays.asList(
                "PASS no call failed: 0 of ",
                "PASS no replace, load or unload failed",
                "PASS both versions answered",
                "PASS descriptors of plugin copies: only the mapped ones",
                "PASS mapped plugin copies back to the live count",
                "PASS no retired version pinned: 0",
                "PASS no file descriptor open that was not open at the baseline",
                "PASS threads back to the baseline",
                "PASS RSS growth under 5 MiB",
                "PASS no plugin copy mapped once 'model' is unloaded too",
                "SKIP 10,000 or more replacements and 1,000,000 or more calls",
                "soak: PASSED")) {
            assertTrue("no line '" + goal + "': " + result.describe(),
                    result.output.contains(goal));
        }
        assertTrue("no FAIL line may appear: " + result.describe(),
                !result.output.contains("\nFAIL "));
    }

    /**
     * The soak with isolated keys and a crash injected every second: every call answers
     * correctly or throws PluginCrashedException from the crash fixture, every crash rolls the
     * key back, and the workers, the shared regions, the descriptors and the threads are back to
     * the baseline at the end, with no worker left once every key is unloaded.
     */
    @Test
    public void shortIsolatedSoakWithCrashesMeetsEveryScaledGoal() throws Exception {
        ChildJvm.Result result = soak("--isolated", "--crash-interval-ms", "1000",
                "--crash-plugin", TestSupport.fixture("libfx_crash.so"));

        assertEquals("the soak failed: " + result.describe(), 0, result.exitCode);
        result.assertNoJniWarnings();
        for (String goal : Arrays.asList(
                "PASS no wrong answer (every call answered correctly or threw "
                        + "PluginCrashedException from a crash injected on purpose): 0 of ",
                "PASS every injected crash threw PluginCrashedException (SIGSEGV) and rolled back",
                "PASS no replace, load or unload failed",
                "PASS both versions answered",
                "PASS descriptors of plugin copies: the live version's only",
                "PASS no plugin copy mapped into the JVM",
                "PASS worker processes back to the baseline: 1 -> 1",
                "PASS shared regions mapped back to the baseline",
                "PASS no retired version pinned: 0",
                "PASS no file descriptor open that was not open at the baseline",
                "PASS threads back to the baseline",
                "PASS RSS growth under 5 MiB",
                "PASS no plugin copy mapped once 'model' is unloaded too",
                "PASS no worker and no shared region once 'model' is unloaded too",
                "soak: PASSED")) {
            assertTrue("no line '" + goal + "': " + result.describe(),
                    result.output.contains(goal));
        }
        assertTrue("no FAIL line may appear: " + result.describe(),
                !result.output.contains("\nFAIL "));
    }

    /** Runs the soak in a child JVM with the short run's options and {@code extra}. */
    private static ChildJvm.Result soak(String... extra) throws Exception {
        String classes = System.getProperty("proxyso.soak.classes");
        String jar = System.getProperty("proxyso.test.jar");
        assertTrue("proxyso.soak.classes and proxyso.test.jar must be set (gradle test sets them)",
                classes != null && jar != null);
        List<String> jvmOptions = new ArrayList<String>();
        for (String option : System.getProperty("proxyso.soak.jvmArgs", "").trim().split("\\s+")) {
            // -Xcheck:jni is added by ChildJvm already.
            if (!option.isEmpty() && !option.equals("-Xcheck:jni")) {
                jvmOptions.add(option);
            }
        }
        // C1 only: in a run this short the C2 compiler is still compiling at the end, and the
        // megabytes its arena holds then (gone in longer runs, see Soak's comment) would count
        // against the 5 MiB RSS goal, which is about proxyso. `gradle soak` runs with C2.
        jvmOptions.add("-XX:TieredStopAtLevel=1");
        String plugins = TestSupport.dirFromProperty("proxyso.plugins.dir").toString();

        List<String> args = new ArrayList<String>(Arrays.asList("--threads", THREADS,
                "--seconds", SECONDS, "--interval-ms", "1000", "--plugins", plugins));
        args.addAll(Arrays.asList(extra));
        return ChildJvm.run(120, jar + File.pathSeparator + classes, jvmOptions, SOAK,
                args.toArray(new String[0]));
    }
}
