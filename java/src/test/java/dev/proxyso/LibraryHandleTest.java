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

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Rule;
import org.junit.Test;

/** {@link LibraryHandle}: follows replacements, ends with unload and close, named methods. */
public class LibraryHandleTest {
    private static final int THREADS = 4;

    @Rule
    public final Keys keys = new Keys();

    @Test
    public void handleFollowsReplacementsUnderFourCallingThreadsWithoutAFailedCall()
            throws Exception {
        final String key = keys.next("handle-replace");
        String v1 = plugin(EXAMPLE_V1);
        String v2 = plugin(EXAMPLE_V2);
        ProxySo.load(key, v1);
        final LibraryHandle handle = ProxySo.handle(key);
        final AtomicLong fromV1 = new AtomicLong();
        final AtomicLong fromV2 = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicReference<String> firstFailure = new AtomicReference<String>();
        final CountDownLatch stop = new CountDownLatch(1);
        List<Thread> callers = new ArrayList<Thread>();
        for (int t = 0; t < THREADS; t++) {
            final int id = t;
            Thread caller = new Thread(() -> {
                long n = 0;
                while (stop.getCount() > 0) {
                    String input = "h-" + id + "-" + n++;
                    try {
                        String answer = handle.call(input);
                        if (answer.equals(input)) {
                            fromV1.incrementAndGet();
                        } else if (answer.equals(input + ",ab")) {
                            fromV2.incrementAndGet();
                        } else {
                            throw new IllegalStateException("answer " + answer + " to " + input);
                        }
                    } catch (RuntimeException e) {
                        failed.incrementAndGet();
                        firstFailure.compareAndSet(null, e.toString());
                    }
                }
            }, "handle-caller-" + t);
            callers.add(caller);
            caller.start();
        }
        try {
            for (int round = 1; round <= 10; round++) {
                boolean toV2 = round % 2 == 1;
                ProxySo.replace(key, toV2 ? v2 : v1);
                // The handle reaches the new version as soon as replace returned...
                assertEquals(toV2 ? "x,ab" : "x", handle.call("x"));
                // ...and so do the callers holding the same handle.
                AtomicLong counter = toV2 ? fromV2 : fromV1;
                long before = counter.get();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (counter.get() < before + 1000 && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                assertTrue("the callers got no answer from v" + (toV2 ? 2 : 1) + " in round "
                        + round, counter.get() >= before + 1000);
            }
        } finally {
            stop.countDown();
            for (Thread caller : callers) {
                caller.join(30_000);
                assertFalse(caller.getName() + " did not stop", caller.isAlive());
            }
            handle.close();
        }
        assertEquals("failed calls, first: " + firstFailure.get(), 0, failed.get());
        assertTrue(fromV1.get() > 0);
        assertTrue(fromV2.get() > 0);
        assertTrue(ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS));
    }

    @Test
    public void handleThrowsNoSuchLibraryAfterUnloadAndDoesNotFollowALoadAgain() {
        final String key = keys.next("handle-unload");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle handle = ProxySo.handle(key)) {
            assertEquals("x", handle.call("x"));
            assertTrue(ProxySo.unload(key));

            NoSuchLibraryException gone = assertThrows(NoSuchLibraryException.class,
                    () -> handle.call("x"));
            assertEquals(key, gone.getKey());
            assertTrue(gone.getMessage(), gone.getMessage().contains(key));
            assertThrows(NoSuchLibraryException.class, () -> handle.call(utf8("x")));
            assertThrows(NoSuchLibraryException.class, () -> handle.call("version", utf8("")));
            assertThrows(NoSuchLibraryException.class, () -> handle.call(
                    ByteBuffer.allocateDirect(1), ByteBuffer.allocateDirect(8)));
            assertFalse("unload must not close the handle", handle.isClosed());

            // The same key loaded again is another library: the old handle stays gone...
            ProxySo.load(key, plugin(EXAMPLE_V2));
            assertThrows(NoSuchLibraryException.class, () -> handle.call("x"));
            // ...while a new handle, and a call by key, reach it.
            try (LibraryHandle again = ProxySo.handle(key)) {
                assertEquals("x,ab", again.call("x"));
            }
            assertEquals("x,ab", ProxySo.call(key, "x"));
        }
    }

    @Test
    public void closedHandleThrowsIllegalStateExceptionAndTheKeyServesOn() {
        final String key = keys.next("handle-closed");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        final LibraryHandle handle = ProxySo.handle(key);
        assertFalse(handle.isClosed());
        handle.close();
        assertTrue(handle.isClosed());

        IllegalStateException closed = assertThrows(IllegalStateException.class,
                () -> handle.call("x"));
        assertTrue(closed.getMessage(), closed.getMessage().contains(key));
        assertThrows(IllegalStateException.class, () -> handle.call(utf8("x")));
        assertThrows(IllegalStateException.class, () -> handle.call("len", utf8("x")));
        assertThrows(IllegalStateException.class, () -> handle.call(
                ByteBuffer.allocateDirect(1), ByteBuffer.allocateDirect(8)));
        assertTrue(handle.toString(), handle.toString().contains("closed"));

        // Closing a handle does not touch the library.
        assertEquals("x", ProxySo.call(key, "x"));
        assertEquals(1, ProxySo.info(key).getGeneration());
    }

    @Test
    public void closeIsIdempotentAndClosesOnlyItsOwnHandle() throws Exception {
        final String key = keys.next("handle-close-twice");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        final LibraryHandle first = ProxySo.handle(key);
        first.close();
        // The table may hand the freed slot to the next handle: a second close of the first
        // handle must not close that one.
        try (LibraryHandle second = ProxySo.handle(key)) {
            first.close();
            assertTrue(first.isClosed());
            assertEquals("x", second.call("x"));
            assertFalse(second.isClosed());
        }

        // Many threads closing one handle at once: no exception, closed once.
        final LibraryHandle shared = ProxySo.handle(key);
        final CountDownLatch go = new CountDownLatch(1);
        final AtomicReference<Throwable> failure = new AtomicReference<Throwable>();
        List<Thread> closers = new ArrayList<Thread>();
        for (int t = 0; t < 8; t++) {
            Thread closer = new Thread(() -> {
                try {
                    go.await();
                    shared.close();
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            closers.add(closer);
            closer.start();
        }
        try (LibraryHandle third = ProxySo.handle(key)) {
            go.countDown();
            for (Thread closer : closers) {
                closer.join(30_000);
            }
            assertNull(failure.get());
            assertTrue(shared.isClosed());
            assertThrows(IllegalStateException.class, () -> shared.call("x"));
            assertEquals("y", third.call("y"));
        }
    }

    @Test
    public void handleOnANamedMethodCallsThatMethodAcrossReplacements() {
        final String key = keys.next("handle-method");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle len = ProxySo.handle(key, "len");
                LibraryHandle version = ProxySo.handle(key, "version");
                LibraryHandle echo = ProxySo.handle(key)) {
            assertEquals(key, len.getKey());
            assertEquals("len", len.getMethod());
            assertNull(echo.getMethod());
            assertEquals("5", len.call("hello"));
            assertEquals("2", text(len.call(utf8("ab"))));
            assertEquals("1.0.0", version.call(""));
            assertEquals("hello", echo.call("hello"));
            // A method by name overrides the handle's own.
            assertEquals("1.0.0", text(len.call("version", new byte[0])));
            assertEquals("3", text(echo.call("len", utf8("abc"))));

            ProxySo.replace(key, plugin(EXAMPLE_V2));
            assertEquals("2.0.0", version.call(""));
            assertEquals("hello,ab", echo.call("hello"));
            assertEquals("5", len.call("hello"));
        }
    }

    @Test
    public void handleOfAnUnknownMethodOrKeyThrowsAndBadArgumentsAreRefused() {
        final String key = keys.next("handle-nope");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        UnknownMethodException nope = assertThrows(UnknownMethodException.class,
                () -> ProxySo.handle(key, "nope"));
        assertEquals(key, nope.getKey());
        assertEquals("nope", nope.getMethod());
        assertTrue(nope.getMessage(), nope.getMessage().contains("nope"));

        try (LibraryHandle handle = ProxySo.handle(key)) {
            UnknownMethodException byName = assertThrows(UnknownMethodException.class,
                    () -> handle.call("nope", new byte[0]));
            assertEquals("nope", byName.getMethod());
            assertEquals(key, byName.getKey());
            assertNpe("input", () -> handle.call((byte[]) null));
            assertNpe("input", () -> handle.call((String) null));
            assertNpe("method", () -> handle.call(null, new byte[0]));
            assertNpe("input", () -> handle.call("len", (byte[]) null));
            assertNpe("method", () -> handle.call(null, "text"));
            assertNpe("input", () -> handle.call("len", (String) null));
            assertNpe("in", () -> handle.call(null, ByteBuffer.allocateDirect(1)));
            assertNpe("out", () -> handle.call(ByteBuffer.allocateDirect(1), null));
            assertEquals("x", handle.call("x"));
        }

        final String absent = keys.next("handle-absent");
        NoSuchLibraryException missing = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.handle(absent));
        assertEquals(absent, missing.getKey());
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.handle(absent, "len"));
        assertNpe("key", () -> ProxySo.handle(null));
        assertNpe("key", () -> ProxySo.handle(null, "len"));
        assertNpe("method", () -> ProxySo.handle(key, null));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.handle(""));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.handle("", "len"));
    }

    @Test
    public void aClosedOrForgedIdNeverReachesAnotherHandlesLibrary() {
        final String a = keys.next("id-a");
        final String b = keys.next("id-b");
        ProxySo.load(a, plugin(EXAMPLE_V1));
        ProxySo.load(b, plugin(EXAMPLE_V2));
        final long stale = NativeBridge.open(a, null);
        NativeBridge.close(stale);
        // Open many more, so that the freed slot is reused by a handle on b.
        List<Long> open = new ArrayList<Long>();
        try {
            for (int i = 0; i < 64; i++) {
                open.add(NativeBridge.open(b, null));
            }
            // The closed id, and ids that were never handed out.
            for (final long id : new long[] {stale, -1, 0, Long.MAX_VALUE}) {
                IllegalStateException e = assertThrows("id " + Long.toHexString(id),
                        IllegalStateException.class,
                        () -> NativeBridge.callHandle(id, null, utf8("x"), false));
                assertNotNull(e.getMessage());
                assertThrows(IllegalStateException.class, () -> NativeBridge.callDirect(id, null,
                        ByteBuffer.allocateDirect(1), 0, 1, ByteBuffer.allocateDirect(8), 0, 8, false));
            }
            // Closing a stale id again closes nothing.
            NativeBridge.close(stale);
            for (long id : open) {
                assertEquals("x,ab", text(NativeBridge.callHandle(id, null, utf8("x"), false)));
            }
        } finally {
            for (long id : open) {
                NativeBridge.close(id);
            }
        }
    }

    @Test
    public void handleClosedAndOutputTooSmallKindsMapToTheirClasses() {
        Throwable t = NativeBridge.exception(NativeContract.KIND_HANDLE_CLOSED, null, null, null, 0, "m8");
        assertEquals(IllegalStateException.class, t.getClass());
        assertEquals("m8", t.getMessage());
        t = NativeBridge.exception(NativeContract.KIND_OUTPUT_TOO_SMALL, "k", null, "meth", 103, "m9");
        assertEquals(OutputTooSmallException.class, t.getClass());
        OutputTooSmallException small = (OutputTooSmallException) t;
        assertEquals("k", small.getKey());
        assertEquals("meth", small.getMethod());
        assertEquals(103, small.getRequired());
        assertEquals("m9", small.getMessage());
        assertTrue(t instanceof ProxySoException);
    }

    private static void assertNpe(String argument, org.junit.function.ThrowingRunnable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertNotNull("NPE without message for " + argument, e.getMessage());
        assertTrue("NPE message should name '" + argument + "': " + e.getMessage(),
                e.getMessage().startsWith(argument + " "));
    }
}
