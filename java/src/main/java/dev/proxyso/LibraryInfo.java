package dev.proxyso;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * What is loaded under one key: an immutable snapshot taken when {@link ProxySo#info(String)} or
 * {@link ProxySo#list()} was called. A later {@code replace} or {@code unload} does not change an
 * instance already obtained.
 */
public final class LibraryInfo {
    /** The key. */
    private final String key;
    /** The generation of the version loaded under the key. */
    private final long generation;
    /** The source path as given to load or replace. */
    private final String path;
    /** The private copy that is actually mapped. */
    private final String snapshotPath;
    /** The plugin's own name. */
    private final String name;
    /** The plugin's own version string. */
    private final String version;
    /** The method names, the default one first; unmodifiable. */
    private final List<String> methods;
    /** Whether the host serialises calls to this plugin. */
    private final boolean serialized;
    /** Whether this version stays mapped after it retires. */
    private final boolean keptMapped;
    /** Versions of the key destroyed and closed so far while the key stayed loaded. */
    private final long retiredVersions;
    /** Of those, how many stayed mapped after dlclose although not kept on purpose. */
    private final long pinnedVersions;

    /**
     * Creates an instance. Called by native code with the JNI signature
     * <code>(Ljava/lang/String;JLjava/lang/String;Ljava/lang/String;Ljava/lang/String;
     * Ljava/lang/String;[Ljava/lang/String;ZZJJ)V</code> (one line),
     * so it must not throw: a {@code null} array is taken as no methods.
     *
     * @param key the key
     * @param generation the generation of the loaded version
     * @param path the source path as given
     * @param snapshotPath the private copy that is mapped
     * @param name the plugin's own name
     * @param version the plugin's own version string
     * @param methods the method names, the default one first
     * @param serialized whether calls are serialised
     * @param keptMapped whether this version stays mapped after it retires
     * @param retiredVersions versions of the key destroyed and closed while it stayed loaded
     * @param pinnedVersions of those, the ones that stayed mapped although not kept on purpose
     */
    LibraryInfo(String key, long generation, String path, String snapshotPath, String name,
            String version, String[] methods, boolean serialized, boolean keptMapped,
            long retiredVersions, long pinnedVersions) {
        this.key = key;
        this.generation = generation;
        this.path = path;
        this.snapshotPath = snapshotPath;
        this.name = name;
        this.version = version;
        this.methods = methods == null
                ? Collections.<String>emptyList()
                : Collections.unmodifiableList(new ArrayList<String>(Arrays.asList(methods)));
        this.serialized = serialized;
        this.keptMapped = keptMapped;
        this.retiredVersions = retiredVersions;
        this.pinnedVersions = pinnedVersions;
    }

    /**
     * Returns the key the library is loaded under.
     *
     * @return the key
     */
    public String getKey() {
        return key;
    }

    /**
     * Returns the generation of the loaded version: 1 after the first {@code load} of a key, larger
     * after every {@code replace}.
     *
     * @return the generation
     */
    public long getGeneration() {
        return generation;
    }

    /**
     * Returns the source path exactly as it was given to {@code load} or {@code replace}.
     *
     * @return the source path
     */
    public String getPath() {
        return path;
    }

    /**
     * Returns the path of the private snapshot of the source file that is actually mapped into the
     * process (it appears in {@code /proc/self/maps} while this version is loaded). Overwriting the
     * source file never changes the code that runs.
     *
     * @return the snapshot path
     */
    public String getSnapshotPath() {
        return snapshotPath;
    }

    /**
     * Returns the plugin's own name, from its descriptor.
     *
     * @return the plugin's name
     */
    public String getName() {
        return name;
    }

    /**
     * Returns the plugin's own version string, from its descriptor.
     *
     * @return the plugin's version
     */
    public String getVersion() {
        return version;
    }

    /**
     * Returns the plugin's method names in descriptor order; the first is the default method, run
     * by the {@code call} overloads that take no method name.
     *
     * @return an unmodifiable list of method names
     */
    public List<String> getMethods() {
        return methods;
    }

    /**
     * Tells whether the plugin asked the host to run at most one of its calls at a time.
     *
     * @return {@code true} if calls to this plugin are serialised
     */
    public boolean isSerialized() {
        return serialized;
    }

    /**
     * Tells whether this version stays mapped for the life of the process after it retires
     * ({@code RTLD_NODELETE}): because it was loaded with {@link LoadOptions#isKeepMapped()}, or
     * because the plugin's descriptor carries {@code PROXYSO_FLAG_KEEP_MAPPED}. Its
     * {@code destroy} hook still runs when it retires.
     *
     * @return {@code true} if this version is kept mapped on purpose
     */
    public boolean isKeptMapped() {
        return keptMapped;
    }

    /**
     * Returns how many earlier versions of this key have been replaced, destroyed and closed since
     * the key was loaded (the count starts again at each {@code load}). A replaced version still
     * draining its calls in flight is not counted yet
     * ({@link ProxySo#awaitRetired(String, long, java.util.concurrent.TimeUnit)} waits for it),
     * and a new version that failed to load never is.
     *
     * @return the number of retired and closed versions of this key
     */
    public long getRetiredVersions() {
        return retiredVersions;
    }

    /**
     * Returns how many of the {@linkplain #getRetiredVersions() retired versions} stayed mapped
     * after they were closed although they were not {@linkplain #isKeptMapped() kept mapped} on
     * purpose: something pins them in memory, such as a thread-local or {@code pthread_key}
     * destructor, a thread the plugin left running, or an {@code STB_GNU_UNIQUE} symbol (C++
     * built without {@code -fno-gnu-unique}). The native side logs a warning for each. A
     * non-zero count means the plugin breaks the rules of {@code include/proxyso.h}: every
     * replacement leaks a mapped copy of it.
     *
     * @return the number of retired versions that stayed mapped unintentionally
     */
    public long getPinnedVersions() {
        return pinnedVersions;
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof LibraryInfo)) {
            return false;
        }
        LibraryInfo that = (LibraryInfo) other;
        return generation == that.generation
                && serialized == that.serialized
                && keptMapped == that.keptMapped
                && retiredVersions == that.retiredVersions
                && pinnedVersions == that.pinnedVersions
                && equal(key, that.key)
                && equal(path, that.path)
                && equal(snapshotPath, that.snapshotPath)
                && equal(name, that.name)
                && equal(version, that.version)
                && methods.equals(that.methods);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {
            key, generation, path, snapshotPath, name, version, methods, serialized, keptMapped,
            retiredVersions, pinnedVersions,
        });
    }

    @Override
    public String toString() {
        return "LibraryInfo{key=" + key
                + ", generation=" + generation
                + ", path=" + path
                + ", snapshotPath=" + snapshotPath
                + ", name=" + name
                + ", version=" + version
                + ", methods=" + methods
                + ", serialized=" + serialized
                + ", keptMapped=" + keptMapped
                + ", retiredVersions=" + retiredVersions
                + ", pinnedVersions=" + pinnedVersions
                + "}";
    }

    private static boolean equal(Object a, Object b) {
        return a == null ? b == null : a.equals(b);
    }
}
