package dev.proxyso.demo;

import dev.proxyso.LibraryInfo;
import dev.proxyso.ProxySo;
import dev.proxyso.tools.CommandLine;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * The live demo: a service whose worker threads call a native plugin non-stop while the plugin is
 * replaced under their feet, every second, from one file overwritten in place.
 *
 * <p>The plugin is the Rust example: version 1 answers its input, version 2 its input followed by
 * {@code ",ab"}. Both are copied in turn over the same {@code live.so} (same inode, like
 * {@code cp new.so live.so}) and {@link ProxySo#replace(String, String) replaced} from that path.
 * Every second the demo prints the calls per second, the share of answers from each version, the
 * failed calls (which must stay 0), the generation, and for each retired generation whether it was
 * unloaded and is gone from {@code /proc/self/maps}. It exits with status 1 if any call failed or a
 * retired version stayed mapped.
 *
 * <pre>
 * gradle run
 * gradle run -PdemoArgs="--threads 8 --seconds 30"
 * java -cp build/libs/proxyso-0.1.0.jar:build/classes/java/demo dev.proxyso.demo.HotSwapDemo \
 *     --plugins build/plugins --threads 4 --seconds 10 --interval-ms 1000
 * </pre>
 *
 * Options (each also a system property {@code demo.<name>}): {@code --threads} (4),
 * {@code --seconds} (10), {@code --interval-ms} (1000), {@code --plugins} (the system property
 * {@code proxyso.plugins.dir}, else {@code build/plugins}), {@code --key} ({@code model}).
 */
public final class HotSwapDemo {
    private static final String V2_SUFFIX = ",ab";
    private static final long RETIRE_TIMEOUT_SECONDS = 5;

    private final String key;
    private final int threads;
    private final int seconds;
    private final long intervalMillis;
    private final Path pluginsDir;

    private final LongAdder v1Answers = new LongAdder();
    private final LongAdder v2Answers = new LongAdder();
    private final LongAdder failedCalls = new LongAdder();
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<String>();
    private volatile boolean stopping;
    private int problems;

    private HotSwapDemo(String key, int threads, int seconds, long intervalMillis, Path pluginsDir) {
        this.key = key;
        this.threads = threads;
        this.seconds = seconds;
        this.intervalMillis = intervalMillis;
        this.pluginsDir = pluginsDir;
    }

    /**
     * Runs the demo.
     *
     * @param args options, see the class comment
     * @throws Exception if the demo itself cannot run (missing plugin files, for example)
     */
    public static void main(String[] args) throws Exception {
        CommandLine options = CommandLine.of(
                "HotSwapDemo [--threads N] [--seconds N] [--interval-ms N] [--plugins DIR] "
                        + "[--key KEY]",
                "demo", new String[] {"threads", "seconds", "interval-ms", "plugins", "key"}, args);
        HotSwapDemo demo = new HotSwapDemo(
                options.get("key", "model"),
                options.getInt("threads", 4, 1),
                options.getInt("seconds", 10, 1),
                options.getLong("interval-ms", 1000, 1),
                Paths.get(options.get("plugins",
                        System.getProperty("proxyso.plugins.dir", "build/plugins"))));
        System.exit(demo.run() ? 0 : 1);
    }

    private boolean run() throws Exception {
        byte[][] versions = {
            Files.readAllBytes(pluginsDir.resolve("libexample_v1.so")),
            Files.readAllBytes(pluginsDir.resolve("libexample_v2.so")),
        };
        Path dir = Files.createTempDirectory("proxyso-demo-");
        Path live = dir.resolve("live.so");
        try {
            Files.write(live, versions[0]);
            Object inode = Files.getAttribute(live, "unix:ino");
            say("proxyso hot-swap demo: %d threads call '%s' non-stop; every %d ms %s is overwritten "
                    + "in place (inode %s) with the other version and replaced, for %d s",
                    threads, key, intervalMillis, live, inode, seconds);

            long generation = ProxySo.load(key, live.toString());
            LibraryInfo info = ProxySo.info(key);
            say("loaded gen %d: %s %s, mapped from snapshot %s", generation, info.getName(),
                    info.getVersion(), info.getSnapshotPath());

            List<Thread> workers = startWorkers();
            List<LibraryInfo> retiring = new ArrayList<LibraryInfo>();
            long start = System.nanoTime();
            long lastTick = start;
            long lastV1 = 0;
            long lastV2 = 0;
            for (int tick = 1; tick * intervalMillis <= seconds * 1000L; tick++) {
                sleepUntil(start + TimeUnit.MILLISECONDS.toNanos(tick * intervalMillis));
                long now = System.nanoTime();
                long v1 = v1Answers.sum();
                long v2 = v2Answers.sum();
                long calls = (v1 - lastV1) + (v2 - lastV2);
                double perSecond = calls * 1e9 / Math.max(1, now - lastTick);
                say("[%5.1fs] %,12.0f calls/s | v1 %5.1f%% v2 %5.1f%% | failed %d | gen %d (%s)",
                        tick * intervalMillis / 1000.0, perSecond,
                        percent(v1 - lastV1, calls), percent(v2 - lastV2, calls),
                        failedCalls.sum(), generation, info.getVersion());
                lastTick = now;
                lastV1 = v1;
                lastV2 = v2;
                if ((tick + 1) * intervalMillis > seconds * 1000L) {
                    break;
                }
                // Swap: overwrite the one file in place, then replace from the same path.
                overwriteInPlace(live, versions[tick % 2], inode);
                retiring.add(info);
                generation = ProxySo.replace(key, live.toString());
                info = ProxySo.info(key);
                say("         replaced: gen %d is %s %s", generation, info.getName(), info.getVersion());
                checkRetired(retiring);
            }

            stopping = true;
            for (Thread worker : workers) {
                worker.join();
            }
            ProxySo.unload(key);
            retiring.add(info);
            checkRetired(retiring);
            return summary(start, generation);
        } finally {
            Files.deleteIfExists(live);
            Files.deleteIfExists(dir);
        }
    }

    private List<Thread> startWorkers() {
        List<Thread> workers = new ArrayList<Thread>();
        for (int t = 0; t < threads; t++) {
            final String prefix = "worker-" + t + "-";
            Thread worker = new Thread(new Runnable() {
                @Override
                public void run() {
                    work(prefix);
                }
            }, "demo-worker-" + t);
            worker.start();
            workers.add(worker);
        }
        return workers;
    }

    /** One worker: call, check the answer against both versions, count. */
    private void work(String prefix) {
        long n = 0;
        while (!stopping) {
            String input = prefix + n++;
            try {
                String answer = ProxySo.call(key, input);
                if (answer.length() == input.length() && answer.equals(input)) {
                    v1Answers.increment();
                } else if (answer.startsWith(input) && answer.endsWith(V2_SUFFIX)
                        && answer.length() == input.length() + V2_SUFFIX.length()) {
                    v2Answers.increment();
                } else {
                    fail("wrong answer to " + input + ": " + answer);
                }
            } catch (RuntimeException e) {
                fail(e.toString());
            }
        }
    }

    private void fail(String what) {
        failedCalls.increment();
        if (failures.size() < 10) {
            failures.add(what);
        }
    }

    /**
     * Waits for the retired versions to drain and close, and checks that their snapshots are no
     * longer mapped.
     */
    private void checkRetired(List<LibraryInfo> retiring) throws IOException {
        if (retiring.isEmpty()) {
            return;
        }
        boolean drained = ProxySo.awaitRetired(key, RETIRE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        String maps = new String(Files.readAllBytes(Paths.get("/proc/self/maps")),
                StandardCharsets.UTF_8);
        for (LibraryInfo old : retiring) {
            boolean mapped = maps.contains(old.getSnapshotPath());
            if (drained && !mapped) {
                say("         gen %d retired: unloaded, unmapped", old.getGeneration());
            } else {
                problems++;
                say("         gen %d retired: %s, %s (%s)", old.getGeneration(),
                        drained ? "unloaded" : "NOT UNLOADED after " + RETIRE_TIMEOUT_SECONDS + " s",
                        mapped ? "STILL MAPPED" : "unmapped", old.getSnapshotPath());
            }
        }
        retiring.clear();
    }

    private boolean summary(long start, long generation) {
        double elapsed = (System.nanoTime() - start) / 1e9;
        long v1 = v1Answers.sum();
        long v2 = v2Answers.sum();
        long failed = failedCalls.sum();
        say("done: %,d calls in %.1f s (%,.0f calls/s): %,d from v1, %,d from v2, %d failed; "
                + "%d generations", v1 + v2 + failed, elapsed, (v1 + v2 + failed) / elapsed, v1, v2,
                failed, generation);
        for (String failure : failures) {
            say("  failed call: %s", failure);
        }
        boolean ok = failed == 0 && problems == 0 && v1 > 0 && v2 > 0;
        say(ok ? "OK: no call failed, every retired version was unloaded and unmapped"
                : "FAILED: %d failed calls, %d retired versions not unloaded or still mapped",
                failed, problems);
        return ok;
    }

    /** Writes new content over the file in place, keeping its inode, and checks it kept it. */
    private static void overwriteInPlace(Path file, byte[] content, Object inode) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE);
        try {
            ByteBuffer buffer = ByteBuffer.wrap(content);
            long position = 0;
            while (buffer.hasRemaining()) {
                position += channel.write(buffer, position);
            }
            channel.truncate(content.length);
            channel.force(true);
        } finally {
            channel.close();
        }
        Object now = Files.getAttribute(file, "unix:ino");
        if (!inode.equals(now)) {
            throw new IOException(file + " changed inode from " + inode + " to " + now);
        }
    }

    private static double percent(long part, long whole) {
        return whole == 0 ? 0 : 100.0 * part / whole;
    }

    private static void sleepUntil(long deadline) throws InterruptedException {
        long left;
        while ((left = deadline - System.nanoTime()) > 0) {
            TimeUnit.NANOSECONDS.sleep(left);
        }
    }

    private static void say(String format, Object... args) {
        System.out.println(String.format(Locale.ROOT, format, args));
        System.out.flush();
    }
}
