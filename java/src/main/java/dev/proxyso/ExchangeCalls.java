package dev.proxyso;

import java.nio.Buffer;
import java.nio.ByteBuffer;

/**
 * {@code byte[]} calls through the calling thread's exchange buffers: the input is copied into a
 * direct view of native memory the thread keeps, the plugin runs on it, and the output is copied
 * out of a direct view of the thread's output buffer. Native code then calls no JNI function on a
 * successful call, where {@link NativeBridge#callHandle} needs four (the array's length, its
 * bytes, a new array, and its bytes), each a transition into the VM with a full memory barrier.
 *
 * <p>The views stay with their thread (a {@link ThreadLocal}) and are replaced exactly when native
 * code says they moved. A call made while the thread is already inside one (a plugin that calls
 * back into Java, which calls the proxy again) and an input of {@link #PIN_FROM} bytes or more go
 * through {@link NativeBridge#callHandle} instead, with the answers that path gives; for a method
 * known to be short that pins the arrays, so that the plugin reads the input in place and writes
 * straight into the array returned, one copy where the exchange buffers make three.
 */
final class ExchangeCalls {
    /** The largest input that goes through the exchange buffers. */
    static final int MAX_INPUT = NativeContract.BYTE_CALLS_EXCHANGE_MAX;
    /** From this many bytes on, calls go through {@link NativeBridge#callHandle}. */
    static final int PIN_FROM = NativeContract.BYTE_CALLS_PIN_FROM;
    /** The flag of {@link NativeBridge#callExchange}'s answer: the output buffer moved. */
    static final long OUTPUT_MOVED = 1L << 62;

    private static final ThreadLocal<ExchangeCalls> LOCAL = new ThreadLocal<ExchangeCalls>() {
        @Override
        protected ExchangeCalls initialValue() {
            return new ExchangeCalls();
        }
    };

    /** The view of the exchange input, or {@code null} before the first call. */
    private ByteBuffer input;
    /** The view of the output buffer, or {@code null} when there is none up to date. */
    private ByteBuffer output;
    /** Inside a call: a nested call must not touch the views. */
    private boolean busy;

    private ExchangeCalls() {
    }

    /**
     * {@link NativeBridge#callHandle(long, String, byte[], boolean)}, through the exchange
     * buffers where it can.
     *
     * @param handle the handle id
     * @param method the method name, or {@code null} for the handle's own method
     * @param input the input bytes, not {@code null}
     * @param cached as for {@code callHandle}
     * @return the output bytes; with {@code cached}, {@code null} for a stale handle
     */
    static byte[] call(long handle, String method, byte[] input, boolean cached) {
        if (input.length >= PIN_FROM) {
            return NativeBridge.callHandle(handle, method, input, cached);
        }
        ExchangeCalls local = LOCAL.get();
        if (local.busy) {
            return NativeBridge.callHandle(handle, method, input, cached);
        }
        local.busy = true;
        try {
            return local.exchange(handle, method, input, cached);
        } finally {
            local.busy = false;
        }
    }

    private byte[] exchange(long handle, String method, byte[] bytes, boolean cached) {
        ByteBuffer in = input;
        if (in == null || in.capacity() < bytes.length) {
            // The old view is dangling from here on: drop it first.
            input = null;
            in = NativeBridge.exchangeInput(bytes.length);
            input = in;
        }
        // Through Buffer: ByteBuffer's own clear() exists only from Java 9 on.
        Buffer inView = in;
        inView.clear();
        in.put(bytes);
        long answer = NativeBridge.callExchange(handle, method, bytes.length, cached);
        if (answer < 0) {
            return null;
        }
        if ((answer & OUTPUT_MOVED) != 0 || output == null) {
            // A new buffer may sit where the one given back was: native code cannot tell that
            // this thread dropped its view, so the view is taken again whenever there is none.
            output = null;
            output = NativeBridge.exchangeOutput();
        }
        long length = answer & ~OUTPUT_MOVED;
        ByteBuffer out = output;
        if (out == null || length > out.capacity()) {
            throw new ProxySoInternalError("an exchange call reported " + length
                    + " bytes of output in a view of "
                    + (out == null ? "none" : out.capacity() + " bytes"));
        }
        byte[] result = new byte[(int) length];
        Buffer outView = out;
        outView.clear();
        out.get(result);
        if (out.capacity() > MAX_INPUT) {
            output = null;
            NativeBridge.exchangeRelease();
        }
        return result;
    }
}
