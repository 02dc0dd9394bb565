package dev.proxyso;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * How calls by handle reach {@code libproxy.so} on JDK 22 and later: FFM downcall handles to the
 * {@code proxyso_ffm_*} functions ({@code src/ffm}), chosen once, when the class initialises,
 * unless {@code -Dproxyso.ffm=false} is set or native access is not enabled for this module (then
 * it logs, once, the flag to pass) or the handles cannot be made; then JNI, as on JDK 8 to 21.
 *
 * <p>A call first tries a critical downcall ({@code Linker.Option.critical(true)}), which passes the
 * Java arrays in place: the input as it is, the output in a new array of the size this thread's
 * last call on the same handle and method answered (the input's size, at most 64 KiB, the first
 * time), which is returned as it is when the guess was right. An output that does not fit is
 * kept by the native side and taken into an array of its size with a second downcall. The native
 * side runs the method in a critical downcall only when its calls on inputs of that size class
 * are known to be short ({@code core/src/brevity.rs}); otherwise it answers
 * {@link NativeContract#FFM_NOT_SHORT} and the call goes through an ordinary downcall on native
 * memory, or from {@link ExchangeCalls#PIN_FROM} bytes on through JNI, which copies between the
 * arrays and the plugin's memory once each way (into and out of an isolated plugin's slot), so
 * that a long call never holds off the garbage collector.
 *
 * <p>A failed call answers {@link NativeContract#FFM_FAILED}, and {@link NativeBridge#ffmThrow()}
 * throws the exception the JNI path throws. The methods and their answers are those of the base
 * class of the same name (Java 8, JNI).
 *
 * <p>What the native side keeps for a follow-up (spilled output, a failure) is kept per OS thread:
 * the follow-up downcall comes right after the answer, with no blocking operation in between, so
 * a virtual thread cannot move to another carrier thread meanwhile.
 */
final class CallPath {
    /** The system property that turns the FFM path off when {@code false}. */
    static final String FFM_PROPERTY = "proxyso.ffm";

    private static final Logger LOG = Logger.getLogger(LogBridge.PROXY_LOGGER);

    /** The largest output guessed from the input's size, for a first call. */
    private static final int FIRST_GUESS_MAX = 64 << 10;
    /** Spilled output up to this size is taken in a critical downcall (a copy of ~50 us). */
    private static final int CRITICAL_TAKE_MAX = 1 << 20;
    /** Native memory for ordinary downcalls up to this size is kept per thread. */
    private static final long KEEP_MEMORY = 4 << 20;

    private static final MethodHandle CALL_CRITICAL;
    private static final MethodHandle CALL;
    private static final MethodHandle DIRECT_CRITICAL;
    private static final MethodHandle DIRECT;
    private static final MethodHandle TAKE_CRITICAL;
    private static final MethodHandle TAKE;
    /** Whether FFM serves. */
    private static final boolean FFM;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static {
        MethodHandle[] handles = link();
        FFM = handles != null;
        CALL_CRITICAL = FFM ? handles[0] : null;
        CALL = FFM ? handles[1] : null;
        DIRECT_CRITICAL = FFM ? handles[2] : null;
        DIRECT = FFM ? handles[3] : null;
        TAKE_CRITICAL = FFM ? handles[4] : null;
        TAKE = FFM ? handles[5] : null;
    }

    private CallPath() {
    }

    /**
     * Names the path that serves calls in this JVM.
     *
     * @return {@code "ffm"} or {@code "jni"}
     */
    static String name() {
        return FFM ? "ffm" : "jni";
    }

    /**
     * {@link NativeBridge#callHandle(long, String, byte[], boolean)}, through FFM.
     *
     * @param handle the handle id
     * @param method the method name, or {@code null} for the handle's own method
     * @param input the input bytes
     * @param cached {@code null} rather than an exception for a stale handle
     * @return the output bytes, or {@code null} (see {@code cached})
     */
    static byte[] callHandle(long handle, String method, byte[] input, boolean cached) {
        if (!FFM) {
            return ExchangeCalls.call(handle, method, input, cached);
        }
        Scratch scratch = SCRATCH.get();
        byte[] name = scratch.name(method);
        int guess = scratch.guess(handle, method, input.length);
        byte[] output = new byte[guess];
        // Typed locals: a conditional expression would be passed to invokeExact as an Object.
        MemorySegment nameSegment = name == null ? MemorySegment.NULL : MemorySegment.ofArray(name);
        long answer;
        try {
            answer = (long) CALL_CRITICAL.invokeExact(handle, nameSegment,
                    name == null ? -1 : name.length, MemorySegment.ofArray(input), input.length,
                    MemorySegment.ofArray(output), guess, flags(cached, true));
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (answer >= 0) {
            return scratch.answered(handle, method, output, (int) answer);
        }
        if (answer == NativeContract.FFM_NOT_SHORT) {
            if (input.length >= ExchangeCalls.PIN_FROM) {
                // JNI: from the array into the plugin's input (an isolated plugin's slot) and
                // out again with one copy each way, where native memory here would take two.
                return scratch.answered(handle, method,
                        ExchangeCalls.call(handle, method, input, cached), -1);
            }
            return ordinaryCall(scratch, handle, method, name, input, guess, cached);
        }
        return scratch.answered(handle, method, notWritten(answer), -1);
    }

    /** The call of a method not known to be short: an ordinary downcall on native memory. */
    private static byte[] ordinaryCall(Scratch scratch, long handle, String method, byte[] name,
            byte[] input, int guess, boolean cached) {
        int nameLength = name == null ? 0 : name.length;
        MemorySegment memory = scratch.memory((long) nameLength + input.length + guess);
        MemorySegment nameSegment = MemorySegment.NULL;
        if (name != null) {
            nameSegment = memory.asSlice(0, nameLength);
            MemorySegment.copy(name, 0, nameSegment, JAVA_BYTE, 0, nameLength);
        }
        MemorySegment in = memory.asSlice(nameLength, input.length);
        MemorySegment.copy(input, 0, in, JAVA_BYTE, 0, input.length);
        MemorySegment out = memory.asSlice((long) nameLength + input.length, guess);
        long answer;
        try {
            answer = (long) CALL.invokeExact(handle, nameSegment, name == null ? -1 : nameLength,
                    in, input.length, out, guess, flags(cached, false));
        } catch (Throwable t) {
            throw unexpected(t);
        }
        byte[] output;
        if (answer >= 0) {
            output = new byte[(int) answer];
            MemorySegment.copy(out, JAVA_BYTE, 0, output, 0, output.length);
        } else {
            output = notWritten(answer);
        }
        scratch.release();
        return scratch.answered(handle, method, output, -1);
    }

    /**
     * What an answer other than a length in place means: the spilled output, {@code null} for a
     * stale handle, or the call's exception.
     */
    private static byte[] notWritten(long answer) {
        if (answer == NativeContract.FFM_STALE) {
            return null;
        }
        if (answer <= NativeContract.FFM_SPILLED) {
            return take(NativeContract.FFM_SPILLED - answer);
        }
        throw failed(answer);
    }

    /** Takes {@code length} bytes of spilled output into a new array. */
    private static byte[] take(long length) {
        if (length > Integer.MAX_VALUE - 8) {
            throw new ProxySoInternalError("a call spilled " + length + " bytes of output");
        }
        byte[] output = new byte[(int) length];
        long answer;
        try {
            if (length <= CRITICAL_TAKE_MAX) {
                answer = (long) TAKE_CRITICAL.invokeExact(MemorySegment.ofArray(output),
                        output.length);
            } else {
                // A large copy in an ordinary downcall, then into the array in chunks that let
                // the collector in between.
                Scratch scratch = SCRATCH.get();
                MemorySegment memory = scratch.memory(length);
                answer = (long) TAKE.invokeExact(memory, output.length);
                if (answer == length) {
                    MemorySegment.copy(memory, JAVA_BYTE, 0, output, 0, output.length);
                }
                scratch.release();
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (answer != length) {
            throw failed(answer);
        }
        return output;
    }

    /**
     * {@link NativeBridge#callDirect}, through FFM: {@code inOffset} and {@code outOffset} are the
     * buffers' positions, {@code inLength} and {@code outLength} their remaining bytes.
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
        MemorySegment input = FFM ? MemorySegment.ofBuffer(in) : null;
        MemorySegment output = FFM ? MemorySegment.ofBuffer(out) : null;
        if (!FFM || input.byteSize() != inLength || output.byteSize() != outLength) {
            // JNI, or buffers moved since the caller read them: JNI takes the offsets as given.
            return NativeBridge.callDirect(handle, method, in, inOffset, inLength, out, outOffset,
                    outLength, cached);
        }
        Scratch scratch = SCRATCH.get();
        byte[] name = scratch.name(method);
        // A typed local: a conditional expression would be passed to invokeExact as an Object.
        MemorySegment nameSegment = name == null ? MemorySegment.NULL : MemorySegment.ofArray(name);
        long answer;
        try {
            answer = (long) DIRECT_CRITICAL.invokeExact(handle, nameSegment,
                    name == null ? -1 : name.length, input, inLength, output, outLength,
                    flags(cached, true));
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (answer >= 0) {
            return (int) answer;
        }
        return directAgain(answer, scratch, handle, name, input, output, cached);
    }

    /**
     * The rest of a direct call whose critical downcall answered {@code answer}, not a length:
     * the call through an ordinary downcall for a method not known to be short, else -1 for a
     * stale handle or the call's exception. Apart, so that the common case stays small enough
     * for the compiler to inline.
     */
    private static int directAgain(long answer, Scratch scratch, long handle, byte[] name,
            MemorySegment input, MemorySegment output, boolean cached) {
        if (answer == NativeContract.FFM_NOT_SHORT) {
            MemorySegment nameSegment = MemorySegment.NULL;
            if (name != null) {
                nameSegment = scratch.memory(name.length);
                MemorySegment.copy(name, 0, nameSegment, JAVA_BYTE, 0, name.length);
            }
            try {
                answer = (long) DIRECT.invokeExact(handle, nameSegment,
                        name == null ? -1 : name.length, input, (int) input.byteSize(), output,
                        (int) output.byteSize(), flags(cached, false));
            } catch (Throwable t) {
                throw unexpected(t);
            }
            scratch.release();
            if (answer >= 0) {
                return (int) answer;
            }
        }
        if (answer == NativeContract.FFM_STALE) {
            return -1;
        }
        throw failed(answer);
    }

    private static int flags(boolean cached, boolean critical) {
        return (cached ? NativeContract.FFM_FLAG_CACHED : 0)
                | (critical ? NativeContract.FFM_FLAG_CRITICAL : 0);
    }

    /** Throws the failed call's exception ({@link NativeBridge#ffmThrow()}). */
    private static ProxySoInternalError failed(long answer) {
        if (answer == NativeContract.FFM_FAILED) {
            NativeBridge.ffmThrow();
        }
        return new ProxySoInternalError("an FFM call answered " + answer);
    }

    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException) {
            return (RuntimeException) t;
        }
        if (t instanceof Error) {
            throw (Error) t;
        }
        return new IllegalStateException("an FFM downcall failed", t);
    }

    /**
     * The downcall handles, or {@code null} when calls go through JNI (said in the log). Linking
     * is a restricted method: it runs only when native access is enabled for this module.
     */
    @SuppressWarnings("restricted")
    private static MethodHandle[] link() {
        if ("false".equalsIgnoreCase(System.getProperty(FFM_PROPERTY, "").trim())) {
            LOG.config("proxyso calls go through JNI: -D" + FFM_PROPERTY + "=false");
            return null;
        }
        Module module = CallPath.class.getModule();
        String flag = "--enable-native-access="
                + (module.isNamed() ? module.getName() : "ALL-UNNAMED");
        if (!module.isNativeAccessEnabled()) {
            LOG.warning("proxyso calls go through JNI, not FFM (java.lang.foreign): native access "
                    + "is not enabled for " + (module.isNamed() ? "module " + module.getName()
                            : "code on the class path")
                    + "; pass " + flag + " to java for the faster FFM path");
            return null;
        }
        try {
            NativeLoader.ensureLoaded();
            Linker linker = Linker.nativeLinker();
            SymbolLookup lookup = SymbolLookup.loaderLookup();
            FunctionDescriptor call = FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, ADDRESS,
                    JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT);
            FunctionDescriptor take = FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_INT);
            MemorySegment callFunction = find(lookup, "proxyso_ffm_call");
            MemorySegment directFunction = find(lookup, "proxyso_ffm_call_direct");
            MemorySegment takeFunction = find(lookup, "proxyso_ffm_take");
            Linker.Option critical = Linker.Option.critical(true);
            return new MethodHandle[] {
                linker.downcallHandle(callFunction, call, critical),
                linker.downcallHandle(callFunction, call),
                linker.downcallHandle(directFunction, call, critical),
                linker.downcallHandle(directFunction, call),
                linker.downcallHandle(takeFunction, take, critical),
                linker.downcallHandle(takeFunction, take),
            };
        } catch (IllegalCallerException e) {
            LOG.warning("proxyso calls go through JNI, not FFM (java.lang.foreign): " + e.getMessage()
                    + "; pass " + flag + " to java for the faster FFM path");
            return null;
        } catch (RuntimeException | LinkageError e) {
            LOG.log(Level.WARNING, "proxyso calls go through JNI: its FFM downcalls could not be "
                    + "linked", e);
            return null;
        }
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException(
                "libproxy.so has no function " + name));
    }

    /** What a thread keeps from call to call. */
    private static final class Scratch {
        /** The last method name encoded, and its UTF-8 bytes. */
        private String method;
        private byte[] methodBytes;
        /** The handle and method of the last call, and its output's length (-1: unknown). */
        private long lastHandle;
        private String lastMethod;
        private int lastOutput = -1;
        /** Native memory for ordinary downcalls, kept while small. */
        private MemorySegment memory = MemorySegment.NULL;

        /** The method name's UTF-8 bytes, or {@code null} for the handle's own method. */
        byte[] name(String name) {
            if (name == null) {
                return null;
            }
            if (name != method && !name.equals(method)) {
                methodBytes = name.getBytes(StandardCharsets.UTF_8);
            }
            method = name;
            return methodBytes;
        }

        /** The output array's size for a call. */
        int guess(long handle, String name, int inputLength) {
            if (lastOutput >= 0 && handle == lastHandle && name == lastMethod) {
                return lastOutput;
            }
            return Math.min(inputLength, FIRST_GUESS_MAX);
        }

        /**
         * Remembers the output's size for the next guess and returns the output: {@code output}
         * when it was written in place and filled ({@code length} bytes), else its first
         * {@code length} bytes; {@code length} -1 for an output that is complete already.
         */
        byte[] answered(long handle, String name, byte[] output, int length) {
            if (output == null) {
                return null;
            }
            lastHandle = handle;
            lastMethod = name;
            if (length < 0 || length == output.length) {
                lastOutput = output.length;
                return output;
            }
            lastOutput = length;
            return Arrays.copyOf(output, length);
        }

        /** At least {@code size} bytes of native memory, for one downcall. */
        MemorySegment memory(long size) {
            if (memory.byteSize() < size) {
                long capacity = Math.max(size, Math.min(memory.byteSize() * 2, KEEP_MEMORY));
                memory = Arena.ofAuto().allocate(Math.max(capacity, 64));
            }
            return memory;
        }

        /** After a downcall: lets go of native memory too large to keep. */
        void release() {
            if (memory.byteSize() > KEEP_MEMORY) {
                memory = MemorySegment.NULL;
            }
        }
    }
}
