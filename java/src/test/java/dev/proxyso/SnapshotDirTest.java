package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The directory that {@code -Dproxyso.snapshotDir} names, through the real jar in child JVMs (the
 * property is read once per JVM): one that another user could change is refused with a clear
 * message, and the private directory of a JVM killed with SIGKILL is removed by the next JVM's
 * first load, while a live JVM's is left alone.
 */
public class SnapshotDirTest {
    private Path base;
    private final List<Process> children = new ArrayList<Process>();

    @Before
    public void makeBase() throws IOException {
        base = TestSupport.tempDir("snapshot-dir-");
    }

    @After
    public void cleanUp() throws InterruptedException {
        for (Process child : children) {
            child.destroyForcibly();
            child.waitFor(30, TimeUnit.SECONDS);
        }
        TestSupport.deleteTree(base);
    }

    private static ChildJvm.Result load(Path snapshotDir) throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(),
                Collections.singletonList("-Dproxyso.snapshotDir=" + snapshotDir),
                SnapshotProbe.class.getName(), "load");
        assertEquals(result.describe(), 0, result.exitCode);
        result.assertNoJniWarnings();
        return result;
    }

    private static void assertRefused(Path dir, String why) throws Exception {
        ChildJvm.Result result = load(dir);
        String expected = "probe: LibraryLoadException: cannot load '"
                + TestSupport.plugin(TestSupport.EXAMPLE_V1) + "' under key 'probe': refusing the "
                + "snapshot directory " + dir + ": " + why;
        assertTrue("expected '" + expected + "' in: " + result.describe(),
                result.output.contains(expected));
        assertEquals("nothing was made in " + dir, Collections.<Path>emptyList(), list(dir));
    }

    private static void chmod(String mode, Path path) throws Exception {
        Process chmod = new ProcessBuilder("chmod", mode, path.toString()).inheritIO().start();
        assertEquals("chmod " + mode + " " + path, 0, chmod.waitFor());
    }

    private static List<Path> list(Path dir) throws IOException {
        List<Path> found = new ArrayList<Path>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path entry : entries) {
                found.add(entry);
            }
        }
        Collections.sort(found);
        return found;
    }

    @Test
    public void aSnapshotDirOthersCouldChangeIsRefusedWithItsReason() throws Exception {
        Path shared = Files.createDirectory(base.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertRefused(shared, shared + " is writable by group and others (mode 0777) and not "
                + "sticky, so another user could swap the private copies made below it");

        Path group = Files.createDirectory(base.resolve("group"));
        Files.setPosixFilePermissions(group, PosixFilePermissions.fromString("rwxrwx---"));
        Path below = Files.createDirectory(group.resolve("mine"));
        assertRefused(below, group + " is writable by its group (mode 0770) and not sticky");

        // The tests run as root: a directory of another user.
        Path theirs = Files.createDirectory(base.resolve("theirs"));
        UserPrincipal nobody = theirs.getFileSystem().getUserPrincipalLookupService()
                .lookupPrincipalByName("nobody");
        Files.setOwner(theirs, nobody);
        assertRefused(theirs, theirs + " is owned by uid 65534, neither root nor this process's "
                + "user (uid 0)");

        // Sticky, as /tmp is: accepted, world-writable or not.
        chmod("1777", shared);
        assertEquals(shared, dirOf(load(shared)).getParent());
    }

    /** Starts a child that loads with kept copies and waits; returns its private directory. */
    private Path startHolder() throws Exception {
        List<String> command = new ArrayList<String>(Arrays.asList(
                Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xcheck:jni"));
        for (String property : Arrays.asList("proxyso.plugins.dir", "proxyso.tempdir")) {
            command.add("-D" + property + "=" + System.getProperty(property));
        }
        command.addAll(Arrays.asList("-Dproxyso.snapshotDir=" + base, "-cp",
                ChildJvm.testClassPath(), SnapshotProbe.class.getName(), "hold"));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        children.add(child);
        child.getOutputStream().close();
        BufferedReader out = new BufferedReader(
                new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        Path dir = null;
        for (String line; (line = out.readLine()) != null; ) {
            seen.append(line).append('\n');
            if (line.startsWith(SnapshotProbe.DIR)) {
                dir = Paths.get(line.substring(SnapshotProbe.DIR.length()));
            }
            if (line.equals(SnapshotProbe.READY)) {
                assertNotNull(seen.toString(), dir);
                return dir;
            }
        }
        fail("the holder ended before it was ready: " + seen);
        return null;
    }

    /** The private directory a {@code load} probe printed. */
    private static Path dirOf(ChildJvm.Result result) {
        for (String line : result.output.split("\n")) {
            if (line.startsWith(SnapshotProbe.DIR)) {
                return Paths.get(line.substring(SnapshotProbe.DIR.length()));
            }
        }
        throw new AssertionError("no directory printed: " + result.describe());
    }

    private static List<String> keptCopies(Path dir) throws IOException {
        List<String> kept = new ArrayList<String>();
        for (Path file : list(dir)) {
            if (file.getFileName().toString().startsWith("kept-")) {
                kept.add(file.getFileName().toString());
            }
        }
        return kept;
    }

    @Test
    public void theNextJvmRemovesAKilledJvmsDirectoryButNotALiveOnes() throws Exception {
        Path killed = startHolder();
        Path live = startHolder();
        assertEquals(killed.getParent(), base);
        assertFalse(killed.equals(live));
        assertEquals("both versions kept: " + list(killed), 2, keptCopies(killed).size());

        Process victim = children.get(0);
        victim.destroyForcibly(); // SIGKILL: no exit handler runs
        assertTrue(victim.waitFor(30, TimeUnit.SECONDS));
        assertEquals("SIGKILL", 128 + 9, victim.exitValue());
        assertTrue("the killed JVM left its directory", Files.isDirectory(killed));
        assertEquals(2, keptCopies(killed).size());

        // The next JVM's first load removes it, and only it; its own goes when it exits.
        Path next = dirOf(load(base));
        assertFalse("the killed JVM's directory is still there", Files.exists(killed));
        assertTrue("the live JVM's directory was removed", Files.isDirectory(live));
        assertEquals(2, keptCopies(live).size());
        assertFalse("removed at exit", Files.exists(next));
        assertEquals(Collections.singletonList(live), list(base));

        // Once that one is killed too, its directory goes at the next start.
        Process second = children.get(1);
        second.destroyForcibly();
        assertTrue(second.waitFor(30, TimeUnit.SECONDS));
        assertTrue(Files.isDirectory(live));
        load(base);
        assertEquals(Collections.<Path>emptyList(), list(base));
    }
}
