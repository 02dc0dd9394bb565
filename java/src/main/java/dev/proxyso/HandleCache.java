package dev.proxyso;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The handles behind {@code ProxySo.call(key, ...)}: one open default-method handle id per key that
 * was called, so that a call costs one lock-free map lookup and a native call with a {@code long}
 * instead of passing the key's text to native code.
 *
 * <p>The map owns the ids in it: whoever removes an id (with {@code remove(key, id)}, so only
 * once) closes it. A call never closes an id it merely read; if another thread closed it first,
 * the native side answers {@link IllegalStateException} ({@link NativeBridge#HANDLE_CLOSED}) and
 * the call goes on without it.
 *
 * <p>A key is checked to be well-formed UTF-16 before it is opened, not on every call: a key the
 * map holds was checked when it was put there.
 *
 * <p>The answers are those of a call by key: a cached id follows replacements as a lookup by key
 * would, and an id whose key was unloaded ({@link NoSuchLibraryException}) is dropped and the key
 * opened again once, since it may have been loaded again since; only if that fails does the call
 * fail. An id closed under a call by a concurrent {@link #forget(String)} means the key was being
 * unloaded; that call is answered by a plain call by key. An entry can outlive its key's unload
 * only when an open that began before the unload finishes after it; such an entry is dropped by
 * the next call of the key, or by the next unload.
 */
final class HandleCache {
    private static final ConcurrentHashMap<String, Long> HANDLES =
            new ConcurrentHashMap<String, Long>();

    private HandleCache() {
    }

    /** {@code NativeBridge.call(key, method, input)}, through the key's cached handle. */
    static byte[] call(String key, String method, byte[] input) {
        Long cached = HANDLES.get(key);
        if (cached != null) {
            try {
                return NativeBridge.callHandle(cached, method, input);
            } catch (NoSuchLibraryException | IllegalStateException stale) {
                drop(key, cached);
            }
        }
        Text.checkWellFormed(key, "key");
        long id = NativeBridge.open(key, null);
        Long opened = id;
        boolean kept = HANDLES.putIfAbsent(key, opened) == null;
        try {
            return NativeBridge.callHandle(id, method, input);
        } catch (NoSuchLibraryException gone) {
            drop(key, opened);
            throw gone;
        } catch (IllegalStateException closed) {
            // Only a kept id can have been closed by another thread: the key is being unloaded.
            return NativeBridge.call(key, method, input);
        } finally {
            if (!kept) {
                NativeBridge.close(id);
            }
        }
    }

    /**
     * {@link NativeBridge#callDirect} of the key's default method, through its cached handle, with
     * the same retries as {@link #call(String, String, byte[])}. The caller has checked the buffers
     * and moves their positions.
     */
    static int callDirect(String key, ByteBuffer in, int inOffset, int inLength, ByteBuffer out,
            int outOffset, int outLength) {
        Long cached = HANDLES.get(key);
        if (cached != null) {
            try {
                return NativeBridge.callDirect(cached, null, in, inOffset, inLength, out, outOffset,
                        outLength);
            } catch (NoSuchLibraryException | IllegalStateException stale) {
                drop(key, cached);
            }
        }
        Text.checkWellFormed(key, "key");
        long id = NativeBridge.open(key, null);
        Long opened = id;
        boolean kept = HANDLES.putIfAbsent(key, opened) == null;
        try {
            return NativeBridge.callDirect(id, null, in, inOffset, inLength, out, outOffset,
                    outLength);
        } catch (NoSuchLibraryException gone) {
            drop(key, opened);
            throw gone;
        } catch (IllegalStateException closed) {
            // Closed by an unload of the key in progress: answer as a fresh handle would.
            long again = NativeBridge.open(key, null);
            try {
                return NativeBridge.callDirect(again, null, in, inOffset, inLength, out,
                        outOffset, outLength);
            } finally {
                NativeBridge.close(again);
            }
        } finally {
            if (!kept) {
                NativeBridge.close(id);
            }
        }
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

    /** Removes and closes this id if it is still the key's cached one. */
    private static void drop(String key, Long id) {
        if (HANDLES.remove(key, id)) {
            NativeBridge.close(id);
        }
    }
}
