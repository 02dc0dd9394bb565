package dev.proxyso;

import java.nio.ByteBuffer;

/**
 * How calls by handle reach {@code libproxy.so}: this class, used on JDK 8 to 21, goes through JNI
 * ({@link NativeBridge}). The multi-release jar holds a class of the same name for JDK 22 and later
 * ({@code META-INF/versions/22}, source in {@code java/src/java22}) that goes through FFM downcall
 * handles instead, and through JNI when {@code -Dproxyso.ffm=false} is set or native access is
 * not enabled. Both have exactly these methods, with the answers and exceptions of
 * {@link NativeBridge#callHandle} and {@link NativeBridge#callDirect}.
 */
final class CallPath {
    /** The system property that turns the FFM path off when {@code false}. */
    static final String FFM_PROPERTY = "proxyso.ffm";

    private CallPath() {
    }

    /**
     * Names the path that serves calls in this JVM.
     *
     * @return {@code "jni"} here; {@code "ffm"} or {@code "jni"} on JDK 22 and later
     */
    static String name() {
        return "jni";
    }

    /**
     * {@link NativeBridge#callHandle(long, String, byte[], boolean)}, through the thread's
     * exchange buffers ({@link ExchangeCalls}).
     *
     * @param handle the handle id
     * @param method the method name, or {@code null} for the handle's own method
     * @param input the input bytes
     * @param cached {@code null} rather than an exception for a stale handle
     * @return the output bytes, or {@code null} (see {@code cached})
     */
    static byte[] callHandle(long handle, String method, byte[] input, boolean cached) {
        return ExchangeCalls.call(handle, method, input, cached);
    }

    /**
     * {@link NativeBridge#callDirect}: {@code inOffset} and {@code outOffset} are the buffers'
     * positions, {@code inLength} and {@code outLength} their remaining bytes.
     *
     * @param handle the handle id
     * @param method the method name, or {@code null} for the handle's own method
     * @param in a direct buffer
     * @param inOffset its position
     * @param inLength its remaining bytes
     * @param out a direct, writable buffer
     * @param outOffset its position
     * @param outLength its remaining bytes
     * @param cached -1 rather than an exception for a stale handle
     * @return the number of bytes written, or -1 (see {@code cached})
     */
    static int callDirect(long handle, String method, ByteBuffer in, int inOffset, int inLength,
            ByteBuffer out, int outOffset, int outLength, boolean cached) {
        return NativeBridge.callDirect(handle, method, in, inOffset, inLength, out, outOffset,
                outLength, cached);
    }
}
