package dev.proxyso.bench;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * The benchmark's raw FFM way (JDK 22 and later; compiled by the newest JDK with
 * {@code --release 22}, on the class path only where it runs): {@code proxyso_bench_echo} in
 * {@code libproxyso_bench_echo.so}, called through a critical downcall
 * ({@code Linker.Option.critical(true)}) with both Java arrays passed in place as heap segments, the
 * way a team writing FFM by hand for this one function would. {@link Bench} reaches it through a
 * method handle, since its own classes are Java 8 bytecode.
 */
public final class FfmEcho {
    /** The echo library, set by {@link #link(Path)} before the first {@link #echo(byte[])}. */
    private static volatile String library;

    private FfmEcho() {
    }

    /**
     * Names the directory the benchmark's native code was built into; the downcall is linked at
     * the first echo.
     *
     * @param dir the directory holding {@code libproxyso_bench_echo.so}
     */
    public static void link(Path dir) {
        library = dir.resolve("libproxyso_bench_echo.so").toAbsolutePath().toString();
    }

    /**
     * Echoes through the critical downcall.
     *
     * @param input the input
     * @return a new array holding the same bytes
     * @throws Throwable if the downcall does
     */
    public static byte[] echo(byte[] input) throws Throwable {
        byte[] output = new byte[input.length];
        long n = (long) Downcall.ECHO.invokeExact(MemorySegment.ofArray(input), (long) input.length,
                MemorySegment.ofArray(output));
        if (n != input.length) {
            throw new AssertionError("the echo answered " + n + " for " + input.length);
        }
        return output;
    }

    /** The downcall handle, a constant once linked. */
    private static final class Downcall {
        static final MethodHandle ECHO = link();

        @SuppressWarnings("restricted")
        private static MethodHandle link() {
            Linker linker = Linker.nativeLinker();
            MemorySegment echo = SymbolLookup.libraryLookup(Path.of(library), Arena.global())
                    .find("proxyso_bench_echo").orElseThrow();
            // size_t proxyso_bench_echo(const uint8_t *in, size_t n, uint8_t *out)
            return linker.downcallHandle(echo,
                    FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS),
                    Linker.Option.critical(true));
        }
    }
}
