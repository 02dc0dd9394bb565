package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Collections;
import org.junit.Test;

/**
 * A C++ exception that escapes a plugin's method, {@code init} or {@code destroy} is caught by the
 * host and reported: a {@link PluginException} (and the version keeps serving), a
 * {@link LibraryLoadException} (and nothing stays loaded), a SEVERE log record (and the version
 * retires). Before the host caught them, each of these aborted the JVM ("Rust cannot catch foreign
 * exceptions", exit 134), so each case runs in a child JVM ({@link CxxExceptionProbe}): without
 * the fix the child dies and the assertions on its output fail instead of the test JVM dying.
 */
public class CxxExceptionTest {
    /** Generous: a child JVM under -Xcheck:jni on a loaded machine. */
    private static final long CHILD_SECONDS = 120;

    private static ChildJvm.Result probe(String which) throws Exception {
        ChildJvm.Result result = ChildJvm.run(CHILD_SECONDS, ChildJvm.testClassPath(),
                Collections.<String>emptyList(), CxxExceptionProbe.class.getName(), which);
        assertEquals(result.describe(), 0, result.exitCode);
        assertTrue(result.describe(), result.output.contains(CxxExceptionProbe.DONE));
        result.assertNoJniWarnings();
        return result;
    }

    private static void assertSaid(ChildJvm.Result result, String line) {
        assertTrue("expected \"" + line + "\" in " + result.describe(),
                result.output.contains(line));
    }

    @Test
    public void anExceptionEscapingAMethodIsAPluginExceptionAndTheVersionKeepsServing()
            throws Exception {
        ChildJvm.Result result = probe("method");
        assertSaid(result, "probe: throw: PluginException key=cxx method=throw panic=true code=0 "
                + "message=method 'throw' of library 'cxx' (fx-throws 1");
        assertSaid(result, "panicked: C++ exception: boom\n");
        assertSaid(result, "probe: next call answered next-throw\n");
        assertSaid(result, "probe: throw-int: PluginException key=cxx method=throw-int "
                + "panic=true code=0");
        assertSaid(result, "panicked: C++ exception: unknown C++ exception (of type int)\n");
        assertSaid(result, "probe: next call answered next-throw-int\n");
        assertSaid(result, "probe: unloaded true\n");
    }

    @Test
    public void anExceptionEscapingInitFailsTheLoadAndLeavesNothingLoaded() throws Exception {
        ChildJvm.Result result = probe("init");
        assertSaid(result, "probe: LibraryLoadException key=cxx path="
                + TestSupport.fixture("libfx_throws.so") + " message=cannot load");
        assertSaid(result, "init of plugin fx-throws 1 panicked: C++ exception: init boom\n");
        assertSaid(result, "probe: info after the failed load: null\n");
        assertSaid(result, "probe: mappings of the fixture: 0\n");
        assertSaid(result, "probe: loaded again, answered fine\n");
    }

    @Test
    public void anExceptionEscapingDestroyIsLoggedAsSevereAndTheVersionRetires() throws Exception {
        ChildJvm.Result result = probe("destroy");
        assertSaid(result, "probe: loaded generation 1, answered hello\n");
        assertSaid(result, "probe: unloaded true\n");
        assertSaid(result, "probe: retired true\n");
        assertSaid(result, "probe: snapshot still mapped: false\n");
        assertSaid(result, "probe: logged SEVERE [cxx#1] destroy of plugin fx-throws 1 failed: "
                + "C++ exception: destroy boom; the version is retired and its library closed "
                + "anyway\n");
    }
}
