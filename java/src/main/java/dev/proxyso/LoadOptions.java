package dev.proxyso;

import java.util.Arrays;

/**
 * How {@link ProxySo#load(String, String, LoadOptions)} and
 * {@link ProxySo#replace(String, String, LoadOptions)} load one version of a plugin: the
 * configuration bytes handed to its {@code init}, and two guards a careful host relaxes only for a
 * plugin that needs it. Immutable and thread-safe; build one with {@link #builder()}.
 *
 * <pre>{@code
 * LoadOptions options = LoadOptions.builder()
 *         .config("threshold=0.8".getBytes(StandardCharsets.UTF_8))
 *         .keepMapped(true)       // the plugin registers pthread_key destructors
 *         .build();
 * ProxySo.load("model", "/opt/models/libdetector.so", options);
 * }</pre>
 */
public final class LoadOptions {
    private static final byte[] NO_CONFIG = new byte[0];
    private static final LoadOptions DEFAULTS = new LoadOptions(NO_CONFIG, false, false);

    /** The configuration bytes; never exposed, only copies of it. */
    private final byte[] config;
    /** Whether every retired version of this load stays mapped for the life of the process. */
    private final boolean keepMapped;
    /** Whether a plugin may change a signal handler the JVM relies on. */
    private final boolean allowSignalHandlers;

    private LoadOptions(byte[] config, boolean keepMapped, boolean allowSignalHandlers) {
        this.config = config;
        this.keepMapped = keepMapped;
        this.allowSignalHandlers = allowSignalHandlers;
    }

    /**
     * Returns the default options: empty configuration, retired versions unmapped, signal handlers
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
     * Tells whether a plugin may change a signal handler the JVM relies on (for {@code SIGSEGV},
     * {@code SIGBUS}, {@code SIGFPE}, {@code SIGILL} or {@code SIGQUIT}) while it is loaded and
     * initialised. By default such a load fails with a {@link LibraryLoadException} naming the
     * signal and the JVM's handler is restored; with this option the plugin's handler is kept and
     * the change only logged. The JVM turns null dereferences and stack overflows into exceptions,
     * and reaches safepoints, through these handlers, so a plugin's handler must hand every signal
     * it does not own back to the JVM's.
     *
     * @return {@code true} if changed signal handlers are kept; {@code false} by default
     */
    public boolean isAllowSignalHandlers() {
        return allowSignalHandlers;
    }

    /** The configuration bytes without a copy, for {@link ProxySo} only. */
    byte[] config() {
        return config;
    }

    /** These options as {@link NativeBridge} option bits. */
    int bits() {
        return (keepMapped ? NativeBridge.OPTION_KEEP_MAPPED : 0)
                | (allowSignalHandlers ? NativeBridge.OPTION_ALLOW_SIGNAL_HANDLERS : 0);
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
                && Arrays.equals(config, that.config);
    }

    @Override
    public int hashCode() {
        int hash = Arrays.hashCode(config);
        hash = 31 * hash + (keepMapped ? 1 : 0);
        return 31 * hash + (allowSignalHandlers ? 1 : 0);
    }

    /**
     * Describes the options; the configuration appears as its length only, since it may hold
     * secrets.
     *
     * @return a description such as
     *     {@code LoadOptions{config=12 bytes, keepMapped=true, allowSignalHandlers=false}}
     */
    @Override
    public String toString() {
        return "LoadOptions{config=" + config.length + " bytes"
                + ", keepMapped=" + keepMapped
                + ", allowSignalHandlers=" + allowSignalHandlers
                + "}";
    }

    /** Builds {@link LoadOptions}; not thread-safe. Every setting starts at its default. */
    public static final class Builder {
        private byte[] config = NO_CONFIG;
        private boolean keepMapped;
        private boolean allowSignalHandlers;

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
         * Builds the options. The builder may be used again afterwards; the options built do not
         * change.
         *
         * @return the options
         */
        public LoadOptions build() {
            return new LoadOptions(config, keepMapped, allowSignalHandlers);
        }
    }
}
