package dev.proxyso;

/**
 * The management interface of one loaded key, registered with the platform MBean server by
 * {@link ProxySo#load(String, String, LoadOptions) load} under the name
 * <code>dev.proxyso:type=Library,key=</code>{@link javax.management.ObjectName#quote(String)
 * ObjectName.quote}{@code (key)}, and unregistered by {@link ProxySo#unload(String) unload}. Every
 * attribute is read-only and read afresh from {@link ProxySo#info(String)}; the statistics are
 * those of {@link LibraryInfo#getStats()}, summed over every version since the key was loaded.
 *
 * <pre>{@code
 * MBeanServer server = ManagementFactory.getPlatformMBeanServer();
 * ObjectName name = new ObjectName("dev.proxyso:type=Library,key=" + ObjectName.quote("model"));
 * long calls = (Long) server.getAttribute(name, "Calls");
 * }</pre>
 *
 * <p>Should a getter run after the key was unloaded (a client that held on to the bean), it throws
 * {@link IllegalStateException}.
 *
 * <p>Thread-safety: thread-safe, as {@link ProxySo#info(String)} is. Exceptions: its getters throw
 * {@link IllegalStateException} only as said above.
 */
public interface LibraryMXBean {
    /**
     * Returns the key.
     *
     * @return the key
     */
    String getKey();

    /**
     * Returns the serving version's generation; see {@link LibraryInfo#getGeneration()}.
     *
     * @return the generation
     */
    long getGeneration();

    /**
     * Returns the serving version's source path; see {@link LibraryInfo#getPath()}.
     *
     * @return the source path
     */
    String getPath();

    /**
     * Returns the serving version's SHA-256 digest; see {@link LibraryInfo#getSha256()}.
     *
     * @return 64 lower-case hexadecimal digits
     */
    String getSha256();

    /**
     * Returns the plugin's own name; see {@link LibraryInfo#getName()}.
     *
     * @return the plugin's name
     */
    String getPluginName();

    /**
     * Returns the plugin's own version string; see {@link LibraryInfo#getVersion()}.
     *
     * @return the plugin's version
     */
    String getPluginVersion();

    /**
     * Returns how many calls returned; see {@link CallStats#getCalls()}.
     *
     * @return the number of calls
     */
    long getCalls();

    /**
     * Returns how many calls failed; see {@link CallStats#getFailedCalls()}.
     *
     * @return the number of failed calls
     */
    long getFailedCalls();

    /**
     * Returns how many calls are running; see {@link CallStats#getInFlight()}.
     *
     * @return the number of calls in flight
     */
    long getInFlight();

    /**
     * Returns the time all calls spent in the plugin; see {@link CallStats#getTotalCallNanos()}.
     *
     * @return nanoseconds
     */
    long getTotalCallNanos();

    /**
     * Returns the longest call; see {@link CallStats#getMaxCallNanos()}.
     *
     * @return nanoseconds
     */
    long getMaxCallNanos();

    /**
     * Returns the mean call time; see {@link CallStats#getMeanCallNanos()}.
     *
     * @return nanoseconds, 0 before the first call
     */
    long getMeanCallNanos();

    /**
     * Returns how long loading the serving version took; see
     * {@link GenerationStats#getLoadNanos()}.
     *
     * @return nanoseconds
     */
    long getLoadNanos();

    /**
     * Returns how many replacements succeeded; see {@link CallStats#getReplacements()}.
     *
     * @return the number of replacements
     */
    long getReplacements();

    /**
     * Returns how many rollbacks succeeded; see {@link CallStats#getRollbacks()}.
     *
     * @return the number of rollbacks
     */
    long getRollbacks();

    /**
     * Returns the last failure's message; see {@link CallStats#getLastError()}.
     *
     * @return the message, or {@code null} if nothing failed
     */
    String getLastError();

    /**
     * Returns how calls reach the native library in this JVM; see
     * {@link LibraryInfo#getCallPath()}.
     *
     * @return {@code "ffm"} or {@code "jni"}
     */
    String getCallPath();

    /**
     * Returns how many previous versions the key keeps; see
     * {@link LibraryInfo#getKeepVersions()}.
     *
     * @return the number of previous versions kept at most
     */
    int getKeepVersions();

    /**
     * Returns how many replaced versions were closed; see
     * {@link LibraryInfo#getRetiredVersions()}.
     *
     * @return the number of retired versions
     */
    long getRetiredVersions();

    /**
     * Returns how many retired versions stayed mapped unintentionally; see
     * {@link LibraryInfo#getPinnedVersions()}.
     *
     * @return the number of pinned versions
     */
    long getPinnedVersions();

    /**
     * Returns how many destroy hooks of retired versions are running; see
     * {@link LibraryInfo#getDestroysRunning()}.
     *
     * @return the number of destroy hooks running
     */
    long getDestroysRunning();

    /**
     * Returns how many destroy hooks ran longer than the slow-destroy limit; see
     * {@link LibraryInfo#getSlowDestroys()}.
     *
     * @return the number of slow destroy hooks
     */
    long getSlowDestroys();

    /**
     * Tells whether the serving version runs in a worker process; see
     * {@link LibraryInfo#isIsolated()}.
     *
     * @return {@code true} for an isolated version
     */
    boolean isIsolated();

    /**
     * Returns the pid of the worker serving the version; see {@link LibraryInfo#getWorkerPid()}.
     *
     * @return the worker's pid, or 0
     */
    int getWorkerPid();

    /**
     * Returns how many times workers of the key's isolated versions died unasked; see
     * {@link CallFigures#getCrashes()}.
     *
     * @return the number of worker crashes over the key's life
     */
    long getCrashes();
}
