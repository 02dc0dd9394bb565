package dev.proxyso;

import java.util.Arrays;

/**
 * The call statistics of one key, summed over every version it has had since it was loaded: an
 * immutable snapshot, part of a {@link LibraryInfo}. The counts start at zero at each
 * {@code load} of the key and go on across {@code replace} and {@code rollback}; the calls in
 * flight are those in the serving version and in replaced versions still draining.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its getters throw
 * none.
 */
public final class CallStats extends CallFigures {
    private final long replacements;
    private final long rollbacks;
    private final String lastError;

    CallStats(long calls, long failedCalls, long inFlight, long totalCallNanos, long maxCallNanos,
            long crashes, long replacements, long rollbacks, String lastError) {
        super(calls, failedCalls, inFlight, totalCallNanos, maxCallNanos, crashes);
        this.replacements = replacements;
        this.rollbacks = rollbacks;
        this.lastError = lastError;
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
        return sameCalls(that)
                && replacements == that.replacements
                && rollbacks == that.rollbacks
                && (lastError == null ? that.lastError == null : lastError.equals(that.lastError));
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(callValues())
                + Arrays.hashCode(new Object[] {replacements, rollbacks, lastError});
    }

    @Override
    public String toString() {
        return "CallStats{" + callText()
                + ", replacements=" + replacements
                + ", rollbacks=" + rollbacks
                + ", lastError=" + lastError
                + "}";
    }
}
