package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Collections;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.function.ThrowingRunnable;

/**
 * Bad input through the jar, one test each, the ones {@link FailedReplaceTest},
 * {@link ApiContractTest} and {@link PluginCallTest} do not cover already. Each asserts the
 * exception type, that its message names what was wrong, and that the library loaded under key
 * {@code m} (example v1, which answers its input) is unchanged afterwards: same
 * {@link LibraryInfo}, same answers.
 */
public class BadInputTest {
    /** 64 MiB. */
    private static final int BIG = 64 * 1024 * 1024;

    @Rule
    public final Keys keys = new Keys();

    private String m;
    private LibraryInfo before;
    private Path dir;

    @Before
    public void loadM() throws IOException {
        m = keys.next("m");
        assertEquals(1, ProxySo.load(m, plugin(EXAMPLE_V1)));
        before = ProxySo.info(m);
        dir = TestSupport.tempDir("proxyso-bad-input");
    }

    @After
    public void removeDir() {
        TestSupport.deleteTree(dir);
    }

    /** Key m still serves example v1, untouched. */
    private void assertMUnchanged() {
        assertEquals("key m changed", before, ProxySo.info(m));
        assertEquals("still v1", ProxySo.call(m, "still v1"));
        assertEquals("1.0.0", text(ProxySo.call(m, "version", new byte[0])));
    }

    /**
     * Replacing m by {@code path}, and loading it under a new key, both fail with a
     * {@link LibraryLoadException} that names key, path and {@code cause}; m is unchanged and the
     * new key is not loaded.
     */
    private void assertRefused(String path, String cause) {
        LibraryLoadException onReplace = assertThrows(LibraryLoadException.class,
                () -> ProxySo.replace(m, path));
        assertNames(onReplace, m, path, cause);
        assertMUnchanged();

        String other = keys.next("bad-load");
        LibraryLoadException onLoad = assertThrows(LibraryLoadException.class,
                () -> ProxySo.load(other, path));
        assertNames(onLoad, other, path, cause);
        assertNull(ProxySo.info(other));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(other, "x"));
        assertMUnchanged();
    }

    private static void assertNames(LibraryLoadException e, String key, String path,
            String cause) {
        String message = e.getMessage();
        assertEquals(key, e.getKey());
        assertEquals(path, e.getPath());
        assertTrue("message should name the key: " + message, message.contains(key));
        assertTrue("message should name the path: " + message, message.contains(path));
        assertTrue("message should say '" + cause + "': " + message, message.contains(cause));
    }

    private static void assertNpeNaming(String argument, ThrowingRunnable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertTrue("NPE should name '" + argument + "': " + e.getMessage(),
                e.getMessage() != null && e.getMessage().contains(argument));
    }

    @Test
    public void emptyFileIsRefused() throws IOException {
        Path empty = Files.createFile(dir.resolve("empty.so"));
        assertRefused(empty.toString(), "the file is empty");
    }

    /** A FIFO no one writes to would block a plain open() for ever: refused at once instead. */
    @Test(timeout = 60_000)
    public void fifoIsRefusedWithoutWaitingForAWriter() throws Exception {
        Path fifo = dir.resolve("pipe.so");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
        assertEquals(0, mkfifo.waitFor());
        assertRefused(fifo.toString(), "a device, pipe or socket");
    }

    @Test
    public void characterDeviceIsRefused() {
        assertRefused("/dev/zero", "a device, pipe or socket");
    }

    @Test
    public void truncatedElfIsRefused() throws IOException {
        byte[] whole = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        assertTrue(whole.length > 64 * 1024);
        Path truncated = dir.resolve("truncated.so");
        Files.write(truncated, Arrays.copyOf(whole, 64 * 1024));
        assertRefused(truncated.toString(), "truncated");
    }

    @Test
    public void elfOfAnotherMachineIsRefused() throws IOException {
        byte[] elf = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        // e_machine, little-endian, at offset 18: EM_AARCH64 is 183.
        elf[18] = (byte) 183;
        elf[19] = 0;
        Path aarch64 = dir.resolve("aarch64.so");
        Files.write(aarch64, elf);
        assertRefused(aarch64.toString(), "built for AArch64");
    }

    /**
     * The refusal in this JVM; {@code .ci/run} also fails if the test JVM's -Xcheck:jni signal
     * check ever reports a modified handler.
     */
    @Test
    public void signalHandlerPluginIsRefusedAndTheJvmHandlerRestored() {
        assertRefused(fixture("libfx_signal.so"), "SIGSEGV");
        // The JVM turns a null dereference into NullPointerException through its SIGSEGV
        // handler: it must be the JVM's again.
        for (int i = 0; i < 3; i++) {
            assertThrows(NullPointerException.class, () -> hashOf(null));
        }
        assertMUnchanged();
    }

    @Test
    public void signalHandlerPluginLoadsWhenAllowedInAChildJvm() throws Exception {
        // English level names in the log: the assertion below reads them.
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(),
                Arrays.asList("-Duser.language=en", "-Duser.country=US"),
                GuardProbe.class.getName(), "signal-allowed");
        // It loads, answers, unloads; the version stays mapped, since its handler is installed.
        for (String line : Arrays.asList("probe: loaded generation 1, kept mapped true",
                "probe: answer signal", "probe: unloaded true", "probe: retired true",
                "probe: still mapped true", "probe: null dereference: NullPointerException",
                "probe: done")) {
            assertTrue("no line '" + line + "': " + result.describe(),
                    result.output.contains(line));
        }
        // Logged as a warning through java.util.logging (logger dev.proxyso), which the default
        // ConsoleHandler prints to standard error in two lines: time and source, then the level
        // and the message, which names the key and the signal.
        assertTrue("the kept handler must be logged, naming the signal: " + result.describe(),
                result.output.matches("(?s).*dev\\.proxyso\r?\n"
                        + "WARNING: \\[signal(#[0-9]+)?\\] [^\n]*SIGSEGV.*"));
        // The JVM itself (its -Xcheck:jni signal check) sees the plugin's handler in place.
        assertTrue("the JVM did not see a changed SIGSEGV handler: " + result.describe(),
                result.output.contains("SIGSEGV handler modified"));
        assertEquals(result.describe(), 0, result.exitCode);
        result.assertNoJniWarnings();
    }

    @Test
    public void signalHandlerPluginRefusedLeavesTheJvmHandlersExactlyAsTheyWere() throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(),
                Collections.<String>emptyList(), GuardProbe.class.getName(), "signal-refused");
        assertEquals(result.describe(), 0, result.exitCode);
        assertTrue(result.describe(), result.output.matches(
                "(?s).*probe: refused: cannot load [^\n]*libfx_signal\\.so[^\n]*SIGSEGV.*"));
        assertTrue(result.describe(),
                result.output.contains("probe: null dereference: NullPointerException"));
        assertTrue(result.describe(), result.output.contains("probe: done"));
        // The JVM's own -Xcheck:jni check compares handler, mask and flags with what it set.
        assertFalse("the JVM found a signal handler changed: " + result.describe(),
                result.output.contains("handler modified"));
        result.assertNoJniWarnings();
    }

    /** Dereferences {@code o}; a method, so that no compiler can see the null coming. */
    private static int hashOf(Object o) {
        return o.hashCode();
    }

    @Test
    public void cppMethodThatThrowsBecomesAPluginError() {
        String cpp = keys.next("cpp-throws");
        ProxySo.load(cpp, plugin("libexample_cpp_v1.so"));
        PluginException e = assertThrows(PluginException.class,
                () -> ProxySo.call(cpp, "sum", utf8("1,two")));
        assertEquals(cpp, e.getKey());
        assertEquals("sum", e.getMethod());
        assertEquals(2, e.getCode());
        assertFalse("a caught std::invalid_argument is an error, not a panic", e.isPanic());
        assertTrue(e.getMessage(), e.getMessage().contains("sum: not an integer: \"two\""));
        assertTrue(e.getMessage(), e.getMessage().contains(cpp));
        assertTrue(e.getMessage(), e.getMessage().contains("'sum'"));
        assertEquals("3", text(ProxySo.call(cpp, "sum", utf8("1,2"))));
        assertMUnchanged();
    }

    @Test
    public void nonAsciiKeyRoundTrips() {
        String key = keys.next("模型-ü-\uD83D\uDE80-Ελληνικά");
        assertEquals(1, ProxySo.load(key, plugin(EXAMPLE_V2)));
        LibraryInfo info = ProxySo.info(key);
        assertEquals(key, info.getKey());
        assertEquals("x,ab", ProxySo.call(key, "x"));
        boolean listed = false;
        for (LibraryInfo each : ProxySo.list()) {
            listed |= each.getKey().equals(key);
        }
        assertTrue(key + " missing from list()", listed);
        // Exceptions carry the key exactly.
        UnknownMethodException unknown = assertThrows(UnknownMethodException.class,
                () -> ProxySo.call(key, "nope", new byte[0]));
        assertEquals(key, unknown.getKey());
        assertTrue(unknown.getMessage(), unknown.getMessage().contains(key));
        LibraryExistsException exists = assertThrows(LibraryExistsException.class,
                () -> ProxySo.load(key, plugin(EXAMPLE_V1)));
        assertTrue(exists.getMessage(), exists.getMessage().contains(key));
        assertTrue(ProxySo.replace(key, plugin(EXAMPLE_V1)) > 1);
        assertEquals("x", ProxySo.call(key, "x"));
        assertTrue(ProxySo.unload(key));
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        NoSuchLibraryException gone = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.call(key, "x"));
        assertEquals(key, gone.getKey());
        assertTrue(gone.getMessage(), gone.getMessage().contains(key));
        // A key that differs only in normalisation is another key.
        assertNull(ProxySo.info(key.replace("ü", "u\u0308")));
        assertMUnchanged();
    }

    @Test
    public void keyWithAControlCharacterIsAnIllegalArgument() {
        for (String key : new String[] {"line\nbreak", "nul\u0000", "tab\tbed"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ProxySo.load(key, plugin(EXAMPLE_V1)));
            assertTrue(e.getMessage(), e.getMessage().contains("control character"));
            assertThrows(IllegalArgumentException.class,
                    () -> ProxySo.replace(key, plugin(EXAMPLE_V1)));
            assertThrows(IllegalArgumentException.class, () -> ProxySo.unload(key));
            // The lookups report it as what it is: a key that is not loaded.
            assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "x"));
            assertNull(ProxySo.info(key));
        }
        assertMUnchanged();
    }

    @Test
    public void overLongKeyIsAnIllegalArgument() {
        char[] chars = new char[1025];
        Arrays.fill(chars, 'k');
        String key = new String(chars);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ProxySo.load(key, plugin(EXAMPLE_V1)));
        assertTrue(e.getMessage(), e.getMessage().contains("longer than 1024"));
        // 1024 bytes of UTF-8 is still a key.
        String longest = new String(chars, 0, 1024);
        try {
            assertEquals(1, ProxySo.load(longest, plugin(EXAMPLE_V1)));
            assertEquals("k", ProxySo.call(longest, "k"));
        } finally {
            ProxySo.unload(longest);
        }
        assertMUnchanged();
    }

    @Test
    public void nullConfigIsANullPointerExceptionNamingIt() {
        final String path = plugin(EXAMPLE_V2);
        final String other = keys.next("null-config");
        assertNpeNaming("config", () -> ProxySo.replace(m, path, (byte[]) null));
        assertNpeNaming("config", () -> ProxySo.load(other, path, (byte[]) null));
        assertNpeNaming("config", () -> LoadOptions.builder().config(null));
        assertNpeNaming("options", () -> ProxySo.replace(m, path, (LoadOptions) null));
        assertNpeNaming("options", () -> ProxySo.load(other, path, (LoadOptions) null));
        assertNull(ProxySo.info(other));
        assertMUnchanged();
    }

    @Test
    public void sixtyFourMebibyteInputIsEchoedExactly() {
        String key = keys.next("big-in");
        ProxySo.load(key, fixture(FIXTURE), utf8("big"));
        byte[] input = new byte[BIG];
        new Random(64).nextBytes(input);
        assertArrayEquals(input, ProxySo.call(key, "echo", input));
        // Through example v1's default method as well.
        assertArrayEquals(input, ProxySo.call(m, input));
        assertMUnchanged();
    }

    @Test
    public void sixtyFourMebibyteOutputArrivesIntact() {
        String key = keys.next("big-out");
        ProxySo.load(key, fixture(FIXTURE), utf8("big"));
        byte[] out = ProxySo.call(key, "big", utf8(Integer.toString(BIG)));
        assertEquals(BIG, out.length);
        for (int i = 0; i < BIG; i++) {
            if ((out[i] & 0xff) != i % 251) {
                throw new AssertionError("byte " + i + " is " + (out[i] & 0xff));
            }
        }
        assertEquals("big", ProxySo.call(key, ""));
        assertMUnchanged();
    }

    @Test
    public void absurdOutputSizeIsAPluginErrorNamingTheMethod() {
        String key = keys.next("absurd");
        ProxySo.load(key, fixture(FIXTURE), utf8("absurd"));
        PluginException e = assertThrows(PluginException.class,
                () -> ProxySo.call(key, "reserve-absurd", new byte[0]));
        assertEquals("reserve-absurd", e.getMethod());
        assertFalse(e.isPanic());
        assertTrue(e.getMessage(), e.getMessage().contains("reserve-absurd"));
        assertTrue(e.getMessage(), e.getMessage().contains(key));
        assertEquals("absurd", ProxySo.call(key, ""));
        assertMUnchanged();
    }
}
