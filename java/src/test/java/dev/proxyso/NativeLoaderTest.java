package dev.proxyso;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * How libproxy.so is found: inside the jar by default, or where -Dproxyso.library says; and how
 * the embedded one is extracted: into a fresh owner-only directory, in a parent that no other
 * user owns or can write, never through a link.
 */
public class NativeLoaderTest {
    /** A fresh directory for each test (in proxyso.test.tmp), owned by the test's user, 0700. */
    private Path base;

    @Before
    public void makeBase() throws IOException {
        Path parent = Paths.get(System.getProperty("proxyso.test.tmp",
                System.getProperty("java.io.tmpdir")));
        Files.createDirectories(parent);
        base = Files.createTempDirectory(parent, "loader-").toRealPath();
    }

    @After
    public void removeBase() throws IOException {
        // Not TestSupport.deleteTree, which would follow the planted links to directories.
        if (base != null) {
            Files.walkFileTree(base, new SimpleFileVisitor<Path>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attributes)
                        throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException e)
                        throws IOException {
                    Files.delete(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        }
    }

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
        // The mapped libproxy is a private copy in a fresh directory in proxyso.tempdir, not
        // cargo's output.
        Path tempDir = Paths.get(System.getProperty("proxyso.tempdir")).toRealPath();
        List<String> mapped = mappedLibproxy(TestSupport.maps());
        assertFalse("libproxy is not mapped", mapped.isEmpty());
        for (String path : mapped) {
            assertInPrivateDirectory(path, tempDir);
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
        assertEquals(out.toString(), Arrays.asList(library), probeMapped(out));
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
        assertTrue(out.toString(), probeMapped(out).isEmpty());
    }

    @Test
    public void aTempdirThatOthersCanWriteIsRefusedAndTheErrorSaysWhy() throws Exception {
        String uid = ourUid();
        Path open = directory("world-writable", "777");
        List<String> out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + open);
        String first = line(out, "attempt 1: ");
        assertTrue(first, first.startsWith("attempt 1: UnsatisfiedLinkError: "));
        assertTrue("the error should say which directory and why: " + first, first.contains(
                "-Dproxyso.tempdir=" + open + " is refused: " + open + " (owner uid " + uid
                        + ", mode 0777) is writable by every user and is not a root-owned"
                        + " directory with the sticky bit"));
        // The other places were still tried, and the refusal is in the one error with them.
        assertTrue(first, first.contains("System.loadLibrary(\"proxy\")"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals("nothing may be written into a refused directory",
                Collections.emptyList(), entries(open));

        // Group-writable, and the default java.io.tmpdir is checked just the same.
        Path group = directory("group-writable", "775");
        out = runProbe("-Djava.io.tmpdir=" + group);
        first = line(out, "attempt 1: ");
        assertTrue(first, first.contains("java.io.tmpdir=" + group + " (used as proxyso.tempdir"
                + " was not set) is refused: " + group + " (owner uid " + uid + ", mode 0775)"
                + " is writable by its group"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals(Collections.emptyList(), entries(group));

        // A safe directory inside an unsafe one is refused for the one above it.
        Path inside = Files.createDirectory(open.resolve("inside"));
        chmod("755", inside);
        out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + inside);
        first = line(out, "attempt 1: ");
        assertTrue(first, first.contains("-Dproxyso.tempdir=" + inside + " is refused: " + open
                + " (owner uid " + uid + ", mode 0777) is writable by every user"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals(Collections.emptyList(), entries(inside));
    }

    @Test
    public void aTempdirOrAParentOwnedByAnotherUserIsRefused() throws Exception {
        assumeTrue("chown needs root", ourUid().equals("0"));
        Path theirs = directory("theirs", "755");
        chown(theirs, "nobody");
        String nobody = Files.getAttribute(theirs, "unix:uid").toString();
        List<String> out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + theirs);
        String first = line(out, "attempt 1: ");
        assertTrue(first, first.startsWith("attempt 1: UnsatisfiedLinkError: "));
        assertTrue("the error should say which directory and why: " + first, first.contains(
                "-Dproxyso.tempdir=" + theirs + " is refused: " + theirs + " (owner uid " + nobody
                        + ", mode 0755) is owned by another user, not by root or uid 0"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals(Collections.emptyList(), entries(theirs));

        // A directory of ours inside theirs: they can rename it and put their own in its place.
        Path parent = directory("theirs-parent", "755");
        Path mine = Files.createDirectory(parent.resolve("mine"));
        chown(parent, "nobody");
        out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + mine);
        first = line(out, "attempt 1: ");
        assertTrue(first, first.contains("-Dproxyso.tempdir=" + mine + " is refused: " + parent
                + " (owner uid " + nobody + ", mode 0755) is owned by another user"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals(Collections.emptyList(), entries(mine));

        // A link of ours to their directory: what counts is where it leads.
        Path link = Files.createSymbolicLink(base.resolve("link-to-theirs"), theirs);
        out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + link);
        first = line(out, "attempt 1: ");
        assertTrue(first, first.contains("-Dproxyso.tempdir=" + link + " is refused (it resolves"
                + " to " + theirs + "): " + theirs + " (owner uid " + nobody + ", mode 0755) is"
                + " owned by another user"));
        assertTrue(out.toString(), probeMapped(out).isEmpty());
        assertEquals(Collections.emptyList(), entries(theirs));
    }

    @Test
    public void aRootOwnedStickyDirectoryLikeTmpIsAccepted() throws Exception {
        assumeTrue("the test directory must be root's", ourUid().equals("0"));
        Path sticky = directory("sticky", "1777");
        List<String> out = runProbe("-Djava.io.tmpdir=" + sticky);
        assertTrue(out.toString(), out.contains("attempt 1: keys 0"));
        List<String> mapped = probeMapped(out);
        assertFalse(out.toString(), mapped.isEmpty());
        for (String path : mapped) {
            assertInPrivateDirectory(path, sticky);
        }
        assertEquals("the private directory is removed at exit", Collections.emptyList(),
                entries(sticky));
    }

    @Test
    public void theCopyIsOwnerOnlyInAFreshOwnerOnlyDirectoryThatIsRemovedAtExit()
            throws Exception {
        String uid = ourUid();
        Path tempdir = directory("native", "755");
        List<String> out = runProbe(
                Arrays.asList("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + tempdir),
                "--extract", "/dev/proxyso/test/extract-me.sh");
        assertTrue(out.toString(), out.contains("attempt 1: keys 0"));
        List<String> mapped = probeMapped(out);
        assertEquals(out.toString(), 1, mapped.size());
        Path privateDir = assertInPrivateDirectory(mapped.get(0), tempdir);
        // The mapped copy was ours with mode 0600, and it was deleted once mapped.
        assertTrue(mapped.get(0), mapped.get(0).endsWith(" (deleted)"));
        assertEquals("mapped-file: uid=" + uid + " mode=0600", line(out, "mapped-file: "));
        assertEquals("private-dir: " + privateDir + " uid=" + uid + " mode=0700 entries=[]",
                line(out, "private-dir: "));
        // A second file, executable, goes beside it (as the worker will), and runs.
        assertEquals("extracted: " + privateDir.resolve("extract-me.sh") + " uid=" + uid
                + " mode=0700", line(out, "extracted: "));
        assertEquals("ran: exit 0 extracted-and-ran", line(out, "ran: "));
        // At exit the directory and the file left in it are gone.
        assertFalse(privateDir + " still exists",
                Files.exists(privateDir, LinkOption.NOFOLLOW_LINKS));
        assertEquals(Collections.emptyList(), entries(tempdir));
    }

    @Test
    public void aPrivateDirectoryRemovedBehindOurBackIsReplacedAndItsNameNotFollowedAtExit()
            throws Exception {
        String uid = ourUid();
        Path tempdir = directory("cleaned", "755");
        Path victim = directory("victim", "755");
        byte[] victimBytes = "not ours to delete".getBytes(StandardCharsets.UTF_8);
        Files.write(victim.resolve("extract-me.sh"), victimBytes);
        List<String> out = runProbe(
                Arrays.asList("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + tempdir),
                "--extract", "/dev/proxyso/test/extract-me.sh", "--then-link-to",
                victim.toString());
        Path first = Paths.get(line(out, "extracted: ").split(" ")[1]).getParent();
        Path again = Paths.get(line(out, "extracted again: ").split(" ")[2]);
        // A fresh directory, not the link that took the old one's name.
        assertEquals(tempdir, again.getParent().getParent());
        assertFalse(out.toString(), again.getParent().equals(first));
        assertEquals("extracted again: " + again + " uid=" + uid + " mode=0700",
                line(out, "extracted again: "));
        assertEquals("ran: exit 0 extracted-and-ran", line(out, "ran: "));
        // At exit the new directory is removed, and nothing is deleted through the link.
        assertArrayEquals(victimBytes, Files.readAllBytes(victim.resolve("extract-me.sh")));
        assertEquals(Arrays.asList(first.getFileName().toString()), entries(tempdir));
        assertEquals(victim, Files.readSymbolicLink(first));

        // The same with a directory of another user in its place: never written into.
        assumeTrue("chown needs root", uid.equals("0"));
        Path tempdir2 = directory("cleaned-2", "755");
        out = runProbe(Arrays.asList("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + tempdir2),
                "--extract", "/dev/proxyso/test/extract-me.sh", "--then-dir-of", "nobody");
        first = Paths.get(line(out, "extracted: ").split(" ")[1]).getParent();
        again = Paths.get(line(out, "extracted again: ").split(" ")[2]);
        assertEquals(tempdir2, again.getParent().getParent());
        assertFalse(out.toString(), again.getParent().equals(first));
        assertEquals("ran: exit 0 extracted-and-ran", line(out, "ran: "));
        assertEquals(Collections.emptyList(), entries(first));
        assertEquals(Arrays.asList(first.getFileName().toString()), entries(tempdir2));
    }

    @Test
    public void linksAndFilesPlantedAtPredictableNamesAreNeitherFollowedNorLoaded()
            throws Exception {
        Path tempdir = directory("planted", "755");
        byte[] decoyBytes = "not libproxy".getBytes(StandardCharsets.UTF_8);
        Path decoy = Files.write(base.resolve("decoy.so"), decoyBytes);
        Path decoyDir = directory("decoy-dir", "755");
        // The old names (libproxy-<n>.so), the resource names, and the private directory's.
        Map<String, Path> links = new TreeMap<String, Path>();
        links.put("libproxy.so", decoy);
        links.put("proxyso-worker", decoy);
        for (int i = 0; i < 64; i++) {
            links.put("libproxy-" + i + ".so", decoy);
            links.put(NativeLoader.PRIVATE_DIR_PREFIX + i, decoyDir);
        }
        for (Map.Entry<String, Path> link : links.entrySet()) {
            Files.createSymbolicLink(tempdir.resolve(link.getKey()), link.getValue());
        }
        Files.write(tempdir.resolve("libproxy-64.so"), decoyBytes);
        List<String> planted = entries(tempdir);

        List<String> out = runProbe("-D" + NativeLoader.TEMPDIR_PROPERTY + "=" + tempdir);
        assertTrue(out.toString(), out.contains("attempt 1: keys 0"));
        assertTrue(out.toString(), out.contains("attempt 2: keys 0"));
        List<String> mapped = probeMapped(out);
        assertEquals(out.toString(), 1, mapped.size());
        assertInPrivateDirectory(mapped.get(0), tempdir);
        // Every planted name is as it was, nothing was written through a link, and nothing
        // planted was loaded.
        assertEquals(planted, entries(tempdir));
        for (Map.Entry<String, Path> link : links.entrySet()) {
            assertEquals(link.getKey(), link.getValue(),
                    Files.readSymbolicLink(tempdir.resolve(link.getKey())));
        }
        assertArrayEquals(decoyBytes, Files.readAllBytes(decoy));
        assertArrayEquals(decoyBytes, Files.readAllBytes(tempdir.resolve("libproxy-64.so")));
        assertEquals(Collections.emptyList(), entries(decoyDir));
    }

    /**
     * Checks that a mapped libproxy path is {@code <tempDir>/proxyso-<random>/libproxy.so}.
     *
     * @return the private directory
     */
    private static Path assertInPrivateDirectory(String mapped, Path tempDir) {
        Path path = Paths.get(mapped.replace(" (deleted)", ""));
        assertEquals(mapped, "libproxy.so", path.getFileName().toString());
        Path dir = path.getParent();
        assertEquals(mapped + " is not in a directory of its own in " + tempDir, tempDir,
                dir.getParent());
        assertTrue(mapped, dir.getFileName().toString().startsWith(
                NativeLoader.PRIVATE_DIR_PREFIX));
        return dir;
    }

    /** A new directory in this test's base directory, with this mode (as for chmod). */
    private Path directory(String name, String mode) throws IOException, InterruptedException {
        Path dir = Files.createDirectory(base.resolve(name));
        chmod(mode, dir);
        return dir;
    }

    /** chmod, which unlike NIO can set the sticky bit. */
    private static void chmod(String mode, Path path) throws IOException, InterruptedException {
        Process chmod = new ProcessBuilder("chmod", mode, path.toString()).inheritIO().start();
        assertEquals("chmod " + mode + " " + path, 0, chmod.waitFor());
    }

    private static void chown(Path path, String user) throws IOException {
        UserPrincipalLookupService users = path.getFileSystem().getUserPrincipalLookupService();
        Files.setOwner(path, users.lookupPrincipalByName(user));
    }

    /** The uid this JVM runs as, as its child JVMs will. */
    private String ourUid() throws IOException {
        return Files.getAttribute(base, "unix:uid").toString();
    }

    /** The names in a directory, sorted. */
    private static List<String> entries(Path dir) throws IOException {
        List<String> names = new ArrayList<String>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            for (Path entry : stream) {
                names.add(entry.getFileName().toString());
            }
        }
        Collections.sort(names);
        return names;
    }

    private static String line(List<String> lines, String prefix) {
        for (String line : lines) {
            if (line.startsWith(prefix)) {
                return line;
            }
        }
        throw new AssertionError("no line starting with '" + prefix + "' in " + lines);
    }

    /** The libproxy paths in the probe's "mapped: " lines. */
    private static List<String> probeMapped(List<String> lines) {
        List<String> mapped = new ArrayList<String>();
        for (String line : lines) {
            if (line.startsWith("mapped: ")) {
                mapped.add(line);
            }
        }
        return mappedLibproxy(mapped);
    }

    /** The libproxy paths in maps lines. */
    private static List<String> mappedLibproxy(List<String> lines) {
        List<String> paths = new ArrayList<String>();
        for (String line : lines) {
            int at = line.indexOf('/');
            if (at < 0 || !line.contains("libproxy")) {
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
        return runProbe(Arrays.asList(jvmOptions));
    }

    /** Runs {@link LoaderProbe} with these JVM options and probe arguments. */
    private static List<String> runProbe(List<String> jvmOptions, String... probeArgs)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<String>();
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xcheck:jni");
        command.addAll(jvmOptions);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(LoaderProbe.class.getName());
        command.addAll(Arrays.asList(probeArgs));
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
