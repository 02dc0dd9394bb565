package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Rule;
import org.junit.Test;

/**
 * The handles behind {@code ProxySo.call(key, ...)}: a call by key answers exactly as a lookup by
 * key would, across unload, load again, and both at once under calling threads.
 */
public class KeyCacheTest {
    private static final int THREADS = 4;

    @Rule
    public final Keys keys = new Keys();

    @Test
    public void callAfterUnloadThrowsNoSuchLibraryAndUnloadClosesTheCachedHandle() {
        final String key = keys.next("cache-unload");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        assertNull("nothing is cached before the first call", HandleCache.cached(key));
        assertEquals("x", ProxySo.call(key, "x"));
        final Long id = HandleCache.cached(key);
        assertNotNull("the first call caches a handle", id);
        assertEquals("y", text(ProxySo.call(key, utf8("y"))));
        assertEquals("the next calls reuse it", id, HandleCache.cached(key));

        assertTrue(ProxySo.unload(key));
        assertNull("unload removes the cached handle", HandleCache.cached(key));
        assertThrows("unload closes the cached handle", IllegalStateException.class,
                () -> NativeBridge.callHandle(id, null, utf8("x"), false));

        NoSuchLibraryException gone = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.call(key, "x"));
        assertEquals(key, gone.getKey());
        assertTrue(gone.getMessage(), gone.getMessage().contains(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, utf8("x")));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "len", utf8("x")));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key,
                ByteBuffer.allocateDirect(1), ByteBuffer.allocateDirect(8)));
        assertNull("a failed call caches nothing", HandleCache.cached(key));
        assertFalse(ProxySo.unload(key));
    }

    @Test
    public void aStaleHandleIsAnAnswerForTheCacheAndAnExceptionForEveryoneElse() {
        final String key = keys.next("cache-answer");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        final long closed = NativeBridge.open(key, null);
        NativeBridge.close(closed);
        final long unloaded = NativeBridge.open(key, null);
        final ByteBuffer in = direct("x");
        final ByteBuffer out = ByteBuffer.allocateDirect(8);
        try {
            // A plugin's own failure is an exception whoever asks.
            assertThrows(UnknownMethodException.class,
                    () -> NativeBridge.callHandle(unloaded, "no-such-method", utf8("x"), true));
            assertEquals("x", text(NativeBridge.callHandle(unloaded, null, utf8("x"), true)));
            assertTrue(NativeBridge.unload(key));
            for (long id : new long[] {closed, unloaded}) {
                assertNull(NativeBridge.callHandle(id, null, utf8("x"), true));
                assertEquals(-1, NativeBridge.callDirect(id, null, in, 0, 1, out, 0, 8, true));
            }
            assertThrows(IllegalStateException.class,
                    () -> NativeBridge.callHandle(closed, null, utf8("x"), false));
            assertThrows(NoSuchLibraryException.class,
                    () -> NativeBridge.callHandle(unloaded, null, utf8("x"), false));
            assertThrows(NoSuchLibraryException.class,
                    () -> NativeBridge.callDirect(unloaded, null, in, 0, 1, out, 0, 8, false));
        } finally {
            NativeBridge.close(unloaded);
        }
    }

    @Test
    public void callAfterUnloadAndLoadAgainReachesTheNewLibrary() {
        final String key = keys.next("cache-reload");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        assertEquals("x", ProxySo.call(key, "x"));
        assertTrue(ProxySo.unload(key));
        ProxySo.load(key, plugin(EXAMPLE_V2));
        assertEquals("x,ab", ProxySo.call(key, "x"));
        assertEquals("x,ab", text(ProxySo.call(key, utf8("x"))));
        assertEquals("2.0.0", text(ProxySo.call(key, "version", new byte[0])));
        ByteBuffer out = ByteBuffer.allocateDirect(8);
        assertEquals(4, ProxySo.call(key, direct("x"), out));
        assertEquals(',', out.get(1));
    }

    @Test
    public void aCachedHandleWhoseKeyWasUnloadedBehindItsBackIsDroppedAndTheKeyOpenedAgain() {
        final String key = keys.next("cache-stale");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        assertEquals("x", ProxySo.call(key, "x"));
        Long stale = HandleCache.cached(key);
        // Unload and load again without ProxySo.unload, which would have dropped the handle.
        assertTrue(NativeBridge.unload(key));
        ProxySo.load(key, plugin(EXAMPLE_V2));
        assertEquals(stale, HandleCache.cached(key));

        assertEquals("x,ab", ProxySo.call(key, "x"));
        Long fresh = HandleCache.cached(key);
        assertNotNull(fresh);
        assertFalse("the stale handle must be replaced", stale.equals(fresh));
        assertThrows("the stale handle must be closed", IllegalStateException.class,
                () -> NativeBridge.callHandle(stale, null, utf8("x"), false));

        // The same through direct buffers, and into a key that is gone for good.
        assertTrue(NativeBridge.unload(key));
        ProxySo.load(key, plugin(EXAMPLE_V1));
        ByteBuffer out = ByteBuffer.allocateDirect(8);
        assertEquals(1, ProxySo.call(key, direct("x"), out));
        assertEquals('x', out.get(0));
        assertTrue(NativeBridge.unload(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "x"));
        assertNull(HandleCache.cached(key));
    }

    @Test
    public void callsByKeyWhileAnotherThreadUnloadsAndLoadsAgainAnswerOrThrowNoSuchLibrary()
            throws Exception {
        final String key = keys.next("cache-churn");
        final String v1 = plugin(EXAMPLE_V1);
        final String v2 = plugin(EXAMPLE_V2);
        final AtomicLong fromV1 = new AtomicLong();
        final AtomicLong fromV2 = new AtomicLong();
        final AtomicLong gone = new AtomicLong();
        final AtomicLong wrong = new AtomicLong();
        final AtomicReference<String> firstWrong = new AtomicReference<String>();
        final AtomicBoolean stop = new AtomicBoolean();
        List<Thread> callers = new ArrayList<Thread>();
        for (int t = 0; t < THREADS; t++) {
            final int id = t;
            Thread caller = new Thread(() -> {
                ByteBuffer out = ByteBuffer.allocateDirect(64);
                long n = 0;
                while (!stop.get()) {
                    String input = "c" + id + "-" + n++;
                    try {
                        String answer;
                        switch ((int) (n % 3)) {
                            case 0:
                                answer = ProxySo.call(key, input);
                                break;
                            case 1:
                                answer = text(ProxySo.call(key, "echo", utf8(input)));
                                break;
                            default:
                                ((Buffer) out).clear();
                                int written = ProxySo.call(key, direct(input), out);
                                byte[] bytes = new byte[written];
                                ((Buffer) out).flip();
                                out.get(bytes);
                                answer = text(bytes);
                                break;
                        }
                        if (answer.equals(input)) {
                            fromV1.incrementAndGet();
                        } else if (answer.equals(input + ",ab")) {
                            fromV2.incrementAndGet();
                        } else {
                            throw new IllegalStateException("answer " + answer + " to " + input);
                        }
                    } catch (NoSuchLibraryException e) {
                        gone.incrementAndGet();
                    } catch (RuntimeException e) {
                        wrong.incrementAndGet();
                        firstWrong.compareAndSet(null, e.toString());
                    }
                }
            }, "cache-caller-" + t);
            callers.add(caller);
            caller.start();
        }
        try {
            for (int cycle = 0; cycle < 60; cycle++) {
                AtomicLong answers = cycle % 2 == 0 ? fromV1 : fromV2;
                long answered = answers.get();
                ProxySo.load(key, cycle % 2 == 0 ? v1 : v2);
                // Let the callers reach this library, then take it away and let them see that.
                awaitAbove(answers, answered, "answers from cycle " + cycle);
                long missed = gone.get();
                assertTrue(ProxySo.unload(key));
                awaitAbove(gone, missed, "NoSuchLibraryException after cycle " + cycle);
            }
        } finally {
            stop.set(true);
            for (Thread caller : callers) {
                caller.join(30_000);
                assertFalse(caller.getName() + " did not stop", caller.isAlive());
            }
        }
        assertEquals("calls that neither answered nor threw NoSuchLibraryException, first: "
                + firstWrong.get(), 0, wrong.get());
        assertTrue(fromV1.get() > 0 && fromV2.get() > 0 && gone.get() > 0);
        // No cached handle keeps an unloaded version alive.
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "x"));
    }

    @Test
    public void concurrentFirstCallsOfAKeyAllAnswerAndLeaveOneCachedHandle() throws Exception {
        final String key = keys.next("cache-first");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        final AtomicReference<Throwable> failure = new AtomicReference<Throwable>();
        List<Thread> callers = new ArrayList<Thread>();
        for (int t = 0; t < 8; t++) {
            final String input = "first-" + t;
            callers.add(new Thread(() -> {
                try {
                    for (int i = 0; i < 100; i++) {
                        if (!ProxySo.call(key, input).equals(input)) {
                            throw new AssertionError("wrong answer to " + input);
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (Thread caller : callers) {
            caller.start();
        }
        for (Thread caller : callers) {
            caller.join(30_000);
        }
        assertNull(failure.get());
        Long id = HandleCache.cached(key);
        assertNotNull(id);
        assertEquals("x", text(NativeBridge.callHandle(id, null, utf8("x"), false)));
        assertTrue(ProxySo.unload(key));
        assertThrows(IllegalStateException.class,
                () -> NativeBridge.callHandle(id, null, utf8("x"), false));
    }

    /** Waits up to 30 s for a counter to pass a value. */
    private static void awaitAbove(AtomicLong counter, long value, String what)
            throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (counter.get() <= value && System.nanoTime() < deadline) {
            Thread.sleep(0, 100_000);
        }
        assertTrue("no " + what, counter.get() > value);
    }

    private static ByteBuffer direct(String text) {
        byte[] bytes = utf8(text);
        ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length);
        buffer.put(bytes);
        ((Buffer) buffer).flip();
        return buffer;
    }
}
