package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.sha256;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.management.InstanceNotFoundException;
import javax.management.JMX;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * The call statistics of {@link LibraryInfo} ({@link CallStats}, {@link GenerationStats}) and
 * their JMX view, one {@link LibraryMXBean} per loaded key.
 */
public class StatsTest {
    /** Every attribute a library bean has, all read-only. */
    private static final Set<String> ATTRIBUTES = new TreeSet<String>(Arrays.asList("Key",
            "Generation", "Path", "Sha256", "PluginName", "PluginVersion", "Calls",
            "FailedCalls", "InFlight", "TotalCallNanos", "MaxCallNanos", "MeanCallNanos",
            "LoadNanos", "Replacements", "Rollbacks", "LastError", "KeepVersions",
            "RetiredVersions", "PinnedVersions", "DestroysRunning", "SlowDestroys", "CallPath",
            "Isolated", "WorkerPid", "Crashes"));

    @Rule
    public final Keys keys = new Keys();

    private ExecutorService pool;
    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();

    @Before
    public void startPool() {
        pool = Executors.newCachedThreadPool();
    }

    @After
    public void stopPool() throws InterruptedException {
        pool.shutdownNow();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
    }

    private static ObjectName beanName(String key) throws Exception {
        return new ObjectName("dev.proxyso:type=Library,key=" + ObjectName.quote(key));
    }

    /** Starts one call of the fixture's sleep and waits until it is inside the plugin. */
    private Future<String> sleepingCall(final String key, final long millis) throws Exception {
        final CountDownLatch started = new CountDownLatch(1);
        Future<String> call = pool.submit(new Callable<String>() {
            @Override
            public String call() {
                started.countDown();
                return text(ProxySo.call(key, "sleep", utf8(Long.toString(millis))));
            }
        });
        assertTrue(started.await(10, TimeUnit.SECONDS));
        return call;
    }

    @Test
    public void countsAreExactAfterCallsAndFailingCalls() {
        final String key = keys.next("stats-counts");
        ProxySo.load(key, fixture(FIXTURE), utf8("counted"));
        CallStats fresh = ProxySo.info(key).getStats();
        assertEquals(0, fresh.getCalls());
        assertEquals(0, fresh.getFailedCalls());
        assertEquals(0, fresh.getInFlight());
        assertEquals(0, fresh.getMaxCallNanos());
        assertEquals(0, fresh.getMeanCallNanos());
        assertNull(fresh.getLastError());

        final int good = 25;
        final int bad = 7;
        for (int i = 0; i < good; i++) {
            assertEquals("counted", ProxySo.call(key, ""));
        }
        for (int i = 0; i < bad; i++) {
            final int n = i;
            assertThrows(PluginException.class,
                    () -> ProxySo.call(key, "fail", utf8("number " + n)));
        }
        LibraryInfo info = ProxySo.info(key);
        CallStats stats = info.getStats();
        assertEquals(good + bad, stats.getCalls());
        assertEquals(bad, stats.getFailedCalls());
        assertEquals(0, stats.getInFlight());
        assertTrue(stats.toString(), stats.getTotalCallNanos() > 0);
        assertTrue(stats.toString(), stats.getMaxCallNanos() > 0);
        assertTrue(stats.toString(), stats.getMaxCallNanos() <= stats.getTotalCallNanos());
        assertEquals(stats.getTotalCallNanos() / stats.getCalls(), stats.getMeanCallNanos());
        assertNotNull(stats.getLastError());
        assertTrue(stats.getLastError(), stats.getLastError().contains("failed on purpose: number "
                + (bad - 1)));
        assertEquals(0, stats.getReplacements());
        assertEquals(0, stats.getRollbacks());

        // One generation, the serving one, with the same counts.
        assertEquals(1, info.getGenerations().size());
        GenerationStats serving = info.getGenerations().get(0);
        assertEquals(1, serving.getGeneration());
        assertEquals(good + bad, serving.getCalls());
        assertEquals(bad, serving.getFailedCalls());
        assertEquals(0, serving.getInFlight());
        assertEquals(stats.getTotalCallNanos(), serving.getTotalCallNanos());
        assertEquals(stats.getMaxCallNanos(), serving.getMaxCallNanos());
        assertTrue(serving.toString(), serving.getLoadNanos() > 0);
        assertEquals(info.getSha256(), serving.getSha256());

        // Statistics are no part of what equals compares: the loaded state did not change.
        ProxySo.call(key, "");
        LibraryInfo after = ProxySo.info(key);
        assertEquals(info, after);
        assertEquals(info.hashCode(), after.hashCode());
        assertNotEquals(info.getStats(), after.getStats());
        assertEquals(good + bad + 1, after.getStats().getCalls());
        assertTrue(after.toString(), after.toString().contains("calls=" + (good + bad + 1)));
    }

    @Test
    public void callsThroughHandlesAndDirectBuffersCountToo() {
        String key = keys.next("stats-handles");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle handle = ProxySo.handle(key)) {
            handle.call(utf8("a"));
            handle.call("b");
        }
        ByteBuffer in = ByteBuffer.allocateDirect(8);
        ByteBuffer out = ByteBuffer.allocateDirect(8);
        in.put(utf8("c")).flip();
        ProxySo.call(key, in, out);
        ProxySo.call(key, "version", new byte[0]);
        assertEquals(4, ProxySo.info(key).getStats().getCalls());
        assertEquals(0, ProxySo.info(key).getStats().getFailedCalls());
    }

    @Test
    public void maxCallNanosCoversAKnownSleep() {
        String key = keys.next("stats-max");
        ProxySo.load(key, fixture(FIXTURE), utf8("sleepy"));
        final long sleepMillis = 200;
        assertEquals("sleepy", text(ProxySo.call(key, "sleep", utf8(Long.toString(sleepMillis)))));
        ProxySo.call(key, "");
        CallStats stats = ProxySo.info(key).getStats();
        long sleepNanos = TimeUnit.MILLISECONDS.toNanos(sleepMillis);
        assertTrue(stats.toString(), stats.getMaxCallNanos() >= sleepNanos);
        assertTrue(stats.toString(), stats.getTotalCallNanos() >= sleepNanos);
        // Measured around the plugin method only: not minutes.
        assertTrue(stats.toString(), stats.getMaxCallNanos() < TimeUnit.SECONDS.toNanos(60));
    }

    @Test
    public void exactTimingCatchesASlowCallAmongFastOnes() {
        String key = keys.next("stats-exact");
        LoadOptions exact = LoadOptions.builder().config(utf8("exact")).exactTiming(true).build();
        assertTrue(exact.isExactTiming());
        assertFalse(LoadOptions.defaults().isExactTiming());
        ProxySo.load(key, fixture(FIXTURE), exact);
        // Fast calls first: without exact timing a shard then times only one call in many.
        for (int i = 0; i < 500; i++) {
            ProxySo.call(key, "");
        }
        ProxySo.call(key, "sleep", utf8("50"));
        CallStats stats = ProxySo.info(key).getStats();
        assertEquals(501, stats.getCalls());
        assertTrue(stats.toString(), stats.getMaxCallNanos() >= TimeUnit.MILLISECONDS.toNanos(50));
    }

    @Test
    public void aSleepingCallIsSeenInFlight() throws Exception {
        String key = keys.next("stats-in-flight");
        ProxySo.load(key, fixture(FIXTURE), utf8("flying"));
        Future<String> call = sleepingCall(key, 2000);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        LibraryInfo info = ProxySo.info(key);
        while (info.getStats().getInFlight() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
            info = ProxySo.info(key);
        }
        assertEquals(info.toString(), 1, info.getStats().getInFlight());
        assertEquals(1, info.getGenerations().get(0).getInFlight());
        assertEquals(0, info.getStats().getCalls());
        assertEquals(1L, server.getAttribute(beanName(key), "InFlight"));
        assertFalse(call.isDone());

        assertEquals("flying", call.get(30, TimeUnit.SECONDS));
        CallStats done = ProxySo.info(key).getStats();
        assertEquals(0, done.getInFlight());
        assertEquals(1, done.getCalls());
    }

    @Test
    public void replacementsAreCountedAndCallsSumOverGenerations() throws Exception {
        final String key = keys.next("stats-replace");
        String path = fixture(FIXTURE);
        ProxySo.load(key, path, utf8("one"));
        ProxySo.call(key, "");
        ProxySo.call(key, "");
        ProxySo.replace(key, path, utf8("two"));
        ProxySo.call(key, "");
        ProxySo.replace(key, path, utf8("three"));
        assertThrows(PluginException.class, () -> ProxySo.call(key, "fail", utf8("late")));
        // A failed replace is not a replacement, and becomes the last error.
        final String missing = path + ".missing";
        assertThrows(LibraryLoadException.class, () -> ProxySo.replace(key, missing));

        LibraryInfo info = ProxySo.info(key);
        CallStats stats = info.getStats();
        assertEquals(2, stats.getReplacements());
        assertEquals(4, stats.getCalls());
        assertEquals(1, stats.getFailedCalls());
        assertTrue(stats.getLastError(), stats.getLastError().contains(missing));
        // The serving generation has only its own calls.
        assertEquals(3, info.getGenerations().get(0).getGeneration());
        assertEquals(1, info.getGenerations().get(0).getCalls());
        assertEquals(1, info.getGenerations().get(0).getFailedCalls());
        assertEquals(2L, server.getAttribute(beanName(key), "Replacements"));
        assertEquals(stats.getLastError(), server.getAttribute(beanName(key), "LastError"));

        // A new load of the key starts from zero.
        assertTrue(ProxySo.unload(key));
        ProxySo.load(key, path, utf8("again"));
        CallStats again = ProxySo.info(key).getStats();
        assertEquals(0, again.getCalls());
        assertEquals(0, again.getReplacements());
        assertNull(again.getLastError());
    }

    @Test
    public void theBeanShowsTheKeyThroughThePlatformServerAndGoesAwayOnUnload() throws Exception {
        String key = keys.next("stats-jmx");
        String v1 = plugin(EXAMPLE_V1);
        ProxySo.load(key, v1, LoadOptions.builder().keepVersions(3).build());
        ObjectName name = beanName(key);
        assertEquals(name, LibraryBeans.name(key));
        assertTrue(server.isRegistered(name));
        for (int i = 0; i < 5; i++) {
            ProxySo.call(key, "x");
        }
        ProxySo.replace(key, plugin(EXAMPLE_V2));
        ProxySo.call(key, "x");

        Set<String> attributes = new HashSet<String>();
        for (MBeanAttributeInfo attribute : server.getMBeanInfo(name).getAttributes()) {
            attributes.add(attribute.getName());
            assertTrue(attribute.getName() + " is readable", attribute.isReadable());
            assertFalse(attribute.getName() + " is read-only", attribute.isWritable());
        }
        assertEquals(ATTRIBUTES, new TreeSet<String>(attributes));
        assertTrue(JMX.isMXBeanInterface(LibraryMXBean.class));

        LibraryInfo info = ProxySo.info(key);
        assertEquals(key, server.getAttribute(name, "Key"));
        assertEquals(2L, server.getAttribute(name, "Generation"));
        assertEquals(plugin(EXAMPLE_V2), server.getAttribute(name, "Path"));
        assertEquals(sha256(plugin(EXAMPLE_V2)), server.getAttribute(name, "Sha256"));
        assertEquals("example", server.getAttribute(name, "PluginName"));
        assertEquals("2.0.0", server.getAttribute(name, "PluginVersion"));
        assertEquals(6L, server.getAttribute(name, "Calls"));
        assertEquals(0L, server.getAttribute(name, "FailedCalls"));
        assertEquals(0L, server.getAttribute(name, "InFlight"));
        long total = (Long) server.getAttribute(name, "TotalCallNanos");
        long max = (Long) server.getAttribute(name, "MaxCallNanos");
        long mean = (Long) server.getAttribute(name, "MeanCallNanos");
        assertTrue(total > 0 && max > 0 && max <= total);
        assertTrue(mean > 0 && mean <= max);
        assertEquals(info.getGenerations().get(0).getLoadNanos(),
                server.getAttribute(name, "LoadNanos"));
        assertEquals(1L, server.getAttribute(name, "Replacements"));
        assertEquals(0L, server.getAttribute(name, "Rollbacks"));
        assertNull(server.getAttribute(name, "LastError"));
        assertEquals(3, server.getAttribute(name, "KeepVersions"));
        assertEquals(info.getRetiredVersions(), server.getAttribute(name, "RetiredVersions"));
        assertEquals(0L, server.getAttribute(name, "PinnedVersions"));
        assertEquals(0L, server.getAttribute(name, "DestroysRunning"));
        assertEquals(0L, server.getAttribute(name, "SlowDestroys"));
        ProxySo.rollback(key);
        assertEquals(1L, server.getAttribute(name, "Rollbacks"));
        assertEquals("1.0.0", server.getAttribute(name, "PluginVersion"));

        // A proxy of the interface reads the same.
        LibraryMXBean proxy = JMX.newMXBeanProxy(server, name, LibraryMXBean.class);
        assertEquals(3, proxy.getGeneration());
        assertEquals(key, proxy.getKey());

        assertTrue(ProxySo.unload(key));
        assertFalse("the bean outlived its key", server.isRegistered(name));
        assertThrows(InstanceNotFoundException.class, () -> server.getAttribute(name, "Calls"));
        // Loaded again: a bean again, counting from zero.
        ProxySo.load(key, v1);
        assertTrue(server.isRegistered(name));
        assertEquals(0L, server.getAttribute(name, "Calls"));
        assertEquals(1L, server.getAttribute(name, "Generation"));
    }

    @Test
    public void keysThatNeedQuotingGetTheirOwnBean() throws Exception {
        // Every character ObjectName gives a meaning to.
        String key = keys.next("a,b=c:d*e?\"f\\g h");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        ObjectName name = beanName(key);
        assertTrue(server.isRegistered(name));
        assertEquals(key, server.getAttribute(name, "Key"));
        assertEquals(key, ObjectName.unquote(name.getKeyProperty("key")));
        assertTrue(ProxySo.unload(key));
        assertFalse(server.isRegistered(name));
    }

    @Test
    public void failedLoadRegistersNoBeanAndAFailedUnloadKeepsNone() throws Exception {
        final String key = keys.next("stats-no-bean");
        assertThrows(LibraryLoadException.class,
                () -> ProxySo.load(key, fixture(FIXTURE), utf8("fail-init")));
        assertFalse(server.isRegistered(beanName(key)));
        assertFalse(ProxySo.unload(key));
        assertFalse(server.isRegistered(beanName(key)));
    }

    @Test
    public void theBeanOfAnUnloadedKeyThrowsRatherThanInventingFigures() {
        String key = keys.next("stats-stale-bean");
        LibraryMXBean bean = new LibraryBeans.Bean(key);
        assertEquals(key, bean.getKey());
        IllegalStateException e = assertThrows(IllegalStateException.class, bean::getCalls);
        assertTrue(e.getMessage(), e.getMessage().contains(key));
    }
}
