package dev.proxyso;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Finds and loads {@code libproxy.so}, once per class loader, in the manner of sqlite-jdbc's
 * {@code SQLiteJDBCLoader}. The places tried, in order:
 *
 * <ol>
 *   <li>the file named by the system property {@value #LIBRARY_PROPERTY}, if it is set (and then
 *       nothing else, so that an explicit choice is never silently replaced by another library);
 *   <li>the jar resource {@code /dev/proxyso/native/<os>-<arch>/libproxy.so}, copied to a private
 *       file (owner-only permissions) in the directory named by {@value #TEMPDIR_PROPERTY}
 *       (default {@code java.io.tmpdir}; set it when that directory is mounted {@code noexec}), and
 *       loaded from there; the copy is deleted as soon as it is mapped, and on exit at the latest;
 *   <li>{@code System.loadLibrary("proxy")}, which searches {@code java.library.path}.
 * </ol>
 *
 * <p>If every place fails, one {@link UnsatisfiedLinkError} lists each place and why it failed. The
 * failure is remembered: every later use throws it again without trying anew. Once the library is
 * loaded, {@link NativeBridge#configure(String)} receives the snapshot directory from the system
 * property {@value #SNAPSHOT_DIR_PROPERTY} (default {@code java.io.tmpdir}), and the daemon thread
 * of {@link LogBridge} starts handing the native log to {@code java.util.logging}.
 */
final class NativeLoader {
    /** System property naming a {@code libproxy.so} to load instead of the embedded one. */
    static final String LIBRARY_PROPERTY = "proxyso.library";
    /** System property naming the directory the embedded library is extracted to. */
    static final String TEMPDIR_PROPERTY = "proxyso.tempdir";
    /** System property naming the directory in which plugin snapshots are written. */
    static final String SNAPSHOT_DIR_PROPERTY = "proxyso.snapshotDir";
    /** System property naming the {@code proxyso-worker} executable that runs pre-flight loads. */
    static final String WORKER_PROPERTY = "proxyso.worker";
    /** The library's base name, as for {@link System#loadLibrary(String)}. */
    static final String LIBRARY_NAME = "proxy";

    /** True once the library is loaded and configured; the fast path reads only this. */
    private static volatile boolean loaded;
    /** True once System.load succeeded, even if configure has not; guarded by the class lock. */
    private static boolean libraryLoaded;
    /** The first failure, rethrown on every later use; guarded by the class lock. */
    private static UnsatisfiedLinkError failure;

    private NativeLoader() {
    }

    /**
     * Makes sure {@code libproxy.so} is loaded and configured. After the first success this is one
     * volatile read.
     *
     * @throws UnsatisfiedLinkError if the library cannot be loaded, now or at an earlier attempt
     */
    static void ensureLoaded() {
        if (!loaded) {
            loadOnce();
        }
    }

    private static synchronized void loadOnce() {
        if (loaded) {
            return;
        }
        if (failure == null && !libraryLoaded) {
            try {
                load();
                libraryLoaded = true;
            } catch (UnsatisfiedLinkError e) {
                failure = e;
            }
        }
        if (failure == null) {
            try {
                NativeBridge.configure(System.getProperty(SNAPSHOT_DIR_PROPERTY,
                        System.getProperty("java.io.tmpdir")));
                String worker = System.getProperty(WORKER_PROPERTY);
                NativeBridge.setWorker(worker == null ? null : new File(worker).getAbsolutePath());
                loaded = true;
                // From now on the native log reaches java.util.logging (LogBridge).
                LogBridge.start();
                return;
            } catch (UnsatisfiedLinkError e) {
                UnsatisfiedLinkError wrong = new UnsatisfiedLinkError("the loaded "
                        + System.mapLibraryName(LIBRARY_NAME)
                        + " does not implement the proxyso JNI contract: " + e.getMessage());
                wrong.initCause(e);
                failure = wrong;
            }
            // Any other failure of configure propagates, and the next use tries configure again.
        }
        UnsatisfiedLinkError again = new UnsatisfiedLinkError(failure.getMessage());
        again.initCause(failure);
        throw again;
    }

    /** Tries each place in turn; throws one error naming them all if none works. */
    private static void load() {
        List<String> tried = new ArrayList<String>();
        String override = System.getProperty(LIBRARY_PROPERTY);
        if (override != null) {
            if (tryLoad(new File(override).getAbsolutePath(), tried,
                    "-D" + LIBRARY_PROPERTY + "=" + override)) {
                return;
            }
            throw failed(tried);
        }
        if (tryEmbedded(tried)) {
            return;
        }
        try {
            System.loadLibrary(LIBRARY_NAME);
            return;
        } catch (UnsatisfiedLinkError | SecurityException e) {
            tried.add("System.loadLibrary(\"" + LIBRARY_NAME + "\") with java.library.path="
                    + System.getProperty("java.library.path") + ": " + e.getMessage());
        }
        throw failed(tried);
    }

    private static UnsatisfiedLinkError failed(List<String> tried) {
        StringBuilder message = new StringBuilder("cannot load the proxyso native library "
                + System.mapLibraryName(LIBRARY_NAME) + " for " + platform() + "; tried:");
        for (String place : tried) {
            message.append("\n  - ").append(place);
        }
        return new UnsatisfiedLinkError(message.toString());
    }

    /** {@code System.load}s an absolute path, recording why it failed. */
    private static boolean tryLoad(String absolutePath, List<String> tried, String place) {
        if (!new File(absolutePath).isFile()) {
            tried.add(place + ": no such file " + absolutePath);
            return false;
        }
        try {
            System.load(absolutePath);
            return true;
        } catch (UnsatisfiedLinkError | SecurityException e) {
            tried.add(place + ": " + e.getMessage());
            return false;
        }
    }

    /** Extracts the library from the jar to a private file and loads it. */
    private static boolean tryEmbedded(List<String> tried) {
        String resource = resourcePath();
        String place = "jar resource " + resource;
        URL url = NativeLoader.class.getResource(resource);
        if (url == null) {
            tried.add(place + ": not found on the class path");
            return false;
        }
        Path copy;
        try {
            copy = extract(url);
        } catch (IOException | RuntimeException e) {
            tried.add(place + ": cannot extract it to " + extractionDir() + ": " + e);
            return false;
        }
        boolean ok = tryLoad(copy.toString(), tried, place + " extracted to " + copy);
        try {
            // Once mapped, the file is no longer needed; deleting it now leaves nothing behind even
            // if the JVM is killed. deleteOnExit (set in extract) covers a failed delete.
            Files.deleteIfExists(copy);
        } catch (IOException | RuntimeException ignored) {
            // deleteOnExit will try again.
        }
        return ok;
    }

    private static Path extract(URL url) throws IOException {
        Path dir = extractionDir();
        Files.createDirectories(dir);
        Path copy;
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            Set<PosixFilePermission> ownerOnly = PosixFilePermissions.fromString("rw-------");
            FileAttribute<Set<PosixFilePermission>> attribute =
                    PosixFilePermissions.asFileAttribute(ownerOnly);
            copy = Files.createTempFile(dir, "libproxy-", ".so", attribute);
        } else {
            copy = Files.createTempFile(dir, "libproxy-", ".so");
        }
        copy.toFile().deleteOnExit();
        InputStream in = url.openStream();
        try {
            Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            in.close();
        }
        return copy;
    }

    private static Path extractionDir() {
        return Paths.get(System.getProperty(TEMPDIR_PROPERTY, System.getProperty("java.io.tmpdir")))
                .toAbsolutePath();
    }

    /**
     * Returns where the jar keeps the library for this platform.
     *
     * @return the resource path, for example {@code /dev/proxyso/native/linux-x86_64/libproxy.so}
     */
    static String resourcePath() {
        return "/dev/proxyso/native/" + platform() + "/" + System.mapLibraryName(LIBRARY_NAME);
    }

    /**
     * Returns the platform directory name for this JVM.
     *
     * @return {@code <os>-<arch>}, for example {@code linux-x86_64}
     */
    static String platform() {
        return osName(System.getProperty("os.name", "")) + "-"
                + archName(System.getProperty("os.arch", ""));
    }

    /**
     * Normalises {@code os.name}.
     *
     * @param osName the value of {@code os.name}
     * @return {@code linux}, {@code macos}, {@code windows}, or else the name in lower case
     *     without spaces
     */
    static String osName(String osName) {
        String name = osName.toLowerCase(Locale.ROOT);
        if (name.startsWith("linux")) {
            return "linux";
        }
        if (name.startsWith("mac") || name.startsWith("darwin")) {
            return "macos";
        }
        if (name.startsWith("windows")) {
            return "windows";
        }
        return name.replaceAll("[^a-z0-9]+", "");
    }

    /**
     * Normalises {@code os.arch} to the names Rust targets use.
     *
     * @param osArch the value of {@code os.arch}
     * @return {@code x86_64}, {@code aarch64}, {@code x86} or the name in lower case
     */
    static String archName(String osArch) {
        String arch = osArch.toLowerCase(Locale.ROOT);
        if (arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x64")) {
            return "x86_64";
        }
        if (arch.equals("aarch64") || arch.equals("arm64")) {
            return "aarch64";
        }
        if (arch.equals("x86") || arch.equals("i386") || arch.equals("i486") || arch.equals("i586")
                || arch.equals("i686")) {
            return "x86";
        }
        return arch.replaceAll("[^a-z0-9_]+", "");
    }
}
