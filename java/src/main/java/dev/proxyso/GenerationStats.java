package dev.proxyso;

import java.util.Arrays;

/**
 * The call statistics of one version (generation) of a key: an immutable snapshot, part of a
 * {@link LibraryInfo}. {@link LibraryInfo#getGenerations()} lists the serving version and the
 * replaced versions whose calls are still running.
 */
public final class GenerationStats {
    private final long generation;
    private final String sha256;
    private final long calls;
    private final long failedCalls;
    private final long inFlight;
    private final long totalCallNanos;
    private final long maxCallNanos;
    private final long loadNanos;

    GenerationStats(long generation, String sha256, long calls, long failedCalls, long inFlight,
            long totalCallNanos, long maxCallNanos, long loadNanos) {
        this.generation = generation;
        this.sha256 = sha256;
        this.calls = calls;
        this.failedCalls = failedCalls;
        this.inFlight = inFlight;
        this.totalCallNanos = totalCallNanos;
        this.maxCallNanos = maxCallNanos;
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
     * Returns how many calls of this version returned, successful or not.
     *
     * @return the number of calls that returned
     */
    public long getCalls() {
        return calls;
    }

    /**
     * Returns how many of this version's calls failed.
     *
     * @return the number of failed calls
     */
    public long getFailedCalls() {
        return failedCalls;
    }

    /**
     * Returns how many calls were running in this version when the snapshot was taken.
     *
     * @return the number of calls in flight
     */
    public long getInFlight() {
        return inFlight;
    }

    /**
     * Returns the time this version's calls spent in the plugin together; an estimate while
     * calls are shorter than a few microseconds, as {@link CallStats#getTotalCallNanos()} says.
     *
     * @return the total call time in nanoseconds
     */
    public long getTotalCallNanos() {
        return totalCallNanos;
    }

    /**
     * Returns the longest time one call spent in this version, of the calls timed (see
     * {@link CallStats#getMaxCallNanos()}).
     *
     * @return the longest call time in nanoseconds; 0 before the first call
     */
    public long getMaxCallNanos() {
        return maxCallNanos;
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
                && calls == that.calls
                && failedCalls == that.failedCalls
                && inFlight == that.inFlight
                && totalCallNanos == that.totalCallNanos
                && maxCallNanos == that.maxCallNanos
                && loadNanos == that.loadNanos
                && (sha256 == null ? that.sha256 == null : sha256.equals(that.sha256));
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {
            generation, sha256, calls, failedCalls, inFlight, totalCallNanos, maxCallNanos,
            loadNanos,
        });
    }

    @Override
    public String toString() {
        return "GenerationStats{generation=" + generation
                + ", sha256=" + sha256
                + ", calls=" + calls
                + ", failedCalls=" + failedCalls
                + ", inFlight=" + inFlight
                + ", totalCallNanos=" + totalCallNanos
                + ", maxCallNanos=" + maxCallNanos
                + ", loadNanos=" + loadNanos
                + "}";
    }
}
