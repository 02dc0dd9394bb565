package dev.proxyso.bench;

import dev.proxyso.LoadOptions;
import dev.proxyso.ProxySo;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The benchmark's section on isolated plugins: what a call costs when the plugin runs in a worker
 * process ({@link LoadOptions#isIsolated()}), against the same plugin in the JVM and against what
 * a team would build instead, a sidecar process answering over a pipe (bench/sidecar.c, framed
 * requests on its standard input and output, the same echo behind it). The three ways run in
 * interleaved rounds of one run, so that the ratios hold on a shared, noisy machine.
 *
 * <p>Goals (medians): an isolated 64 B call at most {@value #GOAL_PIPE_64} times the pipe round
 * trip, and an isolated 1 MiB call at most {@value #GOAL_IN_PROCESS_1MIB} times the call into the
 * JVM's plugin.
 */
final class IsolatedBench {
    static final double GOAL_PIPE_64 = 0.3;
    static final double GOAL_IN_PROCESS_1MIB = 2.0;
    private static final int[] SIZES = {0, 64, 4096, 65536, 1 << 20};
    private static final String PLUGIN = "libproxyso_bench_plugin.so";
    private static final String SIDECAR = "proxyso_bench_sidecar";

    private final Path dir;
    private final Consumer<String> out;
    private final int rounds;
    private final long batchNanos;
    /** Goals for the summary: what, the goal, the figure, PASS or **FAIL**. */
    final List<String[]> goals = new ArrayList<String[]>();

    IsolatedBench(Path dir, Consumer<String> out, int rounds, long batchMillis) {
        this.dir = dir;
        this.out = out;
        this.rounds = rounds;
        this.batchNanos = batchMillis * 1_000_000L;
    }

    /** One way of making the echo call. */
    private interface Way {
        byte[] call(byte[] input) throws IOException;
    }

    void run() throws Exception {
        String inKey = "bench-in-process";
        String isoKey = "bench-isolated";
        String plugin = dir.resolve(PLUGIN).toString();
        ProxySo.load(inKey, plugin);
        ProxySo.load(isoKey, plugin, LoadOptions.builder().isolated(true).build());
        Process sidecar = new ProcessBuilder(dir.resolve(SIDECAR).toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            final OutputStream toSidecar = sidecar.getOutputStream();
            final DataInputStream fromSidecar = new DataInputStream(sidecar.getInputStream());
            Way inProcess = input -> ProxySo.call(inKey, input);
            Way isolated = input -> ProxySo.call(isoKey, input);
            Way pipe = input -> pipeCall(toSidecar, fromSidecar, input);
            Way[] ways = {inProcess, isolated, pipe};
            out.accept("");
            out.accept("## Isolated plugins: the call through a worker process");
            out.accept("");
            out.accept("The bench plugin's echo, three ways, in " + rounds + " interleaved rounds "
                    + "(median ns a call; ratios of medians): (a) in the JVM, `ProxySo.call`; "
                    + "(b) isolated, `ProxySo.call` on a key loaded with `isolated(true)`, whose "
                    + "plugin runs in a worker process (worker pid "
                    + ProxySo.info(isoKey).getWorkerPid() + "); (c) a sidecar: the same echo in a "
                    + "child process, a request and its answer framed over its standard input "
                    + "and output.");
            out.accept("");
            out.accept("| payload | (a) in the JVM | (b) isolated | (c) pipe to a sidecar "
                    + "| (b)/(a) | (b)/(c) |");
            out.accept("| --- | ---: | ---: | ---: | ---: | ---: |");
            for (int size : SIZES) {
                byte[] payload = new byte[size];
                for (int i = 0; i < size; i++) {
                    payload[i] = (byte) (i * 31 + 7);
                }
                for (Way way : ways) {
                    if (!Arrays.equals(payload, way.call(payload))) {
                        throw new AssertionError("a way answered wrong at " + size + " bytes");
                    }
                }
                double[] medians = measure(ways, payload);
                double toInProcess = medians[1] / medians[0];
                double toPipe = medians[1] / medians[2];
                out.accept("| " + size(size) + " | " + nanos(medians[0]) + " | "
                        + nanos(medians[1]) + " | " + nanos(medians[2]) + " | "
                        + ratio(toInProcess) + " | " + ratio(toPipe) + " |");
                if (size == 64) {
                    goal("isolated 64 B call / pipe round trip", toPipe, GOAL_PIPE_64);
                }
                if (size == 1 << 20) {
                    goal("isolated 1 MiB call / call in the JVM", toInProcess,
                            GOAL_IN_PROCESS_1MIB);
                }
            }
        } finally {
            sidecar.getOutputStream().close();
            sidecar.waitFor();
            ProxySo.unload(inKey);
            ProxySo.unload(isoKey);
        }
    }

    private void goal(String what, double value, double limit) {
        goals.add(new String[] {what, "at most " + ratio(limit), ratio(value),
            value <= limit ? "PASS" : "**FAIL**"});
    }

    /** Median ns a call of each way, over interleaved rounds of batches. */
    private double[] measure(Way[] ways, byte[] payload) throws IOException {
        int[] counts = new int[ways.length];
        for (int w = 0; w < ways.length; w++) {
            counts[w] = calibrate(ways[w], payload);
        }
        double[][] perCall = new double[ways.length][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int w = 0; w < ways.length; w++) {
                // The order rotates each round: no way always follows another.
                int at = (w + r) % ways.length;
                long start = System.nanoTime();
                for (int i = 0; i < counts[at]; i++) {
                    ways[at].call(payload);
                }
                perCall[at][r] = (System.nanoTime() - start) / (double) counts[at];
            }
        }
        double[] medians = new double[ways.length];
        for (int w = 0; w < ways.length; w++) {
            double[] sorted = perCall[w].clone();
            Arrays.sort(sorted);
            medians[w] = sorted[sorted.length / 2];
        }
        return medians;
    }

    /** Calls in a batch of about {@code batchNanos}, after a warm-up. */
    private int calibrate(Way way, byte[] payload) throws IOException {
        int count = 1;
        while (true) {
            long start = System.nanoTime();
            for (int i = 0; i < count; i++) {
                way.call(payload);
            }
            long took = System.nanoTime() - start;
            if (took >= batchNanos / 4 || count >= 1 << 24) {
                return (int) Math.max(1, Math.min(1 << 24, count * (double) batchNanos / took));
            }
            count *= 2;
        }
    }

    private static byte[] pipeCall(OutputStream to, DataInputStream from, byte[] input)
            throws IOException {
        byte[] frame = new byte[4 + input.length];
        int len = input.length;
        // Native-endian (little on the machines this runs on) as the sidecar reads it.
        frame[0] = (byte) len;
        frame[1] = (byte) (len >>> 8);
        frame[2] = (byte) (len >>> 16);
        frame[3] = (byte) (len >>> 24);
        System.arraycopy(input, 0, frame, 4, len);
        to.write(frame);
        to.flush();
        int answer = Integer.reverseBytes(from.readInt());
        byte[] output = new byte[answer];
        from.readFully(output);
        return output;
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
        return nanos >= 100_000 ? String.format(Locale.ROOT, "%.0f us", nanos / 1000)
                : String.format(Locale.ROOT, "%.0f ns", nanos);
    }

    private static String ratio(double ratio) {
        return String.format(Locale.ROOT, "%.2fx", ratio);
    }
}
