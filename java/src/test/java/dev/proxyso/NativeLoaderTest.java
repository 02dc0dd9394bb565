package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.Test;

/** How libproxy.so is found: inside the jar by default, or where -Dproxyso.library says. */
public class NativeLoaderTest {
    @Test
    public void theApiComesFromTheJarAndLoadsTheLibraryEmbeddedInIt() throws Exception {
        String jar = System.getProperty("proxyso.test.jar");
        assertTrue("proxyso.test.jar not set", jar != null);
        String codeSource =
                ProxySo.class.getProtectionDomain().getCodeSource().getLocation().getPath();
        assertEquals("tests must run against the built jar", new File(jar).getCanonicalPath(),
                new File(codeSource).getCanonicalPath());
        assertTrue(ProxySo.class.getResource(NativeLoader.resourcePath()) != null);
        assertEquals("linux-" + NativeLoader.archName(System.getProperty("os.arch")),
                NativeLoader.platform());

        ProxySo.list();
        // The mapped libproxy is a private copy in proxyso.tempdir, not cargo's output.
        Path tempDir = Paths.get(System.getProperty("proxyso.tempdir")).toAbsolutePath();
        List<String> mapped = mappedLibproxy(TestSupport.maps());
        assertFalse("libproxy is not mapped", mapped.isEmpty());
        for (String path : mapped) {
            assertTrue(path + " is not in " + tempDir, path.startsWith(tempDir + "/libproxy-"));
        }
        // It was deleted once mapped, so nothing is left behind.
        for (String path : mapped) {
            assertFalse(path.replace(" (deleted)", "") + " still exists",
                    Files.exists(Paths.get(path.replace(" (deleted)", ""))));
        }
    }

    @Test
    public void platformNamesFollowRustTargets() {
        assertEquals("x86_64", NativeLoader.archName("amd64"));
        assertEquals("x86_64", NativeLoader.archName("x86_64"));
        assertEquals("aarch64", NativeLoader.archName("aarch64"));
        assertEquals("aarch64", NativeLoader.archName("arm64"));
        assertEquals("linux", NativeLoader.osName("Linux"));
        assertEquals("macos", NativeLoader.osName("Mac OS X"));
        assertEquals("/dev/proxyso/native/" + NativeLoader.platform() + "/libproxy.so",
                NativeLoader.resourcePath());
    }

    @Test
    public void libraryPropertyOverridesTheEmbeddedLibrary() throws Exception {
        String release = System.getProperty("proxyso.release.dir");
        String library = new File(release, "libproxy.so").getCanonicalPath();
        assertTrue(library + " missing", new File(library).isFile());
        List<String> out = runProbe("-Dproxyso.library=" + library);
        assertTrue(out.toString(), out.contains("attempt 1: keys 0"));
        assertTrue(out.toString(), out.contains("attempt 2: keys 0"));
        assertEquals(out.toString(), Arrays.asList(library), mappedLibproxy(out));
    }

    @Test
    public void aFailedLoadListsWhatWasTriedAndIsRememberedForLaterUse() throws Exception {
        String missing = new File(System.getProperty("java.io.tmpdir"),
                "no-such-dir-" + System.nanoTime() + "/libproxy.so").getPath();
        List<String> out = runProbe("-Dproxyso.library=" + missing);
        String first = line(out, "attempt 1: ");
        String second = line(out, "attempt 2: ");
        assertTrue(first, first.startsWith("attempt 1: UnsatisfiedLinkError: "));
        assertTrue("message should name the path tried: " + first, first.contains(missing));
        assertTrue(first, first.contains("proxyso.library"));
        // The second use throws the same failure again, without loading anything.
        assertEquals(first.substring("attempt 1".length()), second.substring("attempt 2".length()));
        assertTrue(out.toString(), mappedLibproxy(out).isEmpty());
    }

    private static String line(List<String> lines, String prefix) {
        for (String line : lines) {
            if (line.startsWith(prefix)) {
                return line;
            }
        }
        throw new AssertionError("no line starting with '" + prefix + "' in " + lines);
    }

    /** The libproxy paths in maps lines, or in the probe's "mapped: " lines. */
    private static List<String> mappedLibproxy(List<String> lines) {
        List<String> paths = new ArrayList<String>();
        for (String line : lines) {
            int at = line.indexOf('/');
            if (at < 0 || !line.contains("libproxy") || line.startsWith("attempt ")) {
                continue;
            }
            String path = line.substring(at);
            if (!paths.contains(path)) {
                paths.add(path);
            }
        }
        return paths;
    }

    /** Runs {@link LoaderProbe} in a child JVM with the same class path and the given options. */
    private static List<String> runProbe(String... jvmOptions)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<String>();
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xcheck:jni");
        command.addAll(Arrays.asList(jvmOptions));
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(LoaderProbe.class.getName());
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        Process process = builder.start();
        process.getOutputStream().close();
        byte[] output = readAll(process.getInputStream());
        assertTrue("probe did not finish", process.waitFor(60, TimeUnit.SECONDS));
        String text = new String(output, StandardCharsets.UTF_8);
        assertEquals("probe failed: " + text, 0, process.exitValue());
        return Arrays.asList(text.split("\n"));
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
        }
        return out.toByteArray();
    }
}
