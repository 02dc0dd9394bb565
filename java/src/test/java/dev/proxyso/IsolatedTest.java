package dev.proxyso;

import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.Rule;
import org.junit.Test;

/**
 * Isolated plugins: {@code libfx_crash.so} loaded with {@code isolated(true)} runs in a worker
 * process. Its segfault, abort, exit, stack overflow, endless loop and escaping C++ exception each
 * cost one call its documented exception; this JVM lives on (each case would kill or hang it in
 * process), and the next call answers from a new worker.
 */
public class IsolatedTest {
    private static final String CRASH = "libfx_crash.so";

    @Rule
    public final Keys keys = new Keys();
    @Rule
    public final LogCapture log = new LogCapture();

    private static LoadOptions isolated() {
        return LoadOptions.builder().isolated(true).build();
    }

    /**
     * Inputs and outputs of every size come back whole from a worker, by key and by handle,
     * whichever way a {@code byte[]} call takes (through the exchange buffers below
     * {@link ExchangeCalls#PIN_FROM} bytes, straight into and out of the worker's slot from
     * there); a failing call there is the same exception as in the JVM.
     */
    @Test
    public void bytesOfEverySizeComeBackWholeFromAWorker() {
        String key = keys.next("iso-sizes");
        ProxySo.load(key, fixture(TestSupport.FIXTURE), isolated());
        int[] sizes = {0, 1, ExchangeCalls.PIN_FROM - 1, ExchangeCalls.PIN_FROM, 4096, 70_000,
            1 << 20, 3};
        try (LibraryHandle echo = ProxySo.handle(key, "echo")) {
            for (int size : sizes) {
                byte[] input = new byte[size];
                for (int i = 0; i < size; i++) {
                    input[i] = (byte) (i * 31 + size);
                }
                assertArrayEquals("by key, " + size, input, ProxySo.call(key, "echo", input));
                assertArrayEquals("by handle, " + size, input, echo.call(input));
            }
        }
        // More output than input: "big" answers as many bytes as its (zero-padded) input says.
        StringBuilder padded = new StringBuilder();
        while (padded.length() < ExchangeCalls.PIN_FROM * 2 - 6) {
            padded.append('0');
        }
        byte[] big = ProxySo.call(key, "big", utf8(padded.append("300000").toString()));
        assertEquals(300_000, big.length);
        assertEquals((byte) (299_999 % 251), big[299_999]);
        byte[] large = new byte[ExchangeCalls.PIN_FROM * 2];
        Arrays.fill(large, (byte) 'x');
        try {
            ProxySo.call(key, "fail", large);
            fail("no exception");
        } catch (PluginException e) {
            assertEquals(42, e.getCode());
            assertTrue(e.getMessage(), e.getMessage().contains("failed on purpose: xxxx"));
        }
        try {
            ProxySo.call(key, "no-such-method", large);
            fail("no exception");
        } catch (UnknownMethodException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no-such-method"));
        }
    }

    private static boolean alive(int pid) {
        try {
            String stat = new String(Files.readAllBytes(Paths.get("/proc/" + pid + "/stat")),
                    StandardCharsets.UTF_8);
            return !stat.substring(stat.lastIndexOf(')') + 1).trim().startsWith("Z");
        } catch (java.io.IOException gone) {
            return false;
        }
    }

    private static void awaitGone(int pid) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (alive(pid) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertFalse("the worker " + pid + " still runs", alive(pid));
    }

    private static PluginCrashedException crash(String key, String method) {
        try {
            ProxySo.call(key, method, new byte[0]);
        } catch (PluginCrashedException e) {
            return e;
        }
        throw new AssertionError("no PluginCrashedException from " + method);
    }

    @Test
    public void anIsolatedPluginAnswersFromAWorkerAndTheWorkerEndsWithItsUnload()
            throws Exception {
        String key = keys.next("isolated");
        assertEquals(1, ProxySo.load(key, fixture(CRASH), isolated()));
        int pid = Integer.parseInt(text(ProxySo.call(key, "pid", new byte[0])));
        LibraryInfo info = ProxySo.info(key);
        assertTrue(info.isIsolated());
        assertEquals(pid, info.getWorkerPid());
        assertNotEquals(ProcessIdHolder.PID, pid);
        assertEquals("fx-crash", info.getName());
        assertEquals("hello", text(ProxySo.call(key, "echo", utf8("hello"))));
        byte[] large = new byte[1 << 20];
        Arrays.fill(large, (byte) 7);
        assertTrue(Arrays.equals(large, ProxySo.call(key, "echo", large)));
        // The plugin's log line reaches java.util.logging, tagged with the key.
        assertEquals("logged", text(ProxySo.call(key, "log", new byte[0])));
        log.await("[" + key + "#1] hello from pid " + pid);
        assertTrue(ProxySo.unload(key));
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        awaitGone(pid);
    }

    @Test
    public void eachCrashCostsOneCallItsExceptionAndTheNextCallAnswers() throws Exception {
        String[] methods = {"segv", "abort", "exit", "overflow"};
        for (String method : methods) {
            String key = keys.next("crash-" + method);
            ProxySo.load(key, fixture(CRASH), isolated());
            int before = ProxySo.info(key).getWorkerPid();
            PluginCrashedException e = crash(key, method);
            assertEquals(key, e.getKey());
            assertEquals(method, e.getMethod());
            assertTrue(e.getMessage(), e.getMessage().contains("method '" + method + "'"));
            assertTrue(e.getMessage(), e.getMessage().contains("generation 1"));
            if (method.equals("segv")) {
                assertEquals(11, e.getSignal());
                assertEquals(-1, e.getExitStatus());
                assertTrue(e.getMessage(), e.getMessage().contains("SIGSEGV"));
                assertTrue(e.getMessage(),
                        e.getMessage().contains("about to write through a null pointer"));
            } else if (method.equals("abort")) {
                assertEquals(6, e.getSignal());
                assertTrue(e.getMessage(), e.getMessage().contains("SIGABRT"));
            } else if (method.equals("exit")) {
                assertEquals(0, e.getSignal());
                assertEquals(3, e.getExitStatus());
                assertTrue(e.getMessage(), e.getMessage().contains("exited with code 3"));
            } else {
                assertTrue(e.getMessage(), e.getSignal() == 6 || e.getSignal() == 11);
            }
            assertEquals("after " + method,
                    text(ProxySo.call(key, "echo", utf8("after " + method))));
            LibraryInfo info = ProxySo.info(key);
            assertNotEquals(before, info.getWorkerPid());
            assertEquals(1, info.getGeneration());
            awaitGone(before);
            assertEquals(1, ProxySo.info(key).getStats().getCrashes());
            assertEquals(1, ProxySo.info(key).getGenerations().get(0).getCrashes());
            log.await("[" + key + "#1] the worker process of plugin fx-crash 1 (pid " + before);
        }
    }

    @Test
    public void aCallPastItsTimeoutKillsTheWorkerAndTheNextCallAnswers() throws Exception {
        String key = keys.next("spin");
        ProxySo.load(key, fixture(CRASH), LoadOptions.builder().isolated(true)
                .callTimeout(300, TimeUnit.MILLISECONDS).build());
        int before = ProxySo.info(key).getWorkerPid();
        long started = System.nanoTime();
        try {
            ProxySo.call(key, "spin", new byte[0]);
            fail("an endless loop returned");
        } catch (PluginTimeoutException e) {
            assertEquals(300, e.getTimeoutMillis());
            assertEquals("spin", e.getMethod());
            assertTrue(e.getMessage(), e.getMessage().contains("did not return within 300 ms"));
        }
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5));
        assertEquals("next", text(ProxySo.call(key, "echo", utf8("next"))));
        awaitGone(before);
        // A call within the timeout is untouched by it.
        assertEquals("slept", text(ProxySo.call(key, "sleep", utf8("50"))));
    }

    @Test
    public void theMemoryLimitMakesAGreedyCallACrashOfTheWorkerNotOfTheJvm() {
        String key = keys.next("memory");
        ProxySo.load(key, fixture(CRASH), LoadOptions.builder().isolated(true)
                .memoryLimit(64L << 20).build());
        assertEquals("allocated", text(ProxySo.call(key, "alloc", utf8("16"))));
        PluginCrashedException e;
        try {
            ProxySo.call(key, "alloc", utf8("512"));
            throw new AssertionError("512 MiB fit in a 64 MiB limit");
        } catch (PluginCrashedException crashed) {
            e = crashed;
        }
        assertEquals(6, e.getSignal());
        assertTrue(e.getMessage(), e.getMessage().contains("out of memory"));
        assertEquals("after", text(ProxySo.call(key, "echo", utf8("after"))));
    }

    @Test
    public void aPluginInTheJvmIsNotIsolatedAndHasNoWorker() {
        String key = keys.next("in-jvm");
        ProxySo.load(key, fixture(CRASH));
        LibraryInfo info = ProxySo.info(key);
        assertFalse(info.isIsolated());
        assertEquals(0, info.getWorkerPid());
        assertEquals(String.valueOf(ProcessIdHolder.PID),
                text(ProxySo.call(key, "pid", new byte[0])));
    }

    @Test
    public void aCxxExceptionIsAPluginExceptionInTheWorkerAndNoCrash() {
        String key = keys.next("throw");
        ProxySo.load(key, fixture(CRASH), isolated());
        int pid = ProxySo.info(key).getWorkerPid();
        try {
            ProxySo.call(key, "throw", new byte[0]);
            fail("no exception");
        } catch (PluginCrashedException e) {
            throw new AssertionError("a C++ exception crashed the worker", e);
        } catch (PluginException e) {
            assertTrue(e.isPanic());
            assertTrue(e.getMessage(), e.getMessage().contains("thrown by fx-crash"));
        }
        assertEquals(pid, ProxySo.info(key).getWorkerPid());
        assertEquals(0, ProxySo.info(key).getStats().getCrashes());
    }

    @Test
    public void fourThreadsCallingWhileTheWorkerKeepsCrashingGetAnswersOrCrashesOnly()
            throws Exception {
        final String key = keys.next("four");
        ProxySo.load(key, fixture(CRASH), isolated());
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> wrong = new AtomicReference<Throwable>();
        final AtomicLong answered = new AtomicLong();
        final AtomicLong crashed = new AtomicLong();
        final CountDownLatch started = new CountDownLatch(4);
        List<Thread> threads = new ArrayList<Thread>();
        for (int t = 0; t < 4; t++) {
            final int id = t;
            Thread thread = new Thread(new Runnable() {
                @Override
                public void run() {
                    started.countDown();
                    for (long i = 0; !stop.get(); i++) {
                        String input = id + "-" + i;
                        try {
                            String out = text(ProxySo.call(key, "echo", utf8(input)));
                            if (!out.equals(input)) {
                                wrong.compareAndSet(null,
                                        new AssertionError(out + " for " + input));
                            }
                            answered.incrementAndGet();
                        } catch (PluginCrashedException e) {
                            crashed.incrementAndGet();
                        } catch (Throwable e) {
                            wrong.compareAndSet(null, e);
                        }
                    }
                }
            });
            thread.start();
            threads.add(thread);
        }
        started.await();
        // Two crashes with calls in flight (three within ten seconds would hold restarts back).
        for (int i = 0; i < 2; i++) {
            Thread.sleep(300);
            crash(key, "segv");
        }
        Thread.sleep(300);
        stop.set(true);
        for (Thread thread : threads) {
            thread.join();
        }
        if (wrong.get() != null) {
            throw new AssertionError("neither an answer nor a crash", wrong.get());
        }
        assertTrue("answered " + answered.get(), answered.get() > 100);
        assertEquals(2, ProxySo.info(key).getStats().getCrashes());
    }

    @Test
    public void aCrashWithinTheProbationRollsBackAndTellsTheWatchListener() throws Exception {
        String key = keys.next("probation");
        LoadOptions options = LoadOptions.builder().isolated(true).rollbackOnCrash(true).build();
        ProxySo.load(key, TestSupport.plugin(TestSupport.EXAMPLE_V1), options);
        final java.util.concurrent.BlockingQueue<WatchEvent> events =
                new java.util.concurrent.LinkedBlockingQueue<WatchEvent>();
        java.nio.file.Path dir = TestSupport.tempDir("proxyso-probation");
        java.nio.file.Path live = dir.resolve("live.so");
        Files.copy(Paths.get(fixture(CRASH)), live);
        Watch watch = ProxySo.watch(key, live.toString(), new WatchListener() {
            @Override
            public void onReplace(WatchEvent event) {
                events.add(event);
            }
        });
        try {
            assertEquals(2, ProxySo.replace(key, live.toString(), options));
            crash(key, "segv");
            WatchEvent event = events.poll(10, TimeUnit.SECONDS);
            assertTrue("no rollback event", event != null);
            assertTrue(event.toString(), event.isRollback());
            assertTrue(event.isSuccess());
            assertEquals(3, event.getGeneration());
            assertTrue(event.getRollbackReason(), event.getRollbackReason().contains(
                    "rolled back from generation 2, whose worker crashed within its probation"));
        } finally {
            watch.close();
            TestSupport.deleteTree(dir);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (ProxySo.info(key).getGeneration() != 3 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        LibraryInfo info = ProxySo.info(key);
        assertEquals(3, info.getGeneration());
        assertEquals("example", info.getName());
        assertTrue(info.isIsolated());
        assertEquals(1, info.getStats().getRollbacks());
        log.await("[" + key + "#3] rolled back from generation 2, whose worker crashed within "
                + "its probation");
        assertEquals("hi", text(ProxySo.call(key, "echo", utf8("hi"))));
    }

    @Test
    public void theMxBeanShowsTheWorkerAndItsCrashes() throws Exception {
        String key = keys.next("mx");
        ProxySo.load(key, fixture(CRASH), isolated());
        crash(key, "abort");
        ProxySo.call(key, "echo", new byte[0]);
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        ObjectName name = LibraryBeans.name(key);
        assertEquals(Boolean.TRUE, server.getAttribute(name, "Isolated"));
        assertEquals(ProxySo.info(key).getWorkerPid(), server.getAttribute(name, "WorkerPid"));
        assertEquals(1L, server.getAttribute(name, "Crashes"));
    }

    @Test
    public void aWorkerNeverOutlivesItsJvmKilledWithSigkill() throws Exception {
        List<String> command = new ArrayList<String>(Arrays.asList(
                Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", ChildJvm.testClassPath()));
        for (String property : new String[] {"proxyso.fixtures.dir", "proxyso.plugins.dir",
                "proxyso.tempdir", "proxyso.snapshotDir"}) {
            command.add(1, "-D" + property + "=" + System.getProperty(property));
        }
        if (ChildJvm.feature() >= 22) {
            command.add(1, "--enable-native-access=ALL-UNNAMED");
        }
        command.add(IsolatedProbe.class.getName());
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        child.getOutputStream().close();
        BufferedReader out = new BufferedReader(
                new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        int pid = -1;
        StringBuilder seen = new StringBuilder();
        for (String line; (line = out.readLine()) != null;) {
            seen.append(line).append('\n');
            if (line.startsWith(IsolatedProbe.PID)) {
                pid = Integer.parseInt(line.substring(IsolatedProbe.PID.length()).trim());
                break;
            }
        }
        assertTrue("the probe did not answer: " + seen, pid > 0);
        assertTrue("the loading thread's end cost the worker: " + seen,
                seen.toString().contains("probe: crashes 0\n"));
        assertTrue(alive(pid));
        // SIGKILL: no shutdown hook, no cleanup of any kind runs in the JVM.
        child.destroyForcibly();
        assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        assertEquals(137, child.exitValue());
        awaitGone(pid);
    }

    @Test
    public void optionsOfIsolatedLoadsAreCheckedByTheBuilder() {
        String[] refused = {"callTimeout", "memoryLimit", "rollbackOnCrash", "probation"};
        LoadOptions.Builder[] builders = {
            LoadOptions.builder().callTimeout(1, TimeUnit.SECONDS),
            LoadOptions.builder().memoryLimit(1 << 20),
            LoadOptions.builder().rollbackOnCrash(true),
            LoadOptions.builder().probation(1, TimeUnit.SECONDS),
        };
        for (int i = 0; i < builders.length; i++) {
            try {
                builders[i].build();
                fail(refused[i] + " without isolated(true) was accepted");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith(refused[i]
                        + " applies to isolated loads only"));
            }
        }
        try {
            LoadOptions.builder().isolated(true).keepMapped(true).build();
            fail("keepMapped with isolated(true) was accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("keepMapped applies to loads "
                    + "into the JVM only"));
        }
        try {
            LoadOptions.builder().callTimeout(0, TimeUnit.SECONDS);
            fail("a zero timeout was accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("callTimeout must be positive, not 0 seconds", e.getMessage());
        }
        LoadOptions options = LoadOptions.builder().isolated(true)
                .callTimeout(2, TimeUnit.SECONDS).memoryLimit(1 << 30).build();
        assertEquals(2000, options.getCallTimeout(TimeUnit.MILLISECONDS));
        assertEquals(1 << 30, options.getMemoryLimit());
        assertEquals(60, options.getProbation(TimeUnit.SECONDS));
        assertTrue(options.toString(), options.toString().contains("isolated=true"));
    }

    /** This JVM's pid, read once. */
    private static final class ProcessIdHolder {
        static final int PID = pid();

        private static int pid() {
            String name = ManagementFactory.getRuntimeMXBean().getName();
            return Integer.parseInt(name.substring(0, name.indexOf('@')));
        }
    }
}
