package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.Rule;
import org.junit.Test;
import org.junit.function.ThrowingRunnable;

/**
 * Calls on direct {@link ByteBuffer}s, by key and through a handle: the regions read and written,
 * the positions after success and after failure, and the buffers refused.
 */
public class DirectBufferTest {
    /** Where the input starts in its backing buffer, and the output in its own. */
    private static final int IN_AT = 8;
    private static final int OUT_AT = 5;
    /** Room past the output region's limit, and a marker byte for everything outside it. */
    private static final int SLACK = 16;
    private static final byte MARK = (byte) 0xA5;

    @Rule
    public final Keys keys = new Keys();

    /** A direct call, by key or through a handle. */
    private interface DirectCaller {
        int call(ByteBuffer in, ByteBuffer out);
    }

    @Test
    public void echoOf0And64BytesAnd1MiBReadsAndWritesTheRemainingRegionsAndMovesThePositions() {
        final String key = keys.next("buffers-echo");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle handle = ProxySo.handle(key)) {
            DirectCaller byKey = (in, out) -> ProxySo.call(key, in, out);
            DirectCaller byHandle = handle::call;
            for (DirectCaller caller : new DirectCaller[] {byKey, byHandle}) {
                for (int size : new int[] {0, 64, 1 << 20}) {
                    assertEchoes(caller, size);
                }
            }
        }
    }

    /** Echoes {@code size} bytes between regions that start inside their buffers. */
    private static void assertEchoes(DirectCaller caller, int size) {
        byte[] payload = new byte[size];
        new Random(size).nextBytes(payload);
        // The input: a slice of a larger buffer, positioned past a prefix, limited before a tail.
        ByteBuffer backing = ByteBuffer.allocateDirect(4 + IN_AT + size + SLACK);
        fill(backing, MARK);
        position(backing, 4);
        ByteBuffer in = backing.slice();
        position(in, IN_AT);
        in.put(payload);
        limit(in, IN_AT + size);
        position(in, IN_AT);
        // The output: room for the echo and some more, after a marked prefix.
        ByteBuffer out = ByteBuffer.allocateDirect(OUT_AT + size + SLACK + 3);
        fill(out, MARK);
        position(out, OUT_AT);
        limit(out, OUT_AT + size + SLACK);

        int written = caller.call(in, out);

        assertEquals(size, written);
        assertEquals("in's position moves to its limit", IN_AT + size, in.position());
        assertEquals(IN_AT + size, in.limit());
        assertEquals("out's position moves past the output", OUT_AT + size, out.position());
        assertEquals("out's limit stays", OUT_AT + size + SLACK, out.limit());
        byte[] echoed = new byte[size];
        for (int i = 0; i < size; i++) {
            echoed[i] = out.get(OUT_AT + i);
        }
        assertArrayEquals(payload, echoed);
        for (int i = 0; i < OUT_AT; i++) {
            assertEquals("byte " + i + " before out's position was written", MARK, out.get(i));
        }
        // Past the echo, up to the capacity (beyond the limit too): nothing written.
        ByteBuffer whole = out.duplicate();
        limit(whole, whole.capacity());
        for (int i = OUT_AT + size; i < whole.capacity(); i++) {
            assertEquals("byte " + i + " past the echo was written", MARK, whole.get(i));
        }
        // The input was read in place, never written.
        for (int i = 0; i < IN_AT; i++) {
            assertEquals(MARK, in.get(i));
        }
        for (int i = 0; i < size; i++) {
            assertEquals(payload[i], in.get(IN_AT + i));
        }
    }

    @Test
    public void heapAndReadOnlyOutputBuffersAreIllegalArgumentsAndMoveNothing() {
        final String key = keys.next("buffers-heap");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle handle = ProxySo.handle(key)) {
            DirectCaller byKey = (in, out) -> ProxySo.call(key, in, out);
            DirectCaller byHandle = handle::call;
            for (final DirectCaller caller : new DirectCaller[] {byKey, byHandle}) {
                final ByteBuffer direct = directOf(utf8("abc"));
                final ByteBuffer room = ByteBuffer.allocateDirect(8);
                final ByteBuffer heapIn = ByteBuffer.wrap(utf8("abc"));
                final ByteBuffer heapOut = ByteBuffer.allocate(8);
                final ByteBuffer readOnlyOut = ByteBuffer.allocateDirect(8).asReadOnlyBuffer();
                assertIllegal("in", () -> caller.call(heapIn, room));
                assertIllegal("out", () -> caller.call(direct, heapOut));
                assertIllegal("out", () -> caller.call(direct, readOnlyOut));
                assertIllegal("in", () -> caller.call(heapIn, heapOut));
                assertEquals(0, heapIn.position());
                assertEquals(0, direct.position());
                assertEquals(0, room.position());
                assertEquals(0, heapOut.position());
                assertEquals(0, readOnlyOut.position());
                assertThrows(NullPointerException.class, () -> caller.call(null, room));
                assertThrows(NullPointerException.class, () -> caller.call(direct, null));
                assertEquals(0, direct.position());

                // A read-only direct input is fine: it is only read.
                ByteBuffer readOnlyIn = directOf(utf8("abc")).asReadOnlyBuffer();
                assertEquals(3, caller.call(readOnlyIn, room));
                assertEquals(3, room.position());
                assertEquals('c', room.get(2));
            }
            final ByteBuffer in = directOf(utf8("abc"));
            final ByteBuffer out = ByteBuffer.allocateDirect(8);
            NullPointerException noKey = assertThrows(NullPointerException.class,
                    () -> ProxySo.call(null, in, out));
            assertTrue(noKey.getMessage(), noKey.getMessage().startsWith("key "));
            assertThrows(IllegalArgumentException.class, () -> ProxySo.call("", in, out));
            assertUnmoved(in, 3, out, 8);
        }
    }

    @Test
    public void tooSmallOutputThrowsOutputTooSmallWithTheSizeNeededMovesNothingAndServesOn() {
        final String key = keys.next("buffers-small");
        ProxySo.load(key, plugin(EXAMPLE_V2));
        long generation = ProxySo.info(key).getGeneration();
        try (LibraryHandle handle = ProxySo.handle(key)) {
            DirectCaller byKey = (in, out) -> ProxySo.call(key, in, out);
            DirectCaller byHandle = handle::call;
            for (final DirectCaller caller : new DirectCaller[] {byKey, byHandle}) {
                for (int size : new int[] {0, 100, 70_000}) {
                    byte[] payload = new byte[size];
                    new Random(size).nextBytes(payload);
                    final ByteBuffer in = directOf(payload);
                    // v2 echoes the input followed by ",ab": it needs size + 3 bytes.
                    final ByteBuffer out = ByteBuffer.allocateDirect(size);
                    OutputTooSmallException small = assertThrows(OutputTooSmallException.class,
                            () -> caller.call(in, out));
                    assertEquals(size + 3, small.getRequired());
                    assertEquals(key, small.getKey());
                    assertEquals("echo", small.getMethod());
                    assertTrue(small.getMessage(),
                            small.getMessage().contains(Integer.toString(size + 3)));
                    assertEquals("in's position must not move", 0, in.position());
                    assertEquals(size, in.limit());
                    assertEquals("out's position must not move", 0, out.position());
                    assertEquals(size, out.limit());

                    // The same version serves on, into a buffer of the size it asked for.
                    ByteBuffer enough = ByteBuffer.allocateDirect(small.getRequired());
                    assertEquals(size + 3, caller.call(in, enough));
                    assertEquals(size, in.position());
                    assertEquals(size + 3, enough.position());
                    byte[] answer = new byte[size + 3];
                    flip(enough);
                    enough.get(answer);
                    byte[] expected = new byte[size + 3];
                    System.arraycopy(payload, 0, expected, 0, size);
                    System.arraycopy(utf8(",ab"), 0, expected, size, 3);
                    assertArrayEquals(expected, answer);
                }
            }
        }
        assertEquals(generation, ProxySo.info(key).getGeneration());
        assertEquals("x,ab", ProxySo.call(key, "x"));
    }

    @Test
    public void failedCallsMoveNoPositionAndAnAbsurdSizeSaturates() {
        final String key = keys.next("buffers-fail");
        ProxySo.load(key, fixture(FIXTURE), utf8("buffers"));
        try (LibraryHandle fail = ProxySo.handle(key, "fail");
                LibraryHandle absurd = ProxySo.handle(key, "reserve-absurd");
                LibraryHandle big = ProxySo.handle(key, "big")) {
            final ByteBuffer in = directOf(utf8("boom"));
            final ByteBuffer out = ByteBuffer.allocateDirect(64);
            PluginException error = assertThrows(PluginException.class, () -> fail.call(in, out));
            assertEquals(42, error.getCode());
            assertEquals("fail", error.getMethod());
            assertUnmoved(in, 4, out, 64);

            OutputTooSmallException huge = assertThrows(OutputTooSmallException.class,
                    () -> absurd.call(in, out));
            assertEquals(Integer.MAX_VALUE, huge.getRequired());
            assertEquals("reserve-absurd", huge.getMethod());
            assertUnmoved(in, 4, out, 64);

            // The SDK asks for twice the capacity first, then for exactly what it needs.
            final ByteBuffer size = directOf(utf8("100"));
            OutputTooSmallException small = assertThrows(OutputTooSmallException.class,
                    () -> big.call(size, out));
            assertTrue(small.getMessage(), small.getRequired() >= 100);
            assertUnmoved(size, 3, out, 64);
            ByteBuffer enough = ByteBuffer.allocateDirect(small.getRequired());
            assertEquals(100, big.call(size, enough));
            position(size, 0);

            assertTrue(ProxySo.unload(key));
            assertThrows(NoSuchLibraryException.class, () -> big.call(size, out));
            assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, size, out));
            assertUnmoved(size, 3, out, 64);
        }
    }

    @Test
    public void requiredSizeIsTheSmallestRequestRefusedWhenThePluginAsksForMoreFirst() {
        final String key = keys.next("buffers-required");
        ProxySo.load(key, fixture(FIXTURE), utf8("required"));
        try (LibraryHandle big = ProxySo.handle(key, "big")) {
            final ByteBuffer in = directOf(utf8("100"));
            final ByteBuffer out = ByteBuffer.allocateDirect(64);
            // The SDK asks for twice the capacity (128) first, then for the 100 bytes it needs.
            OutputTooSmallException small = assertThrows(OutputTooSmallException.class,
                    () -> big.call(in, out));
            assertEquals(100, small.getRequired());
        }
    }

    @Test
    public void overlappingInputAndOutputRegionsAreRefusedAndMoveNothing() {
        final String key = keys.next("buffers-overlap");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        ByteBuffer shared = ByteBuffer.allocateDirect(128);
        final ByteBuffer in = shared.duplicate();
        limit(in, 64);
        final ByteBuffer out = shared.duplicate();
        position(out, 32);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ProxySo.call(key, in, out));
        assertTrue(e.getMessage(), e.getMessage().contains("overlap"));
        assertEquals(0, in.position());
        assertEquals(32, out.position());
        // Side by side is fine.
        position(out, 64);
        assertEquals(64, ProxySo.call(key, in, out));
    }

    private static void assertUnmoved(ByteBuffer in, int inLimit, ByteBuffer out, int outLimit) {
        assertEquals(0, in.position());
        assertEquals(inLimit, in.limit());
        assertEquals(0, out.position());
        assertEquals(outLimit, out.limit());
    }

    private static void assertIllegal(String buffer, ThrowingRunnable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage(), e.getMessage().startsWith(buffer + " "));
    }

    private static ByteBuffer directOf(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length);
        buffer.put(bytes);
        flip(buffer);
        return buffer;
    }

    private static void fill(ByteBuffer buffer, byte value) {
        for (int i = 0; i < buffer.capacity(); i++) {
            buffer.put(i, value);
        }
    }

    // Through Buffer: ByteBuffer's own overrides exist only from Java 9 on.
    private static void position(Buffer buffer, int position) {
        buffer.position(position);
    }

    private static void limit(Buffer buffer, int limit) {
        buffer.limit(limit);
    }

    private static void flip(Buffer buffer) {
        buffer.flip();
    }
}
