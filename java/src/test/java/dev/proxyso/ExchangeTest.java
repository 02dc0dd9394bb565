package dev.proxyso;

import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.Rule;
import org.junit.Test;

/**
 * {@code byte[]} calls through the calling thread's exchange buffers ({@link ExchangeCalls}): every
 * input and output size arrives intact while the buffers grow, move and are given back, each
 * thread keeps its own, and the native side refuses lengths outside its buffers.
 */
public class ExchangeTest {
    @Rule
    public final Keys keys = new Keys();

    /** The sizes the tests walk through: around the first buffer, the exchange limit, past it. */
    private static final int[] SIZES = {
        0, 1, 63, 4095, 4096, 4097, 100_000, 7, 1 << 20, 3, ExchangeCalls.MAX_INPUT,
        ExchangeCalls.MAX_INPUT + 1, 5 << 20, 2, 65_536, 0, 1,
    };

    @Test
    public void everyInputAndOutputSizeArrivesIntactAsTheBuffersGrowMoveAndGoBack() {
        String key = keys.next("exchange-sizes");
        ProxySo.load(key, fixture(FIXTURE), utf8("exchange"));
        Random random = new Random(12);
        try (LibraryHandle echo = ProxySo.handle(key, "echo");
                LibraryHandle big = ProxySo.handle(key, "big")) {
            for (int size : SIZES) {
                byte[] input = new byte[size];
                random.nextBytes(input);
                assertArrayEquals("echo by key, " + size + " B", input,
                        ProxySo.call(key, "echo", input));
                assertArrayEquals("echo by handle, " + size + " B", input, echo.call(input));
                // Output larger than the input: the plugin grows the output buffer, which then
                // moves under the view taken before.
                assertPattern(size, ProxySo.call(key, "big", utf8(Integer.toString(size))));
                assertPattern(size, big.call(utf8(Integer.toString(size))));
                assertPattern(size + 17, big.call("big", utf8(Integer.toString(size + 17))));
            }
        }
        assertEquals("exchange", ProxySo.call(key, "tag", ""));
    }

    @Test
    public void aFailedCallLeavesTheBuffersUsable() {
        String key = keys.next("exchange-fail");
        ProxySo.load(key, fixture(FIXTURE), utf8("exchange"));
        assertPattern(200_000, ProxySo.call(key, "big", utf8("200000")));
        PluginException failed = assertThrows(PluginException.class,
                () -> ProxySo.call(key, "fail", utf8("why")));
        assertEquals(42, failed.getCode());
        assertTrue(failed.getMessage(), failed.getMessage().contains("failed on purpose: why"));
        assertThrows(UnknownMethodException.class, () -> ProxySo.call(key, "nope", utf8("x")));
        assertPattern(300_000, ProxySo.call(key, "big", utf8("300000")));
        assertEquals("abc", text(ProxySo.call(key, "echo", utf8("abc"))));
    }

    @Test
    public void eachThreadKeepsItsOwnBuffers() throws Exception {
        final String key = keys.next("exchange-threads");
        ProxySo.load(key, fixture(FIXTURE), utf8("exchange"));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> results = new ArrayList<Future<Integer>>();
            for (int t = 0; t < 4; t++) {
                final int seed = t;
                results.add(pool.submit(new Callable<Integer>() {
                    @Override
                    public Integer call() {
                        Random random = new Random(seed);
                        int calls = 0;
                        for (int i = 0; i < 400; i++) {
                            int size = random.nextInt(i % 50 == 0 ? 300_000 : 2_000);
                            byte[] input = new byte[size];
                            random.nextBytes(input);
                            assertArrayEquals(input, ProxySo.call(key, "echo", input));
                            assertPattern(size, ProxySo.call(key, "big",
                                    utf8(Integer.toString(size))));
                            calls += 2;
                        }
                        return calls;
                    }
                }));
            }
            for (Future<Integer> result : results) {
                assertEquals(800, (int) result.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    public void theNativeSideRefusesLengthsOutsideItsBuffers() {
        String key = keys.next("exchange-bad");
        ProxySo.load(key, fixture(FIXTURE), utf8("exchange"));
        long id = NativeBridge.open(key, "echo");
        try {
            IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                    () -> NativeBridge.exchangeInput(-1));
            assertTrue(negative.getMessage(), negative.getMessage().contains("-1"));
            IllegalArgumentException huge = assertThrows(IllegalArgumentException.class,
                    () -> NativeBridge.exchangeInput(ExchangeCalls.MAX_INPUT + 1));
            assertTrue(huge.getMessage(),
                    huge.getMessage().contains(Integer.toString(ExchangeCalls.MAX_INPUT + 1)));
            int capacity = NativeBridge.exchangeInput(10).capacity();
            IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
                    () -> NativeBridge.callExchange(id, null, capacity + 1, false));
            assertTrue(past.getMessage(), past.getMessage().contains("exceeds the exchange"));
            assertThrows(IllegalArgumentException.class,
                    () -> NativeBridge.callExchange(id, null, -5, false));
            // Nothing changed: the next calls answer.
            assertEquals("ok", text(ProxySo.call(key, "echo", utf8("ok"))));
            assertEquals(0, NativeBridge.callExchange(id, null, 0, false) & ~ExchangeCalls.OUTPUT_MOVED);
        } finally {
            NativeBridge.close(id);
        }
    }

    /** The fixture's {@code big} output: {@code size} bytes, byte {@code i} being i % 251. */
    private static void assertPattern(int size, byte[] out) {
        assertEquals(size, out.length);
        for (int i = 0; i < size; i++) {
            if ((out[i] & 0xff) != i % 251) {
                throw new AssertionError("byte " + i + " of " + size + " is " + (out[i] & 0xff));
            }
        }
    }
}
