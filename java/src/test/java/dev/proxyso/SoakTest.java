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

        ChildJvm.Result result = ChildJvm.run(120, jar + File.pathSeparator + classes, jvmOptions,
                SOAK, "--threads", THREADS, "--seconds", SECONDS, "--interval-ms", "1000",
                "--plugins", plugins);

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
}
