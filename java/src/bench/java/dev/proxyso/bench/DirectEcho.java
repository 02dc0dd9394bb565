package dev.proxyso.bench;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The floor of the benchmark: JNI bindings written for the echo alone, the way a careful team
 * would hand-write one ({@code bench/direct_echo.c}). Both take the input array's length,
 * allocate the output array and call {@code proxyso_bench_echo} once; they differ in how the
 * function reaches the arrays' bytes.
 */
final class DirectEcho {
    private DirectEcho() {
    }

    /**
     * Loads {@code libproxyso_bench_jni.so}.
     *
     * @param dir the directory the benchmark's native code was built into
     */
    static void load(Path dir) {
        System.load(dir.resolve("libproxyso_bench_jni.so").toAbsolutePath().toString());
    }

    /**
     * Echoes with both arrays pinned ({@code GetPrimitiveArrayCritical}): the function reads and
     * writes the Java arrays in place, so the echo's own copy is the only one.
     *
     * @param input the input
     * @return a new array holding the same bytes
     */
    static native byte[] echoCritical(byte[] input);

    /**
     * Echoes through native buffers: {@code GetByteArrayRegion} copies the input out, the
     * function runs between two native buffers, {@code SetByteArrayRegion} copies the output in.
     *
     * @param input the input
     * @return a new array holding the same bytes
     */
    static native byte[] echoRegion(byte[] input);

    /**
     * Returns the address of a direct buffer's memory ({@code GetDirectBufferAddress}).
     *
     * @param buffer a direct buffer
     * @return the address of its first byte
     */
    static native long address(ByteBuffer buffer);
}
