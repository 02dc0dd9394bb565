package dev.proxyso.bench;

import dev.proxyso.LibraryHandle;
import dev.proxyso.ProxySo;
import dev.proxyso.tools.CommandLine;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.management.ManagementFactory;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The performance benchmark of issue 4: one echo algorithm, {@code proxyso_bench_echo} in
 * {@code bench/echo.c}, reached five ways from Java on the same payloads, and the figures of the
 * call path around it. A program, not a test: it prints tables (Markdown) with the goals of the
 * issue next to the measured figures, {@code PASS} or {@code FAIL}.
 *
 * <ol>
 *   <li><b>Per call</b>, for payloads of 0 B, 64 B, 4 KiB, 64 KiB and 1 MiB, in one JVM:
 *       (1) a JNI binding hand-written for the echo, in two styles, pinned arrays
 *       ({@code GetPrimitiveArrayCritical}) and copies through native buffers
 *       ({@code Get/SetByteArrayRegion}), the faster of which at each payload is the floor;
 *       (2) {@code ProxySo.call(key, byte[])}; (3) a {@link LibraryHandle} call; (4) direct
 *       {@link ByteBuffer}s in and out through a handle, and (4b) through
 *       {@code ProxySo.call(key, in, out)}; (5) JNA's direct mapping, when {@code jna.jar} is on
 *       the class path; (6) on JDK 22 and later, a raw FFM critical downcall of the echo with the
 *       arrays as heap segments ({@code FfmEcho}, compiled by the newest JDK from
 *       {@code java/src/bench22}), which the issue-12 goals compare (2) and (3) with. (2) to (4b) reach the echo through a proxyso plugin in C
 *       ({@code bench/plugin.c}), which writes into the host's output buffer after one
 *       {@code reserve}; its second method, {@code where}, reports the addresses it was handed,
 *       which shows that (4) copies neither buffer. After a warm-up of every way at every
 *       payload, each round runs a batch of each way at each payload, the ways in a rotating
 *       order, and each figure is the median of the rounds' nanoseconds per call.
 *   <li><b>Threads</b>: calls per second of 64 B with 1, 2 and 4 threads, all on one key or each
 *       on its own, through {@code ProxySo.call} and through handles (one shared handle on one
 *       key); rounds interleaved, medians. The scaling from 1 to 2 threads is the median of each
 *       round's own ratio, which a machine's slow drift in speed does not move.
 *   <li><b>Replacement</b>: calls per second of {@code ProxySo.call} with 1 and 2 calling
 *       threads, with and without a {@code replace} of the key every 10 ms, in pairs of runs
 *       back to back; the cost is one minus the median of the pairs' ratios.
 *   <li><b>Keys</b>: nanoseconds per {@code ProxySo.call} on one key with only that key loaded,
 *       with 10,000 keys loaded (each called once), and with one again after unloading them.
 *   <li><b>Replacing a 1 MiB plugin</b>: the time of {@code ProxySo.replace} (from the call to its
 *       return, when the new version serves) of the plugin padded with 1 MiB of initialised data,
 *       no call in flight.
 * </ol>
 *
 * <pre>
 * gradle bench
 * gradle bench -PbenchArgs='--quick'
 * java -Xms1g -Xmx1g -XX:+AlwaysPreTouch \
 *     -cp build/libs/proxyso-0.1.0.jar:build/classes/java/bench:/usr/share/java/jna.jar \
 *     dev.proxyso.bench.Bench --dir build/bench
 * </pre>
 *
 * Options (each also a system property {@code bench.<name>}): {@code --dir} (the native code's
 * build directory: {@code proxyso.bench.dir}, else {@code build/bench}), {@code --out} (a file
 * that gets a copy of the report), {@code --sections} (a comma-separated subset of
 * {@code calls,threads,replacing,keys,replace-1mib,isolated}), {@code --rounds} (21),
 * {@code --batch-ms} (40), {@code --warmup-ms} (150, per way and payload),
 * {@code --thread-ms} (300), {@code --thread-rounds} (7), {@code --replace-ms} (500),
 * {@code --replace-rounds} (9), {@code --keys} (10000), {@code --key-rounds} (15),
 * {@code --replacements} (60), and {@code --quick}, which shortens everything for a smoke run
 * (its figures are not the goals' figures). The exit status is 0 when the benchmark ran, whatever
 * the goals say, and 2 when it could not run or an answer was wrong.
 */
public final class Bench {
    /** The proxy's logger, held so that its level stays set (loggers are held weakly). */
    private static final Logger PROXY_LOG = Logger.getLogger("dev.proxyso");

    /** The payload sizes of the per-call comparison. */
    static final int[] PAYLOADS = {0, 64, 4 << 10, 64 << 10, 1 << 20};
    /** The payload of the throughput, replacement and key figures. */
    private static final int SMALL = 64;

    private static final String ECHO_LIBRARY = "libproxyso_bench_echo.so";
    private static final String PLUGIN = "libproxyso_bench_plugin.so";
    private static final String PLUGIN_1MIB = "libproxyso_bench_plugin_1mib.so";

    // The goals of issue 4: ratios to the direct JNI binding (median), and the rest.
    private static final double GOAL_CALL_64 = 1.15;
    private static final double GOAL_CALL_LARGE = 1.05;
    private static final double GOAL_HANDLE_64 = 1.05;
    private static final double GOAL_BUFFER_LARGE = 1.0;
    private static final double GOAL_JNA_SPEEDUP = 1.5;
    private static final double GOAL_TWO_THREADS = 1.8;
    private static final double GOAL_REPLACE_COST = 0.05;
    private static final double GOAL_KEYS_COST = 0.10;
    private static final double GOAL_REPLACE_1MIB_MS = 2.0;
    private static final long REPLACE_PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    // The goals of issue 12 on JDK 22 and later: ratios to the floor and to the raw FFM way (6).
    private static final double GOAL_FFM_CALL_FLOOR = 1.0;
    private static final double GOAL_FFM_CALL_RAW_64 = 1.3;
    private static final double GOAL_FFM_HANDLE_RAW = 1.2;

    private final CommandLine options;
    private final Path dir;
    private final Report report = new Report();
    private final List<String[]> goals = new ArrayList<String[]>();
    /** JNA's version, or {@code null} without {@code jna.jar}. */
    private String jna;
    /** The per-call section's medians, by way and payload, for the goals. */
    private double[][] perCall;
    /** For each payload, the binding that is the floor: 0 pinned arrays, 1 region copies. */
    private int[] floorWay;
    /** The per-call section's ratios to the floor (medians of each round's), by way, payload. */
    private double[][] toFloor;
    /** Whether a call on direct buffers handed the plugin the buffers' own memory. */
    private boolean zeroCopy;
    /** The per-call section's nanoseconds per call, by way, payload and round. */
    private double[][][] perCallSamples;
    /** The index of way (6), the raw FFM critical downcall, or -1 where it does not run. */
    private int ffmWay = -1;

    /** The options that take a value (see the class comment). */
    private static final String[] OPTIONS = {
        "dir", "out", "sections", "rounds", "batch-ms", "warmup-ms", "thread-ms",
        "thread-rounds", "replace-ms", "replace-rounds", "keys", "key-rounds", "replacements",
    };
    /** What {@code --quick} sets, unless given explicitly. */
    private static final String[][] QUICK = {
        {"rounds", "3"}, {"batch-ms", "10"}, {"warmup-ms", "30"}, {"thread-ms", "100"},
        {"thread-rounds", "1"}, {"replace-ms", "200"}, {"replace-rounds", "1"},
        {"keys", "1000"}, {"key-rounds", "3"}, {"replacements", "10"},
    };

    /** The native code's directory, for way (6), set before {@link Ffm} is first used. */
    static volatile Path benchDir;

    /** Collects every output length, so that no loop can be optimised away. */
    static volatile long sink;

    private Bench(CommandLine options) {
        this.options = options;
        this.dir = Paths.get(options.get("dir", System.getProperty("proxyso.bench.dir",
                "build/bench"))).toAbsolutePath();
    }

    /**
     * Runs the benchmark.
     *
     * @param args options, see the class comment
     */
    public static void main(String[] args) {
        // Every load and replace logs an INFO record (the benchmark loads 10,000 keys and
        // replaces one every 10 ms); formatting them on the proxyso-log thread would compete
        // with the measured threads for the CPUs. Warnings still reach standard error.
        PROXY_LOG.setLevel(Level.WARNING);
        int status;
        try {
            CommandLine options = new CommandLine(
                    "Bench [--quick] [--NAME VALUE]..., NAME one of "
                            + String.join(", ", OPTIONS) + " (see the class comment)",
                    "bench", Arrays.asList(OPTIONS), Arrays.asList("quick"), args);
            if (options.has("quick")) {
                options.withDefaults(QUICK);
            }
            Bench bench = new Bench(options);
            bench.run();
            status = 0;
        } catch (Exception | AssertionError e) {
            System.out.println("bench: could not run: " + e);
            e.printStackTrace(System.out);
            status = 2;
        }
        System.out.flush();
        System.exit(status);
    }

    private void run() throws Exception {
        for (String library : new String[] {ECHO_LIBRARY, "libproxyso_bench_jni.so", PLUGIN,
            PLUGIN_1MIB}) {
            if (!Files.isRegularFile(dir.resolve(library))) {
                throw new IllegalStateException("missing " + dir.resolve(library)
                        + " (gradle bench builds it; or bash bench/build.sh DIR JNI_INCLUDE)");
            }
        }
        DirectEcho.load(dir);
        jna = JnaEcho.register(dir.resolve(ECHO_LIBRARY));
        benchDir = dir;
        List<String> known = Arrays.asList("calls", "threads", "replacing", "keys",
                "replace-1mib", "isolated");
        List<String> sections = Arrays.asList(
                options.get("sections", String.join(",", known)).split(","));
        for (String section : sections) {
            if (!known.contains(section)) {
                throw new IllegalArgumentException("unknown section " + section + ", not one of "
                        + known);
            }
        }

        machine();
        if (sections.contains("calls")) {
            perCall();
        }
        if (sections.contains("threads")) {
            threads();
        }
        if (sections.contains("replacing")) {
            replacing();
        }
        if (sections.contains("keys")) {
            keys();
        }
        if (sections.contains("replace-1mib")) {
            replace1MiB();
        }
        if (sections.contains("isolated")) {
            isolated();
        }
        summary();
        String out = options.get("out", null);
        if (out != null) {
            Path file = Paths.get(out);
            if (file.getParent() != null) {
                Files.createDirectories(file.getParent());
            }
            Files.write(file, report.text().getBytes(StandardCharsets.UTF_8));
            System.out.println("bench: report written to " + file.toAbsolutePath());
        }
    }

    // ---------------------------------------------------------------------------------------
    // The machine

    private void machine() throws IOException {
        report.line("# proxyso benchmark");
        report.line("");
        report.line("| machine | |");
        report.line("| --- | --- |");
        report.line("| CPU | " + cpuModel() + ", " + Runtime.getRuntime().availableProcessors()
                + " cores available to the JVM |");
        report.line("| OS | " + System.getProperty("os.name") + " "
                + System.getProperty("os.version") + " " + System.getProperty("os.arch") + " |");
        report.line("| JVM | " + System.getProperty("java.vm.name") + " "
                + System.getProperty("java.runtime.version") + ", "
                + String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments())
                + " |");
        report.line("| JNA | " + (jna != null ? jna + " (direct mapping, Native.register)"
                : "not on the class path: way (5) is skipped") + " |");
        report.line("| run | " + (options.has("quick") ? "--quick: short, the figures are not the "
                + "goals' figures" : "full") + " |");
        report.line("");
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/cpuinfo"),
                    StandardCharsets.UTF_8)) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException e) {
            // Not Linux, or no /proc: say so below.
        }
        return "(CPU model unknown)";
    }

    // ---------------------------------------------------------------------------------------
    // 1. Per call: five ways, five payloads

    private void perCall() throws Exception {
        int rounds = options.getInt("rounds", 21, 3);
        long batchNanos = TimeUnit.MILLISECONDS.toNanos(options.getInt("batch-ms", 40, 5));
        long warmupNanos = TimeUnit.MILLISECONDS.toNanos(options.getInt("warmup-ms", 150, 20));
        String key = "bench";
        ProxySo.load(key, dir.resolve(PLUGIN).toString());
        byte[][] payloads = payloads();
        long[] cpuBefore = cpuTimes();
        try (LibraryHandle handle = ProxySo.handle(key)) {
            List<Way> ways = new ArrayList<Way>();
            ways.add(new JniCritical(payloads));
            ways.add(new JniRegion(payloads));
            ways.add(new KeyCall(payloads, key));
            ways.add(new HandleCall(payloads, handle));
            ways.add(new HandleBuffers(payloads, handle));
            ways.add(new KeyBuffers(payloads, key));
            if (jna != null) {
                ways.add(new Jna(payloads));
            }
            if (Ffm.ECHO != null) {
                ffmWay = ways.size();
                ways.add(new FfmCritical(payloads));
            }
            int n = ways.size();
            int[][] iterations = new int[n][PAYLOADS.length];
            // Warm-up, smallest payload first, so that every loop is compiled before the large
            // payloads run it; it also sizes each batch to about batch-ms.
            for (int p = 0; p < PAYLOADS.length; p++) {
                for (int w = 0; w < n; w++) {
                    Way way = ways.get(w);
                    way.use(p);
                    way.check(payloads[p]);
                    iterations[w][p] = calibrate(way, warmupNanos, batchNanos);
                }
            }
            double[][][] samples = new double[n][PAYLOADS.length][rounds];
            for (int round = 0; round < rounds; round++) {
                for (int p = 0; p < PAYLOADS.length; p++) {
                    for (int i = 0; i < n; i++) {
                        int w = (i + round) % n;
                        Way way = ways.get(w);
                        way.use(p);
                        int count = iterations[w][p];
                        long start = System.nanoTime();
                        sink += way.run(count);
                        samples[w][p][round] = (System.nanoTime() - start) / (double) count;
                    }
                }
            }
            // Every way still answers right after the rounds.
            for (int p = 0; p < PAYLOADS.length; p++) {
                for (Way way : ways) {
                    way.use(p);
                    way.check(payloads[p]);
                }
            }
            perCallSamples = samples;
            perCall = new double[n][PAYLOADS.length];
            for (int w = 0; w < n; w++) {
                for (int p = 0; p < PAYLOADS.length; p++) {
                    perCall[w][p] = median(samples[w][p]);
                }
            }
            zeroCopy = inPlace(key);
            floorWay = new int[PAYLOADS.length];
            for (int p = 0; p < PAYLOADS.length; p++) {
                floorWay[p] = perCall[0][p] <= perCall[1][p] ? 0 : 1;
            }
            // Each way's ratio to the floor within a round, then the median over the rounds:
            // the machine's drift in speed from round to round cancels out.
            toFloor = new double[n][PAYLOADS.length];
            for (int w = 0; w < n; w++) {
                for (int p = 0; p < PAYLOADS.length; p++) {
                    double[] ratios = new double[rounds];
                    for (int round = 0; round < rounds; round++) {
                        ratios[round] = samples[w][p][round] / samples[floorWay[p]][p][round];
                    }
                    toFloor[w][p] = median(ratios);
                }
            }
            printPerCall(ways, rounds, batchNanos, steal(cpuBefore, cpuTimes()),
                    ProxySo.info(key).getCallPath());
        } finally {
            ProxySo.unload(key);
            ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
        }
    }

    private void printPerCall(List<Way> ways, int rounds, long batchNanos, String steal,
            String callPath) {
        report.line("## Per call: nanoseconds, and the ratio to the floor (1)");
        report.line("");
        report.line("Median of " + rounds + " interleaved rounds of about "
                + TimeUnit.NANOSECONDS.toMillis(batchNanos) + " ms per way and payload, after a "
                + "warm-up. The floor (1) at each payload is the faster of the two hand-written "
                + "JNI bindings; a ratio is the median of the rounds' own ratios. Every way reaches the same C function, proxyso_bench_echo "
                + "(memcpy); (2) to (4b) through the proxyso plugin bench/plugin.c, whose calls "
                + "take the " + callPath + " path in this JVM. " + steal);
        report.line("");
        StringBuilder header = new StringBuilder("| way |");
        StringBuilder rule = new StringBuilder("| --- |");
        for (int size : PAYLOADS) {
            header.append(' ').append(size(size)).append(" |");
            rule.append(" ---: |");
        }
        report.line(header.toString());
        report.line(rule.toString());
        StringBuilder floorRow = new StringBuilder("| **(1) floor**: the faster binding |");
        for (int p = 0; p < PAYLOADS.length; p++) {
            floorRow.append(' ').append(nanos(floor(p))).append(' ')
                    .append(floorWay[p] == 0 ? "critical" : "region").append(" |");
        }
        report.line(floorRow.toString());
        for (int w = 0; w < ways.size(); w++) {
            StringBuilder row = new StringBuilder("| " + ways.get(w).label + " |");
            for (int p = 0; p < PAYLOADS.length; p++) {
                row.append(' ').append(nanos(perCall[w][p])).append(" (")
                        .append(ratio(toFloor[w][p])).append(") |");
            }
            report.line(row.toString());
        }
        report.line("");

        int p64 = index(64);
        double call64 = toFloor[2][p64];
        goal("`call(key, byte[])` at 64 B", "≤ " + ratio(GOAL_CALL_64) + " × floor",
                ratio(call64) + " × floor", call64 <= GOAL_CALL_64);
        for (int size : new int[] {4 << 10, 64 << 10, 1 << 20}) {
            int p = index(size);
            double r = toFloor[2][p];
            goal("`call(key, byte[])` at " + size(size), "≤ " + ratio(GOAL_CALL_LARGE)
                    + " × floor", ratio(r) + " × floor", r <= GOAL_CALL_LARGE);
        }
        double handle64 = toFloor[3][p64];
        goal("handle call at 64 B", "≤ " + ratio(GOAL_HANDLE_64) + " × floor",
                ratio(handle64) + " × floor", handle64 <= GOAL_HANDLE_64);
        for (int size : new int[] {4 << 10, 64 << 10, 1 << 20}) {
            int p = index(size);
            double r = toFloor[4][p];
            goal("direct `ByteBuffer` call (handle) at " + size(size),
                    "< " + ratio(GOAL_BUFFER_LARGE) + " × floor (faster), no copy",
                    ratio(r) + " × floor; " + (zeroCopy
                            ? "the plugin got the buffers' own addresses (checked)"
                            : "**the plugin got other addresses than the buffers'**"),
                    r < GOAL_BUFFER_LARGE && zeroCopy);
        }
        if (jna != null) {
            double jna64 = perCall[6][p64];
            double speedup = toFloor[6][p64] / toFloor[2][p64];
            goal("`call(key, byte[])` vs JNA at 64 B", "≥ " + ratio(GOAL_JNA_SPEEDUP)
                    + " × faster", ratio(speedup) + " × faster (" + nanos(perCall[2][p64])
                    + " vs " + nanos(jna64) + ")", speedup >= GOAL_JNA_SPEEDUP);
        } else {
            goals.add(new String[] {"`call(key, byte[])` vs JNA at 64 B",
                "≥ " + ratio(GOAL_JNA_SPEEDUP) + " × faster", "no jna.jar", "SKIP"});
        }
        if (ffmWay >= 0) {
            printToFfm(ways, callPath);
        }
    }

    /** The ways' ratios to the raw FFM critical downcall (6), and the goals of issue 12. */
    private void printToFfm(List<Way> ways, String callPath) {
        report.line("Ratios to (6), the raw FFM critical downcall (median of the rounds' own "
                + "ratios):");
        report.line("");
        StringBuilder header = new StringBuilder("| way |");
        StringBuilder rule = new StringBuilder("| --- |");
        for (int size : PAYLOADS) {
            header.append(' ').append(size(size)).append(" |");
            rule.append(" ---: |");
        }
        report.line(header.toString());
        report.line(rule.toString());
        for (int w = 0; w < ways.size(); w++) {
            StringBuilder row = new StringBuilder("| " + ways.get(w).label + " |");
            for (int p = 0; p < PAYLOADS.length; p++) {
                row.append(' ').append(ratio(toWay(w, ffmWay, p))).append(" |");
            }
            report.line(row.toString());
        }
        report.line("");
        String jdk = "JDK " + System.getProperty("java.specification.version") + " ("
                + callPath + "): ";
        for (int size : new int[] {64, 4 << 10, 64 << 10}) {
            double r = toFloor[2][index(size)];
            goal(jdk + "`call(key, byte[])` at " + size(size), "≤ " + ratio(GOAL_FFM_CALL_FLOOR)
                    + " × floor", ratio(r) + " × floor", r <= GOAL_FFM_CALL_FLOOR);
        }
        int p64 = index(64);
        double call = toWay(2, ffmWay, p64);
        goal(jdk + "`call(key, byte[])` at 64 B", "≤ " + ratio(GOAL_FFM_CALL_RAW_64)
                + " × raw FFM (6)", ratio(call) + " × raw FFM", call <= GOAL_FFM_CALL_RAW_64);
        double handle = toWay(3, ffmWay, p64);
        goal(jdk + "handle call at 64 B", "≤ " + ratio(GOAL_FFM_HANDLE_RAW) + " × raw FFM (6)",
                ratio(handle) + " × raw FFM", handle <= GOAL_FFM_HANDLE_RAW);
    }

    /** Way {@code w}'s ratio to way {@code to} at payload {@code p}: the rounds' median. */
    private double toWay(int w, int to, int p) {
        double[] ratios = new double[perCallSamples[w][p].length];
        for (int round = 0; round < ratios.length; round++) {
            ratios[round] = perCallSamples[w][p][round] / perCallSamples[to][p][round];
        }
        return median(ratios);
    }

    /**
     * Asks the bench plugin's {@code where} method, through a handle on direct buffers, which
     * addresses it was handed, and compares them with the buffers' own.
     */
    private static boolean inPlace(String key) {
        try (LibraryHandle where = ProxySo.handle(key, "where")) {
            ByteBuffer in = ByteBuffer.allocateDirect(64);
            ByteBuffer out = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
            ((Buffer) in).position(8);
            ((Buffer) out).position(4);
            if (where.call(in, out) != 16) {
                return false;
            }
            return out.getLong(4) == DirectEcho.address(in) + 8
                    && out.getLong(12) == DirectEcho.address(out) + 4;
        }
    }

    private double floor(int payload) {
        return perCall[floorWay[payload]][payload];
    }

    /**
     * Runs a way for about {@code warmupNanos} in doubling batches and returns the number of
     * calls that takes about {@code batchNanos}.
     */
    private static int calibrate(Way way, long warmupNanos, long batchNanos) {
        long spent = 0;
        int count = 1;
        double perCall = 0;
        while (spent < warmupNanos) {
            long start = System.nanoTime();
            sink += way.run(count);
            long elapsed = System.nanoTime() - start;
            spent += elapsed;
            perCall = elapsed / (double) count;
            if (elapsed < warmupNanos / 8 && count < (1 << 28)) {
                count *= 2;
            }
        }
        return (int) Math.max(1, Math.min(1 << 28, batchNanos / Math.max(perCall, 1e-3)));
    }

    private static byte[][] payloads() {
        Random random = new Random(4);
        byte[][] payloads = new byte[PAYLOADS.length][];
        for (int p = 0; p < PAYLOADS.length; p++) {
            payloads[p] = new byte[PAYLOADS[p]];
            random.nextBytes(payloads[p]);
        }
        return payloads;
    }

    private static int index(int size) {
        for (int p = 0; p < PAYLOADS.length; p++) {
            if (PAYLOADS[p] == size) {
                return p;
            }
        }
        throw new IllegalArgumentException("no payload of " + size + " bytes");
    }

    /**
     * One way to reach the echo. Each subclass has its own loop, so that the call inside it is
     * monomorphic and compiled for that way alone.
     */
    private abstract static class Way {
        final String label;
        final byte[][] payloads;
        byte[] payload;

        Way(String label, byte[][] payloads) {
            this.label = label;
            this.payloads = payloads;
        }

        /** Selects the payload of index {@code p} for the next calls. */
        void use(int p) {
            payload = payloads[p];
        }

        /** Makes {@code count} calls; returns the sum of the output lengths. */
        abstract long run(int count);

        /** Makes one call and returns its output. */
        abstract byte[] once();

        void check(byte[] expected) {
            byte[] actual = once();
            if (!Arrays.equals(expected, actual)) {
                throw new AssertionError(label + " answered " + actual.length + " bytes, not the "
                        + expected.length + " bytes echoed");
            }
        }
    }

    private static final class JniCritical extends Way {
        JniCritical(byte[][] payloads) {
            super("(1) JNI, critical: Get/ReleasePrimitiveArrayCritical", payloads);
        }

        @Override
        long run(int count) {
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                sum += DirectEcho.echoCritical(input).length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            return DirectEcho.echoCritical(payload);
        }
    }

    private static final class JniRegion extends Way {
        JniRegion(byte[][] payloads) {
            super("(1) JNI, region: Get/SetByteArrayRegion", payloads);
        }

        @Override
        long run(int count) {
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                sum += DirectEcho.echoRegion(input).length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            return DirectEcho.echoRegion(payload);
        }
    }

    private static final class KeyCall extends Way {
        private final String key;

        KeyCall(byte[][] payloads, String key) {
            super("(2) `ProxySo.call(key, byte[])`", payloads);
            this.key = key;
        }

        @Override
        long run(int count) {
            String k = key;
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                sum += ProxySo.call(k, input).length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            return ProxySo.call(key, payload);
        }
    }

    private static final class HandleCall extends Way {
        private final LibraryHandle handle;

        HandleCall(byte[][] payloads, LibraryHandle handle) {
            super("(3) `LibraryHandle.call(byte[])`", payloads);
            this.handle = handle;
        }

        @Override
        long run(int count) {
            LibraryHandle h = handle;
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                sum += h.call(input).length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            return handle.call(payload);
        }
    }

    /** Direct buffers holding each payload, and an output buffer of the same size for each. */
    private abstract static class Buffers extends Way {
        private final ByteBuffer[] ins;
        private final ByteBuffer[] outs;
        ByteBuffer in;
        ByteBuffer out;

        Buffers(String label, byte[][] payloads) {
            super(label, payloads);
            ins = new ByteBuffer[payloads.length];
            outs = new ByteBuffer[payloads.length];
            for (int p = 0; p < payloads.length; p++) {
                ins[p] = ByteBuffer.allocateDirect(payloads[p].length);
                ins[p].put(payloads[p]);
                outs[p] = ByteBuffer.allocateDirect(payloads[p].length);
            }
        }

        @Override
        void use(int p) {
            super.use(p);
            in = ins[p];
            out = outs[p];
        }

        /** One call on the buffers as they are. */
        abstract int call();

        @Override
        byte[] once() {
            ((Buffer) in).rewind();
            ((Buffer) out).clear();
            int written = call();
            if (in.hasRemaining() || out.position() != written) {
                throw new AssertionError(label + " left the positions at " + in.position() + " of "
                        + in.limit() + " and " + out.position() + " after " + written + " bytes");
            }
            byte[] bytes = new byte[written];
            ((Buffer) out).flip();
            out.get(bytes);
            return bytes;
        }
    }

    private static final class HandleBuffers extends Buffers {
        private final LibraryHandle handle;

        HandleBuffers(byte[][] payloads, LibraryHandle handle) {
            super("(4) `LibraryHandle.call(ByteBuffer, ByteBuffer)`, direct", payloads);
            this.handle = handle;
        }

        @Override
        int call() {
            return handle.call(in, out);
        }

        @Override
        long run(int count) {
            LibraryHandle h = handle;
            ByteBuffer input = in;
            ByteBuffer output = out;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                ((Buffer) input).rewind();
                ((Buffer) output).clear();
                sum += h.call(input, output);
            }
            return sum;
        }
    }

    private static final class KeyBuffers extends Buffers {
        private final String key;

        KeyBuffers(byte[][] payloads, String key) {
            super("(4b) `ProxySo.call(key, ByteBuffer, ByteBuffer)`, direct", payloads);
            this.key = key;
        }

        @Override
        int call() {
            return ProxySo.call(key, in, out);
        }

        @Override
        long run(int count) {
            String k = key;
            ByteBuffer input = in;
            ByteBuffer output = out;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                ((Buffer) input).rewind();
                ((Buffer) output).clear();
                sum += ProxySo.call(k, input, output);
            }
            return sum;
        }
    }

    /**
     * Way (6)'s downcall: {@code FfmEcho.echo(byte[])}, a raw FFM critical downcall, where the
     * JDK runs it (22 and later, with the benchmark's JDK 22 classes on the class path); else
     * {@code null}. A constant, so that the compiled loop inlines it.
     */
    private static final class Ffm {
        static final MethodHandle ECHO = find();

        private static MethodHandle find() {
            Class<?> echo;
            try {
                echo = Class.forName("dev.proxyso.bench.FfmEcho");
            } catch (ClassNotFoundException | LinkageError e) {
                return null;
            }
            try {
                echo.getMethod("link", Path.class).invoke(null, benchDir);
                return MethodHandles.publicLookup().findStatic(echo, "echo",
                        MethodType.methodType(byte[].class, byte[].class));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot reach FfmEcho.echo", e);
            }
        }

        static byte[] echo(byte[] input) {
            try {
                return (byte[]) ECHO.invokeExact(input);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    private static final class FfmCritical extends Way {
        FfmCritical(byte[][] payloads) {
            super("(6) raw FFM, critical downcall, heap segments (JDK 22+)", payloads);
        }

        @Override
        long run(int count) {
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                sum += Ffm.echo(input).length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            return Ffm.echo(payload);
        }
    }

    private static final class Jna extends Way {
        Jna(byte[][] payloads) {
            super("(5) JNA direct mapping, `byte[]` in and out", payloads);
        }

        @Override
        long run(int count) {
            byte[] input = payload;
            long sum = 0;
            for (int i = 0; i < count; i++) {
                byte[] output = new byte[input.length];
                sum += JnaEcho.proxyso_bench_echo(input, input.length, output) + output.length;
            }
            return sum;
        }

        @Override
        byte[] once() {
            byte[] output = new byte[payload.length];
            long written = JnaEcho.proxyso_bench_echo(payload, payload.length, output);
            return written == output.length ? output : Arrays.copyOf(output, (int) written);
        }
    }

    // ---------------------------------------------------------------------------------------
    // 2. Threads: one key and separate keys

    private void threads() throws Exception {
        int rounds = options.getInt("thread-rounds", 7, 1);
        long millis = options.getInt("thread-ms", 300, 50);
        int[] counts = {1, 2, 4};
        String[] keys = new String[4];
        LibraryHandle[] handles = new LibraryHandle[keys.length];
        byte[] payload = payloads()[index(SMALL)];
        try {
            for (int t = 0; t < keys.length; t++) {
                keys[t] = "bench-thread-" + t;
                ProxySo.load(keys[t], dir.resolve(PLUGIN).toString());
                handles[t] = ProxySo.handle(keys[t]);
            }
            // Rows: call one key, call separate keys, handle one key, handle separate keys, and
            // the control: the hand-written binding, which shares nothing between threads.
            String[] rows = {
                "`ProxySo.call`, one key", "`ProxySo.call`, a key per thread",
                "handle, one handle shared", "handle, a key and handle per thread",
                "control: (1) the hand-written JNI binding",
            };
            int control = rows.length - 1;
            double[][][] samples = new double[rows.length][counts.length][rounds];
            long[] cpuBefore = cpuTimes();
            // A discarded round first: it compiles the workers' loops.
            for (int round = -1; round < rounds; round++) {
                for (int i = 0; i < rows.length * counts.length; i++) {
                    int cell = (i + Math.max(round, 0)) % (rows.length * counts.length);
                    int row = cell / counts.length;
                    int c = cell % counts.length;
                    int threads = counts[c];
                    Worker[] workers = new Worker[threads];
                    for (int t = 0; t < threads; t++) {
                        int k = row % 2 == 0 ? 0 : t;
                        workers[t] = row == control ? Worker.floor(payload)
                                : row < 2 ? Worker.calling(keys[k], payload)
                                : Worker.through(handles[k], payload);
                    }
                    double rate = runWorkers(workers, round < 0 ? millis / 4 : millis, null);
                    if (round >= 0) {
                        samples[row][c][round] = rate;
                    }
                }
            }
            report.line("## Threads: calls per second, 64 B");
            report.line("");
            long[] cpuAfter = cpuTimes();
            report.line("Median of " + rounds + " interleaved runs of " + millis + " ms each, on "
                    + Runtime.getRuntime().availableProcessors() + " cores; the last column is the "
                    + "median of each round's ratio of 2 threads to 1. The control row shows what "
                    + "the machine itself gave two threads at the time: the floor's binding shares "
                    + "nothing between threads. " + steal(cpuBefore, cpuAfter));
            report.line("");
            report.line("| 64 B | 1 thread | 2 threads | 4 threads | 2 threads / 1 |");
            report.line("| --- | ---: | ---: | ---: | ---: |");
            double[][] medians = new double[rows.length][counts.length];
            double[] scaling = new double[rows.length];
            for (int row = 0; row < rows.length; row++) {
                StringBuilder line = new StringBuilder("| " + rows[row] + " |");
                for (int c = 0; c < counts.length; c++) {
                    medians[row][c] = median(samples[row][c]);
                    line.append(' ').append(rate(medians[row][c])).append(" |");
                }
                double[] ratios = new double[rounds];
                for (int round = 0; round < rounds; round++) {
                    ratios[round] = samples[row][1][round] / samples[row][0][round];
                }
                scaling[row] = median(ratios);
                line.append(' ').append(ratio(scaling[row])).append(" |");
                report.line(line.toString());
            }
            report.line("");
            for (int row = 0; row < control; row++) {
                goal("2 threads vs 1: " + rows[row], "≥ " + ratio(GOAL_TWO_THREADS) + " ×",
                        ratio(scaling[row]) + " × (" + rate(medians[row][0]) + " → "
                                + rate(medians[row][1]) + "; the control: "
                                + ratio(scaling[control]) + " ×)",
                        scaling[row] >= GOAL_TWO_THREADS);
            }
        } finally {
            for (int t = 0; t < keys.length; t++) {
                if (handles[t] != null) {
                    handles[t].close();
                }
                if (keys[t] != null) {
                    ProxySo.unload(keys[t]);
                    ProxySo.awaitRetired(keys[t], 10, TimeUnit.SECONDS);
                }
            }
        }
    }

    /**
     * Runs the workers for about {@code millis}, with an optional extra thread alongside, and
     * returns their calls per second (each worker's calls over its own running time, summed).
     */
    private static double runWorkers(Worker[] workers, long millis, Runnable alongside)
            throws InterruptedException {
        Run run = new Run(workers.length);
        Thread[] threads = new Thread[workers.length];
        for (int t = 0; t < workers.length; t++) {
            workers[t].run = run;
            threads[t] = new Thread(workers[t], "bench-worker-" + t);
            threads[t].start();
        }
        Thread side = null;
        if (alongside != null) {
            side = new Thread(alongside, "bench-alongside");
        }
        run.ready.await();
        run.go.countDown();
        if (side != null) {
            side.start();
        }
        Thread.sleep(millis);
        run.stop = true;
        for (Thread thread : threads) {
            thread.join();
        }
        if (side != null) {
            side.join();
        }
        double rate = 0;
        for (Worker worker : workers) {
            if (worker.failure != null) {
                throw new AssertionError("a calling thread failed: " + worker.failure,
                        worker.failure);
            }
            if (worker.bytes != worker.calls * worker.payload.length) {
                throw new AssertionError("wrong answer lengths: " + worker.bytes + " bytes in "
                        + worker.calls + " calls of " + worker.payload.length);
            }
            rate += worker.calls / (worker.nanos / 1e9);
        }
        return rate;
    }

    /** What the workers of one run share: start and stop, read-only while they call. */
    private static final class Run {
        final CountDownLatch ready;
        final CountDownLatch go = new CountDownLatch(1);
        volatile boolean stop;

        Run(int workers) {
            ready = new CountDownLatch(workers);
        }
    }

    /** A calling thread: calls one key or one handle until told to stop, counting locally. */
    private static final class Worker implements Runnable {
        private final String key;
        private final LibraryHandle handle;
        final byte[] payload;
        Run run;
        long calls;
        long bytes;
        long nanos;
        Throwable failure;

        private Worker(String key, LibraryHandle handle, byte[] payload) {
            this.key = key;
            this.handle = handle;
            this.payload = payload;
        }

        static Worker calling(String key, byte[] payload) {
            return new Worker(key, null, payload);
        }

        static Worker through(LibraryHandle handle, byte[] payload) {
            return new Worker(null, handle, payload);
        }

        /** The control: the hand-written binding, which touches nothing shared. */
        static Worker floor(byte[] payload) {
            return new Worker(null, null, payload);
        }

        @Override
        public void run() {
            Run r = run;
            long n = 0;
            long sum = 0;
            long start = 0;
            try {
                r.ready.countDown();
                r.go.await();
                start = System.nanoTime();
                if (handle != null) {
                    LibraryHandle h = handle;
                    byte[] input = payload;
                    while (!r.stop) {
                        sum += h.call(input).length;
                        n++;
                    }
                } else if (key != null) {
                    String k = key;
                    byte[] input = payload;
                    while (!r.stop) {
                        sum += ProxySo.call(k, input).length;
                        n++;
                    }
                } else {
                    byte[] input = payload;
                    while (!r.stop) {
                        sum += DirectEcho.echoRegion(input).length;
                        n++;
                    }
                }
            } catch (Throwable e) {
                failure = e;
            }
            nanos = System.nanoTime() - start;
            calls = n;
            bytes = sum;
        }
    }

    // ---------------------------------------------------------------------------------------
    // 3. The cost of a replacement every 10 ms

    private void replacing() throws Exception {
        int rounds = options.getInt("replace-rounds", 9, 1);
        long millis = options.getInt("replace-ms", 500, 100);
        final String key = "bench-replacing";
        final String path = dir.resolve(PLUGIN).toString();
        byte[] payload = payloads()[index(SMALL)];
        ProxySo.load(key, path);
        long[] cpuBefore = cpuTimes();
        try {
            int[] counts = {1, 2};
            double[][][] samples = new double[counts.length][2][rounds];
            long[][] replaced = new long[counts.length][rounds];
            for (int round = -1; round < rounds; round++) {
                for (int c = 0; c < counts.length; c++) {
                    for (int i = 0; i < 2; i++) {
                        // Alternate which goes first, with or without.
                        boolean with = ((i + Math.max(round, 0)) % 2) == 1;
                        Worker[] workers = new Worker[counts[c]];
                        for (int t = 0; t < workers.length; t++) {
                            workers[t] = Worker.calling(key, payload);
                        }
                        Replacer replacer = with ? new Replacer(key, path, workers) : null;
                        double rate = runWorkers(workers, round < 0 ? millis / 4 : millis,
                                replacer);
                        if (replacer != null && replacer.failure != null) {
                            throw new AssertionError("a replacement failed: " + replacer.failure,
                                    replacer.failure);
                        }
                        if (round >= 0) {
                            samples[c][with ? 1 : 0][round] = rate;
                            if (with) {
                                replaced[c][round] = replacer.count;
                            }
                        }
                    }
                }
            }
            report.line("## A replacement every 10 ms: calls per second, 64 B, `ProxySo.call`");
            report.line("");
            report.line("Medians of " + rounds + " pairs of runs of " + millis + " ms each, one "
                    + "with and one without, back to back in alternating order; the replacing "
                    + "thread calls `replace` with the same file every 10 ms. The cost is one "
                    + "minus the median of the pairs' ratios. With 2 calling threads on 2 cores the "
                    + "replacing thread takes its CPU time from the callers. "
                    + steal(cpuBefore, cpuTimes()));
            report.line("");
            report.line("| calling threads | without | with | replacements per run | cost |");
            report.line("| ---: | ---: | ---: | ---: | ---: |");
            for (int c = 0; c < counts.length; c++) {
                double without = median(samples[c][0]);
                double with = median(samples[c][1]);
                double[] ratios = new double[rounds];
                for (int round = 0; round < rounds; round++) {
                    ratios[round] = samples[c][1][round] / samples[c][0][round];
                }
                double cost = 1 - median(ratios);
                report.line("| " + counts[c] + " | " + rate(without) + " | " + rate(with) + " | "
                        + String.format(Locale.ROOT, "%.0f", median(toDoubles(replaced[c])))
                        + " | " + percent(cost) + " |");
                goal("a replacement every 10 ms, " + counts[c] + " calling thread"
                        + (counts[c] == 1 ? "" : "s"), "< " + share(GOAL_REPLACE_COST)
                        + " of throughput", percent(cost) + " (" + rate(without) + " → "
                        + rate(with) + ")", cost < GOAL_REPLACE_COST);
            }
            report.line("");
        } finally {
            ProxySo.unload(key);
            ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
        }
    }

    /** Replaces a key every 10 ms, on a fixed schedule, until the workers stop. */
    private static final class Replacer implements Runnable {
        private final String key;
        private final String path;
        private final Worker[] workers;
        long count;
        Throwable failure;

        Replacer(String key, String path, Worker[] workers) {
            this.key = key;
            this.path = path;
            this.workers = workers;
        }

        @Override
        public void run() {
            Run run = workers[0].run;
            long next = System.nanoTime();
            try {
                while (!run.stop) {
                    next += REPLACE_PERIOD_NANOS;
                    long wait;
                    while ((wait = next - System.nanoTime()) > 0 && !run.stop) {
                        LockSupport.parkNanos(wait);
                    }
                    if (run.stop) {
                        break;
                    }
                    ProxySo.replace(key, path);
                    count++;
                    // Late (a slow replace): start the schedule again from now, without a burst.
                    next = Math.max(next, System.nanoTime() - REPLACE_PERIOD_NANOS);
                }
            } catch (Throwable e) {
                failure = e;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // 4. One key loaded, and 10,000

    private void keys() throws Exception {
        int wanted = options.getInt("keys", 10_000, 2);
        int rounds = options.getInt("key-rounds", 15, 3);
        long batchNanos = TimeUnit.MILLISECONDS.toNanos(options.getInt("batch-ms", 40, 5));
        String path = dir.resolve(PLUGIN).toString();
        String key = "bench-keys-0";
        byte[][] payloads = payloads();
        int p64 = index(SMALL);
        // libproxy.so itself is loaded on first use: load it before counting a load's mappings.
        ProxySo.info(key);
        int before = mapCount();
        ProxySo.load(key, path);
        int perLoad = Math.max(1, mapCount() - before);
        int keys = wanted;
        int room = (int) ((maxMapCount() * 0.9 - mapCount()) / perLoad);
        String limited = "";
        if (keys - 1 > room) {
            keys = Math.max(2, room);
            limited = " (" + wanted + " would pass vm.max_map_count, " + maxMapCount()
                    + ", at " + perLoad + " mappings a load)";
        }
        List<String> others = new ArrayList<String>();
        try {
            Way way = new KeyCall(payloads, key);
            way.use(p64);
            way.check(payloads[p64]);
            int count = calibrate(way, batchNanos * 2, batchNanos);
            // The control, the hand-written binding, runs between the batches: the cost is
            // taken from the ratios to it, which the machine's drift in speed does not move.
            Way control = new JniRegion(payloads);
            control.use(p64);
            int controlCount = calibrate(control, batchNanos * 2, batchNanos);
            double[][] alone = pairedBatches(way, count, control, controlCount, rounds);

            long[] loadNanos = new long[keys - 1];
            long start = System.nanoTime();
            for (int i = 1; i < keys; i++) {
                String other = "bench-keys-" + i;
                long began = System.nanoTime();
                ProxySo.load(other, path);
                loadNanos[i - 1] = System.nanoTime() - began;
                others.add(other);
            }
            double loadMillis = (System.nanoTime() - start) / 1e6;
            for (String other : others) {
                sink += ProxySo.call(other, payloads[p64]).length;
            }
            way.check(payloads[p64]);
            double[][] many = pairedBatches(way, count, control, controlCount, rounds);

            long[] unloadNanos = new long[others.size()];
            start = System.nanoTime();
            for (int i = 0; i < others.size(); i++) {
                long began = System.nanoTime();
                ProxySo.unload(others.get(i));
                unloadNanos[i] = System.nanoTime() - began;
            }
            double unloadMillis = (System.nanoTime() - start) / 1e6;
            for (String other : others) {
                ProxySo.awaitRetired(other, 10, TimeUnit.SECONDS);
            }
            others.clear();
            double[][] again = pairedBatches(way, count, control, controlCount, rounds);

            double one = median(concat(alone[0], again[0]));
            double cost = median(many[1]) / median(concat(alone[1], again[1])) - 1;
            report.line("## Keys: nanoseconds per `ProxySo.call`, 64 B, on one key");
            report.line("");
            report.line("Median of " + rounds + " batches of about "
                    + TimeUnit.NANOSECONDS.toMillis(batchNanos) + " ms each; every one of the "
                    + String.format(Locale.ROOT, "%,d", keys) + " keys was called once before"
                    + limited + ", so that the map of cached handles behind `ProxySo.call` holds "
                    + "them all (the call itself searches no native key map). The cost compares "
                    + "each batch's ratio to a batch of the control, (1) the hand-written JNI "
                    + "binding, run right after it. Loading the other keys took "
                    + String.format(Locale.ROOT, "%,.0f", loadMillis) + " ms ("
                    + growth(loadNanos) + "), unloading them "
                    + String.format(Locale.ROOT, "%,.0f", unloadMillis) + " ms ("
                    + growth(unloadNanos) + ").");
            report.line("");
            report.line("| 1 key | " + String.format(Locale.ROOT, "%,d", keys)
                    + " keys | 1 key again | cost |");
            report.line("| ---: | ---: | ---: | ---: |");
            report.line("| " + nanos(median(alone[0])) + " | " + nanos(median(many[0])) + " | "
                    + nanos(median(again[0])) + " | " + percent(cost) + " |");
            report.line("");
            goal("a call with " + String.format(Locale.ROOT, "%,d", keys) + " keys loaded",
                    "< " + share(GOAL_KEYS_COST) + " slower than with 1",
                    percent(cost) + " (" + nanos(one) + " → " + nanos(median(many[0])) + ")",
                    cost < GOAL_KEYS_COST && keys >= 10_000);
        } finally {
            for (String other : others) {
                ProxySo.unload(other);
            }
            ProxySo.unload(key);
            ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
        }
    }

    /**
     * The machine's CPU time so far, from the first line of {@code /proc/stat}: user, nice,
     * system, idle, iowait, irq, softirq, steal (in clock ticks); empty if unreadable.
     */
    private static long[] cpuTimes() {
        try {
            String[] fields = Files.readAllLines(Paths.get("/proc/stat"), StandardCharsets.US_ASCII)
                    .get(0).trim().split("\\s+");
            long[] times = new long[8];
            for (int i = 0; i < times.length && i + 1 < fields.length; i++) {
                times[i] = Long.parseLong(fields[i + 1]);
            }
            return times;
        } catch (IOException | RuntimeException e) {
            return new long[0];
        }
    }

    /** What share of the machine's CPU time the hypervisor took between two readings. */
    private static String steal(long[] before, long[] after) {
        if (before.length < 8 || after.length < 8) {
            return "";
        }
        long total = 0;
        for (int i = 0; i < 8; i++) {
            total += after[i] - before[i];
        }
        if (total <= 0) {
            return "";
        }
        return "Meanwhile the hypervisor took " + String.format(Locale.ROOT, "%.1f %%",
                100.0 * (after[7] - before[7]) / total) + " of the CPU time (steal, /proc/stat).";
    }

    /** The mean of the first and of the last tenth of a series of times, to show a trend. */
    private static String growth(long[] nanos) {
        int tenth = Math.max(1, nanos.length / 10);
        double first = 0;
        double last = 0;
        for (int i = 0; i < tenth; i++) {
            first += nanos[i];
            last += nanos[nanos.length - 1 - i];
        }
        return "the first " + String.format(Locale.ROOT, "%,d", tenth) + " "
                + millis(first / tenth / 1e6) + " each, the last " + millis(last / tenth / 1e6);
    }

    /**
     * {@code rounds} timed batches of {@code count} calls, each followed by a batch of a control:
     * the nanoseconds per call of each batch, and each batch's ratio to its control's.
     */
    private static double[][] pairedBatches(Way way, int count, Way control, int controlCount,
            int rounds) {
        double[][] samples = new double[2][rounds];
        for (int round = 0; round < rounds; round++) {
            long start = System.nanoTime();
            sink += way.run(count);
            long middle = System.nanoTime();
            sink += control.run(controlCount);
            long end = System.nanoTime();
            samples[0][round] = (middle - start) / (double) count;
            samples[1][round] = samples[0][round] / ((end - middle) / (double) controlCount);
        }
        return samples;
    }

    private static int mapCount() throws IOException {
        return Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8).size();
    }

    private static int maxMapCount() {
        try {
            // By lines: Files.readAllBytes trusts the file's size, and sysctl files under /proc
            // report 0 (it returned "6" of "65530" here).
            return Integer.parseInt(Files.readAllLines(Paths.get("/proc/sys/vm/max_map_count"),
                    StandardCharsets.US_ASCII).get(0).trim());
        } catch (IOException | NumberFormatException | IndexOutOfBoundsException e) {
            return 65530;
        }
    }

    // ---------------------------------------------------------------------------------------
    // 5. Replacing a 1 MiB plugin

    private void replace1MiB() throws Exception {
        int replacements = options.getInt("replacements", 60, 5);
        String key = "bench-1mib";
        Path file = dir.resolve(PLUGIN_1MIB);
        String path = file.toString();
        long size = Files.size(file);
        byte[] payload = payloads()[index(SMALL)];
        ProxySo.load(key, path);
        try {
            for (int i = 0; i < 5; i++) {
                ProxySo.replace(key, path);
            }
            double[] millis = new double[replacements];
            for (int i = 0; i < replacements; i++) {
                long start = System.nanoTime();
                ProxySo.replace(key, path);
                millis[i] = (System.nanoTime() - start) / 1e6;
                if (!Arrays.equals(payload, ProxySo.call(key, payload))) {
                    throw new AssertionError("the 1 MiB plugin answered wrong after a replace");
                }
            }
            double[] sorted = millis.clone();
            Arrays.sort(sorted);
            double median = median(millis);
            report.line("## Replacing a 1 MiB plugin: `ProxySo.replace`, call to return");
            report.line("");
            report.line(PLUGIN_1MIB + ", " + String.format(Locale.ROOT, "%,d", size) + " bytes, "
                    + "replaced " + replacements + " times with the same path, no call in flight "
                    + "(so the old version is destroyed and closed inside the call as well); "
                    + "snapshots in " + System.getProperty("proxyso.snapshotDir",
                            System.getProperty("java.io.tmpdir")) + ".");
            report.line("");
            report.line("| median | 10th percentile | 90th percentile | fastest | slowest |");
            report.line("| ---: | ---: | ---: | ---: | ---: |");
            report.line("| " + millis(median) + " | " + millis(percentile(sorted, 0.1)) + " | "
                    + millis(percentile(sorted, 0.9)) + " | " + millis(sorted[0]) + " | "
                    + millis(sorted[sorted.length - 1]) + " |");
            report.line("");
            goal("`replace` of a 1 MiB plugin, median", "< " + millis(GOAL_REPLACE_1MIB_MS),
                    millis(median), median < GOAL_REPLACE_1MIB_MS);
        } finally {
            ProxySo.unload(key);
            ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
        }
    }

    // ---------------------------------------------------------------------------------------
    // The goals

    private void goal(String what, String target, String measured, boolean pass) {
        goals.add(new String[] {what, target, measured, pass ? "PASS" : "**FAIL**"});
    }

    /** The isolated section (see {@link IsolatedBench}); its goals join the others. */
    private void isolated() throws Exception {
        IsolatedBench isolated = new IsolatedBench(dir, report::line,
                options.getInt("rounds", 21, 3), options.getInt("batch-ms", 40, 5));
        isolated.run();
        goals.addAll(isolated.goals);
    }

    private void summary() {
        report.line("## Goals of issue 4 (and of issue 12, marked with their JDK)");
        report.line("");
        report.line("| | goal | measured | |");
        report.line("| --- | --- | --- | --- |");
        int passed = 0;
        int failed = 0;
        for (String[] goal : goals) {
            report.line("| " + goal[0] + " | " + goal[1] + " | " + goal[2] + " | " + goal[3]
                    + " |");
            if (goal[3].equals("PASS")) {
                passed++;
            } else if (!goal[3].equals("SKIP")) {
                failed++;
            }
        }
        report.line("");
        report.line("bench: " + passed + " goals passed, " + failed + " failed"
                + (options.has("quick") ? " (a --quick run: not the goals' figures)" : ""));
    }

    // ---------------------------------------------------------------------------------------
    // Figures

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static double percentile(double[] sorted, double fraction) {
        int index = (int) Math.round(fraction * (sorted.length - 1));
        return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
    }

    private static double[] toDoubles(long[] values) {
        double[] doubles = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            doubles[i] = values[i];
        }
        return doubles;
    }

    private static double[] concat(double[] a, double[] b) {
        double[] both = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return both;
    }

    private static String size(int bytes) {
        if (bytes >= 1 << 20) {
            return (bytes >> 20) + " MiB";
        }
        if (bytes >= 1 << 10) {
            return (bytes >> 10) + " KiB";
        }
        return bytes + " B";
    }

    private static String nanos(double nanos) {
        if (nanos < 100) {
            return String.format(Locale.ROOT, "%.1f ns", nanos);
        }
        return String.format(Locale.ROOT, "%,.0f ns", nanos);
    }

    private static String millis(double millis) {
        return String.format(Locale.ROOT, "%.2f ms", millis);
    }

    private static String ratio(double ratio) {
        return String.format(Locale.ROOT, "%.2f", ratio);
    }

    private static String percent(double fraction) {
        return String.format(Locale.ROOT, "%+.1f %%", fraction * 100);
    }

    private static String share(double fraction) {
        return String.format(Locale.ROOT, "%.0f %%", fraction * 100);
    }

    private static String rate(double perSecond) {
        return String.format(Locale.ROOT, "%,.2f M/s", perSecond / 1e6);
    }

    /** Prints lines and keeps them for the {@code --out} file. */
    private static final class Report {
        private final StringBuilder text = new StringBuilder();

        void line(String line) {
            System.out.println(line);
            System.out.flush();
            text.append(line).append('\n');
        }

        String text() {
            return text.toString();
        }
    }
}
