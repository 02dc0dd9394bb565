package dev.proxyso;

import java.nio.Buffer;
import java.nio.ByteBuffer;

/** The rules of a call on direct buffers, shared by {@link ProxySo} and {@link LibraryHandle}. */
final class DirectCall {
    private DirectCall() {
    }

    /** Refuses what native code cannot use in place: null, heap or read-only output buffers. */
    static void checkBuffers(ByteBuffer in, ByteBuffer out) {
        ProxySo.checkNotNull(in, "in");
        ProxySo.checkNotNull(out, "out");
        if (!in.isDirect()) {
            throw new IllegalArgumentException(
                    "in must be a direct buffer (ByteBuffer.allocateDirect)");
        }
        if (!out.isDirect()) {
            throw new IllegalArgumentException(
                    "out must be a direct buffer (ByteBuffer.allocateDirect)");
        }
        if (out.isReadOnly()) {
            throw new IllegalArgumentException("out must not be a read-only buffer");
        }
    }

    /**
     * Moves the positions after a successful call: {@code in} to its limit, {@code out} past the
     * bytes written.
     *
     * @return {@code written}
     */
    static int advance(ByteBuffer in, ByteBuffer out, int outPosition, int outLength,
            int written) {
        if (written < 0 || written > outLength) {
            throw new ProxySoInternalError("a direct call reported " + written
                    + " bytes written into an output region of " + outLength + " bytes");
        }
        // Through Buffer: ByteBuffer's own position(int) exists only from Java 9 on.
        Buffer input = in;
        input.position(input.limit());
        Buffer output = out;
        output.position(outPosition + written);
        return written;
    }
}
