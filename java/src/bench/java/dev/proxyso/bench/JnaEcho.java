package dev.proxyso.bench;

import java.lang.reflect.InvocationTargetException;
import java.nio.file.Path;

/**
 * JNA's fastest style, direct mapping ({@code Native.register}), bound to the same C function as
 * every other way of the benchmark. JNA is looked up by reflection, so that the benchmark builds
 * and runs without {@code jna.jar}; with it on the class path, {@link #register(Path)} binds the
 * native method below.
 */
final class JnaEcho {
    private JnaEcho() {
    }

    /**
     * {@code size_t proxyso_bench_echo(const uint8_t *in, size_t n, uint8_t *out)}, with
     * {@code size_t} as {@code long} (64-bit Linux). JNA hands the arrays to the function itself.
     *
     * @param in the input
     * @param n the input's length
     * @param out an array of at least {@code n} bytes for the output
     * @return {@code n}
     */
    static native long proxyso_bench_echo(byte[] in, long n, byte[] out);

    /**
     * Binds {@link #proxyso_bench_echo} to the function in the given library through JNA.
     *
     * @param library {@code libproxyso_bench_echo.so}
     * @return JNA's version, or {@code null} if JNA is not on the class path
     * @throws ReflectiveOperationException if JNA is there but the binding fails
     */
    static String register(Path library) throws ReflectiveOperationException {
        Class<?> nativeClass;
        try {
            nativeClass = Class.forName("com.sun.jna.Native");
        } catch (ClassNotFoundException absent) {
            return null;
        }
        try {
            nativeClass.getMethod("register", Class.class, String.class)
                    .invoke(null, JnaEcho.class, library.toAbsolutePath().toString());
        } catch (InvocationTargetException e) {
            throw new ReflectiveOperationException("Native.register failed: " + e.getCause(),
                    e.getCause());
        }
        String version = nativeClass.getPackage().getImplementationVersion();
        return version != null ? version : "(version unknown)";
    }
}
