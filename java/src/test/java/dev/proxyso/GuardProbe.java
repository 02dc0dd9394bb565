package dev.proxyso;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Run in a child JVM by {@link GuardTest} and {@link BadInputTest}, for what must never happen in
 * the test JVM: a crash on purpose, a JVM signal handler left replaced, {@code System.exit}. Prints
 * one fact a line; the first argument picks the case:
 *
 * <ul>
 *   <li>{@code pthread-key-unguarded}: the trap that {@code keepMapped} guards against, without
 *       it; the JVM is expected to die when the thread exits;
 *   <li>{@code exit-in-flight}: {@code System.exit(0)} while calls run in three loaded plugins;
 *   <li>{@code signal-allowed}: a plugin that installs a SIGSEGV handler, loaded with
 *       {@code allowSignalHandlers(true)}, called and unloaded;
 *   <li>{@code signal-refused}: the same plugin loaded by default, refused; then the JVM has time
 *       to check its handlers;
 *   <li>{@code signal-term}: a plugin that takes SIGTERM and SIGINT, loaded by default (and, were
 *       it not refused, unloaded); then the probe sends itself SIGTERM, which must run the JVM's
 *       shutdown hooks and end it with exit code 143.
 * </ul>
 */
public final class GuardProbe {
    /** Printed only if the JVM outlived a trap that should have killed it. */
    static final String SURVIVED = "probe: the JVM survived";
    /** Long enough for the JVM's periodic check of its signal handlers under -Xcheck:jni. */
    private static final long CHECK_SIGNALS_MILLIS = 1500;

    private GuardProbe() {
    }

    public static void main(String[] args) throws Exception {
        String fixtures = System.getProperty("proxyso.fixtures.dir");
        String plugins = System.getProperty("proxyso.plugins.dir");
        switch (args[0]) {
            case "pthread-key-unguarded":
                pthreadKeyUnguarded(fixtures, plugins);
                break;
            case "exit-in-flight":
                exitInFlight(fixtures, plugins);
                break;
            case "signal-allowed":
                signalAllowed(fixtures);
                break;
            case "signal-refused":
                signalRefused(fixtures);
                break;
            case "signal-term":
                signalTerm(fixtures);
                break;
            default:
                throw new IllegalArgumentException(args[0]);
        }
    }

    private static void say(String line) {
        System.out.println("probe: " + line);
        System.out.flush();
    }

    private static String path(String dir, String file) {
        return Paths.get(dir, file).toString();
    }

    /**
     * A thread stores a value through the plugin's pthread_key, the version is replaced and
     * closed, then the thread exits: glibc runs the key's destructor, in unmapped code.
     */
    private static void pthreadKeyUnguarded(String fixtures, String plugins) throws Exception {
        final String key = "trap";
        ProxySo.load(key, path(fixtures, "libfx_pthread_key.so"));
        LibraryInfo old = ProxySo.info(key);
        say("loaded " + old.getName() + ", kept mapped " + old.isKeptMapped());
        final CountDownLatch stored = new CountDownLatch(1);
        final CountDownLatch exit = new CountDownLatch(1);
        Thread caller = new Thread(new Runnable() {
            @Override
            public void run() {
                say("set returned " + new String(ProxySo.call(key, "set", new byte[0]),
                        StandardCharsets.UTF_8));
                stored.countDown();
                try {
                    exit.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }, "pthread-key-caller");
        caller.start();
        stored.await();
        ProxySo.replace(key, path(plugins, "libexample_v1.so"));
        say("replaced; old version retired and closed: "
                + ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        say("old version still mapped: " + isMapped(old.getSnapshotPath()));
        say("the calling thread exits now");
        exit.countDown();
        caller.join();
        // Give a late crash time to happen before claiming anything.
        Thread.sleep(500);
        say(SURVIVED.substring("probe: ".length()));
    }

    /** Calls run in three plugins, slow ones among them, when the JVM exits. */
    private static void exitInFlight(String fixtures, String plugins) throws Exception {
        ProxySo.load("slow", path(fixtures, "libfixture.so"),
                "slow".getBytes(StandardCharsets.UTF_8));
        ProxySo.load("cpp", path(plugins, "libexample_cpp_v1.so"));
        ProxySo.load("rust", path(plugins, "libexample_v1.so"));
        final AtomicLong calls = new AtomicLong();
        final AtomicLong slowReturned = new AtomicLong();
        final int slowCalls = 2;
        final CountDownLatch slowStarted = new CountDownLatch(slowCalls);
        List<Thread> threads = new ArrayList<Thread>();
        for (int i = 0; i < slowCalls; i++) {
            threads.add(new Thread(new Runnable() {
                @Override
                public void run() {
                    slowStarted.countDown();
                    ProxySo.call("slow", "sleep", "30000".getBytes(StandardCharsets.UTF_8));
                    slowReturned.incrementAndGet();
                }
            }, "slow-caller-" + i));
        }
        for (final String key : new String[] {"cpp", "rust", "cpp", "rust"}) {
            threads.add(new Thread(new Runnable() {
                @Override
                public void run() {
                    for (long n = 0; ; n++) {
                        String input = key + "-" + n;
                        if (!ProxySo.call(key, input).equals(input)) {
                            say("wrong answer from " + key);
                        }
                        calls.incrementAndGet();
                    }
                }
            }, "busy-caller-" + key));
        }
        for (Thread thread : threads) {
            thread.setDaemon(false);
            thread.start();
        }
        slowStarted.await();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (calls.get() < 10_000 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        Thread.sleep(200);
        say("exiting with " + slowCalls + " slow calls in flight (" + slowReturned.get()
                + " returned) and " + calls.get() + " busy calls made");
        System.exit(0);
    }

    /** A plugin's SIGSEGV handler kept, as the load allows. */
    private static void signalAllowed(String fixtures) throws InterruptedException {
        String key = "signal";
        long generation = ProxySo.load(key, path(fixtures, "libfx_signal.so"),
                LoadOptions.builder().allowSignalHandlers(true).build());
        LibraryInfo info = ProxySo.info(key);
        say("loaded generation " + generation + ", kept mapped " + info.isKeptMapped());
        say("answer " + new String(ProxySo.call(key, new byte[0]), StandardCharsets.UTF_8));
        say("unloaded " + ProxySo.unload(key));
        say("retired " + ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        say("still mapped " + isMapped(info.getSnapshotPath()));
        // Under -Xcheck:jni the JVM checks its signal handlers every few hundred milliseconds and
        // reports the one the plugin changed: give it the time to.
        Thread.sleep(CHECK_SIGNALS_MILLIS);
        // The JVM's SIGSEGV handler is now the plugin's, which chains to the JVM's: an implicit
        // null check still ends in a NullPointerException (and safepoints still stop threads).
        nullDereference();
        say("done");
    }

    private static void nullDereference() {
        try {
            Object nothing = null;
            say("no NullPointerException: " + nothing.hashCode());
        } catch (NullPointerException e) {
            say("null dereference: NullPointerException");
        }
    }

    /** A plugin's SIGSEGV handler refused and the JVM's put back. */
    private static void signalRefused(String fixtures) throws InterruptedException {
        try {
            ProxySo.load("signal", path(fixtures, "libfx_signal.so"));
            say("loaded, which it must not");
        } catch (LibraryLoadException e) {
            say("refused: " + e.getMessage());
        }
        nullDereference();
        Thread.sleep(CHECK_SIGNALS_MILLIS);
        say("done");
    }

    /** Printed by the shutdown hook of {@code signal-term}. */
    static final String SHUTDOWN_HOOK = "probe: shutdown hook ran";
    /** Printed only if SIGTERM did not end the JVM. */
    static final String SIGTERM_IGNORED = "probe: still running after SIGTERM";

    /** A plugin's SIGTERM and SIGINT handlers refused; SIGTERM then ends the JVM as usual. */
    private static void signalTerm(String fixtures) throws Exception {
        Runtime.getRuntime().addShutdownHook(new Thread(new Runnable() {
            @Override
            public void run() {
                System.out.println(SHUTDOWN_HOOK);
                System.out.flush();
            }
        }, "probe-shutdown-hook"));
        String key = "signal-term";
        try {
            ProxySo.load(key, path(fixtures, "libfx_signal_term.so"));
            say("loaded, which it must not");
            // What an operator would do next; the plugin's handlers then point into nothing.
            say("unloaded " + ProxySo.unload(key) + ", retired "
                    + ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        } catch (LibraryLoadException e) {
            say("refused: " + e.getMessage());
        }
        String pid = ManagementFactory.getRuntimeMXBean().getName().split("@")[0];
        say("sending SIGTERM to " + pid);
        new ProcessBuilder("kill", "-TERM", pid).inheritIO().start().waitFor();
        Thread.sleep(20_000);
        System.out.println(SIGTERM_IGNORED);
        System.out.flush();
        Runtime.getRuntime().halt(3);
    }

    private static boolean isMapped(String path) {
        return !TestSupport.mappingsOf(path).isEmpty();
    }
}
