package dev.proxyso;

/**
 * Thrown by {@code call} on an {@linkplain LoadOptions#isIsolated() isolated} key when the worker
 * process serving it died with the call in it (a crash, {@code abort}, {@code exit}, running out
 * of memory, or killed after another call's timeout), or when no worker could be had (its
 * restarts are held back after repeated crashes, or the restart failed). The message names the
 * key, the generation, the method, the signal by name (such as {@code SIGSEGV}) or the exit
 * status, and the last lines the worker wrote to standard error. The JVM is not affected, and
 * the next call starts a new worker for the same version.
 *
 * <p>A crash says nothing of whether the call's work was done: it is never retried by the proxy.
 *
 * <p>Thread-safety: immutable once thrown, so safe to hand to another thread. Exceptions: its
 * methods throw none. Unchecked, like every exception of this API.
 */
public class PluginCrashedException extends PluginException {
    private static final long serialVersionUID = 1L;

    /** The signal that ended the worker, 0 if it exited. */
    private final int signal;
    /** The worker's exit status, -1 if a signal ended it. */
    private final int exitStatus;

    /**
     * Creates an exception.
     *
     * @param message the complete message
     * @param key the key that was called
     * @param method the method that was called
     * @param signal the signal that ended the worker, 0 if it exited or none ran
     * @param exitStatus the worker's exit status, -1 if a signal ended it or none ran
     */
    public PluginCrashedException(String message, String key, String method, int signal,
            int exitStatus) {
        super(message, key, method, 0, false);
        this.signal = signal;
        this.exitStatus = exitStatus;
    }

    /**
     * Returns the signal that ended the worker (11 for {@code SIGSEGV}, 6 for {@code SIGABRT},
     * 9 for {@code SIGKILL}: killed for a timeout, or by the kernel when out of memory).
     *
     * @return the signal number, or 0 if the worker exited (or no worker ran)
     */
    public int getSignal() {
        return signal;
    }

    /**
     * Returns the worker's exit status, when it exited (a plugin that called {@code exit}).
     *
     * @return the exit status, or -1 if a signal ended the worker (or no worker ran)
     */
    public int getExitStatus() {
        return exitStatus;
    }
}
