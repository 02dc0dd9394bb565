package dev.proxyso;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * What is loaded under one key, and how it has been called: an immutable snapshot taken when
 * {@link ProxySo#info(String)} or {@link ProxySo#list()} was called. A later call, {@code replace},
 * {@code rollback} or {@code unload} does not change an instance already obtained.
 *
 * <p>Two instances are {@linkplain #equals(Object) equal} when they describe the same loaded
 * state: the same version of the same key, loaded the same way, with the same previous versions
 * kept and the same counts of retired versions. The call statistics ({@link #getStats()},
 * {@link #getGenerations()}) are not compared, since every call changes them, nor are the counts
 * of destroy hooks ({@link #getDestroysRunning()}, {@link #getSlowDestroys()}), which change as
 * retired versions close.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its methods throw
 * none.
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
    /** Destroy hooks of retired versions of the key running now. */
    private final long destroysRunning;
    /** Destroy hooks of the key's versions that ran longer than the slow-destroy limit. */
    private final long slowDestroys;
    /** The SHA-256 digest of the serving version's file, lower-case hex. */
    private final String sha256;
    /** The key's call statistics since it was loaded. */
    private final CallStats stats;
    /** The serving generation first, then replaced ones still draining; unmodifiable. */
    private final List<GenerationStats> generations;
    /** How many previous versions the key keeps for rollback. */
    private final int keepVersions;
    /** The kept previous versions, the one a rollback restores first; unmodifiable. */
    private final List<PreviousVersion> previousVersions;
    /** Whether the serving version runs in a worker process. */
    private final boolean isolated;
    /** The pid of its worker serving now, 0 if none. */
    private final int workerPid;
    /** How calls reach libproxy.so in this JVM: "ffm" or "jni". */
    private final String callPath;

    /**
     * Creates an instance. Called by native code with the JNI signature
     * <code>(Ljava/lang/String;JLjava/lang/String;Ljava/lang/String;Ljava/lang/String;
     * Ljava/lang/String;[Ljava/lang/String;ZZJJLjava/lang/String;[JLjava/lang/String;[J
     * [Ljava/lang/String;I[J[Ljava/lang/String;[Ljava/lang/String;)V</code> (one line), so it
     * must not throw: a {@code null} array is taken as empty, and an entry missing from an array
     * shorter than it should be as 0 or {@code null}.
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
     * @param sha256 the serving version's SHA-256 digest, lower-case hex
     * @param keyStats the key's totals, each at its {@code NativeContract.KEY_STATS_} index
     * @param lastError the last failed call's, replace's or rollback's message, or {@code null}
     * @param generations {@code NativeContract.GENERATION_STATS_LEN} longs a generation, each
     *     figure at its {@code NativeContract.GENERATION_STATS_} index, the serving one first, then
     *     replaced ones still draining, newest first
     * @param generationDigests the SHA-256 digest of each generation, in the same order
     * @param keepVersions how many previous versions the key keeps
     * @param previousGenerations the kept previous versions' generations, most recent first
     * @param previousPaths their source paths as given
     * @param previousDigests their SHA-256 digests
     */
    LibraryInfo(String key, long generation, String path, String snapshotPath, String name,
            String version, String[] methods, boolean serialized, boolean keptMapped,
            long retiredVersions, long pinnedVersions, String sha256, long[] keyStats,
            String lastError, long[] generations, String[] generationDigests, int keepVersions,
            long[] previousGenerations, String[] previousPaths, String[] previousDigests) {
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
        this.destroysRunning = at(keyStats, NativeContract.KEY_STATS_DESTROYS_RUNNING);
        this.isolated = at(keyStats, NativeContract.KEY_STATS_ISOLATED) != 0;
        this.workerPid = (int) at(keyStats, NativeContract.KEY_STATS_WORKER_PID);
        this.slowDestroys = at(keyStats, NativeContract.KEY_STATS_SLOW_DESTROYS);
        this.sha256 = sha256;
        this.stats = new CallStats(at(keyStats, NativeContract.KEY_STATS_CALLS),
                at(keyStats, NativeContract.KEY_STATS_FAILED),
                at(keyStats, NativeContract.KEY_STATS_IN_FLIGHT),
                at(keyStats, NativeContract.KEY_STATS_TOTAL_NANOS),
                at(keyStats, NativeContract.KEY_STATS_MAX_NANOS),
                at(keyStats, NativeContract.KEY_STATS_CRASHES),
                at(keyStats, NativeContract.KEY_STATS_REPLACEMENTS),
                at(keyStats, NativeContract.KEY_STATS_ROLLBACKS), lastError);
        this.generations = generationStats(generations, generationDigests);
        this.keepVersions = keepVersions;
        this.callPath = CallPath.name();
        this.previousVersions = previousVersions(previousGenerations, previousPaths,
                previousDigests);
    }

    private static long at(long[] values, int index) {
        return values != null && index < values.length ? values[index] : 0;
    }

    private static String at(String[] values, int index) {
        return values != null && index < values.length ? values[index] : null;
    }

    private static List<GenerationStats> generationStats(long[] values, String[] digests) {
        int stride = NativeContract.GENERATION_STATS_LEN;
        int count = values == null ? 0 : values.length / stride;
        List<GenerationStats> list = new ArrayList<GenerationStats>(count);
        for (int i = 0; i < count; i++) {
            int at = stride * i;
            list.add(new GenerationStats(values[at + NativeContract.GENERATION_STATS_GENERATION],
                    at(digests, i), values[at + NativeContract.GENERATION_STATS_CALLS],
                    values[at + NativeContract.GENERATION_STATS_FAILED],
                    values[at + NativeContract.GENERATION_STATS_IN_FLIGHT],
                    values[at + NativeContract.GENERATION_STATS_TOTAL_NANOS],
                    values[at + NativeContract.GENERATION_STATS_MAX_NANOS],
                    values[at + NativeContract.GENERATION_STATS_CRASHES],
                    values[at + NativeContract.GENERATION_STATS_LOAD_NANOS]));
        }
        return Collections.unmodifiableList(list);
    }

    private static List<PreviousVersion> previousVersions(long[] generations, String[] paths,
            String[] digests) {
        int count = generations == null ? 0 : generations.length;
        List<PreviousVersion> list = new ArrayList<PreviousVersion>(count);
        for (int i = 0; i < count; i++) {
            list.add(new PreviousVersion(generations[i], at(paths, i), at(digests, i)));
        }
        return Collections.unmodifiableList(list);
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
     * Tells whether the serving version runs in a worker process of its own; see
     * {@link LoadOptions#isIsolated()}.
     *
     * @return {@code true} for an isolated version
     */
    public boolean isIsolated() {
        return isolated;
    }

    /**
     * Returns the process id of the worker serving the version now; it changes when a crashed
     * worker is replaced by a new one. Not part of {@link #equals(Object)}.
     *
     * @return the worker's pid, or 0 for a version in the JVM (or while no worker runs: after a
     *     crash, until the next call starts one)
     */
    public int getWorkerPid() {
        return workerPid;
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

    /**
     * Returns how many {@code destroy} hooks of retired versions of this key are running now
     * (each with the {@code dlclose} that follows it). A retired version whose calls have all
     * returned is destroyed on a thread of the host's; keys retire independently, so a
     * {@code destroy} that blocks holds up only later versions of its own key. A count that
     * stays above 0 while {@link ProxySo#awaitRetired(String, long,
     * java.util.concurrent.TimeUnit) awaitRetired} times out points at a {@code destroy} that
     * does not return.
     *
     * @return the number of destroy hooks of this key running
     */
    public long getDestroysRunning() {
        return destroysRunning;
    }

    /**
     * Returns how many {@code destroy} hooks of this key's versions ran longer than the
     * slow-destroy limit (5 seconds), counted when they pass it, whether they have returned since
     * or not. The native side logs a warning naming the key and generation for each, and a note
     * when a slow one returns. A non-zero count means the plugin's {@code destroy} waits on
     * something: its retired versions stay loaded meanwhile.
     *
     * @return the number of slow destroy hooks of this key
     */
    public long getSlowDestroys() {
        return slowDestroys;
    }

    /**
     * Returns the SHA-256 digest of the serving version's file, computed from the private copy
     * that was opened, so it is the digest of the code that runs.
     *
     * @return 64 lower-case hexadecimal digits
     */
    public String getSha256() {
        return sha256;
    }

    /**
     * Returns the key's call statistics, summed over every version since the key was loaded,
     * with its counts of replacements and rollbacks and its last error.
     *
     * @return the key's statistics
     */
    public CallStats getStats() {
        return stats;
    }

    /**
     * Returns the call statistics of each version that is still loaded: the serving one first,
     * then the replaced ones whose calls are still running (draining), newest first. Versions
     * that retired are gone from the list; their calls stay in {@link #getStats()}.
     *
     * @return an unmodifiable list, the serving version first
     */
    public List<GenerationStats> getGenerations() {
        return generations;
    }

    /**
     * Returns how many previous versions the key keeps for {@link ProxySo#rollback(String)}, as
     * set by {@link LoadOptions.Builder#keepVersions(int)} (1 unless set).
     *
     * @return the number of previous versions the key keeps at most
     */
    public int getKeepVersions() {
        return keepVersions;
    }

    /**
     * Returns the previous versions kept for {@link ProxySo#rollback(String)}, the one the next
     * rollback restores first.
     *
     * @return an unmodifiable list, empty if no rollback is possible
     */
    public List<PreviousVersion> getPreviousVersions() {
        return previousVersions;
    }

    /**
     * Tells how calls by key and by {@link LibraryHandle} reach the native library in this JVM.
     * On JDK 22 and later they go through FFM downcall handles ({@code java.lang.foreign}) when
     * native access is enabled for proxyso ({@code --enable-native-access=ALL-UNNAMED} on the
     * class path, {@code --enable-native-access=dev.proxyso} on the module path) and the system
     * property {@code proxyso.ffm} is not {@code false}; otherwise, and on JDK 8 to 21, through
     * JNI. On the FFM path a method whose calls on inputs of a given size have been measured to
     * be short is called through a critical downcall, which passes Java arrays in place; other
     * calls go through ordinary downcalls. The answer is the same for every key of a JVM, and is
     * not part of {@link #equals(Object)}.
     *
     * @return {@code "ffm"} or {@code "jni"}
     */
    public String getCallPath() {
        return callPath;
    }

    /**
     * Tells whether another instance describes the same loaded state: every property except the
     * call statistics ({@link #getStats()} and {@link #getGenerations()}), the counts of
     * destroy hooks ({@link #getDestroysRunning()} and {@link #getSlowDestroys()}) and the
     * worker's pid ({@link #getWorkerPid()}).
     *
     * @param other the object to compare with
     * @return {@code true} if {@code other} is a {@code LibraryInfo} of the same loaded state
     */
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
                && isolated == that.isolated
                && retiredVersions == that.retiredVersions
                && pinnedVersions == that.pinnedVersions
                && equal(key, that.key)
                && equal(path, that.path)
                && equal(snapshotPath, that.snapshotPath)
                && equal(name, that.name)
                && equal(version, that.version)
                && methods.equals(that.methods)
                && equal(sha256, that.sha256)
                && keepVersions == that.keepVersions
                && previousVersions.equals(that.previousVersions);
    }

    /**
     * Returns a hash code consistent with {@link #equals(Object)}: of every property except the
     * call statistics, the counts of destroy hooks and the worker's pid.
     *
     * @return the hash code
     */
    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {
            key, generation, path, snapshotPath, name, version, methods, serialized, keptMapped,
            retiredVersions, pinnedVersions, sha256, keepVersions, previousVersions, isolated,
        });
    }

    /**
     * Describes the instance, statistics included.
     *
     * @return every property, for logs
     */
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
                + ", isolated=" + isolated
                + ", workerPid=" + workerPid
                + ", retiredVersions=" + retiredVersions
                + ", pinnedVersions=" + pinnedVersions
                + ", destroysRunning=" + destroysRunning
                + ", slowDestroys=" + slowDestroys
                + ", sha256=" + sha256
                + ", keepVersions=" + keepVersions
                + ", previousVersions=" + previousVersions
                + ", callPath=" + callPath
                + ", stats=" + stats
                + ", generations=" + generations
                + "}";
    }

    private static boolean equal(Object a, Object b) {
        return a == null ? b == null : a.equals(b);
    }
}
