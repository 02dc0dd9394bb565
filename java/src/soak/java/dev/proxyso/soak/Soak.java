package dev.proxyso.soak;

import dev.proxyso.LibraryInfo;
import dev.proxyso.LoadOptions;
import dev.proxyso.PluginCrashedException;
import dev.proxyso.ProxySo;
import dev.proxyso.tools.CommandLine;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/**
 * The soak run: hot replacement under load for a fixed time, with figures a reviewer can rerun and
 * goals it checks.
 *
 * <p>{@code --threads} calling threads call the default method of key {@code model} non-stop and
 * check every answer: the Rust example version 1 answers its input, version 2 its input followed
 * by {@code ",ab"}. Meanwhile one thread replaces {@code model} as fast as it can, alternating the
 * two versions, both copied in turn over one file overwritten in place (same inode, like
 * {@code cp new.so live.so}) and replaced from that one path; and another thread loads a second
 * key, {@code churn}, calls it once and unloads it, in a loop, alternating the C++ and the Rust
 * example.
 *
 * <p>A warm-up phase of the same work (one second by default) comes first, so that the JIT, the
 * JVM's own threads and the allocator have settled; the baseline figures are taken after it. The
 * soak prints its counters every {@code --interval-ms}, and the process's figures at the start,
 * after the warm-up and at the end (once every thread has stopped, {@code churn} is unloaded and
 * every retired version is closed, after a {@code System.gc()} and a short settle):
 *
 * <ul>
 *   <li>mapped plugin copies: distinct snapshot files in {@code /proc/self/maps} (the directories
 *       {@code proxyso-XXXXXX} below the snapshot directory, learnt from
 *       {@link LibraryInfo#getSnapshotPath()});
 *   <li>open file descriptors ({@code /proc/self/fd});
 *   <li>threads ({@code Threads:} of {@code /proc/self/status}); the JVM starts and stops its
 *       garbage collector and JIT compiler workers on its own, so the goal compares the count
 *       without them, and both counts are printed;
 *   <li>RSS ({@code VmRSS:} of {@code /proc/self/status}), as found and once more after the
 *       JVM's {@code System.trim_native_heap} ({@code malloc_trim}, OpenJDK 17.0.9 and later).
 *       glibc keeps freed memory resident in its per-thread arenas: the JIT compiler's, after a
 *       large compilation, or a thread's whose allocations were freed all at once. The goal
 *       compares the trimmed figures, which count only memory still in use and so grow with a
 *       leak and not with allocator retention; both are printed. Run it with a fixed,
 *       pre-touched heap ({@code -Xms128m -Xmx128m -XX:+AlwaysPreTouch}, as {@code gradle soak}
 *       does) so that the Java heap growing into its reservation does not count either.
 * </ul>
 *
 * <p>Every load, replace and unload logs a line or two (the proxy's event, the example plugins'
 * greetings): tens of thousands in a run, which {@code libproxy.so} hands to
 * {@code java.util.logging}. The soak takes them all (the loggers {@code dev.proxyso} and
 * {@code dev.proxyso.plugin}) and counts them; those above INFO it writes to standard error, one
 * line each ({@code proxyso log LEVEL [key#generation] text}). It leaves the JDK's console
 * handler out: formatting every INFO record with its date makes the C2 compiler compile the
 * formatter mid-run, and its arena alone adds 7 to 20 MiB of resident memory to a 5 s run
 * (not a leak: it is gone in 40 s runs), which the RSS goal below would count.
 *
 * <p>Goals, each printed as a {@code PASS} or {@code FAIL} line: no call, replace, load or unload
 * failed; both versions answered; 10,000 or more replacements and 1,000,000 or more calls (checked
 * only for runs of the default length, {@value #DEFAULT_SECONDS} s, or longer); mapped plugin
 * copies back to the live count (1: {@code model}); no file descriptor open that was not open at
 * the baseline (compared by number and target, since the JVM closes descriptors of its own during
 * a run); threads back to the baseline; no retired version pinned ({@link LibraryInfo#getPinnedVersions()}); RSS growth
 * from the baseline under 5 MiB; and no copy left mapped once
 * {@code model} is unloaded too. The exit status is 0 if every goal passed, 1 if one failed, 2 if
 * the soak could not run.
 *
 * <pre>
 * gradle soak
 * gradle soak -PsoakArgs="--threads 8 --seconds 60"
 * java -Xcheck:jni -Xms128m -Xmx128m -XX:+AlwaysPreTouch \
 *     -cp build/libs/proxyso-0.1.0.jar:build/classes/java/soak dev.proxyso.soak.Soak \
 *     --plugins build/plugins --threads 4 --seconds 5
 * </pre>
 *
 * <p>With {@code --isolated}, every key is loaded {@linkplain LoadOptions#isIsolated() isolated},
 * {@code model} with {@link LoadOptions.Builder#rollbackOnCrash(boolean)}: each replace starts a
 * worker process, and each churn cycle starts and ends one. Every {@code --crash-interval-ms} the
 * replacing thread injects a crash: it replaces {@code model} by the crash fixture
 * ({@code libfx_crash.so}, whose default method answers its input as version 1 does), calls its
 * {@code segv} method (a {@link PluginCrashedException} naming SIGSEGV, and the calling threads'
 * calls in flight in that worker throw the same), and waits for the key to roll back to the
 * example version it replaced, as the crash within the probation asks. A call then passes when it
 * answers correctly or throws {@code PluginCrashedException} from the crash fixture with SIGSEGV;
 * anything else is a failure. The replacements goal is 2,500 instead of 10,000
 * (each replace starts a worker). More goals: every injected crash rolled back; the
 * {@code proxyso-worker} child processes of this JVM (read from {@code /proc}), the shared regions
 * mapped and the descriptors (pipes counted by kind, since each worker has pipes of its own) back
 * to the baseline; no plugin copy mapped into the JVM; and no worker once {@code model} is
 * unloaded.
 *
 * Options (each also a system property {@code soak.<name>}): {@code --threads} (8),
 * {@code --seconds} ({@value #DEFAULT_SECONDS}), {@code --interval-ms} (5000),
 * {@code --warmup-ms} (1000), {@code --plugins} (the system property
 * {@code proxyso.plugins.dir}, else {@code build/plugins}), {@code --isolated},
 * {@code --crash-interval-ms} (2000, with {@code --isolated}), {@code --crash-plugin} (the
 * crash fixture; default {@code libfx_crash.so} in the system property
 * {@code proxyso.fixtures.dir}, else in {@code build/fixtures}).
 */
public final class Soak {
    /** The default length of a run, and the shortest for which the volume goals are checked. */
    static final int DEFAULT_SECONDS = 60;
    private static final long MIN_REPLACEMENTS = 10_000;
    /**
     * The replacements goal with {@code --isolated}: each replace starts a worker process (spawn,
     * load, {@code init}, handshake), about 10 ms on a 2-CPU machine shared with the calling
     * threads, against 0.3 ms in the JVM; 5,147 in the minute measured there.
     */
    private static final long MIN_ISOLATED_REPLACEMENTS = 2_500;
    private static final long MIN_CALLS = 1_000_000;
    private static final long MAX_RSS_GROWTH_KIB = 5 * 1024;

    private static final String KEY = "model";
    private static final String CHURN_KEY = "churn";
    private static final String V2_SUFFIX = ",ab";
    private static final long RETIRE_TIMEOUT_SECONDS = 30;
    private static final long SETTLE_MILLIS = 500;
    private static final int MAX_FAILURES_SHOWN = 10;
    /** How long the replacing thread waits for the rollback after a crash it injected. */
    private static final long ROLLBACK_WAIT_SECONDS = 10;
    private static final int SIGSEGV = 11;
    /** The crash fixture's own name, as a {@link PluginCrashedException} message shows it. */
    private static final String CRASH_PLUGIN_NAME = "(fx-crash ";
    /** The worker executable's name, as its command line shows it. */
    private static final String WORKER_NAME = "proxyso-worker";

    private final int threads;
    private final int seconds;
    private final long intervalMillis;
    private final long warmupMillis;
    private final Path pluginsDir;
    /** Load every key isolated and inject crashes; see the class comment. */
    private final boolean isolated;
    private final long crashIntervalMillis;
    private final Path crashPlugin;

    /** The directory below which every snapshot directory is created; known after the load. */
    private Path snapshotBase;
    private final List<String> goalFailures = new ArrayList<String>();
    /** The proxy's log records, counted. */
    private final LogTally log = LogTally.install();

    private Soak(int threads, int seconds, long intervalMillis, long warmupMillis,
            Path pluginsDir, boolean isolated, long crashIntervalMillis, Path crashPlugin) {
        this.threads = threads;
        this.seconds = seconds;
        this.intervalMillis = intervalMillis;
        this.warmupMillis = warmupMillis;
        this.pluginsDir = pluginsDir;
        this.isolated = isolated;
        this.crashIntervalMillis = crashIntervalMillis;
        this.crashPlugin = crashPlugin;
    }

    /** How every key is loaded: isolated, and {@code model} rolled back on a crash, or not. */
    private LoadOptions options() {
        return isolated
                ? LoadOptions.builder().isolated(true).rollbackOnCrash(true).build()
                : LoadOptions.defaults();
    }

    /**
     * Runs the soak and exits with its status.
     *
     * @param args options, see the class comment
     */
    public static void main(String[] args) {
        int status;
        try {
            CommandLine options = new CommandLine(
                    "Soak [--threads N] [--seconds N] [--interval-ms N] [--warmup-ms N] "
                            + "[--plugins DIR] [--isolated [--crash-interval-ms N] "
                            + "[--crash-plugin FILE]]",
                    "soak", Arrays.asList(
                        "threads", "seconds", "interval-ms", "warmup-ms", "plugins",
                        "crash-interval-ms", "crash-plugin"),
                    Arrays.asList("isolated"), args);
            Path crashPlugin = Paths.get(options.get("crash-plugin",
                    Paths.get(System.getProperty("proxyso.fixtures.dir", "build/fixtures"))
                            .resolve("libfx_crash.so").toString()));
            Soak soak = new Soak(
                    options.getInt("threads", 8, 1),
                    options.getInt("seconds", DEFAULT_SECONDS, 1),
                    options.getLong("interval-ms", 5000, 1),
                    options.getLong("warmup-ms", 1000, 0),
                    Paths.get(options.get("plugins",
                            System.getProperty("proxyso.plugins.dir", "build/plugins"))),
                    options.has("isolated"),
                    options.getLong("crash-interval-ms", 2000, 1),
                    crashPlugin);
            status = soak.run() ? 0 : 1;
        } catch (Exception e) {
            System.out.println("soak: could not run: " + e);
            e.printStackTrace(System.out);
            status = 2;
        }
        System.out.flush();
        System.exit(status);
    }

    private boolean run() throws Exception {
        byte[][] versions = {
            Files.readAllBytes(pluginsDir.resolve("libexample_v1.so")),
            Files.readAllBytes(pluginsDir.resolve("libexample_v2.so")),
        };
        String[] churnPaths = {
            existing(pluginsDir.resolve("libexample_cpp_v1.so")),
            existing(pluginsDir.resolve("libexample_v1.so")),
        };
        String crashPath = isolated ? existing(crashPlugin) : null;
        Path dir = Files.createTempDirectory("proxyso-soak-");
        Path live = dir.resolve("live.so");
        try {
            Files.write(live, versions[0]);
            LiveFile liveFile = new LiveFile(live, versions);
            say("proxyso soak: %d threads call '%s' for %d s while one thread replaces it as "
                    + "fast as it can from %s (overwritten in place, inode %s, v1 and v2 in turn) "
                    + "and another loads, calls and unloads '%s' (C++ and Rust example in turn); "
                    + "%d CPUs, Java %s", threads, KEY, seconds, live, liveFile.inode, CHURN_KEY,
                    Runtime.getRuntime().availableProcessors(),
                    System.getProperty("java.version"));
            if (isolated) {
                say("isolated: every key runs in %s worker processes, '%s' rolled back on a "
                        + "crash; every %d ms a crash is injected: '%s' replaced by %s, its "
                        + "method 'segv' called, and the rollback awaited", WORKER_NAME, KEY,
                        crashIntervalMillis, KEY, crashPath);
            }

            ProxySo.load(KEY, live.toString(), options());
            LibraryInfo info = ProxySo.info(KEY);
            snapshotBase = Paths.get(info.getSnapshotPath()).getParent().getParent();
            say("loaded '%s' gen %d (%s %s) from snapshot %s; plugin copies are counted below %s",
                    KEY, info.getGeneration(), info.getName(), info.getVersion(),
                    info.getSnapshotPath(), snapshotBase.resolve("proxyso-*"));
            Figures start = Figures.take(snapshotBase, true);

            Phase warmup = new Phase(liveFile, churnPaths, crashPath);
            warmup.run(warmupMillis, 0);
            settle();
            Figures baseline = Figures.take(snapshotBase, true);
            say("warm-up: %d ms, %s", warmupMillis, warmup.counters());

            Phase soak = new Phase(liveFile, churnPaths, crashPath);
            long started = System.nanoTime();
            soak.run(seconds * 1000L, intervalMillis);
            double elapsed = (System.nanoTime() - started) / 1e9;
            settle();
            Figures end = Figures.take(snapshotBase, true);
            LibraryInfo last = ProxySo.info(KEY);

            say("");
            say("done: %.1f s, %d calling threads", elapsed, threads);
            say("  calls made        %,d (%,.0f/s)", soak.calls.sum(), soak.calls.sum() / elapsed);
            say("  calls failed      %,d", soak.failedCalls.sum());
            if (isolated) {
                say("  calls crashed     %,d (PluginCrashedException from the crash fixture, "
                        + "SIGSEGV)", soak.crashedCalls.sum());
                say("  crashes injected  %,d, rolled back %,d, failed %d",
                        soak.injectedCrashes.sum(), soak.rolledBack.sum(),
                        soak.failedCrashes.sum());
            }
            say("  answers from v1   %,d", soak.v1.sum());
            say("  answers from v2   %,d", soak.v2.sum());
            say("  replacements      %,d (%,.0f/s), failed %d", soak.replacements.sum(),
                    soak.replacements.sum() / elapsed, soak.failedReplacements.sum());
            say("  churn cycles      %,d (%,.0f/s), failed %d", soak.churnCycles.sum(),
                    soak.churnCycles.sum() / elapsed, soak.failedChurn.sum());
            say("  '%s' now          gen %d (%s), %d versions retired, %d pinned", KEY,
                    last.getGeneration(), last.getVersion(), last.getRetiredVersions(),
                    last.getPinnedVersions());
            say("  log records       %,d, %,d of them above INFO (on standard error)",
                    log.records.sum(), log.aboveInfo.sum());
            for (String failure : soak.failures) {
                say("  failure: %s", failure);
            }
            say("");
            say("%-24s %12s %15s %12s", "figures", "start", "after warm-up", "end");
            row("mapped plugin copies", start.mappedCopies.size(), baseline.mappedCopies.size(),
                    end.mappedCopies.size(), "");
            row("open file descriptors", start.fds.size(), baseline.fds.size(), end.fds.size(), "");
            row("threads", start.threads, baseline.threads, end.threads, "");
            row("  without GC/JIT workers", start.ownThreads(), baseline.ownThreads(),
                    end.ownThreads(), "");
            if (isolated) {
                row("worker processes", start.workers.size(), baseline.workers.size(),
                        end.workers.size(), "");
                row("shared regions mapped", start.regions, baseline.regions, end.regions, "");
            }
            row("RSS", start.rssKiB, baseline.rssKiB, end.rssKiB, " KiB");
            row("  native heap trimmed", start.trimmedRssKiB, baseline.trimmedRssKiB,
                    end.trimmedRssKiB, " KiB");
            say("");

            checkGoals(soak, last, baseline, end);

            ProxySo.unload(KEY);
            boolean closed = ProxySo.awaitRetired(KEY, RETIRE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            Figures unloaded = Figures.take(snapshotBase, false);
            goal(closed && unloaded.mappedCopies.isEmpty() && unloaded.copyFds.isEmpty(),
                    "no plugin copy mapped once '" + KEY + "' is unloaded too", "%d %s, open %s",
                    unloaded.mappedCopies.size(), unloaded.mappedCopies, unloaded.copyFds);
            if (isolated) {
                // The monitor reaps a worker a moment after it ends.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while ((!unloaded.workers.isEmpty() || unloaded.regions != 0)
                        && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                    unloaded = Figures.take(snapshotBase, false);
                }
                goal(unloaded.workers.isEmpty() && unloaded.regions == 0,
                        "no worker and no shared region once '" + KEY + "' is unloaded too",
                        "workers %s, %d regions mapped", unloaded.workers, unloaded.regions);
            }

            if (goalFailures.isEmpty()) {
                say("soak: PASSED");
                return true;
            }
            say("soak: FAILED: %s", goalFailures);
            return false;
        } finally {
            Files.deleteIfExists(live);
            Files.deleteIfExists(dir);
        }
    }

    private void checkGoals(Phase soak, LibraryInfo last, Figures baseline, Figures end) {
        if (isolated) {
            goal(soak.failedCalls.sum() == 0, "no wrong answer (every call answered correctly "
                    + "or threw PluginCrashedException from a crash injected on purpose)",
                    "%,d of %,d (%,d threw PluginCrashedException from the crash fixture)",
                    soak.failedCalls.sum(), soak.calls.sum(), soak.crashedCalls.sum());
            goal(soak.injectedCrashes.sum() > 0 && soak.failedCrashes.sum() == 0
                    && soak.rolledBack.sum() == soak.injectedCrashes.sum(),
                    "every injected crash threw PluginCrashedException (SIGSEGV) and rolled back",
                    "%d injected, %d rolled back, %d failed", soak.injectedCrashes.sum(),
                    soak.rolledBack.sum(), soak.failedCrashes.sum());
        } else {
            goal(soak.failedCalls.sum() == 0, "no call failed", "%,d of %,d",
                    soak.failedCalls.sum(), soak.calls.sum());
        }
        goal(soak.failedReplacements.sum() == 0 && soak.failedChurn.sum() == 0,
                "no replace, load or unload failed", "%d replacements, %d churn cycles failed",
                soak.failedReplacements.sum(), soak.failedChurn.sum());
        goal(soak.v1.sum() > 0 && soak.v2.sum() > 0, "both versions answered", "v1 %,d, v2 %,d",
                soak.v1.sum(), soak.v2.sum());
        long minReplacements = isolated ? MIN_ISOLATED_REPLACEMENTS : MIN_REPLACEMENTS;
        if (seconds >= DEFAULT_SECONDS) {
            goal(soak.replacements.sum() >= minReplacements,
                    String.format(Locale.ROOT, "%,d or more replacements%s", minReplacements,
                            isolated ? " (each starts a worker process)" : ""),
                    "%,d", soak.replacements.sum());
            goal(soak.calls.sum() >= MIN_CALLS,
                    String.format(Locale.ROOT, "%,d or more calls", MIN_CALLS), "%,d",
                    soak.calls.sum());
        } else {
            say("SKIP %,d or more replacements and %,d or more calls: checked only for runs of "
                    + "%d s or longer, this one ran %d s", minReplacements, MIN_CALLS,
                    DEFAULT_SECONDS, seconds);
        }
        if (isolated) {
            goal(end.copyFds.size() == 1 && end.copyFds.contains(last.getSnapshotPath()),
                    "descriptors of plugin copies: the live version's only (its worker's "
                    + "restarts load it)", "%s (live: '%s' gen %d, %s)", end.copyFds, KEY,
                    last.getGeneration(), last.getSnapshotPath());
            goal(end.mappedCopies.isEmpty(), "no plugin copy mapped into the JVM", "%d %s",
                    end.mappedCopies.size(), end.mappedCopies);
            goal(end.workers.size() == baseline.workers.size() && end.workers.size() == 1,
                    "worker processes back to the baseline", "%d -> %d %s (live: pid %d)",
                    baseline.workers.size(), end.workers.size(), end.workers,
                    last.getWorkerPid());
            goal(end.regions == baseline.regions, "shared regions mapped back to the baseline",
                    "%d -> %d", baseline.regions, end.regions);
        } else {
            goal(end.copyFds.equals(end.mappedCopies),
                    "descriptors of plugin copies: only the mapped ones", "%s (mapped: %s)",
                    end.copyFds, end.mappedCopies);
            goal(end.mappedCopies.size() == 1
                    && end.mappedCopies.contains(last.getSnapshotPath()),
                    "mapped plugin copies back to the live count", "%d (live: '%s' gen %d) %s",
                    end.mappedCopies.size(), KEY, last.getGeneration(), end.mappedCopies);
        }
        goal(last.getPinnedVersions() == 0, "no retired version pinned", "%d of %d",
                last.getPinnedVersions(), last.getRetiredVersions());
        // By identity, not by count: the JVM opens and closes descriptors of its own (a cgroup
        // file, a jar) during a run; a leak is a descriptor that is open now and was not then.
        // Each worker the JVM talks to has pipes (and a pidfd and a region) of its own: a new
        // worker after a replace holds the same kinds, in new pipes, perhaps at other numbers.
        Map<String, String> opened = isolated
                ? Figures.addedKinds(baseline.fds, end.fds)
                : Figures.added(baseline.fds, end.fds);
        goal(opened.isEmpty(), "no file descriptor open that was not open at the baseline"
                + (isolated ? " (pipes counted by kind)" : ""),
                "%d -> %d, %d new%s", baseline.fds.size(), end.fds.size(), opened.size(),
                isolated ? (opened.isEmpty() ? "" : "; new: " + opened)
                        : Figures.difference(baseline.fds, end.fds));
        goal(end.ownThreads() == baseline.ownThreads(),
                "threads back to the baseline (without the JVM's GC and JIT workers)",
                "%d -> %d (all threads: %d -> %d)%s", baseline.ownThreads(), end.ownThreads(),
                baseline.threads, end.threads,
                Figures.difference(baseline.threadNames, end.threadNames));
        boolean trimmed = baseline.trimmedRssKiB > 0 && end.trimmedRssKiB > 0;
        long from = trimmed ? baseline.trimmedRssKiB : baseline.rssKiB;
        long to = trimmed ? end.trimmedRssKiB : end.rssKiB;
        long growth = to - from;
        goal(growth < MAX_RSS_GROWTH_KIB, "RSS growth under 5 MiB",
                "%+,d KiB (%,d -> %,d KiB, %s; untrimmed %+,d KiB)%s",
                growth, from, to, trimmed ? "native heap trimmed" : "the JVM cannot trim",
                end.rssKiB - baseline.rssKiB,
                growth < MAX_RSS_GROWTH_KIB ? "" : Figures.grownMappings(baseline, end));
    }

    /** Prints {@code PASS name: detail} or {@code FAIL name: detail} and remembers a failure. */
    private void goal(boolean passed, String name, String detail, Object... args) {
        say("%s %s: %s", passed ? "PASS" : "FAIL", name, String.format(Locale.ROOT, detail, args));
        if (!passed) {
            goalFailures.add(name);
        }
    }

    /** Waits for every retired version to close, then lets the JVM settle before measuring. */
    private static void settle() throws InterruptedException {
        for (String key : new String[] {KEY, CHURN_KEY}) {
            if (!ProxySo.awaitRetired(key, RETIRE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                say("retired versions of '%s' still not closed after %d s", key,
                        RETIRE_TIMEOUT_SECONDS);
            }
        }
        System.gc();
        Thread.sleep(SETTLE_MILLIS);
    }

    private static void row(String name, long start, long baseline, long end, String unit) {
        say("%-24s %12s %15s %12s", name, String.format(Locale.ROOT, "%,d%s", start, unit),
                String.format(Locale.ROOT, "%,d%s", baseline, unit),
                String.format(Locale.ROOT, "%,d%s", end, unit));
    }

    /** The resident set size, or -1 if it cannot be read. */
    private static long rssKiB() {
        try {
            return Figures.status().get("VmRSS");
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private static String existing(Path path) throws IOException {
        if (!Files.isRegularFile(path)) {
            throw new IOException("missing plugin " + path + " (gradle assemble builds it)");
        }
        return path.toString();
    }

    private static void say(String format, Object... args) {
        System.out.println(String.format(Locale.ROOT, format, args));
        System.out.flush();
    }

    /** One phase of work: the calling threads, the replacing thread and the churning thread. */
    private final class Phase {
        private final LiveFile live;
        private final String[] churnPaths;
        final LongAdder calls = new LongAdder();
        final LongAdder failedCalls = new LongAdder();
        final LongAdder v1 = new LongAdder();
        final LongAdder v2 = new LongAdder();
        final LongAdder replacements = new LongAdder();
        final LongAdder failedReplacements = new LongAdder();
        final LongAdder churnCycles = new LongAdder();
        final LongAdder failedChurn = new LongAdder();
        /** Calls that threw PluginCrashedException from the crash fixture (isolated only). */
        final LongAdder crashedCalls = new LongAdder();
        final LongAdder injectedCrashes = new LongAdder();
        final LongAdder rolledBack = new LongAdder();
        final LongAdder failedCrashes = new LongAdder();
        private final String crashPath;
        final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<String>();
        private final AtomicInteger failuresKept = new AtomicInteger();
        private volatile boolean stopping;

        Phase(LiveFile live, String[] churnPaths, String crashPath) {
            this.live = live;
            this.churnPaths = churnPaths;
            this.crashPath = crashPath;
        }

        /** Runs for the given time, printing the counters every interval (0: never). */
        void run(long millis, long interval) throws InterruptedException {
            List<Thread> workers = new ArrayList<Thread>();
            for (int t = 0; t < threads; t++) {
                final String prefix = "call-" + t + "-";
                workers.add(start("soak-caller-" + t, new Runnable() {
                    @Override
                    public void run() {
                        call(prefix);
                    }
                }));
            }
            workers.add(start("soak-replacer", new Runnable() {
                @Override
                public void run() {
                    replace();
                }
            }));
            workers.add(start("soak-churn", new Runnable() {
                @Override
                public void run() {
                    churn();
                }
            }));
            long begin = System.nanoTime();
            long deadline = begin + TimeUnit.MILLISECONDS.toNanos(millis);
            long next = interval > 0 ? begin + TimeUnit.MILLISECONDS.toNanos(interval) : deadline;
            while (true) {
                long now = System.nanoTime();
                if (now >= deadline) {
                    break;
                }
                long wake = Math.min(next, deadline);
                if (wake > now) {
                    TimeUnit.NANOSECONDS.sleep(wake - now);
                    continue;
                }
                if (interval > 0 && now >= next) {
                    say("[%5.1fs] %s | RSS %,d KiB", (now - begin) / 1e9, counters(), rssKiB());
                    next += TimeUnit.MILLISECONDS.toNanos(interval);
                }
            }
            stopping = true;
            for (Thread worker : workers) {
                worker.join();
            }
        }

        String counters() {
            return String.format(Locale.ROOT, "calls %,d, failed %,d | v1 %,d, v2 %,d | "
                    + "replacements %,d | churn cycles %,d", calls.sum(), failedCalls.sum(),
                    v1.sum(), v2.sum(), replacements.sum(), churnCycles.sum());
        }

        private Thread start(String name, Runnable body) {
            Thread thread = new Thread(body, name);
            thread.start();
            return thread;
        }

        /** One calling thread: call, check the answer against both versions, count. */
        private void call(String prefix) {
            long n = 0;
            while (!stopping) {
                String input = prefix + n++;
                calls.increment();
                try {
                    String answer = ProxySo.call(KEY, input);
                    if (answer.equals(input)) {
                        v1.increment();
                    } else if (answer.length() == input.length() + V2_SUFFIX.length()
                            && answer.startsWith(input) && answer.endsWith(V2_SUFFIX)) {
                        v2.increment();
                    } else {
                        failedCalls.increment();
                        record("wrong answer to " + input + ": " + answer);
                    }
                } catch (PluginCrashedException e) {
                    // Passes only for a crash injected on purpose: the crash fixture, SIGSEGV.
                    if (isolated && e.getSignal() == SIGSEGV
                            && e.getMessage().contains(CRASH_PLUGIN_NAME)) {
                        crashedCalls.increment();
                    } else {
                        failedCalls.increment();
                        record("call " + input + ": " + e);
                    }
                } catch (RuntimeException | Error e) {
                    failedCalls.increment();
                    record("call " + input + ": " + e);
                }
            }
        }

        /** The replacing thread: overwrite the one file in place, replace from it, repeat. */
        private void replace() {
            String path = live.path.toString();
            LoadOptions options = options();
            long interval = TimeUnit.MILLISECONDS.toNanos(crashIntervalMillis);
            long nextCrash = System.nanoTime() + interval;
            while (!stopping) {
                try {
                    if (isolated && System.nanoTime() >= nextCrash) {
                        injectCrash(options);
                        nextCrash = System.nanoTime() + interval;
                        continue;
                    }
                    live.flip();
                    ProxySo.replace(KEY, path, options);
                    replacements.increment();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                } catch (IOException | RuntimeException | Error e) {
                    failedReplacements.increment();
                    record("replace: " + e);
                }
            }
        }

        /**
         * Replaces {@code model} by the crash fixture, crashes its worker with a call of
         * {@code segv}, and waits until the crash within the probation rolled the key back to
         * the example version it replaced.
         */
        private void injectCrash(LoadOptions options) throws InterruptedException {
            long crashed = ProxySo.replace(KEY, crashPath, options);
            try {
                String answer = ProxySo.call(KEY, "segv", "");
                failedCrashes.increment();
                record("'segv' of generation " + crashed + " answered: " + answer);
                return;
            } catch (PluginCrashedException e) {
                if (e.getSignal() != SIGSEGV) {
                    failedCrashes.increment();
                    record("'segv' of generation " + crashed + ": " + e);
                    return;
                }
                injectedCrashes.increment();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(ROLLBACK_WAIT_SECONDS);
            while (true) {
                LibraryInfo info = ProxySo.info(KEY);
                if (info.getGeneration() > crashed) {
                    if ("example".equals(info.getName())) {
                        rolledBack.increment();
                    } else {
                        failedCrashes.increment();
                        record("after the crash of generation " + crashed + ", generation "
                                + info.getGeneration() + " serves " + info.getName());
                    }
                    return;
                }
                if (System.nanoTime() >= deadline) {
                    failedCrashes.increment();
                    record("generation " + crashed + " crashed and was not rolled back within "
                            + ROLLBACK_WAIT_SECONDS + " s");
                    return;
                }
                Thread.sleep(5);
            }
        }

        /** The churning thread: load, call once and unload the second key, repeat. */
        private void churn() {
            for (int i = 0; !stopping; i++) {
                String path = churnPaths[i % churnPaths.length];
                boolean loaded = false;
                try {
                    ProxySo.load(CHURN_KEY, path, options());
                    loaded = true;
                    String input = "churn-" + i;
                    String answer = ProxySo.call(CHURN_KEY, input);
                    if (!answer.equals(input)) {
                        throw new IllegalStateException("wrong answer to " + input + ": " + answer);
                    }
                } catch (RuntimeException | Error e) {
                    failedChurn.increment();
                    record("churn " + path + ": " + e);
                } finally {
                    if (loaded) {
                        unloadChurn();
                    }
                }
                churnCycles.increment();
            }
        }

        private void unloadChurn() {
            try {
                if (!ProxySo.unload(CHURN_KEY)) {
                    failedChurn.increment();
                    record("unload of '" + CHURN_KEY + "' returned false");
                }
            } catch (RuntimeException | Error e) {
                failedChurn.increment();
                record("unload of '" + CHURN_KEY + "': " + e);
            }
        }

        private void record(String failure) {
            if (failuresKept.incrementAndGet() <= MAX_FAILURES_SHOWN) {
                failures.add(failure);
            }
        }
    }

    /** The one file the replacing thread overwrites in place, and the two contents it takes. */
    private static final class LiveFile {
        final Path path;
        final Object inode;
        private final byte[][] versions;
        /** The version the file holds now, 0 or 1. */
        private int current;

        LiveFile(Path path, byte[][] versions) throws IOException {
            this.path = path;
            this.versions = versions;
            this.inode = Files.getAttribute(path, "unix:ino");
        }

        /**
         * Writes the other version over the file in place, keeping its inode. No fsync: the
         * process reads the file back through the page cache, which a write updates at once.
         */
        void flip() throws IOException {
            current ^= 1;
            byte[] content = versions[current];
            FileChannel channel = FileChannel.open(path, StandardOpenOption.WRITE);
            try {
                ByteBuffer buffer = ByteBuffer.wrap(content);
                long position = 0;
                while (buffer.hasRemaining()) {
                    position += channel.write(buffer, position);
                }
                channel.truncate(content.length);
            } finally {
                channel.close();
            }
            Object now = Files.getAttribute(path, "unix:ino");
            if (!inode.equals(now)) {
                throw new IOException(path + " changed inode from " + inode + " to " + now);
            }
        }
    }

    /** What the process holds at one moment, read from {@code /proc/self}. */
    /**
     * Takes every record of the proxy's loggers: counts them and writes those above INFO to
     * standard error, one line each.
     */
    private static final class LogTally extends Handler {
        /** Held strongly: java.util.logging keeps its loggers only weakly. */
        private final Logger logger = Logger.getLogger("dev.proxyso");
        final LongAdder records = new LongAdder();
        final LongAdder aboveInfo = new LongAdder();

        static LogTally install() {
            LogTally tally = new LogTally();
            tally.logger.setUseParentHandlers(false);
            tally.logger.addHandler(tally);
            return tally;
        }

        @Override
        public void publish(LogRecord record) {
            records.increment();
            if (record.getLevel().intValue() > Level.INFO.intValue()) {
                aboveInfo.increment();
                System.err.println("proxyso log " + record.getLevel() + " "
                        + record.getMessage());
            }
        }

        @Override
        public void flush() {
            System.err.flush();
        }

        @Override
        public void close() {
            flush();
        }
    }

    private static final class Figures {
        /** Thread names (as in {@code /proc/self/task/N/comm}) of the JVM's self-sizing pools. */
        private static final String[] JVM_WORKERS = {
            "C1 CompilerThre", "C2 CompilerThre", "GC Thread#", "G1 Conc#", "G1 Refine#",
        };

        final TreeSet<String> mappedCopies = new TreeSet<String>();
        /** Open descriptors: number to what it points at. */
        final Map<String, String> fds = new TreeMap<String, String>();
        /** The private copies that open descriptors name (each mapped version keeps one). */
        final TreeSet<String> copyFds = new TreeSet<String>();
        /** The {@code proxyso-worker} child processes of this JVM, by pid. */
        final TreeSet<Integer> workers = new TreeSet<Integer>();
        /** Mappings of the shared regions the JVM talks to workers through. */
        long regions;
        /** Thread id to name. */
        final Map<String, String> threadNames = new TreeMap<String, String>();
        /** Resident KiB of each mapping of {@code /proc/self/smaps}, by start address and file. */
        final Map<String, Long> residentByMapping = new TreeMap<String, Long>();
        long threads;
        /** VmRSS as found. */
        long rssKiB;
        /** VmRSS once free malloc memory was given back to the system; -1 if it cannot be. */
        long trimmedRssKiB = -1;

        /**
         * Reads the figures. With {@code trim}, RSS is read a second time after the JVM's
         * {@code System.trim_native_heap} ({@code malloc_trim}): glibc keeps memory freed by any
         * thread (the JIT compiler's arenas, a plugin's buffers) in its free lists, resident, and
         * the trimmed figure counts only memory still in use, which is what a leak would grow.
         */
        static Figures take(Path snapshotBase, boolean trim) throws IOException {
            Figures figures = new Figures();
            figures.rssKiB = status().get("VmRSS");
            if (trim && trimNativeHeap()) {
                figures.trimmedRssKiB = status().get("VmRSS");
            }
            for (String line : Files.readAllLines(Paths.get("/proc/self/maps"),
                    StandardCharsets.UTF_8)) {
                // The path is the last column, the only one that starts with '/'.
                int at = line.indexOf('/');
                if (at < 0) {
                    continue;
                }
                if (line.substring(at).startsWith("/memfd:proxyso-region")) {
                    figures.regions++;
                    continue;
                }
                Path file = Paths.get(line.substring(at).replace(" (deleted)", ""));
                if (isSnapshotCopy(file, snapshotBase)) {
                    figures.mappedCopies.add(file.toString());
                }
            }
            // This process's own /proc/PID/fd, which the listing below holds open.
            String listing = Files.readSymbolicLink(Paths.get("/proc/self")).toString();
            listing = "/proc/" + listing + "/fd";
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Paths.get("/proc/self/fd"))) {
                for (Path fd : fds) {
                    String target;
                    try {
                        target = Files.readSymbolicLink(fd).toString();
                    } catch (IOException e) {
                        // Closed while the list was read: open for a moment only, so not a
                        // leak (the JVM's GC threads read cgroup files now and then).
                        continue;
                    }
                    if (target.equals(listing)) {
                        // The descriptor of this very listing: its number changes from one
                        // reading to the next.
                        continue;
                    }
                    Path copy = Paths.get(target.replace(" (deleted)", ""));
                    if (isSnapshotCopy(copy, snapshotBase)) {
                        // A mapped version keeps the descriptor it was mapped through: counted
                        // with the mapped copies, not as the process's own descriptors.
                        figures.copyFds.add(copy.toString());
                    } else {
                        figures.fds.put(fd.getFileName().toString(), target);
                    }
                }
            }
            try (DirectoryStream<Path> tasks =
                    Files.newDirectoryStream(Paths.get("/proc/self/task"))) {
                for (Path task : tasks) {
                    String name;
                    try {
                        name = new String(Files.readAllBytes(task.resolve("comm")),
                                StandardCharsets.UTF_8).trim();
                    } catch (IOException e) {
                        // The thread ended while the list was read.
                        continue;
                    }
                    figures.threadNames.put(task.getFileName().toString(), name);
                }
            }
            String mapping = null;
            for (String line : Files.readAllLines(Paths.get("/proc/self/smaps"),
                    StandardCharsets.ISO_8859_1)) {
                if (line.startsWith("Rss:") && mapping != null) {
                    long kib = Long.parseLong(line.substring(4).replace("kB", "").trim());
                    Long before = figures.residentByMapping.get(mapping);
                    figures.residentByMapping.put(mapping, kib + (before == null ? 0 : before));
                } else if (!line.isEmpty() && Character.digit(line.charAt(0), 16) >= 0
                        && line.indexOf('-') > 0 && line.indexOf('-') < line.indexOf(' ')) {
                    // A mapping's header: "start-end perms offset dev inode [path]".
                    int at = line.indexOf('/');
                    String file = at >= 0 ? line.substring(at)
                            : line.replaceFirst("^(\\S+\\s+){5}", "").trim();
                    mapping = line.substring(0, line.indexOf('-')) + " "
                            + (file.isEmpty() ? "[anonymous]" : file);
                }
            }
            figures.threads = status().get("Threads");
            figures.workers.addAll(workers());
            return figures;
        }

        /**
         * The {@code proxyso-worker} processes whose parent is this JVM: every process of
         * {@code /proc} whose {@code stat} names this one as its parent and whose command line
         * starts with the worker's path.
         */
        static List<Integer> workers() throws IOException {
            String self = Files.readSymbolicLink(Paths.get("/proc/self")).toString();
            List<Integer> found = new ArrayList<Integer>();
            try (DirectoryStream<Path> all = Files.newDirectoryStream(Paths.get("/proc"),
                    "[0-9]*")) {
                for (Path process : all) {
                    String stat;
                    byte[] command;
                    try {
                        stat = new String(Files.readAllBytes(process.resolve("stat")),
                                StandardCharsets.UTF_8);
                        command = Files.readAllBytes(process.resolve("cmdline"));
                    } catch (IOException e) {
                        // It ended while the list was read.
                        continue;
                    }
                    // "pid (comm) state ppid ...": the command name may hold spaces.
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    int end = 0;
                    while (end < command.length && command[end] != 0) {
                        end++;
                    }
                    String argv0 = new String(command, 0, end, StandardCharsets.UTF_8);
                    if (fields.length > 1 && fields[1].equals(self)
                            && argv0.endsWith(WORKER_NAME)) {
                        found.add(Integer.valueOf(process.getFileName().toString()));
                    }
                }
            }
            return found;
        }

        /** {@code Threads} and {@code VmRSS} (in KiB) of {@code /proc/self/status}. */
        static Map<String, Long> status() throws IOException {
            Map<String, Long> values = new TreeMap<String, Long>();
            for (String line : Files.readAllLines(Paths.get("/proc/self/status"),
                    StandardCharsets.UTF_8)) {
                int colon = line.indexOf(':');
                String name = colon < 0 ? "" : line.substring(0, colon);
                if (name.equals("Threads") || name.equals("VmRSS")) {
                    values.put(name, Long.parseLong(
                            line.substring(colon + 1).replace("kB", "").trim()));
                }
            }
            if (values.size() != 2) {
                throw new IOException("no Threads or VmRSS in /proc/self/status: " + values);
            }
            return values;
        }

        /**
         * Asks the JVM to hand free malloc memory back to the system ({@code jcmd PID
         * System.trim_native_heap}, in OpenJDK 17.0.9 and later).
         *
         * @return whether the JVM could
         */
        private static boolean trimNativeHeap() {
            try {
                MBeanServer server = ManagementFactory.getPlatformMBeanServer();
                ObjectName commands = new ObjectName("com.sun.management:type=DiagnosticCommand");
                Object result = server.invoke(commands, "systemTrimNativeHeap", new Object[0],
                        new String[0]);
                return String.valueOf(result).contains("Trim native heap");
            } catch (JMException | RuntimeException e) {
                return false;
            }
        }

        /** Threads other than the GC and JIT workers the JVM starts and stops on its own. */
        long ownThreads() {
            long own = 0;
            for (String name : threadNames.values()) {
                if (!isJvmWorker(name)) {
                    own++;
                }
            }
            return own;
        }

        private static boolean isJvmWorker(String name) {
            for (String worker : JVM_WORKERS) {
                if (name.startsWith(worker)) {
                    return true;
                }
            }
            return false;
        }

        /** The five mappings that grew most between two figures, for a FAIL line. */
        static String grownMappings(Figures before, Figures after) {
            List<Map.Entry<String, Long>> grown = new ArrayList<Map.Entry<String, Long>>();
            for (Map.Entry<String, Long> entry : after.residentByMapping.entrySet()) {
                Long was = before.residentByMapping.get(entry.getKey());
                long growth = entry.getValue() - (was == null ? 0 : was);
                if (growth > 0) {
                    grown.add(new AbstractMap.SimpleEntry<String, Long>(entry.getKey(),
                            growth));
                }
            }
            grown.sort(new Comparator<Map.Entry<String, Long>>() {
                @Override
                public int compare(Map.Entry<String, Long> a, Map.Entry<String, Long> b) {
                    return Long.compare(b.getValue(), a.getValue());
                }
            });
            StringBuilder text = new StringBuilder("; grown most:");
            for (Map.Entry<String, Long> entry : grown.subList(0, Math.min(5, grown.size()))) {
                text.append(String.format(Locale.ROOT, " %s %+,d KiB;", entry.getKey(),
                        entry.getValue()));
            }
            return text.toString();
        }

        /**
         * Whether {@code file} is a private copy in a snapshot directory below the base (not the
         * directory's lock file, {@code .lock}, which its JVM holds open for its whole life).
         */
        static boolean isSnapshotCopy(Path file, Path snapshotBase) {
            Path dir = file.getParent();
            return dir != null && snapshotBase.equals(dir.getParent())
                    && dir.getFileName().toString().startsWith("proxyso-")
                    && !file.getFileName().toString().startsWith(".");
        }

        /** The entries of {@code after} that {@code before} did not have, with the same value. */
        static Map<String, String> added(Map<String, String> before, Map<String, String> after) {
            Map<String, String> added = new TreeMap<String, String>();
            for (Map.Entry<String, String> entry : after.entrySet()) {
                if (!entry.getValue().equals(before.get(entry.getKey()))) {
                    added.put(entry.getKey(), entry.getValue());
                }
            }
            return added;
        }

        /**
         * The descriptors of {@code after} beyond those of {@code before}, compared by what they
         * point at rather than by number, pipes and sockets by kind ({@code pipe:[123]} and
         * {@code pipe:[456]} are alike): each worker holds pipes of its own, and a worker started
         * after the baseline holds new ones, perhaps at other numbers.
         */
        static Map<String, String> addedKinds(Map<String, String> before,
                Map<String, String> after) {
            Map<String, Integer> left = new TreeMap<String, Integer>();
            for (String target : before.values()) {
                String kind = kind(target);
                Integer n = left.get(kind);
                left.put(kind, n == null ? 1 : n + 1);
            }
            Map<String, String> added = new TreeMap<String, String>();
            for (Map.Entry<String, String> entry : after.entrySet()) {
                String kind = kind(entry.getValue());
                Integer n = left.get(kind);
                if (n == null || n == 0) {
                    added.put(entry.getKey(), entry.getValue());
                } else {
                    left.put(kind, n - 1);
                }
            }
            return added;
        }

        private static String kind(String target) {
            return target.replaceFirst("^(pipe|socket):\\[\\d+\\]$", "$1:[]");
        }

        /** What was added to or removed from a map of descriptors or threads, for a FAIL line. */
        static String difference(Map<String, String> before, Map<String, String> after) {
            StringBuilder text = new StringBuilder();
            for (Map.Entry<String, String> entry : after.entrySet()) {
                if (!entry.getValue().equals(before.get(entry.getKey()))) {
                    text.append(text.length() == 0 ? "; new: " : ", ")
                            .append(entry.getKey()).append('=').append(entry.getValue());
                }
            }
            StringBuilder gone = new StringBuilder();
            for (Map.Entry<String, String> entry : before.entrySet()) {
                if (!entry.getValue().equals(after.get(entry.getKey()))) {
                    gone.append(gone.length() == 0 ? "; gone: " : ", ")
                            .append(entry.getKey()).append('=').append(entry.getValue());
                }
            }
            String all = text.append(gone).toString();
            return all.length() > 2000 ? all.substring(0, 2000) + "..." : all;
        }
    }
}
