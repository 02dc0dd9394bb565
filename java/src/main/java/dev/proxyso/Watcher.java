package dev.proxyso;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.io.UncheckedIOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The watches of {@link ProxySo#watch(String, String, WatchListener)}, and the options each key
 * was last loaded or replaced with, which a watch replaces with.
 *
 * <p>One {@link WatchService} (inotify on Linux) watches the directories of every watched file,
 * and one daemon thread, {@value #THREAD_NAME}, handles its events; both exist only while some
 * watch does. An event naming a watched file (created, written, or moved into the directory;
 * every event after an overflow) marks the watch pending. A pending watch reads the file's size,
 * modification time and inode every tick; once they have stayed the same for the watch's settle
 * time, with no further event, the key is replaced from the file and the listener hears how it
 * went. A file half written is never loaded as long as its writer pauses for less than the settle
 * time; a file that disappears makes the watch wait for the next event.
 *
 * <p>A writer that pauses longer is covered twice. Every replacement a watch makes asks for a
 * {@linkplain LoadOptions#isPreflight() pre-flight}, so a half-written file that would crash the
 * dynamic linker fails the replacement in a child process instead of killing the JVM. And a writer
 * can mark the file complete: while {@code <file>.sha256} exists beside it (as {@code sha256sum}
 * writes it), a settled file is loaded only if its digest is the one written there, which then
 * becomes the replacement's expected digest; a file whose digest differs is taken as not finished,
 * and the watch waits for the next event of the file or of its marker, reporting nothing.
 *
 * <p>The thread runs the replacement and the listener itself, one watch at a time.
 */
final class Watcher {
    /** The name of the thread that handles every watch. */
    static final String THREAD_NAME = "proxyso-watch";
    /** The settle time of {@link ProxySo#watch(String, String, WatchListener)}. */
    static final long DEFAULT_SETTLE_MILLIS = 200;
    /** The longest tick while a watch is pending. */
    private static final long MAX_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    /** The shortest tick. */
    private static final long MIN_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(5);
    /** What the name of a watched file's digest marker adds to the file's name. */
    static final String MARKER_SUFFIX = ".sha256";
    /** The longest marker file read; {@code sha256sum}'s line for one file is far shorter. */
    private static final int MAX_MARKER_BYTES = 64 * 1024;

    private static final Logger LOG = Logger.getLogger(LogBridge.PROXY_LOGGER);

    /**
     * The options of each loaded key's last successful load or replace through {@link ProxySo},
     * without the digest (which names one file). A key unloaded while its replace was returning
     * may keep an entry until it is loaded again; nothing reads it until then.
     */
    private static final ConcurrentHashMap<String, LoadOptions> OPTIONS =
            new ConcurrentHashMap<String, LoadOptions>();

    /** Guards everything below. */
    private static final Object LOCK = new Object();
    /** The watches by key. */
    private static final Map<String, Entry> WATCHES = new HashMap<String, Entry>();
    /** The watched directories, each with how many watches use it. */
    private static final Map<Path, Directory> DIRECTORIES = new HashMap<Path, Directory>();
    /** The service of the running thread, or {@code null} when no watch exists. */
    private static WatchService service;

    private Watcher() {
    }

    /** One watched directory. */
    private static final class Directory {
        final WatchKey watchKey;
        int users;

        Directory(WatchKey watchKey) {
            this.watchKey = watchKey;
        }
    }

    /** One watch: what it watches, and (on the watch thread only) whether it is pending. */
    private static final class Entry {
        final Watch watch;
        final WatchListener listener;
        final Path file;
        final Path directory;
        final Path fileName;
        /** The name of the file's digest marker, {@code <file>.sha256}, in the same directory. */
        final Path markerName;
        /** The service it is registered with; only that service's thread handles it. */
        final WatchService service;
        /** Held while a replacement runs, so that closing waits for it. */
        final Object firing = new Object();

        boolean pending;
        /** Size, modification time and inode at the last tick, or null after an event. */
        List<Object> lastSeen;
        long stableSince;
        /** The expected digest of the settled file, from its marker, or null; set when due. */
        byte[] expected;

        Entry(Watch watch, WatchListener listener, Path file, WatchService service) {
            this.watch = watch;
            this.listener = listener;
            this.file = file;
            this.directory = file.getParent();
            this.fileName = file.getFileName();
            this.markerName = Paths.get(fileName + MARKER_SUFFIX);
            this.service = service;
        }
    }

    /** Remembers the options of a successful load or replace of the key. */
    static void loaded(String key, LoadOptions options) {
        OPTIONS.put(key, options.withoutSha256());
    }

    /** Forgets the key's options and stops its watch: the key was unloaded. */
    static void unloaded(String key) {
        OPTIONS.remove(key);
        unwatch(key);
    }

    /** The options a watch replaces the key with. */
    static LoadOptions optionsOf(String key) {
        LoadOptions options = OPTIONS.get(key);
        return options != null ? options : LoadOptions.defaults();
    }

    /** Starts watching; the caller checked the arguments for null and emptiness. */
    static Watch watch(String key, String path, WatchListener listener, long settleNanos) {
        Path file;
        try {
            file = Paths.get(path).toAbsolutePath().normalize();
        } catch (InvalidPathException e) {
            throw new IllegalArgumentException("cannot watch '" + Text.shown(path) + "': "
                    + Text.shown(e.getMessage()), e);
        }
        Path directory = file.getParent();
        if (directory == null || file.getFileName() == null) {
            throw new IllegalArgumentException("cannot watch '" + Text.shown(path)
                    + "': not a file's path");
        }
        if (!Files.isDirectory(directory)) {
            throw new IllegalArgumentException("cannot watch '" + Text.shown(path)
                    + "': its directory " + Text.shown(directory.toString()) + " does not exist");
        }
        Watch watch = new Watch(key, path, settleNanos);
        synchronized (LOCK) {
            if (!NativeBridge.isLoaded(key)) {
                throw new NoSuchLibraryException("cannot watch '" + Text.shown(path)
                        + "': no library is loaded under key '" + Text.shown(key) + "'", key);
            }
            if (WATCHES.containsKey(key)) {
                throw new IllegalStateException("key '" + key + "' is watched already ("
                        + WATCHES.get(key).watch.getPath() + ")");
            }
            boolean started = false;
            if (service == null) {
                service = newService();
                started = true;
            }
            try {
                Directory watched = DIRECTORIES.get(directory);
                if (watched == null) {
                    WatchKey watchKey = directory.register(service,
                            StandardWatchEventKinds.ENTRY_CREATE,
                            StandardWatchEventKinds.ENTRY_MODIFY);
                    watched = new Directory(watchKey);
                    DIRECTORIES.put(directory, watched);
                }
                watched.users++;
            } catch (IOException e) {
                if (started) {
                    closeService();
                }
                throw new UncheckedIOException("cannot watch '" + path + "': " + e, e);
            }
            WATCHES.put(key, new Entry(watch, listener, file, service));
            if (started) {
                startThread(service);
            }
        }
        return watch;
    }

    /** Stops the key's watch. */
    static boolean unwatch(String key) {
        Entry entry;
        synchronized (LOCK) {
            entry = WATCHES.get(key);
            if (entry == null) {
                return false;
            }
            remove(entry);
        }
        finish(entry);
        return true;
    }

    /** Stops this watch, if it is still the key's. */
    static void close(Watch watch) {
        Entry entry;
        synchronized (LOCK) {
            entry = WATCHES.get(watch.getKey());
            if (entry == null || entry.watch != watch) {
                watch.markClosed();
                return;
            }
            remove(entry);
        }
        finish(entry);
    }

    /** Marks the watch closed and waits for a replacement it is running. */
    private static void finish(Entry entry) {
        entry.watch.markClosed();
        synchronized (entry.firing) {
            // Nothing: holding the lock once means no replacement of this watch is running.
        }
    }

    /** Removes a watch and whatever only it used; holds LOCK. */
    private static void remove(Entry entry) {
        WATCHES.remove(entry.watch.getKey());
        entry.watch.markClosed();
        Directory watched = DIRECTORIES.get(entry.directory);
        if (watched != null && --watched.users == 0) {
            watched.watchKey.cancel();
            DIRECTORIES.remove(entry.directory);
        }
        if (WATCHES.isEmpty()) {
            closeService();
        }
    }

    /** Closes the service, which ends its thread; holds LOCK. */
    private static void closeService() {
        try {
            service.close();
        } catch (IOException e) {
            LOG.log(Level.FINE, "closing the watch service failed", e);
        }
        service = null;
        DIRECTORIES.clear();
    }

    private static WatchService newService() {
        try {
            return FileSystems.getDefault().newWatchService();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start watching files: " + e, e);
        }
    }

    private static void startThread(final WatchService watchService) {
        Thread thread = new Thread(new Runnable() {
            @Override
            public void run() {
                loop(watchService);
            }
        }, THREAD_NAME);
        thread.setDaemon(true);
        thread.start();
    }

    /** The thread: events mark watches pending, ticks replace the settled ones. */
    private static void loop(WatchService watchService) {
        try {
            while (true) {
                long tick = tickNanos(watchService);
                WatchKey ready = tick < 0 ? watchService.take()
                        : watchService.poll(tick, TimeUnit.NANOSECONDS);
                while (ready != null) {
                    handle(watchService, ready);
                    ready = watchService.poll();
                }
                for (Entry entry : settled(watchService)) {
                    fire(entry);
                }
            }
        } catch (ClosedWatchServiceException | InterruptedException end) {
            // The last watch closed (or someone interrupted the daemon thread): done.
        } catch (Throwable e) {
            LOG.log(Level.SEVERE, "the file watch thread failed; watches stop working", e);
        }
    }

    /** How long to wait for events: a tick while a watch is pending, else -1 (forever). */
    private static long tickNanos(WatchService watchService) {
        long tick = -1;
        for (Entry entry : entries(watchService)) {
            if (entry.pending) {
                long own = Math.max(MIN_TICK_NANOS,
                        Math.min(MAX_TICK_NANOS, entry.watch.settleNanos() / 4));
                tick = tick < 0 ? own : Math.min(tick, own);
            }
        }
        return tick;
    }

    /** The watches handled by this service's thread. */
    private static List<Entry> entries(WatchService watchService) {
        List<Entry> entries = new ArrayList<Entry>();
        synchronized (LOCK) {
            for (Entry entry : WATCHES.values()) {
                if (entry.service == watchService) {
                    entries.add(entry);
                }
            }
        }
        return entries;
    }

    /** Marks pending the watches whose file an event of this directory names. */
    private static void handle(WatchService watchService, WatchKey ready) {
        Path directory = (Path) ready.watchable();
        List<Path> names = new ArrayList<Path>();
        boolean overflow = false;
        for (java.nio.file.WatchEvent<?> event : ready.pollEvents()) {
            if (event.kind() == StandardWatchEventKinds.OVERFLOW) {
                overflow = true;
            } else if (event.context() instanceof Path) {
                names.add((Path) event.context());
            }
        }
        if (!ready.reset()) {
            LOG.warning("the directory " + directory + " can no longer be watched (removed?); "
                    + "its watches see no further change");
        }
        long now = System.nanoTime();
        for (Entry entry : entries(watchService)) {
            if (entry.directory.equals(directory)
                    && (overflow || names.contains(entry.fileName)
                            || names.contains(entry.markerName))) {
                entry.pending = true;
                entry.lastSeen = null;
                entry.stableSince = now;
            }
        }
    }

    /** The pending watches whose file has stayed the same for their settle time. */
    private static List<Entry> settled(WatchService watchService) {
        List<Entry> due = new ArrayList<Entry>();
        for (Entry entry : entries(watchService)) {
            if (!entry.pending) {
                continue;
            }
            long now = System.nanoTime();
            List<Object> seen;
            try {
                BasicFileAttributes attributes =
                        Files.readAttributes(entry.file, BasicFileAttributes.class);
                List<Object> facts = new ArrayList<Object>(3);
                facts.add(attributes.size());
                facts.add(attributes.lastModifiedTime());
                facts.add(attributes.fileKey());
                seen = facts;
            } catch (IOException | RuntimeException gone) {
                // Deleted or moved away: wait for the next event that names the file.
                entry.pending = false;
                continue;
            }
            if (!seen.equals(entry.lastSeen)) {
                entry.lastSeen = seen;
                entry.stableSince = now;
            } else if (now - entry.stableSince >= entry.watch.settleNanos()) {
                entry.pending = false;
                if (complete(entry)) {
                    due.add(entry);
                }
            }
        }
        return due;
    }

    /**
     * Whether the settled file is complete as far as its marker tells: true when there is no
     * marker, or the file's digest is the marker's (then kept in {@code entry.expected}). Reports
     * nothing otherwise: the watch waits for the next event of the file or of its marker.
     */
    private static boolean complete(Entry entry) {
        entry.expected = null;
        Path marker = entry.directory.resolve(entry.markerName);
        if (!Files.exists(marker)) {
            return true;
        }
        // Only regular files are read: opening a FIFO would block the one watch thread, and with
        // it every watch. Read at most one byte past the limit, whatever the size said.
        if (!Files.isRegularFile(marker) || !Files.isRegularFile(entry.file)) {
            LOG.fine("watch of key '" + entry.watch.getKey() + "': " + marker + " or "
                    + entry.file + " is not a regular file; waiting");
            return false;
        }
        byte[] text;
        try (InputStream in = Files.newInputStream(marker)) {
            byte[] buffer = new byte[MAX_MARKER_BYTES + 1];
            int length = 0;
            int n;
            while (length < buffer.length
                    && (n = in.read(buffer, length, buffer.length - length)) > 0) {
                length += n;
            }
            if (length > MAX_MARKER_BYTES) {
                LOG.fine("watch of key '" + entry.watch.getKey() + "': " + marker
                        + " is too large to be a digest; waiting");
                return false;
            }
            text = Arrays.copyOf(buffer, length);
        } catch (IOException e) {
            // Removed since: judged again at the next event.
            LOG.log(Level.FINE, "cannot read " + marker, e);
            return false;
        }
        byte[] expected = markerDigest(new String(text, StandardCharsets.UTF_8),
                entry.fileName.toString());
        if (expected == null) {
            LOG.fine("watch of key '" + entry.watch.getKey() + "': " + marker
                    + " holds no SHA-256 digest of " + entry.fileName + " (yet); waiting");
            return false;
        }
        byte[] actual;
        try {
            actual = digest(entry.file);
        } catch (IOException e) {
            LOG.log(Level.FINE, "cannot hash " + entry.file, e);
            return false;
        }
        if (!Arrays.equals(expected, actual)) {
            LOG.fine("watch of key '" + entry.watch.getKey() + "': " + entry.file
                    + " does not match " + marker + " (not finished?); waiting");
            return false;
        }
        entry.expected = expected;
        return true;
    }

    /**
     * The digest a marker gives for {@code fileName}: {@code sha256sum}'s line for that name
     * ({@code <hex>  <name>}, or {@code <hex> *<name>}), or its only line, or the digest alone;
     * {@code null} if there is none.
     */
    static byte[] markerDigest(String text, String fileName) {
        String[] lines = text.trim().split("\\r?\\n");
        for (String line : lines) {
            String[] parts = line.trim().split("\\s+", 2);
            String name = parts.length > 1 ? parts[1].trim() : "";
            if (name.startsWith("*")) {
                name = name.substring(1);
            }
            String base = name.substring(name.lastIndexOf('/') + 1);
            if (lines.length == 1 || base.equals(fileName)) {
                try {
                    return LoadOptions.parseSha256(parts[0]);
                } catch (IllegalArgumentException e) {
                    return null;
                }
            }
        }
        return null;
    }

    /** The SHA-256 of a file. */
    private static byte[] digest(Path file) throws IOException {
        MessageDigest sha256;
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
        byte[] buffer = new byte[64 * 1024];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buffer)) > 0) {
                sha256.update(buffer, 0, n);
            }
        }
        return sha256.digest();
    }

    /**
     * Tells the key's watch listener, if the key is watched, that the proxy rolled it back on
     * its own (an isolated version crashed within its probation). Runs on the thread that
     * delivers the native log.
     */
    static void rolledBack(String key, long generation, String reason) {
        Entry entry;
        synchronized (LOCK) {
            entry = WATCHES.get(key);
        }
        if (entry == null || entry.watch.isClosed()) {
            return;
        }
        WatchEvent event = new WatchEvent(key, entry.watch.getPath(), generation, null, reason);
        try {
            entry.listener.onReplace(event);
        } catch (Throwable e) {
            LOG.log(Level.WARNING, "the watch listener of key '" + key + "' threw on " + event, e);
        }
    }

    /** Replaces the watch's key from its file and tells the listener. */
    private static void fire(Entry entry) {
        Watch watch = entry.watch;
        String key = watch.getKey();
        long generation = -1;
        ProxySoException error = null;
        synchronized (entry.firing) {
            if (watch.isClosed()) {
                return;
            }
            try {
                generation = ProxySo.replace(key, watch.getPath(),
                        optionsOf(key).forWatch(entry.expected));
            } catch (ProxySoException e) {
                error = e;
            } catch (RuntimeException | ProxySoInternalError e) {
                error = new ProxySoException("cannot replace key '" + key + "' from watched '"
                        + watch.getPath() + "': " + e, key);
                error.initCause(e);
            }
        }
        if (error == null) {
            LOG.fine("watch of key '" + key + "': " + watch.getPath() + " changed, replaced: "
                    + "generation " + generation);
        } else {
            LOG.log(Level.FINE, "watch of key '" + key + "': " + watch.getPath()
                    + " changed, replace failed", error);
        }
        if (watch.isClosed()) {
            return;
        }
        WatchEvent event = new WatchEvent(key, watch.getPath(), generation, error, null);
        try {
            entry.listener.onReplace(event);
        } catch (Throwable e) {
            LOG.log(Level.WARNING, "the watch listener of key '" + key + "' threw on " + event, e);
        }
    }
}
