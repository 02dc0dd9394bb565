package dev.proxyso;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * How {@link ProxySo#load(String, String, LoadOptions)} and
 * {@link ProxySo#replace(String, String, LoadOptions)} load one version of a plugin: the
 * configuration bytes handed to its {@code init}, the digest the file must have, how many
 * previous versions the key keeps for {@link ProxySo#rollback(String)}, whether it runs in a
 * worker process of its own ({@link #isIsolated()}) and with what limits, and two guards a careful
 * host relaxes only for a plugin that needs it. Immutable and thread-safe; build one with
 * {@link #builder()}.
 *
 * <pre>{@code
 * LoadOptions options = LoadOptions.builder()
 *         .config("threshold=0.8".getBytes(StandardCharsets.UTF_8))
 *         .sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
 *         .keepVersions(3)        // three rollbacks possible
 *         .keepMapped(true)       // the plugin registers pthread_key destructors
 *         .preflight(true)        // loaded in a child process first: a crash fails the load
 *         .build();
 * ProxySo.load("model", "/opt/models/libdetector.so", options);
 *
 * LoadOptions contained = LoadOptions.builder()
 *         .isolated(true)                          // in a worker process: a crash costs a call
 *         .callTimeout(2, TimeUnit.SECONDS)        // a hung call kills the worker
 *         .memoryLimit(4L << 30)                   // 4 GiB for the plugin
 *         .rollbackOnCrash(true)                   // a new version that crashes early rolls back
 *         .build();
 * }</pre>
 *
 * <p>Exceptions: the getters throw none; {@link Builder}'s setters throw
 * {@link NullPointerException} or {@link IllegalArgumentException} for a bad value, as each says.
 */
public final class LoadOptions {
    private static final byte[] NO_CONFIG = new byte[0];
    /** The most previous versions a key can keep for rollback. */
    public static final int MAX_KEEP_VERSIONS = 64;
    /** {@link #getKeepVersions()} when it was not set: the key's own setting stays. */
    public static final int KEEP_VERSIONS_DEFAULT = NativeContract.KEEP_VERSIONS_UNCHANGED;
    /** {@link #getProbation(TimeUnit)} when it was not set: 60 seconds. */
    public static final long PROBATION_DEFAULT_SECONDS = 60;
    private static final LoadOptions DEFAULTS = new Builder().build();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /** The configuration bytes; never exposed, only copies of it. */
    private final byte[] config;
    /** Whether every retired version of this load stays mapped for the life of the process. */
    private final boolean keepMapped;
    /** Whether a plugin may change a signal handler. */
    private final boolean allowSignalHandlers;
    /** The file's expected SHA-256 digest, 32 bytes, or {@code null}; never exposed. */
    private final byte[] sha256;
    /** Previous versions kept for rollback, or {@link #KEEP_VERSIONS_DEFAULT}. */
    private final int keepVersions;
    /** Whether every call of this version is timed for its statistics. */
    private final boolean exactTiming;
    /** Whether the file is first loaded in a child process. */
    private final boolean preflight;
    /** Whether the plugin runs in a worker process of its own. */
    private final boolean isolated;
    /** An isolated call's timeout in nanoseconds; 0 for none. */
    private final long callTimeoutNanos;
    /** An isolated worker's memory allowance in bytes; 0 for none. */
    private final long memoryLimit;
    /** Whether a crash within the probation rolls the key back. */
    private final boolean rollbackOnCrash;
    /** The probation in nanoseconds. */
    private final long probationNanos;

    private LoadOptions(Builder b) {
        this.config = b.config;
        this.keepMapped = b.keepMapped;
        this.allowSignalHandlers = b.allowSignalHandlers;
        this.sha256 = b.sha256;
        this.keepVersions = b.keepVersions;
        this.exactTiming = b.exactTiming;
        this.preflight = b.preflight;
        this.isolated = b.isolated;
        this.callTimeoutNanos = b.callTimeoutNanos;
        this.memoryLimit = b.memoryLimit;
        this.rollbackOnCrash = b.rollbackOnCrash;
        this.probationNanos = b.probationNanos;
    }

    /** A builder holding these options, to derive others from. */
    private Builder toBuilder() {
        Builder b = new Builder();
        b.config = config;
        b.keepMapped = keepMapped;
        b.allowSignalHandlers = allowSignalHandlers;
        b.sha256 = sha256;
        b.keepVersions = keepVersions;
        b.exactTiming = exactTiming;
        b.preflight = preflight;
        b.isolated = isolated;
        b.callTimeoutNanos = callTimeoutNanos;
        b.memoryLimit = memoryLimit;
        b.rollbackOnCrash = rollbackOnCrash;
        b.probationNanos = probationNanos;
        b.probationSet = true;
        return b;
    }

    /**
     * Returns the default options: empty configuration, no digest check, the key's number of kept
     * versions left as it is (1 for a new key), retired versions unmapped, signal handlers
     * guarded.
     *
     * @return the default options
     */
    public static LoadOptions defaults() {
        return DEFAULTS;
    }

    /**
     * Returns a builder that starts from the defaults.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns the configuration bytes handed to the plugin's {@code init}.
     *
     * @return a copy of the configuration bytes; empty by default
     */
    public byte[] getConfig() {
        return config.clone();
    }

    /**
     * Tells whether every version loaded with these options stays mapped for the life of the
     * process after it retires ({@code RTLD_NODELETE}). Its {@code destroy} hook still runs when it
     * retires; only its code and data stay in memory, so that a thread-local or
     * {@code pthread_key} destructor it registered, or a thread it left running, never runs in
     * unmapped code. Each such version costs its mapped size until the process exits.
     *
     * @return {@code true} if retired versions stay mapped; {@code false} by default
     */
    public boolean isKeepMapped() {
        return keepMapped;
    }

    /**
     * Tells whether a plugin may change a signal handler (of any signal: {@code SIGSEGV},
     * {@code SIGBUS}, {@code SIGQUIT}, {@code SIGTERM}, {@code SIGINT}, {@code SIGHUP}, ... up to
     * the last real-time signal) while it is loaded and initialised. By default such a load fails
     * with a {@link LibraryLoadException} naming the signals and the previous handlers are
     * restored; with this option the plugin's handlers are kept, the change logged, and the
     * version kept mapped. The JVM turns null dereferences and stack overflows into exceptions,
     * and reaches safepoints, through its handlers, and runs its shutdown hooks on
     * {@code SIGTERM}, {@code SIGINT} and {@code SIGHUP}, so a plugin's handler must hand every
     * signal it does not own back to the previous handler.
     *
     * @return {@code true} if changed signal handlers are kept; {@code false} by default
     */
    public boolean isAllowSignalHandlers() {
        return allowSignalHandlers;
    }

    /**
     * Returns the SHA-256 digest the plugin file must have. When it is set, {@code load} and
     * {@code replace} hash the private copy they are about to open (what is checked is what is
     * mapped) and refuse a file whose digest differs with a {@link LibraryLoadException} naming
     * the path, the expected and the actual digest; nothing changes then.
     *
     * @return the expected digest as 64 lower-case hexadecimal digits, or {@code null} if the file
     *     is not checked (the default)
     */
    public String getSha256() {
        return sha256 == null ? null : hex(sha256);
    }

    /**
     * Returns how many previous versions the key keeps for {@link ProxySo#rollback(String)} from
     * this load or replace on. Each kept version costs its private copy on disk, not memory:
     * a rollback opens it again. A replace drops the oldest kept version beyond this number.
     * The copy is made when a version is loaded, so a version loaded while its key kept none
     * can never be rolled back to, even once the key keeps versions again.
     *
     * @return 0 to {@value #MAX_KEEP_VERSIONS}, or {@value #KEEP_VERSIONS_DEFAULT} (the default)
     *     to leave the key's setting as it is: 1 for a key being loaded, unchanged on a replace
     */
    public int getKeepVersions() {
        return keepVersions;
    }

    /**
     * Tells whether every call of this version is timed for its statistics
     * ({@link CallStats#getTotalCallNanos()}, {@link CallStats#getMaxCallNanos()}). Every call
     * is always counted; by default, while calls take less than about 2 microseconds, only a
     * sample of them is timed (reading the clock twice would cost a fifth of such a call), so the
     * total is an estimate and the maximum can miss a rare slow call among fast ones. Calls of a
     * few microseconds and more are all timed either way. This option times every call, for about
     * 20 nanoseconds more per call.
     *
     * @return {@code true} if every call is timed; {@code false} by default
     */
    public boolean isExactTiming() {
        return exactTiming;
    }

    /**
     * Tells whether the plugin file is first loaded in a short-lived child process, the
     * {@code proxyso-worker} executable named by the system property {@code proxyso.worker}.
     * The child {@code dlopen}s the very private copy that is then opened in the JVM, looks up
     * the plugin descriptor and checks its ABI version; it never runs the plugin's {@code init}.
     * If the child is killed by a signal (a library whose constructors crash, or a corrupt file
     * that crashes the dynamic linker), exits with an error or takes longer than 30 seconds, the
     * load fails with a {@link LibraryLoadException} naming the signal or the exit and the end
     * of the child's output, and the JVM never opens the file. With no worker configured such a
     * load fails too. It costs a process start and a second {@code dlopen}, a few milliseconds;
     * {@link ProxySo#watch(String, String, WatchListener) watch} always asks for it.
     *
     * @return {@code true} if the file is loaded in a child process first; {@code false} by
     *     default
     */
    public boolean isPreflight() {
        return preflight;
    }

    /**
     * Tells whether the plugin runs in a worker process of its own instead of the JVM. The
     * worker ({@code proxyso-worker}, shipped in the jar beside libproxy.so and extracted the
     * same way; the system property {@code proxyso.worker} names another) loads the plugin as
     * the JVM would and serves its calls through shared memory, one copy each way, many at
     * once (one at a time for a plugin that asks for its calls to be serialised). When it dies
     * (a crash, {@code abort}, {@code exit}, running out of memory), every call in it throws a
     * {@link PluginCrashedException} and the next call starts a new worker for the same
     * version: same file, same configuration, same generation. After three crashes within ten
     * seconds, calls throw at once until ten seconds have passed since the first of them. A
     * call and its output may take up to 256 MiB together. {@code load}, {@code replace},
     * {@code rollback}, {@code unload}, statistics and logging behave as for a plugin in the
     * JVM; a replace starts the new version's worker before the swap, and a retired version's
     * worker runs the plugin's {@code destroy} and exits once its last call returned.
     *
     * @return {@code true} if the plugin runs in a worker process; {@code false} by default
     */
    public boolean isIsolated() {
        return isolated;
    }

    /**
     * Returns an isolated call's timeout: a call running longer throws a
     * {@link PluginTimeoutException}, and its worker is killed (the only way to stop native
     * code) and started again at the next call; other calls in that worker throw a
     * {@link PluginCrashedException} naming the timeout.
     *
     * @param unit the unit of the answer
     * @return the timeout, or 0 for none (the default)
     * @throws NullPointerException if {@code unit} is {@code null}
     */
    public long getCallTimeout(TimeUnit unit) {
        return unit.convert(callTimeoutNanos, TimeUnit.NANOSECONDS);
    }

    /**
     * Returns an isolated worker's memory limit: the address space its plugin may map beyond
     * what the worker has when it starts (its own code and the shared memory it calls through)
     * and the stacks of its serving threads. A plugin that needs more fails to allocate in the
     * worker, which usually ends it: a {@link PluginCrashedException}, never harm to the JVM.
     *
     * @return the limit in bytes, or 0 for none (the default)
     */
    public long getMemoryLimit() {
        return memoryLimit;
    }

    /**
     * Tells whether an isolated version whose worker crashes within its probation (the time
     * since a replace or rollback put it in service) rolls the key back to the previous kept
     * version, as {@link ProxySo#rollback(String)} would (a new generation), logged at
     * {@code WARNING} and reported to the key's watch listener, if any. With no previous
     * version kept, the worker is restarted as after any crash.
     *
     * @return {@code true} if a crash in probation rolls back; {@code false} by default
     */
    public boolean isRollbackOnCrash() {
        return rollbackOnCrash;
    }

    /**
     * Returns the probation of {@link #isRollbackOnCrash()}.
     *
     * @param unit the unit of the answer
     * @return the probation; {@value #PROBATION_DEFAULT_SECONDS} seconds by default
     * @throws NullPointerException if {@code unit} is {@code null}
     */
    public long getProbation(TimeUnit unit) {
        return unit.convert(probationNanos, TimeUnit.NANOSECONDS);
    }

    /**
     * These options' isolation limits as {@link NativeBridge} takes them, or {@code null} when
     * the load is not isolated.
     */
    long[] limits() {
        if (!isolated) {
            return null;
        }
        long[] limits = new long[NativeContract.LIMITS_LEN];
        limits[NativeContract.LIMITS_CALL_TIMEOUT_NANOS] = callTimeoutNanos;
        limits[NativeContract.LIMITS_MEMORY_LIMIT] = memoryLimit;
        limits[NativeContract.LIMITS_PROBATION_NANOS] = probationNanos;
        return limits;
    }

    /** The configuration bytes without a copy, for {@link ProxySo} only. */
    byte[] config() {
        return config;
    }

    /** The expected digest without a copy, or {@code null}; for {@link ProxySo} only. */
    byte[] sha256() {
        return sha256;
    }

    /**
     * These options without the expected digest, which names one file: what a watch replaces
     * with after the file changed.
     */
    LoadOptions withoutSha256() {
        if (sha256 == null) {
            return this;
        }
        Builder b = toBuilder();
        b.sha256 = null;
        return new LoadOptions(b);
    }

    /**
     * These options as a watch replaces with: with a pre-flight (an isolated load needs none:
     * its worker is one), and with {@code sha256} (32 bytes, or {@code null} for none) as the
     * expected digest.
     */
    LoadOptions forWatch(byte[] sha256) {
        Builder b = toBuilder();
        b.sha256 = sha256;
        b.preflight = !isolated;
        return new LoadOptions(b);
    }

    /** These options as {@link NativeBridge} option bits. */
    int bits() {
        return (keepMapped ? NativeContract.OPTION_KEEP_MAPPED : 0)
                | (allowSignalHandlers ? NativeContract.OPTION_ALLOW_SIGNAL_HANDLERS : 0)
                | (exactTiming ? NativeContract.OPTION_EXACT_TIMING : 0)
                | (preflight ? NativeContract.OPTION_PREFLIGHT : 0)
                | (isolated ? NativeContract.OPTION_ISOLATED : 0)
                | (rollbackOnCrash ? NativeContract.OPTION_ROLLBACK_ON_CRASH : 0);
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof LoadOptions)) {
            return false;
        }
        LoadOptions that = (LoadOptions) other;
        return keepMapped == that.keepMapped
                && allowSignalHandlers == that.allowSignalHandlers
                && keepVersions == that.keepVersions
                && exactTiming == that.exactTiming
                && preflight == that.preflight
                && isolated == that.isolated
                && callTimeoutNanos == that.callTimeoutNanos
                && memoryLimit == that.memoryLimit
                && rollbackOnCrash == that.rollbackOnCrash
                && probationNanos == that.probationNanos
                && Arrays.equals(config, that.config)
                && Arrays.equals(sha256, that.sha256);
    }

    @Override
    public int hashCode() {
        int hash = Arrays.hashCode(config);
        hash = 31 * hash + (keepMapped ? 1 : 0);
        hash = 31 * hash + (allowSignalHandlers ? 1 : 0);
        hash = 31 * hash + Arrays.hashCode(sha256);
        hash = 31 * hash + (exactTiming ? 1 : 0);
        hash = 31 * hash + (preflight ? 1 : 0);
        hash = 31 * hash + (isolated ? 1 : 0);
        hash = 31 * hash + Long.hashCode(callTimeoutNanos);
        hash = 31 * hash + Long.hashCode(memoryLimit);
        hash = 31 * hash + (rollbackOnCrash ? 1 : 0);
        hash = 31 * hash + Long.hashCode(probationNanos);
        return 31 * hash + keepVersions;
    }

    /**
     * Describes the options; the configuration appears as its length only, since it may hold
     * secrets.
     *
     * @return a description such as {@code LoadOptions{config=12 bytes, sha256=null,
     *     keepVersions=-1, keepMapped=true, allowSignalHandlers=false, exactTiming=false,
     *     preflight=false, isolated=false}}, and for an isolated load its limits
     */
    @Override
    public String toString() {
        return "LoadOptions{config=" + config.length + " bytes"
                + ", sha256=" + getSha256()
                + ", keepVersions=" + keepVersions
                + ", keepMapped=" + keepMapped
                + ", allowSignalHandlers=" + allowSignalHandlers
                + ", exactTiming=" + exactTiming
                + ", preflight=" + preflight
                + ", isolated=" + isolated
                + (isolated ? ", callTimeoutMillis="
                        + TimeUnit.NANOSECONDS.toMillis(callTimeoutNanos)
                        + ", memoryLimit=" + memoryLimit
                        + ", rollbackOnCrash=" + rollbackOnCrash
                        + ", probationMillis=" + TimeUnit.NANOSECONDS.toMillis(probationNanos)
                        : "")
                + "}";
    }

    /** Lower-case hexadecimal digits of bytes. */
    static String hex(byte[] bytes) {
        char[] chars = new char[bytes.length * 2];
        for (int i = 0; i < bytes.length; i++) {
            chars[2 * i] = HEX[(bytes[i] >> 4) & 0xf];
            chars[2 * i + 1] = HEX[bytes[i] & 0xf];
        }
        return new String(chars);
    }

    /** The 32 bytes of a SHA-256 digest written as 64 hexadecimal digits, either case. */
    static byte[] parseSha256(String hex) {
        if (hex == null) {
            throw new NullPointerException("sha256 must not be null");
        }
        if (hex.length() != 64) {
            throw new IllegalArgumentException("sha256 must be 64 hexadecimal digits, not "
                    + hex.length() + " characters: \"" + hex + "\"");
        }
        byte[] bytes = new byte[32];
        for (int i = 0; i < 64; i++) {
            int digit = Character.digit(hex.charAt(i), 16);
            // Character.digit also accepts non-ASCII digits; a digest is written in ASCII.
            if (digit < 0 || hex.charAt(i) > 'f') {
                throw new IllegalArgumentException("sha256 must be 64 hexadecimal digits; "
                        + "character " + i + " of \"" + hex + "\" is not one");
            }
            bytes[i / 2] = (byte) (bytes[i / 2] | (i % 2 == 0 ? digit << 4 : digit));
        }
        return bytes;
    }

    /**
     * Builds {@link LoadOptions}. Every setting starts at its default.
     *
     * <p>Thread-safety: not thread-safe; use one builder from one thread (the options it builds
     * are immutable and thread-safe). Exceptions: a setter throws {@link NullPointerException} or
     * {@link IllegalArgumentException} for a bad value, as each says.
     */
    public static final class Builder {
        private byte[] config = NO_CONFIG;
        private boolean keepMapped;
        private boolean allowSignalHandlers;
        private boolean exactTiming;
        private boolean preflight;
        private byte[] sha256;
        private int keepVersions = KEEP_VERSIONS_DEFAULT;
        private boolean isolated;
        private long callTimeoutNanos;
        private long memoryLimit;
        private boolean rollbackOnCrash;
        private long probationNanos = TimeUnit.SECONDS.toNanos(PROBATION_DEFAULT_SECONDS);
        private boolean probationSet;

        private Builder() {
        }

        /**
         * Sets the configuration bytes handed to the plugin's {@code init}.
         *
         * @param config the configuration bytes; copied, so later changes to the array do not
         *     reach the options
         * @return this builder
         * @throws NullPointerException if {@code config} is {@code null}
         */
        public Builder config(byte[] config) {
            if (config == null) {
                throw new NullPointerException("config must not be null");
            }
            this.config = config.length == 0 ? NO_CONFIG : config.clone();
            return this;
        }

        /**
         * Keeps every retired version of this load mapped for the life of the process, for a
         * plugin that registers thread-local or {@code pthread_key} destructors or leaves threads
         * behind; see {@link LoadOptions#isKeepMapped()}.
         *
         * @param keepMapped {@code true} to keep retired versions mapped
         * @return this builder
         */
        public Builder keepMapped(boolean keepMapped) {
            this.keepMapped = keepMapped;
            return this;
        }

        /**
         * Lets the plugin change the JVM's signal handlers during load and init, with a logged
         * warning instead of a failed load; see {@link LoadOptions#isAllowSignalHandlers()}.
         *
         * @param allowSignalHandlers {@code true} to keep a changed signal handler
         * @return this builder
         */
        public Builder allowSignalHandlers(boolean allowSignalHandlers) {
            this.allowSignalHandlers = allowSignalHandlers;
            return this;
        }

        /**
         * Times every call of this version for its statistics, instead of a sample of the calls
         * shorter than about 2 microseconds; see {@link LoadOptions#isExactTiming()}.
         *
         * @param exactTiming {@code true} to time every call
         * @return this builder
         */
        public Builder exactTiming(boolean exactTiming) {
            this.exactTiming = exactTiming;
            return this;
        }

        /**
         * Loads the plugin file in a short-lived child process first, so that a file whose
         * loading crashes (a constructor that faults, a file corrupt or half written) fails the
         * load instead of killing the JVM; see {@link LoadOptions#isPreflight()}.
         *
         * @param preflight {@code true} to load the file in a child process first
         * @return this builder
         */
        public Builder preflight(boolean preflight) {
            this.preflight = preflight;
            return this;
        }

        /**
         * Sets the SHA-256 digest the plugin file must have; see {@link LoadOptions#getSha256()}.
         *
         * @param hex the digest as 64 hexadecimal digits, upper or lower case (what
         *     {@code sha256sum} prints)
         * @return this builder
         * @throws NullPointerException if {@code hex} is {@code null}
         * @throws IllegalArgumentException if {@code hex} is not 64 hexadecimal digits
         */
        public Builder sha256(String hex) {
            this.sha256 = parseSha256(hex);
            return this;
        }

        /**
         * Sets how many previous versions the key keeps for {@link ProxySo#rollback(String)}; see
         * {@link LoadOptions#getKeepVersions()}. Not set, a load keeps 1 and a replace leaves the
         * key's number as it is.
         *
         * @param keepVersions 0 (no rollback) to {@value LoadOptions#MAX_KEEP_VERSIONS}
         * @return this builder
         * @throws IllegalArgumentException if {@code keepVersions} is negative or larger than
         *     {@value LoadOptions#MAX_KEEP_VERSIONS}
         */
        public Builder keepVersions(int keepVersions) {
            if (keepVersions < 0 || keepVersions > MAX_KEEP_VERSIONS) {
                throw new IllegalArgumentException("keepVersions must be 0 to "
                        + MAX_KEEP_VERSIONS + ", not " + keepVersions);
            }
            this.keepVersions = keepVersions;
            return this;
        }

        /**
         * Runs the plugin in a worker process of its own; see {@link LoadOptions#isIsolated()}.
         *
         * @param isolated {@code true} to run the plugin in a worker process
         * @return this builder
         */
        public Builder isolated(boolean isolated) {
            this.isolated = isolated;
            return this;
        }

        /**
         * Sets an isolated call's timeout; see {@link LoadOptions#getCallTimeout(TimeUnit)}.
         *
         * @param timeout the timeout, positive
         * @param unit its unit
         * @return this builder
         * @throws NullPointerException if {@code unit} is {@code null}
         * @throws IllegalArgumentException if {@code timeout} is not positive
         */
        public Builder callTimeout(long timeout, TimeUnit unit) {
            this.callTimeoutNanos = positiveNanos("callTimeout", timeout, unit);
            return this;
        }

        /**
         * Sets an isolated worker's memory limit; see {@link LoadOptions#getMemoryLimit()}.
         *
         * @param bytes the limit in bytes, positive
         * @return this builder
         * @throws IllegalArgumentException if {@code bytes} is not positive
         */
        public Builder memoryLimit(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("memoryLimit must be positive, not " + bytes);
            }
            this.memoryLimit = bytes;
            return this;
        }

        /**
         * Rolls the key back when an isolated version crashes within its probation; see
         * {@link LoadOptions#isRollbackOnCrash()}.
         *
         * @param rollbackOnCrash {@code true} to roll back on a crash in probation
         * @return this builder
         */
        public Builder rollbackOnCrash(boolean rollbackOnCrash) {
            this.rollbackOnCrash = rollbackOnCrash;
            return this;
        }

        /**
         * Sets the probation of {@link LoadOptions#isRollbackOnCrash()}.
         *
         * @param probation the probation, positive
         * @param unit its unit
         * @return this builder
         * @throws NullPointerException if {@code unit} is {@code null}
         * @throws IllegalArgumentException if {@code probation} is not positive
         */
        public Builder probation(long probation, TimeUnit unit) {
            this.probationNanos = positiveNanos("probation", probation, unit);
            this.probationSet = true;
            return this;
        }

        private static long positiveNanos(String what, long amount, TimeUnit unit) {
            if (unit == null) {
                throw new NullPointerException("the unit of " + what + " must not be null");
            }
            if (amount <= 0) {
                throw new IllegalArgumentException(what + " must be positive, not " + amount
                        + " " + unit.name().toLowerCase(java.util.Locale.ROOT));
            }
            return unit.toNanos(amount);
        }

        /**
         * Builds the options. The builder may be used again afterwards; the options built do not
         * change.
         *
         * @return the options
         * @throws IllegalArgumentException if a limit of isolated loads ({@code callTimeout},
         *     {@code memoryLimit}, {@code rollbackOnCrash}, {@code probation}) is set on a load
         *     that is not isolated, or an isolated load asks for what only a load into the JVM
         *     means ({@code keepMapped}, {@code allowSignalHandlers}, {@code preflight})
         */
        public LoadOptions build() {
            if (!isolated) {
                String set = callTimeoutNanos != 0 ? "callTimeout"
                        : memoryLimit != 0 ? "memoryLimit"
                        : rollbackOnCrash ? "rollbackOnCrash"
                        : probationSet ? "probation" : null;
                if (set != null) {
                    throw new IllegalArgumentException(set
                            + " applies to isolated loads only: set isolated(true) too");
                }
            } else {
                String set = keepMapped ? "keepMapped"
                        : allowSignalHandlers ? "allowSignalHandlers"
                        : preflight ? "preflight" : null;
                if (set != null) {
                    throw new IllegalArgumentException(set + " applies to loads into the JVM "
                            + "only; an isolated plugin is never mapped into the JVM");
                }
            }
            return new LoadOptions(this);
        }
    }
}
