package dev.proxyso;

import java.util.Arrays;

/**
 * The call statistics of one version (generation) of a key: an immutable snapshot, part of a
 * {@link LibraryInfo}. {@link LibraryInfo#getGenerations()} lists the serving version and the
 * replaced versions whose calls are still running.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its getters throw
 * none.
 */
public final class GenerationStats extends CallFigures {
    private final long generation;
    private final String sha256;
    private final long loadNanos;

    GenerationStats(long generation, String sha256, long calls, long failedCalls, long inFlight,
            long totalCallNanos, long maxCallNanos, long crashes, long loadNanos) {
        super(calls, failedCalls, inFlight, totalCallNanos, maxCallNanos, crashes);
        this.generation = generation;
        this.sha256 = sha256;
        this.loadNanos = loadNanos;
    }

    /**
     * Returns the generation number of the version.
     *
     * @return the generation
     */
    public long getGeneration() {
        return generation;
    }

    /**
     * Returns the SHA-256 digest of the version's file as it was loaded.
     *
     * @return 64 lower-case hexadecimal digits
     */
    public String getSha256() {
        return sha256;
    }

    /**
     * Returns how long loading this version took: the private copy, the checks, {@code dlopen}
     * and the plugin's {@code init}.
     *
     * @return the load time in nanoseconds
     */
    public long getLoadNanos() {
        return loadNanos;
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof GenerationStats)) {
            return false;
        }
        GenerationStats that = (GenerationStats) other;
        return generation == that.generation
                && sameCalls(that)
                && loadNanos == that.loadNanos
                && (sha256 == null ? that.sha256 == null : sha256.equals(that.sha256));
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(callValues())
                + Arrays.hashCode(new Object[] {generation, sha256, loadNanos});
    }

    @Override
    public String toString() {
        return "GenerationStats{generation=" + generation
                + ", sha256=" + sha256
                + ", " + callText()
                + ", loadNanos=" + loadNanos
                + "}";
    }
}
