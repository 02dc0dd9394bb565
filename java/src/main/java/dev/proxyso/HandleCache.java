package dev.proxyso;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The handles behind {@code ProxySo.call(key, ...)}: one open default-method handle id per key that
 * was called, so that a call costs one lock-free map lookup and a native call with a {@code long}
 * instead of passing the key's text to native code.
 *
 * <p>The map owns the ids in it: whoever removes an id (with {@code remove(key, id)}, so only
 * once) closes it. A call never closes an id it merely read.
 *
 * <p>A key is checked to be well-formed UTF-16 before it is opened, not on every call: a key the
 * map holds was checked when it was put there.
 *
 * <p>The answers are those of a call by key. A cached id follows replacements as a lookup by key
 * would. An id can go stale: its key was unloaded (and perhaps loaded again since, which makes a
 * new library the id does not follow), or a concurrent {@link #forget(String)} closed it. Native
 * code answers a stale id with a value ({@code null}, or -1 for direct buffers), not an
 * exception; the call then drops the id and opens the key again, which throws
 * {@link NoSuchLibraryException} if the key is not loaded now. Every retry follows an unload of
 * the key, so a call retries only while the key keeps being unloaded under it.
 */
final class HandleCache {
    private static final ConcurrentHashMap<String, Long> HANDLES =
            new ConcurrentHashMap<String, Long>();

    private HandleCache() {
    }

    /** {@code NativeBridge.call(key, method, input)}, through the key's cached handle. */
    static byte[] call(String key, String method, byte[] input) {
        long id = id(key);
        byte[] output;
        while ((output = ExchangeCalls.call(id, method, input, true)) == null) {
            id = reopen(key, id);
        }
        return output;
    }

    /**
     * {@link NativeBridge#callDirect} of the key's default method, through its cached handle, as
     * {@link #call(String, String, byte[])} does. The caller has checked the buffers and moves
     * their positions.
     */
    static int callDirect(String key, ByteBuffer in, int inOffset, int inLength, ByteBuffer out,
            int outOffset, int outLength) {
        long id = id(key);
        int written;
        while ((written = NativeBridge.callDirect(id, null, in, inOffset, inLength, out,
                outOffset, outLength, true)) < 0) {
            id = reopen(key, id);
        }
        return written;
    }

    /** Removes and closes the key's cached handle, if it has one; for {@code unload}. */
    static void forget(String key) {
        Long id = HANDLES.remove(key);
        if (id != null) {
            NativeBridge.close(id);
        }
    }

    /** The key's cached handle id, or {@code null}; for the tests. */
    static Long cached(String key) {
        return HANDLES.get(key);
    }

    /** The key's cached id, opened and cached first if it has none. */
    private static long id(String key) {
        Long cached = HANDLES.get(key);
        return cached != null ? cached : open(key);
    }

    /** Drops a stale id, if it is still the key's cached one, and opens the key again. */
    private static long reopen(String key, long stale) {
        Long id = stale;
        if (HANDLES.remove(key, id)) {
            NativeBridge.close(stale);
        }
        return open(key);
    }

    /**
     * Opens the key's default method and caches the id, unless another thread cached one first:
     * then that one is used and ours closed.
     *
     * @throws NoSuchLibraryException if the key is not loaded
     */
    private static long open(String key) {
        Text.checkWellFormed(key, "key");
        long id = NativeBridge.open(key, null);
        Long earlier = HANDLES.putIfAbsent(key, id);
        if (earlier == null) {
            return id;
        }
        NativeBridge.close(id);
        return earlier;
    }
}
