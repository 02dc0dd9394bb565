package dev.proxyso;

/**
 * The call figures shared by {@link CallStats} (a key, over every version it has had) and
 * {@link GenerationStats} (one version): how many calls returned, failed and are running, and how
 * long they took. Immutable, and so safe to share between threads.
 *
 * <p>Times are measured by the host around the plugin's method, in nanoseconds of a monotonic
 * clock; they cover the plugin's work, not the JNI crossing. Calls of a few microseconds and more
 * are all timed; shorter ones are timed by sample, unless the version was loaded with
 * {@link LoadOptions#isExactTiming() exact timing}, so the total is then an estimate and the
 * longest call may miss a rare slow one.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its getters throw
 * none.
 */
public abstract class CallFigures {
    private final long calls;
    private final long failedCalls;
    private final long inFlight;
    private final long totalCallNanos;
    private final long maxCallNanos;
    private final long crashes;

    CallFigures(long calls, long failedCalls, long inFlight, long totalCallNanos,
            long maxCallNanos, long crashes) {
        this.calls = calls;
        this.failedCalls = failedCalls;
        this.inFlight = inFlight;
        this.totalCallNanos = totalCallNanos;
        this.maxCallNanos = maxCallNanos;
        this.crashes = crashes;
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
     * Returns how many calls were running when the figures were taken.
     *
     * @return the number of calls in flight
     */
    public long getInFlight() {
        return inFlight;
    }

    /**
     * Returns the time spent in the plugin by all the {@linkplain #getCalls() calls} together; an
     * estimate while calls are shorter than a few microseconds (see the class comment).
     *
     * @return the total call time in nanoseconds
     */
    public long getTotalCallNanos() {
        return totalCallNanos;
    }

    /**
     * Returns the longest time one call spent in the plugin, of the calls timed (see the class
     * comment).
     *
     * @return the longest call time in nanoseconds; 0 before the first call
     */
    public long getMaxCallNanos() {
        return maxCallNanos;
    }

    /**
     * Returns how many times a worker process serving an {@linkplain LoadOptions#isIsolated()
     * isolated} version died unasked (crashed, aborted, exited, was killed for a call's timeout)
     * or could not be restarted. Each such death fails the calls that were in it with a
     * {@link PluginCrashedException} (or a {@link PluginTimeoutException}), counted in
     * {@link #getFailedCalls()} too.
     *
     * @return the number of worker crashes; always 0 for a version loaded into the JVM
     */
    public long getCrashes() {
        return crashes;
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

    /** Whether {@code that} has the same call figures. */
    final boolean sameCalls(CallFigures that) {
        return calls == that.calls
                && failedCalls == that.failedCalls
                && inFlight == that.inFlight
                && totalCallNanos == that.totalCallNanos
                && maxCallNanos == that.maxCallNanos
                && crashes == that.crashes;
    }

    /** The call figures, for {@code hashCode}. */
    final Object[] callValues() {
        return new Object[] {calls, failedCalls, inFlight, totalCallNanos, maxCallNanos, crashes};
    }

    /** The call figures as {@code calls=..., ...}, for {@code toString}. */
    final String callText() {
        return "calls=" + calls
                + ", failedCalls=" + failedCalls
                + ", inFlight=" + inFlight
                + ", totalCallNanos=" + totalCallNanos
                + ", maxCallNanos=" + maxCallNanos
                + ", crashes=" + crashes;
    }
}
