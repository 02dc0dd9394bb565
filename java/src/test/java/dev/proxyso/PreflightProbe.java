package dev.proxyso;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Run in a child JVM by {@link PreflightTest}, for what used to kill the JVM: a watched file
 * overwritten by a writer that pauses part-way for longer than the settle time, and a plugin whose
 * constructor crashes. Prints one fact a line, then {@link #ALIVE}; the first argument picks the
 * case:
 *
 * <ul>
 *   <li>{@code in-place}: example v2 written over a watched example v1 in place, without
 *       truncating first ({@code open(O_WRONLY)}, {@code rsync --inplace}), pausing 500 ms
 *       half-way, then truncated to v2's length;
 *   <li>{@code truncate-90}: the file truncated, then v2 written with a pause of 500 ms at 90 %;
 *   <li>{@code ctor-segv}: {@code libfx_ctor_segv.so} loaded, and replaced over example v1, with
 *       {@code preflight(true)};
 *   <li>{@code named-worker}: example v1 loaded with {@code preflight(true)} while
 *       {@code proxyso.worker} names a worker that does not exist, then without pre-flight.
 * </ul>
 */
public final class PreflightProbe {
    /** Printed last, only by a JVM that lived through the case. */
    static final String ALIVE = "probe: the JVM is alive";
    /** The writer's pause: longer than the default settle time of 200 ms. */
    private static final long PAUSE_MILLIS = 500;

    private PreflightProbe() {
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "in-place":
                slowWriter(false, 0.5);
                break;
            case "truncate-90":
                slowWriter(true, 0.9);
                break;
            case "ctor-segv":
                constructorCrash();
                break;
            case "named-worker":
                namedWorker();
                break;
            default:
                throw new IllegalArgumentException(args[0]);
        }
        say(ALIVE.substring("probe: ".length()));
    }

    private static void say(String line) {
        System.out.println("probe: " + line);
        System.out.flush();
    }

    /**
     * Watches a file holding v1, then writes v2 over it: {@code split} of it, a pause, the rest.
     * A caller calls the key all along. Prints what answered during the pause, the digest of
     * every version the watch loaded, and what serves at the end.
     */
    private static void slowWriter(boolean truncate, double split) throws Exception {
        byte[] v1 = Files.readAllBytes(Paths.get(TestSupport.plugin(TestSupport.EXAMPLE_V1)));
        byte[] v2 = Files.readAllBytes(Paths.get(TestSupport.plugin(TestSupport.EXAMPLE_V2)));
        Path dir = TestSupport.tempDir("proxyso-preflight");
        final Path live = dir.resolve("live.so");
        Files.write(live, v1);
        final String key = "watched";
        ProxySo.load(key, live.toString());
        final BlockingQueue<String> loaded = new LinkedBlockingQueue<String>();
        final BlockingQueue<String> failures = new LinkedBlockingQueue<String>();
        Watch watch = ProxySo.watch(key, live.toString(), new WatchListener() {
            @Override
            public void onReplace(WatchEvent event) {
                if (event.isSuccess()) {
                    loaded.add(ProxySo.info(key).getSha256());
                } else {
                    failures.add(event.getError().getMessage());
                }
            }
        });
        final Set<String> answers = new TreeSet<String>();
        final long[] paused = new long[2];
        FileChannel channel = truncate
                ? FileChannel.open(live, StandardOpenOption.WRITE,
                        StandardOpenOption.TRUNCATE_EXISTING)
                : FileChannel.open(live, StandardOpenOption.WRITE);
        try {
            int first = (int) (v2.length * split);
            write(channel, v2, 0, first);
            paused[0] = System.nanoTime();
            long until = paused[0] + TimeUnit.MILLISECONDS.toNanos(PAUSE_MILLIS);
            while (System.nanoTime() < until) {
                answers.add(ProxySo.call(key, "x"));
                Thread.sleep(5);
            }
            say("answers during the pause: " + answers);
            write(channel, v2, first, v2.length - first);
            channel.truncate(v2.length);
        } finally {
            channel.close();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        String v2Digest = TestSupport.sha256(v2);
        while (!v2Digest.equals(ProxySo.info(key).getSha256()) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        // Anything more the watch would do, it does within a few settle times.
        Thread.sleep(1000);
        watch.close();
        Set<String> kinds = new TreeSet<String>();
        for (String digest : loaded) {
            kinds.add(digest.equals(v2Digest) ? "v2"
                    : digest.equals(TestSupport.sha256(v1)) ? "v1" : "mixed " + digest);
        }
        say("loaded versions: " + kinds);
        say("refused replacements: " + failures.size());
        for (String failure : failures) {
            say("refused: " + failure);
        }
        say("serving at the end: " + ProxySo.call(key, "x"));
        ProxySo.unload(key);
        TestSupport.deleteTree(dir);
    }

    private static void write(FileChannel channel, byte[] bytes, int offset, int length)
            throws Exception {
        ByteBuffer buffer = ByteBuffer.wrap(bytes, offset, length);
        long position = offset;
        while (buffer.hasRemaining()) {
            position += channel.write(buffer, position);
        }
        channel.force(true);
    }

    /** A plugin whose constructor dereferences null, loaded and replaced with pre-flight. */
    private static void constructorCrash() {
        String crashing = TestSupport.fixture("libfx_ctor_segv.so");
        LoadOptions preflight = LoadOptions.builder().preflight(true).build();
        try {
            ProxySo.load("crash", crashing, preflight);
            say("loaded, which it must not");
        } catch (LibraryLoadException e) {
            say("load refused: " + e.getMessage());
            say("load refused path: " + e.getPath());
        }
        say("after the load: " + (ProxySo.info("crash") == null ? "nothing loaded" : "loaded"));
        ProxySo.load("serving", TestSupport.plugin(TestSupport.EXAMPLE_V1), preflight);
        try {
            ProxySo.replace("serving", crashing, preflight);
            say("replaced, which it must not");
        } catch (LibraryLoadException e) {
            say("replace refused: " + e.getMessage());
        }
        say("after the replace: generation " + ProxySo.info("serving").getGeneration()
                + " answers " + ProxySo.call("serving", "still"));
    }

    private static void namedWorker() {
        String plugin = TestSupport.plugin(TestSupport.EXAMPLE_V1);
        try {
            ProxySo.load("named", plugin, LoadOptions.builder().preflight(true).build());
            say("loaded, which it must not");
        } catch (LibraryLoadException e) {
            say("load refused: " + e.getMessage());
        }
        ProxySo.load("named", plugin);
        say("without pre-flight: " + ProxySo.call("named", "x"));
    }
}
