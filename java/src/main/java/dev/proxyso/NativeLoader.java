package dev.proxyso;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Finds and loads {@code libproxy.so}, once per class loader, in the manner of sqlite-jdbc's
 * {@code SQLiteJDBCLoader}. The places tried, in order:
 *
 * <ol>
 *   <li>the file named by the system property {@value #LIBRARY_PROPERTY}, if it is set (and then
 *       nothing else, so that an explicit choice is never silently replaced by another library);
 *   <li>the jar resource {@code /dev/proxyso/native/<os>-<arch>/libproxy.so}, extracted with
 *       {@link #extract(String, boolean)} into this JVM's private directory and loaded from there;
 *       the copy is deleted as soon as it is mapped;
 *   <li>{@code System.loadLibrary("proxy")}, which searches {@code java.library.path}.
 * </ol>
 *
 * <p>If every place fails, one {@link UnsatisfiedLinkError} lists each place and why it failed
 * (for a refused extraction directory: which directory, its owner and its mode). The failure is
 * remembered: every later use throws it again without trying anew. Once the library is loaded,
 * {@link NativeBridge#configure(String)} receives the snapshot directory from the system property
 * {@value #SNAPSHOT_DIR_PROPERTY} (default {@code java.io.tmpdir}), and the daemon thread of
 * {@link LogBridge} starts handing the native log to {@code java.util.logging}.
 *
 * <p><b>Extraction</b> treats the shared directory it extracts into as ssh's {@code StrictModes}
 * treats a home directory. The directory named by {@value #TEMPDIR_PROPERTY} (default
 * {@code java.io.tmpdir}; set it when that is mounted {@code noexec}) is resolved to its real path,
 * and refused unless it and every directory above it is owned by root or by the user this JVM
 * runs as and is writable by nobody else, except a root-owned directory with the sticky bit such
 * as {@code /tmp}. In it a fresh directory {@code proxyso-<random>} is created with mode 0700 (an
 * existing directory is never accepted); each file is created in that directory exclusively and
 * without following a link ({@code O_EXCL}, {@code O_NOFOLLOW}) with mode 0600 (0700 for an
 * executable), and checked after writing to be a regular file of ours with one link and the size
 * written. Nobody else can add, rename or replace a name in that directory, so the name loaded is
 * the file written. The directory, and whatever is still in it, is removed at exit by a shutdown
 * hook.
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
    /** The worker executable's file name, in the jar and when extracted. */
    static final String WORKER_NAME = "proxyso-worker";
    /** The library's base name, as for {@link System#loadLibrary(String)}. */
    static final String LIBRARY_NAME = "proxy";
    /** The name of the private directory starts with this, followed by random digits. */
    static final String PRIVATE_DIR_PREFIX = "proxyso-";

    /** The sticky bit of a mode. */
    private static final int STICKY = 01000;
    /** The group- and other-write bits of a mode. */
    private static final int WRITABLE_BY_OTHERS = 0022;
    /** True where owners can be read as uids and modes with their sticky bit. */
    private static final boolean UNIX_ATTRIBUTES =
            FileSystems.getDefault().supportedFileAttributeViews().contains("unix");

    /** True once the library is loaded and configured; the fast path reads only this. */
    private static volatile boolean loaded;
    /** True once System.load succeeded, even if configure has not; guarded by the class lock. */
    private static boolean libraryLoaded;
    /** The first failure, rethrown on every later use; guarded by the class lock. */
    private static UnsatisfiedLinkError failure;

    /** Guards {@link #privateDir}; held while a file is extracted. */
    private static final Object EXTRACTION_LOCK = new Object();
    /** This JVM's private directory, once made; guarded by {@link #EXTRACTION_LOCK}. */
    private static Path privateDir;
    /**
     * Every private directory made (a new one only if the last one was removed behind our back),
     * for removal at exit; guarded by {@link #EXTRACTION_LOCK}.
     */
    private static final List<Path> MADE = new ArrayList<Path>();

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

    /** True once the worker was handed to native code; guarded by the class lock. */
    private static boolean workerSet;

    /**
     * Makes sure native code knows the {@code proxyso-worker} executable that pre-flight loads
     * run, before the first such load: the file named by {@value #WORKER_PROPERTY} if it is set,
     * else the jar's own, extracted (mode 0700) into this JVM's private directory beside
     * {@code libproxy.so}. Native code opens it once and runs the open file ever after, never the
     * name, so the extracted copy is deleted at once: nothing is left to swap or to leak. Done
     * once; a JVM that never asks for a pre-flight extracts nothing.
     *
     * @param key the key being loaded, for the exception
     * @param path the plugin being loaded, for the exception
     * @throws LibraryLoadException if there is no worker to run: not set, and the jar's cannot be
     *     extracted (the message says why)
     */
    static synchronized void ensureWorker(String key, String path) {
        ensureLoaded();
        if (workerSet) {
            return;
        }
        String worker = System.getProperty(WORKER_PROPERTY);
        Path extracted = null;
        try {
            if (worker == null) {
                extracted = extract(resourcePath(WORKER_NAME), true);
            }
            NativeBridge.setWorker(extracted != null
                    ? extracted.toString() : new File(worker).getAbsolutePath());
            workerSet = true;
        } catch (IOException | RuntimeException e) {
            throw new LibraryLoadException("cannot load '" + Text.shown(path) + "' under key '"
                    + Text.shown(key) + "': a pre-flight or isolated load needs the " + WORKER_NAME
                    + " executable, " + (worker != null ? "named by -D" + WORKER_PROPERTY
                    : "extracted from the jar") + ": " + e.getMessage(), key, path);
        } finally {
            if (extracted != null) {
                try {
                    Files.deleteIfExists(extracted);
                } catch (IOException ignored) {
                    // The directory goes at exit with what is left in it.
                }
            }
        }
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
        } catch (RuntimeException e) {
            tried.add("System.loadLibrary(\"" + LIBRARY_NAME + "\"): " + denied(e));
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
        } catch (RuntimeException e) {
            tried.add(place + ": " + denied(e));
            return false;
        }
    }

    /**
     * The message of a load refused because native access is denied (JDK 24+ with
     * {@code --illegal-native-access=deny}: {@code IllegalCallerException}, named as text since
     * this class is Java 8 bytecode), naming the flag that allows it; any other exception is
     * thrown on.
     */
    private static String denied(RuntimeException e) {
        if (!"java.lang.IllegalCallerException".equals(e.getClass().getName())) {
            throw e;
        }
        return e.getMessage() + "; native access is denied: pass "
                + "--enable-native-access=ALL-UNNAMED to java (on the module path: "
                + "--enable-native-access=dev.proxyso)";
    }

    /** Extracts the library from the jar into the private directory and loads it. */
    private static boolean tryEmbedded(List<String> tried) {
        String resource = resourcePath();
        String place = "jar resource " + resource;
        if (NativeLoader.class.getResource(resource) == null) {
            tried.add(place + ": not found on the class path");
            return false;
        }
        Path copy;
        try {
            copy = extract(resource, false);
        } catch (RefusedDirectoryException e) {
            tried.add(place + ": not extracted: " + e.getMessage());
            return false;
        } catch (IOException | RuntimeException e) {
            tried.add(place + ": cannot extract it: " + e);
            return false;
        }
        boolean ok = tryLoad(copy.toString(), tried, place + " extracted to " + copy);
        try {
            // Once mapped, the file is no longer needed; deleting it now leaves nothing of it
            // behind even if the JVM is killed. The exit hook covers a failed delete.
            Files.deleteIfExists(copy);
        } catch (IOException | RuntimeException ignored) {
            // The exit hook will try again.
        }
        return ok;
    }

    /**
     * Extracts a resource of the jar into this JVM's private directory, made on first use (see
     * the class comment for how it is checked), under the resource's file name. The file is
     * created exclusively and without following a link, with mode 0600, or 0700 if
     * {@code executable}, and checked after writing: a regular file owned by this JVM's user, with
     * one link, of the size written. It stays until the caller deletes it or the JVM exits; the
     * directory stays until exit.
     *
     * @param resourceName the absolute resource name, for example
     *     {@code /dev/proxyso/native/linux-x86_64/proxyso-worker} (see {@link #resourcePath(String)})
     * @param executable whether the file is to be executable by its owner (mode 0700)
     * @return the absolute path of the extracted file
     * @throws FileNotFoundException if the resource is not on the class path
     * @throws FileAlreadyExistsException if a file of that name was extracted before in this JVM
     *     and is still there
     * @throws RefusedDirectoryException if the extraction directory is refused; the message says
     *     which directory, its owner and mode, and why
     * @throws IOException if the file cannot be written or is not what was written
     */
    static Path extract(String resourceName, boolean executable) throws IOException {
        String name = resourceName.substring(resourceName.lastIndexOf('/') + 1);
        if (!resourceName.startsWith("/") || name.isEmpty() || name.equals(".")
                || name.equals("..")) {
            throw new IllegalArgumentException(
                    "not the absolute name of a file resource: '" + resourceName + "'");
        }
        URL url = NativeLoader.class.getResource(resourceName);
        if (url == null) {
            throw new FileNotFoundException(
                    "jar resource " + resourceName + " is not on the class path");
        }
        synchronized (EXTRACTION_LOCK) {
            Path file = privateDirectory().resolve(name);
            write(url, file, executable);
            return file;
        }
    }

    /** Returns the private directory, making it (in a checked parent) if there is none yet. */
    private static Path privateDirectory() throws IOException {
        // Still ours? A /tmp cleaner may have removed it, and another user taken its name.
        if (privateDir != null && isOwnerOnlyDirectoryOfOurs(privateDir)) {
            return privateDir;
        }
        String configured = System.getProperty(TEMPDIR_PROPERTY);
        String parentName =
                configured != null ? configured : System.getProperty("java.io.tmpdir");
        String origin = configured != null ? "-D" + TEMPDIR_PROPERTY + "=" + configured
                : "java.io.tmpdir=" + parentName + " (used as " + TEMPDIR_PROPERTY
                        + " was not set)";
        if (!FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            throw new RefusedDirectoryException(origin + " is refused: this file system has no"
                    + " POSIX permissions, so no owner-only directory can be made in it");
        }
        Set<PosixFilePermission> ownerOnly = PosixFilePermissions.fromString("rwx------");
        Path parent = Paths.get(parentName).toAbsolutePath();
        // Directories made here are ours and owner-only; an existing one is checked below.
        Files.createDirectories(parent, PosixFilePermissions.asFileAttribute(ownerOnly));
        Path real = parent.toRealPath();
        String me = ourOwnerId();
        String problem = chainProblem(real, me);
        if (problem != null) {
            throw new RefusedDirectoryException(origin + " is refused"
                    + (real.equals(parent) ? "" : " (it resolves to " + real + ")") + ": "
                    + problem + "; another user could replace what is extracted there. Set -D"
                    + TEMPDIR_PROPERTY + " to a directory which, like every directory above it,"
                    + " is owned by root or by " + me + " and writable by no one else (a"
                    + " root-owned directory with the sticky bit, such as /tmp, is accepted)");
        }
        if (MADE.isEmpty()) {
            // Before anything is made: during shutdown this throws, and nothing is left behind.
            Runtime.getRuntime().addShutdownHook(new Thread(NativeLoader::removePrivateDirectories,
                    "proxyso-extraction-cleanup"));
        }
        // A fresh directory of our own: mkdir with a random name, retried if the name is taken,
        // so an existing directory is never accepted.
        Path dir = Files.createTempDirectory(real, PRIVATE_DIR_PREFIX,
                PosixFilePermissions.asFileAttribute(ownerOnly));
        MADE.add(dir);
        if (!isOwnerOnlyDirectoryOfOurs(dir)) {
            throw new RefusedDirectoryException("the new directory " + Facts.of(dir).describe(dir)
                    + " is not an owner-only directory of " + me);
        }
        privateDir = dir;
        return dir;
    }

    /**
     * Removes the private directories and what is left in them, at exit. Not File.deleteOnExit:
     * a directory removed behind our back (by a /tmp cleaner) could by then be another user's
     * link, and deleting a name through it would delete a file elsewhere. A directory is only
     * emptied while it is still an owner-only directory of ours, whose entries nobody else can
     * swap.
     */
    private static void removePrivateDirectories() {
        synchronized (EXTRACTION_LOCK) {
            for (Path dir : MADE) {
                try {
                    if (!isOwnerOnlyDirectoryOfOurs(dir)) {
                        continue;
                    }
                    DirectoryStream<Path> entries = Files.newDirectoryStream(dir);
                    try {
                        for (Path entry : entries) {
                            Files.deleteIfExists(entry);
                        }
                    } finally {
                        entries.close();
                    }
                    Files.delete(dir);
                } catch (IOException | RuntimeException ignored) {
                    // Best effort at exit: what cannot be removed stays.
                }
            }
            MADE.clear();
            privateDir = null;
        }
    }

    /** True if {@code dir} is a directory (not a link) of ours that no one else can use. */
    private static boolean isOwnerOnlyDirectoryOfOurs(Path dir) {
        try {
            Facts facts = Facts.of(dir);
            return facts.directory && facts.owner.equals(ourOwnerId()) && (facts.mode & 0077) == 0;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /**
     * Checks {@code dir} and every directory above it the way ssh's {@code StrictModes} does.
     *
     * @return null if the chain is safe, else what is wrong, naming the directory, its owner and
     *     mode
     */
    private static String chainProblem(Path dir, String me) throws IOException {
        String root = UNIX_ATTRIBUTES ? "uid 0" : "user root";
        for (Path p = dir; p != null; p = p.getParent()) {
            Facts facts = Facts.of(p);
            if (!facts.directory) {
                return facts.describe(p) + " is not a directory";
            }
            if (!facts.owner.equals(root) && !facts.owner.equals(me)) {
                return facts.describe(p) + " is owned by another user, not by root or " + me;
            }
            if ((facts.mode & WRITABLE_BY_OTHERS) != 0
                    && !(facts.owner.equals(root) && (facts.mode & STICKY) != 0)) {
                return facts.describe(p) + " is writable by "
                        + ((facts.mode & 0002) != 0 ? "every user" : "its group")
                        + " and is not a root-owned directory with the sticky bit";
            }
        }
        return null;
    }

    /** Creates {@code file} exclusively, copies the resource into it and checks the result. */
    private static void write(URL url, Path file, boolean executable) throws IOException {
        Set<PosixFilePermission> mode =
                PosixFilePermissions.fromString(executable ? "rwx------" : "rw-------");
        long written = 0;
        SeekableByteChannel out;
        try {
            // O_CREAT | O_EXCL | O_NOFOLLOW: never an existing file, never through a link.
            Set<OpenOption> options = new HashSet<OpenOption>(Arrays.asList(
                    StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS));
            out = Files.newByteChannel(file, options, PosixFilePermissions.asFileAttribute(mode));
        } catch (FileAlreadyExistsException e) {
            throw new FileAlreadyExistsException(file.toString(), null,
                    "already extracted into this JVM's private directory");
        }
        boolean complete = false;
        try {
            InputStream in = url.openStream();
            try {
                byte[] buffer = new byte[64 * 1024];
                int n;
                while ((n = in.read(buffer)) > 0) {
                    ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                    while (chunk.hasRemaining()) {
                        written += out.write(chunk);
                    }
                }
            } finally {
                in.close();
            }
            out.close();
            // The mode given at creation is reduced by the umask; set it exactly.
            Files.getFileAttributeView(file, PosixFileAttributeView.class,
                    LinkOption.NOFOLLOW_LINKS).setPermissions(mode);
            Facts facts = Facts.of(file);
            int expected = executable ? 0700 : 0600;
            if (!facts.regular || !facts.owner.equals(ourOwnerId())
                    || (facts.mode & 07777) != expected || facts.size != written
                    || (facts.links != -1 && facts.links != 1)) {
                throw new IOException("the extracted " + facts.describe(file) + " is not the "
                        + written + "-byte regular file of mode " + Integer.toOctalString(expected)
                        + " with one link that was written");
            }
            complete = true;
        } finally {
            if (!complete) {
                out.close();
                Files.deleteIfExists(file);
            }
        }
    }

    /**
     * Returns how owners of files read by {@link Facts#of(Path)} name this JVM's user: its
     * effective uid where uids can be read, else its user name.
     */
    private static String ourOwnerId() throws IOException {
        if (!UNIX_ATTRIBUTES) {
            return "user " + System.getProperty("user.name");
        }
        // On Linux /proc/self belongs to the process's effective uid.
        Path self = Paths.get("/proc/self");
        if (Files.isDirectory(self)) {
            return "uid " + Files.getAttribute(self, "unix:uid");
        }
        try {
            Class<?> unix = Class.forName("com.sun.security.auth.module.UnixSystem");
            Method getUid = unix.getMethod("getUid");
            return "uid " + getUid.invoke(unix.getConstructor().newInstance());
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            throw new IOException("cannot tell which user this JVM runs as: no /proc/self and no "
                    + "com.sun.security.auth.module.UnixSystem (" + e + ")");
        }
    }

    /** The owner, mode and type of one file, read without following a link. */
    private static final class Facts {
        /** {@code uid N}, or {@code user NAME} where uids cannot be read. */
        final String owner;
        /** The permission bits, with the sticky bit where {@link #stickyKnown}. */
        final int mode;
        /** False where only the nine permission bits can be read (no {@code unix:mode}). */
        final boolean stickyKnown;
        final boolean directory;
        final boolean regular;
        final long size;
        /** The number of hard links, or -1 where it cannot be read. */
        final long links;

        private Facts(String owner, int mode, boolean stickyKnown, boolean directory,
                boolean regular, long size, long links) {
            this.owner = owner;
            this.mode = mode;
            this.stickyKnown = stickyKnown;
            this.directory = directory;
            this.regular = regular;
            this.size = size;
            this.links = links;
        }

        static Facts of(Path path) throws IOException {
            if (UNIX_ATTRIBUTES) {
                Map<String, Object> a = Files.readAttributes(path,
                        "unix:uid,mode,nlink,size,isDirectory,isRegularFile",
                        LinkOption.NOFOLLOW_LINKS);
                return new Facts("uid " + a.get("uid"), ((Integer) a.get("mode")) & 07777, true,
                        (Boolean) a.get("isDirectory"), (Boolean) a.get("isRegularFile"),
                        (Long) a.get("size"), ((Number) a.get("nlink")).longValue());
            }
            // A safe fallback: without the sticky bit, a directory others can write is refused.
            PosixFileAttributes a = Files.readAttributes(path, PosixFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS);
            int mode = 0;
            for (PosixFilePermission permission : a.permissions()) {
                mode |= 0400 >> permission.ordinal();
            }
            return new Facts("user " + a.owner().getName(), mode, false, a.isDirectory(),
                    a.isRegularFile(), a.size(), -1);
        }

        /** The path with its owner and mode, for messages. */
        String describe(Path path) {
            return path + " (owner " + owner + ", mode " + String.format("%04o", mode)
                    + (stickyKnown ? "" : ", sticky bit unknown") + ")";
        }
    }

    /** An extraction directory that is refused; the message says which and why. */
    static final class RefusedDirectoryException extends IOException {
        private static final long serialVersionUID = 1L;

        RefusedDirectoryException(String message) {
            super(message);
        }
    }

    /**
     * Returns where the jar keeps the library for this platform.
     *
     * @return the resource path, for example {@code /dev/proxyso/native/linux-x86_64/libproxy.so}
     */
    static String resourcePath() {
        return resourcePath(System.mapLibraryName(LIBRARY_NAME));
    }

    /**
     * Returns where the jar keeps a native file for this platform, for {@link #extract}.
     *
     * @param fileName the file's name, for example {@code proxyso-worker}
     * @return the resource path, for example
     *     {@code /dev/proxyso/native/linux-x86_64/proxyso-worker}
     */
    static String resourcePath(String fileName) {
        return "/dev/proxyso/native/" + platform() + "/" + fileName;
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
