package dev.proxyso;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A key resolved once, for calls that skip the lookup by name: from {@link ProxySo#handle(String)}
 * or {@link ProxySo#handle(String, String)}.
 *
 * <p>A handle names the library loaded under its key, not one version of it: every call reaches
 * the version that is current at that moment, so a handle follows {@link ProxySo#replace
 * replacements} and never has to be opened again for them. Once the key is
 * {@link ProxySo#unload unloaded}, every call throws {@link NoSuchLibraryException}, even after the
 * key is loaded again: that is another library, for which a new handle is needed.
 *
 * <p>A handle is thread-safe and cheap to share: a call takes no lock and writes nothing shared
 * on the Java side. It holds a small native slot until {@link #close()} (there is no finalizer:
 * close every handle, for example with try-with-resources). Calling a closed handle throws
 * {@link IllegalStateException}; a call that is running when the handle is closed finishes
 * normally.
 *
 * <pre>{@code
 * try (LibraryHandle model = ProxySo.handle("model")) {
 *     byte[] answer = model.call(request);
 * }
 * }</pre>
 *
 * <p>Every method throws {@link NullPointerException} for a {@code null} argument, and
 * {@link IllegalArgumentException} for a method name that is not well-formed UTF-16.
 */
public final class LibraryHandle implements AutoCloseable {
    /** The key the handle was opened for. */
    private final String key;
    /** The method called by default, or {@code null} for the library's default method. */
    private final String method;
    /** The native handle id; valid until {@link #closed} is set. */
    private final long id;
    /** Set once, by the first {@link #close()}. */
    private final AtomicBoolean closed = new AtomicBoolean();

    LibraryHandle(String key, String method, long id) {
        this.key = key;
        this.method = method;
        this.id = id;
    }

    /**
     * Returns the key this handle was opened for.
     *
     * @return the key
     */
    public String getKey() {
        return key;
    }

    /**
     * Returns the method that {@link #call(byte[])}, {@link #call(String)} and
     * {@link #call(ByteBuffer, ByteBuffer)} run.
     *
     * @return the method name, or {@code null} for the library's default method (the first of its
     *     method table)
     */
    public String getMethod() {
        return method;
    }

    /**
     * Calls this handle's method.
     *
     * @param input the input bytes
     * @return the output bytes
     * @throws IllegalStateException if the handle is closed
     * @throws NoSuchLibraryException if the key was unloaded
     * @throws UnknownMethodException if the current version has no such method (a replacement
     *     may have dropped it)
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public byte[] call(byte[] input) {
        ProxySo.checkNotNull(input, "input");
        checkOpen();
        return ExchangeCalls.call(id, null, input, false);
    }

    /**
     * Calls a method by name, whatever this handle's own method is.
     *
     * @param method the method name
     * @param input the input bytes
     * @return the output bytes
     * @throws IllegalStateException if the handle is closed
     * @throws NoSuchLibraryException if the key was unloaded
     * @throws UnknownMethodException if the current version has no method of that name
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public byte[] call(String method, byte[] input) {
        ProxySo.checkMethod(method);
        ProxySo.checkNotNull(input, "input");
        checkOpen();
        return ExchangeCalls.call(id, method, input, false);
    }

    /**
     * Calls this handle's method with a string, encoded as UTF-8, and decodes the output as UTF-8
     * (malformed bytes become U+FFFD).
     *
     * <p>The string is the <em>input</em> of this handle's method, not a method name: to call
     * another method by name with a string, use {@link #call(String, String)}.
     *
     * @param input the input text of this handle's method (not a method name)
     * @return the output text
     * @throws IllegalStateException if the handle is closed
     * @throws NoSuchLibraryException if the key was unloaded
     * @throws UnknownMethodException if the current version has no such method
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public String call(String input) {
        ProxySo.checkNotNull(input, "input");
        checkOpen();
        byte[] output = ExchangeCalls.call(id, null, input.getBytes(StandardCharsets.UTF_8),
                false);
        return new String(output, StandardCharsets.UTF_8);
    }

    /**
     * Calls a method by name with a string, whatever this handle's own method is; the input is
     * encoded as UTF-8 and the output decoded as UTF-8 (malformed bytes become U+FFFD).
     *
     * @param method the method name
     * @param input the input text
     * @return the output text
     * @throws IllegalStateException if the handle is closed
     * @throws NoSuchLibraryException if the key was unloaded
     * @throws UnknownMethodException if the current version has no method of that name
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public String call(String method, String input) {
        ProxySo.checkMethod(method);
        ProxySo.checkNotNull(input, "input");
        checkOpen();
        byte[] output = ExchangeCalls.call(id, method,
                input.getBytes(StandardCharsets.UTF_8), false);
        return new String(output, StandardCharsets.UTF_8);
    }

    /**
     * Calls this handle's method on direct buffers, without copying either: the plugin reads the
     * {@code in.remaining()} bytes at {@code in.position()} where they are and writes its output
     * straight into {@code out}, at most {@code out.remaining()} bytes at {@code out.position()}.
     * The two regions must not overlap.
     *
     * <p>On success {@code in}'s position moves to its limit and {@code out}'s position moves past
     * the bytes written. On any exception neither buffer's position or limit changes, but a plugin
     * that failed may already have overwritten bytes of {@code out}'s remaining region.
     *
     * @param in a direct buffer holding the input
     * @param out a direct, writable buffer for the output
     * @return the number of bytes written
     * @throws IllegalArgumentException if a buffer is not direct, or {@code out} is read-only
     * @throws OutputTooSmallException if the output needs more than {@code out.remaining()} bytes;
     *     {@link OutputTooSmallException#getRequired()} says how many at least
     * @throws IllegalStateException if the handle is closed
     * @throws NoSuchLibraryException if the key was unloaded
     * @throws UnknownMethodException if the current version has no such method
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public int call(ByteBuffer in, ByteBuffer out) {
        DirectCall.checkBuffers(in, out);
        checkOpen();
        int inPosition = in.position();
        int inLength = in.limit() - inPosition;
        int outPosition = out.position();
        int outLength = out.limit() - outPosition;
        int written = NativeBridge.callDirect(id, null, in, inPosition, inLength, out, outPosition,
                outLength, false);
        return DirectCall.advance(in, out, outPosition, outLength, written);
    }

    /**
     * Closes the handle and frees its native slot. Only the first call does anything; calls still
     * running finish normally, later ones throw {@link IllegalStateException}. The library stays
     * loaded.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            NativeBridge.close(id);
        }
    }

    /**
     * Tells whether {@link #close()} was called.
     *
     * @return {@code true} once the handle is closed
     */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Describes the handle, for logs.
     *
     * @return the key, the method and whether the handle is closed
     */
    @Override
    public String toString() {
        return "LibraryHandle[key=" + key + ", method=" + (method == null ? "(default)" : method)
                + (closed.get() ? ", closed]" : "]");
    }

    private void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException("the handle of key '" + Text.shown(key)
                    + "' is closed");
        }
    }
}
