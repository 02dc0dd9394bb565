package dev.proxyso;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/** Where the plugins and fixtures are, and small helpers shared by the tests. */
final class TestSupport {
    /** The Rust example plugin, version 1: its default method returns the input. */
    static final String EXAMPLE_V1 = "libexample_v1.so";
    /** The Rust example plugin, version 2: its default method returns the input + ",ab". */
    static final String EXAMPLE_V2 = "libexample_v2.so";
    /** The Rust fixture on the SDK: config bytes become its tag. */
    static final String FIXTURE = "libfixture.so";

    private TestSupport() {
    }

    /** A directory named by a system property that Gradle sets. */
    static Path dirFromProperty(String property) {
        String value = System.getProperty(property);
        if (value == null) {
            fail("system property " + property + " is not set (run the tests through gradle test)");
        }
        Path dir = Paths.get(value);
        assertTrue(property + "=" + value + " is not a directory", Files.isDirectory(dir));
        return dir;
    }

    /** The absolute path of a built example plugin, checked to exist. */
    static String plugin(String file) {
        return existing(dirFromProperty("proxyso.plugins.dir").resolve(file));
    }

    /** The absolute path of a built test fixture, checked to exist. */
    static String fixture(String file) {
        return existing(dirFromProperty("proxyso.fixtures.dir").resolve(file));
    }

    private static String existing(Path path) {
        assertTrue("missing test library " + path + " (built by gradle test's dependencies)",
                Files.isRegularFile(path));
        return path.toAbsolutePath().toString();
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The lines of /proc/self/maps. */
    static List<String> maps() {
        try {
            return Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AssertionError("cannot read /proc/self/maps", e);
        }
    }

    /** The lines of /proc/self/maps that map the given file. */
    static List<String> mappingsOf(String path) {
        List<String> found = new ArrayList<String>();
        for (String line : maps()) {
            if (mapsFile(line, path)) {
                found.add(line);
            }
        }
        return found;
    }

    /** Whether a maps line maps exactly this path (possibly marked " (deleted)"). */
    private static boolean mapsFile(String line, String path) {
        int at = line.indexOf(path);
        if (at < 0) {
            return false;
        }
        String rest = line.substring(at + path.length());
        return rest.isEmpty() || rest.equals(" (deleted)");
    }

    /** Replaces the whole content of a file in place: same inode, like {@code cp new.so live.so}. */
    static void overwriteInPlace(Path target, byte[] content) throws IOException {
        Object inodeBefore = inode(target);
        FileChannel channel = FileChannel.open(target, StandardOpenOption.WRITE);
        try {
            ByteBuffer buffer = ByteBuffer.wrap(content);
            long position = 0;
            while (buffer.hasRemaining()) {
                position += channel.write(buffer, position);
            }
            channel.truncate(content.length);
            channel.force(true);
        } finally {
            channel.close();
        }
        Object inodeAfter = inode(target);
        if (!inodeBefore.equals(inodeAfter)) {
            fail("overwriting " + target + " in place changed its inode from " + inodeBefore + " to "
                    + inodeAfter);
        }
    }

    /** The SHA-256 digest of bytes, as 64 lower-case hexadecimal digits, computed in Java. */
    static String sha256(byte[] bytes) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
            StringBuilder hex = new StringBuilder(64);
            for (byte b : digest) {
                hex.append(String.format("%02x", b & 0xff));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every JVM has SHA-256", e);
        }
    }

    /** The SHA-256 digest of a file's content. */
    static String sha256(String path) throws IOException {
        return sha256(Files.readAllBytes(Paths.get(path)));
    }

    static Object inode(Path path) throws IOException {
        return Files.getAttribute(path, "unix:ino");
    }

    /** A fresh directory in java.io.tmpdir, to be removed with {@link #deleteTree}. */
    static Path tempDir(String prefix) throws IOException {
        return Files.createTempDirectory(prefix);
    }

    static void deleteTree(Path dir) {
        if (dir == null) {
            return;
        }
        File[] children = dir.toFile().listFiles();
        if (children != null) {
            for (File child : children) {
                if (child.isDirectory()) {
                    deleteTree(child.toPath());
                } else {
                    child.delete();
                }
            }
        }
        dir.toFile().delete();
    }
}
