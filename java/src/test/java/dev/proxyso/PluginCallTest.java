package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.Rule;
import org.junit.Test;

/** Calls into plugins: results, errors, panics, big buffers, separation, serialisation, examples. */
public class PluginCallTest {
    /** The what() of the std::invalid_argument the C++ example's "sum" throws for "1,two,3". */
    private static final String CPP_BAD_INPUT_WHAT = "sum: not an integer: \"two\"";
    /** The error code the C++ example reports for std::invalid_argument. */
    private static final int CPP_BAD_INPUT_CODE = 2;

    @Rule
    public final Keys keys = new Keys();

    @Test
    public void pluginErrorBecomesPluginExceptionWithCodeAndMessageAndThePluginKeepsServing() {
        String key = keys.next("error");
        ProxySo.load(key, fixture(FIXTURE), utf8("still-here"));
        PluginException e = assertThrows(PluginException.class,
                () -> ProxySo.call(key, "fail", utf8("input-x")));
        assertEquals(key, e.getKey());
        assertEquals("fail", e.getMethod());
        assertEquals(42, e.getCode());
        assertFalse(e.isPanic());
        assertTrue(e.getMessage(), e.getMessage().contains("failed on purpose: input-x"));
        assertTrue(e.getMessage(), e.getMessage().contains(key));
        // The same version keeps serving.
        assertEquals("still-here", ProxySo.call(key, ""));
        assertArrayEquals(utf8("after"), ProxySo.call(key, "echo", utf8("after")));
        assertEquals(1, ProxySo.info(key).getGeneration());
    }

    @Test
    public void pluginPanicBecomesPluginExceptionMarkedAsPanicAndThePluginKeepsServing() {
        String key = keys.next("panic");
        ProxySo.load(key, fixture(FIXTURE), utf8("survivor"));
        for (int i = 0; i < 3; i++) {
            PluginException e = assertThrows(PluginException.class,
                    () -> ProxySo.call(key, "panic", new byte[0]));
            assertTrue(e.isPanic());
            assertEquals("panic", e.getMethod());
            assertEquals(key, e.getKey());
            assertTrue(e.getMessage(), e.getMessage().contains("panicked on purpose"));
            // A panic with a String payload (not a &'static str) is reported just as well.
            PluginException s = assertThrows(PluginException.class,
                    () -> ProxySo.call(key, "panic-string", new byte[0]));
            assertTrue(s.isPanic());
            assertEquals("panic-string", s.getMethod());
            assertEquals("survivor", ProxySo.call(key, ""));
        }
        assertArrayEquals(utf8("ok"), ProxySo.call(key, "echo", utf8("ok")));
        assertEquals(1, ProxySo.info(key).getGeneration());
    }

    @Test
    public void refusedReserveIsAPluginErrorNotACrash() {
        String key = keys.next("reserve");
        ProxySo.load(key, fixture(FIXTURE), utf8("r"));
        PluginException e = assertThrows(PluginException.class,
                () -> ProxySo.call(key, "reserve-absurd", new byte[0]));
        assertFalse(e.isPanic());
        assertEquals("r", ProxySo.call(key, ""));
    }

    @Test
    public void eightMebibyteInputIsEchoedExactly() {
        String key = keys.next("big-echo");
        ProxySo.load(key, fixture(FIXTURE), utf8("e"));
        byte[] input = new byte[8 * 1024 * 1024];
        new Random(8).nextBytes(input);
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(input, ProxySo.call(key, "echo", input));
        }
        assertArrayEquals(new byte[0], ProxySo.call(key, "echo", new byte[0]));
    }

    @Test
    public void bigOutputGrownThroughReserveArrivesIntact() {
        String key = keys.next("big-out");
        ProxySo.load(key, fixture(FIXTURE), utf8("b"));
        for (int n : new int[] {0, 1, 250, 251, 4096, 65537, 3 * 1024 * 1024 + 7}) {
            byte[] out = ProxySo.call(key, "big", utf8(Integer.toString(n)));
            assertEquals(n, out.length);
            for (int i = 0; i < n; i++) {
                if ((out[i] & 0xff) != i % 251) {
                    throw new AssertionError("big(" + n + ") byte " + i + " is " + (out[i] & 0xff));
                }
            }
        }
    }

    @Test
    public void twoPluginsExportingTheSameSymbolNamesStaySeparate() {
        String a = keys.next("clash-a");
        String b = keys.next("clash-b");
        ProxySo.load(a, fixture("libfx_clash_a.so"));
        ProxySo.load(b, fixture("libfx_clash_b.so"));
        for (int i = 0; i < 10; i++) {
            assertEquals("a", text(ProxySo.call(a, new byte[0])));
            assertEquals("b", text(ProxySo.call(b, new byte[0])));
            assertEquals("a", text(ProxySo.call(a, "tag", new byte[0])));
            assertEquals("b", text(ProxySo.call(b, "tag", new byte[0])));
        }
        // Replacing one with the other's file switches only that key.
        ProxySo.replace(a, fixture("libfx_clash_b.so"));
        assertEquals("b", text(ProxySo.call(a, new byte[0])));
        ProxySo.replace(a, fixture("libfx_clash_a.so"));
        assertEquals("a", text(ProxySo.call(a, new byte[0])));
        assertEquals("b", text(ProxySo.call(b, new byte[0])));
    }

    @Test
    public void serializedPluginNeverRunsTwoCallsAtOnce() throws Exception {
        final String key = keys.next("serial");
        ProxySo.load(key, fixture("libfx_serialize.so"));
        assertTrue(ProxySo.info(key).isSerialized());
        assertEquals("probe", ProxySo.info(key).getMethods().get(0));
        final int threads = 4;
        final CyclicBarrier start = new CyclicBarrier(threads);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> results = new ArrayList<Future<Integer>>();
            for (int t = 0; t < threads; t++) {
                results.add(pool.submit(new Callable<Integer>() {
                    @Override
                    public Integer call() throws Exception {
                        start.await();
                        int max = 0;
                        for (int i = 0; i < 200; i++) {
                            max = Math.max(max, Integer.parseInt(text(ProxySo.call(key, new byte[0]))));
                        }
                        return max;
                    }
                }));
            }
            for (Future<Integer> result : results) {
                assertEquals("a thread saw concurrent calls", 1, (int) result.get(60, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals("1", text(ProxySo.call(key, "max", new byte[0])));
    }

    @Test
    public void rustExampleVersionsOneAndTwo() {
        String key = keys.next("rust-example");
        String v1 = plugin(EXAMPLE_V1);
        String v2 = plugin(EXAMPLE_V2);
        assertEquals(1, ProxySo.load(key, v1));
        LibraryInfo info = ProxySo.info(key);
        assertEquals("example", info.getName());
        assertEquals("1.0.0", info.getVersion());
        assertEquals("echo", info.getMethods().get(0));
        assertTrue(info.getMethods().contains("version"));
        assertTrue(info.getMethods().contains("len"));
        assertEquals("hello", ProxySo.call(key, "hello"));
        assertEquals("hello", text(ProxySo.call(key, "echo", utf8("hello"))));
        assertEquals("1.0.0", text(ProxySo.call(key, "version", new byte[0])));
        assertEquals("5", text(ProxySo.call(key, "len", utf8("hello"))));

        long generation = ProxySo.replace(key, v2);
        assertTrue(generation > 1);
        info = ProxySo.info(key);
        assertEquals("example", info.getName());
        assertEquals("2.0.0", info.getVersion());
        assertEquals(v2, info.getPath());
        assertEquals("hello,ab", ProxySo.call(key, "hello"));
        assertEquals("2.0.0", text(ProxySo.call(key, "version", new byte[0])));
    }

    @Test
    public void cppExampleVersionsOneAndTwoAndExceptionsBecomePluginErrors() {
        String key = keys.next("cpp-example");
        String v1 = plugin("libexample_cpp_v1.so");
        String v2 = plugin("libexample_cpp_v2.so");
        assertEquals(1, ProxySo.load(key, v1));
        LibraryInfo info = ProxySo.info(key);
        assertEquals("example-cpp", info.getName());
        assertEquals("echo", info.getMethods().get(0));
        assertTrue(info.getMethods().contains("version"));
        assertTrue(info.getMethods().contains("sum"));
        assertEquals("hello", ProxySo.call(key, "hello"));
        assertEquals("6", text(ProxySo.call(key, "sum", utf8("1,2,3"))));
        String versionOne = text(ProxySo.call(key, "version", new byte[0]));
        assertEquals("1.0.0", versionOne);
        assertEquals(info.getVersion(), versionOne);

        PluginException bad = assertThrows(PluginException.class,
                () -> ProxySo.call(key, "sum", utf8("1,two,3")));
        assertEquals("sum", bad.getMethod());
        assertEquals(key, bad.getKey());
        assertEquals(CPP_BAD_INPUT_CODE, bad.getCode());
        assertFalse("a caught std::exception is an error, not a panic", bad.isPanic());
        assertTrue(bad.getMessage(), bad.getMessage().contains(CPP_BAD_INPUT_WHAT));
        // The plugin keeps serving after the exception.
        assertEquals("10", text(ProxySo.call(key, "sum", utf8("4,6"))));

        long generation = ProxySo.replace(key, v2);
        assertTrue(generation > 1);
        assertEquals("hello,ab", ProxySo.call(key, "hello"));
        String versionTwo = text(ProxySo.call(key, "version", new byte[0]));
        assertEquals("2.0.0", versionTwo);
        assertEquals(ProxySo.info(key).getVersion(), versionTwo);
        assertEquals("6", text(ProxySo.call(key, "sum", utf8("1,2,3"))));
    }
}
