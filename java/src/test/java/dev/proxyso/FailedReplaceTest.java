package dev.proxyso;

import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.regex.Pattern;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Every way a new version can fail to load: replace throws {@link LibraryLoadException} naming key,
 * path and cause, and the old version keeps serving untouched; load of the same file fails and
 * loads nothing.
 */
@RunWith(Parameterized.class)
public class FailedReplaceTest {
    /** A broken library: where it is and what its failure message must say. */
    private interface Broken {
        /** The path to load, made inside {@code dir} when it is not a fixture. */
        String path(Path dir) throws IOException;
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> cases() {
        return Arrays.asList(new Object[][] {
            {"missing file", (Broken) dir -> dir.resolve("no-such-file.so").toString(),
                null, new byte[0]},
            {"a directory", (Broken) dir -> dir.toString(), null, new byte[0]},
            {"not an ELF file", (Broken) dir -> {
                Path text = dir.resolve("not-elf.so");
                Files.write(text, utf8("this is a text file, not a shared library\n"));
                return text.toString();
            }, null, new byte[0]},
            {"missing descriptor", (Broken) dir -> fixture("libfx_no_descriptor.so"),
                "\\bproxyso_plugin\\b", new byte[0]},
            {"ABI mismatch", (Broken) dir -> fixture("libfx_abi_mismatch.so"),
                "\\b99\\b", new byte[0]},
            {"missing symbol under RTLD_NOW", (Broken) dir -> fixture("libfx_missing_symbol.so"),
                "\\bproxyso_fixture_undefined_function\\b", new byte[0]},
            {"init failure", (Broken) dir -> fixture(FIXTURE), "init refused: fail-init",
                utf8("fail-init")},
            {"init panic", (Broken) dir -> fixture(FIXTURE), "panic", utf8("panic-init")},
            {"null plugin name", (Broken) dir -> fixture("libfx_null_name.so"), null, new byte[0]},
            {"no methods", (Broken) dir -> fixture("libfx_no_methods.so"), null, new byte[0]},
            {"null method function", (Broken) dir -> fixture("libfx_null_method.so"), null,
                new byte[0]},
            {"unknown flag bits", (Broken) dir -> fixture("libfx_unknown_flags.so"), "flag",
                new byte[0]},
        });
    }

    @Rule
    public final Keys keys = new Keys();

    private final String name;
    private final Broken broken;
    /** A regular expression found in the message (once key and path are taken out), or null. */
    private final String mustSay;
    private final byte[] config;
    private Path dir;

    public FailedReplaceTest(String name, Broken broken, String mustSay, byte[] config) {
        this.name = name;
        this.broken = broken;
        this.mustSay = mustSay;
        this.config = config;
    }

    @Before
    public void makeDir() throws IOException {
        dir = TestSupport.tempDir("proxyso-broken");
    }

    @After
    public void removeDir() {
        TestSupport.deleteTree(dir);
    }

    private void assertMessage(LibraryLoadException e, String key, String path) {
        String message = e.getMessage();
        assertEquals(key, e.getKey());
        assertEquals(path, e.getPath());
        assertTrue(name + ": message should name the key: " + message, message.contains(key));
        assertTrue(name + ": message should name the path: " + message, message.contains(path));
        if (mustSay != null) {
            assertTrue(name + ": message should say " + mustSay + ": " + message,
                    found(mustSay, message, key, path));
        }
    }

    /** Whether the regex is found in the message outside the key and the path it names. */
    private static boolean found(String regex, String message, String key, String path) {
        String rest = message.replace(path, " ").replace(key, " ");
        return Pattern.compile(regex).matcher(rest).find();
    }

    @Test
    public void failedReplaceKeepsTheOldVersionServing() throws Exception {
        String key = keys.next("broken");
        long generation = ProxySo.load(key, fixture(FIXTURE), utf8("old"));
        LibraryInfo before = ProxySo.info(key);
        String path = broken.path(dir);

        LibraryLoadException e = assertThrows(LibraryLoadException.class,
                () -> ProxySo.replace(key, path, config));
        assertMessage(e, key, path);
        if (name.equals("ABI mismatch")) {
            // Both numbers: what the host expects (1) and what the plugin has (99).
            assertTrue(e.getMessage(), found("\\b1\\b", e.getMessage(), key, path));
            assertTrue(e.getMessage(), found("\\b99\\b", e.getMessage(), key, path));
        }

        assertEquals(before, ProxySo.info(key));
        assertEquals(generation, ProxySo.info(key).getGeneration());
        assertEquals("old", ProxySo.call(key, ""));
        // A later good replace still works, and the generation moved past the old one.
        long next = ProxySo.replace(key, fixture(FIXTURE), utf8("new"));
        assertTrue(next > generation);
        assertEquals("new", ProxySo.call(key, ""));
    }

    @Test
    public void failedLoadLoadsNothing() throws Exception {
        String key = keys.next("broken-load");
        String path = broken.path(dir);
        LibraryLoadException e = assertThrows(LibraryLoadException.class,
                () -> ProxySo.load(key, path, config));
        assertMessage(e, key, path);
        assertNull(ProxySo.info(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, ""));
        // The key is free: a good load succeeds, as generation 1.
        assertEquals(1, ProxySo.load(key, fixture(FIXTURE), utf8("fine")));
        assertEquals("fine", ProxySo.call(key, ""));
    }
}
