package dev.proxyso;

import java.util.Arrays;

/**
 * The call statistics of one key, summed over every version it has had since it was loaded: an
 * immutable snapshot, part of a {@link LibraryInfo}. The counts start at zero at each
 * {@code load} of the key and go on across {@code replace} and {@code rollback}.
 *
 * <p>Times are measured by the host around the plugin's method, in nanoseconds of a monotonic
 * clock; they cover the plugin's work, not the JNI crossing.
 */
public final class CallStats {
    private final long calls;
    private final long failedCalls;
    private final long inFlight;
    private final long totalCallNanos;
    private final long maxCallNanos;
    private final long replacements;
    private final long rollbacks;
    private final String lastError;

    CallStats(long calls, long failedCalls, long inFlight, long totalCallNanos, long maxCallNanos,
            long replacements, long rollbacks, String lastError) {
        this.calls = calls;
        this.failedCalls = failedCalls;
        this.inFlight = inFlight;
        this.totalCallNanos = totalCallNanos;
        this.maxCallNanos = maxCallNanos;
        this.replacements = replacements;
        this.rollbacks = rollbacks;
        this.lastError = lastError;
    }

    /**
     * Returns how many calls returned, successful or not.
     *
     * @return the number of calls that returned
     */
    public long getCalls() {
        return calls;
    }

    /**
     * Returns how many of the {@linkplain #getCalls() calls} failed: the plugin reported an error
     * or a caught panic, or the output did not fit.
     *
     * @return the number of failed calls
     */
    public long getFailedCalls() {
        return failedCalls;
    }

    /**
     * Returns how many calls were running when the snapshot was taken, in the serving version and
     * in replaced versions still draining.
     *
     * @return the number of calls in flight
     */
    public long getInFlight() {
        return inFlight;
    }

    /**
     * Returns the time spent in the plugin by all the {@linkplain #getCalls() calls} together.
     * Exact for calls of a few microseconds and more; while calls are shorter, only a sample of
     * them is timed and this is an estimate, unless the version was loaded with
     * {@link LoadOptions#isExactTiming() exact timing}.
     *
     * @return the total call time in nanoseconds
     */
    public long getTotalCallNanos() {
        return totalCallNanos;
    }

    /**
     * Returns the longest time one call spent in the plugin: of the calls timed, which are all
     * of them with {@link LoadOptions#isExactTiming() exact timing} or once calls take a few
     * microseconds, and a sample of shorter calls otherwise.
     *
     * @return the longest call time in nanoseconds; 0 before the first call
     */
    public long getMaxCallNanos() {
        return maxCallNanos;
    }

    /**
     * Returns the mean time a call spent in the plugin.
     *
     * @return {@link #getTotalCallNanos()} divided by {@link #getCalls()}, rounded down; 0 before
     *     the first call
     */
    public long getMeanCallNanos() {
        return calls == 0 ? 0 : totalCallNanos / calls;
    }

    /**
     * Returns how many times {@code replace} swapped a new version in (failed replacements are not
     * counted).
     *
     * @return the number of successful replacements
     */
    public long getReplacements() {
        return replacements;
    }

    /**
     * Returns how many times {@link ProxySo#rollback(String)} swapped a previous version back in.
     *
     * @return the number of successful rollbacks
     */
    public long getRollbacks() {
        return rollbacks;
    }

    /**
     * Returns the message of the last failed call, or of the last failed {@code replace} or
     * {@code rollback}, whichever came last.
     *
     * @return the message, or {@code null} if nothing failed since the key was loaded
     */
    public String getLastError() {
        return lastError;
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof CallStats)) {
            return false;
        }
        CallStats that = (CallStats) other;
        return calls == that.calls
                && failedCalls == that.failedCalls
                && inFlight == that.inFlight
                && totalCallNanos == that.totalCallNanos
                && maxCallNanos == that.maxCallNanos
                && replacements == that.replacements
                && rollbacks == that.rollbacks
                && (lastError == null ? that.lastError == null : lastError.equals(that.lastError));
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {
            calls, failedCalls, inFlight, totalCallNanos, maxCallNanos, replacements, rollbacks,
            lastError,
        });
    }

    @Override
    public String toString() {
        return "CallStats{calls=" + calls
                + ", failedCalls=" + failedCalls
                + ", inFlight=" + inFlight
                + ", totalCallNanos=" + totalCallNanos
                + ", maxCallNanos=" + maxCallNanos
                + ", replacements=" + replacements
                + ", rollbacks=" + rollbacks
                + ", lastError=" + lastError
                + "}";
    }
}
