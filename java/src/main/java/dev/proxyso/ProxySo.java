package dev.proxyso;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Loads, calls, hot-replaces and unloads native plugin libraries without restarting the JVM.
 *
 * <p>Each plugin library is loaded under a key chosen by the caller.
 * {@link #replace(String, String)} loads a new version completely (open, resolve every symbol,
 * check the ABI version, run the plugin's init) and only then swaps it in atomically: calls that
 * start after {@code replace} returns run in the new version, calls already running in the old
 * version finish there, and the old version is destroyed and closed after its last call has
 * returned. If anything fails the old version keeps serving, untouched. The library is always
 * loaded from a private snapshot of the file, so the same path can be overwritten in place and
 * replaced again and again.
 *
 * <p>All methods are thread-safe and may be called from any number of threads at once. Calls take
 * no lock: {@code call(key, ...)} keeps an open {@link LibraryHandle handle} per key it has called
 * (until the key is unloaded) and looks it up in a concurrent map, so the key's text does not
 * travel to native code on every call. {@link #handle(String)} hands out such a handle to keep,
 * and {@link #call(String, ByteBuffer, ByteBuffer)} calls on direct buffers without copying.
 *
 * <pre>{@code
 * long generation = ProxySo.load("model", "/opt/plugins/libmodel.so");
 * String answer = ProxySo.call("model", "hello");
 * ProxySo.replace("model", "/opt/plugins/libmodel.so");   // after the file was updated
 * ProxySo.rollback("model");                              // the version before, back again
 * ProxySo.unload("model");
 * }</pre>
 *
 * <p>For operators: {@link LoadOptions} can demand a file's SHA-256 digest and set how many
 * previous versions a key keeps for {@link #rollback(String)}; {@link #info(String)} carries call
 * statistics, also published as one {@link LibraryMXBean} per key; {@link #watch(String, String,
 * WatchListener)} replaces a key whenever its file changes; and the native log (the proxy's events
 * and the plugins' lines) goes to {@code java.util.logging}, loggers {@code dev.proxyso} and
 * {@code dev.proxyso.plugin}, with messages that start {@code [key#generation] }.
 *
 * <p>Each {@code load}, {@code replace} and {@code rollback} maps a new version (about five memory
 * mappings), and the kernel allows a process {@code vm.max_map_count} mappings (65,530 by
 * default), the JVM's own included: a JVM that runs out of them aborts. One that would leave the
 * JVM fewer than a reserve is refused with a {@link LibraryLoadException} naming the limit, the
 * process's count and the reserve: a quarter of the limit, or the number of mappings given by the
 * system property {@code proxyso.mapReserve}, read when {@code libproxy.so} is first used.
 *
 * <p>Every method throws {@link NullPointerException} for a {@code null} argument,
 * {@link IllegalArgumentException} for an empty key or path, or a key, method name or path that is
 * not well-formed UTF-16 (an unpaired surrogate: the message names the argument and the index), and
 * {@link UnsatisfiedLinkError} if {@code libproxy.so} itself cannot be loaded. Exception messages
 * quote at most 256 bytes of a key, method name or path, then its length. Any other Unicode text is
 * a key, except that
 * {@code load}, {@code replace} and {@code unload} refuse with {@link IllegalArgumentException} a
 * key longer than 1024 bytes of UTF-8 or holding a control character; {@code call},
 * {@code info} and {@code awaitRetired} find no library under such a key.
 */
public final class ProxySo {
    private ProxySo() {
    }

    /**
     * Loads a plugin library under a new key, with empty configuration.
     *
     * @param key the key to load it under; not loaded yet, not empty
     * @param path the plugin library file
     * @return the generation of the loaded version (1 on the first load of a key)
     * @throws LibraryExistsException if a library is already loaded under the key
     * @throws LibraryLoadException if the library cannot be loaded or its init fails
     */
    public static long load(String key, String path) {
        return load(key, path, LoadOptions.defaults());
    }

    /**
     * Loads a plugin library under a new key, passing configuration bytes to its init; the same as
     * {@link #load(String, String, LoadOptions)} with options that carry only this configuration.
     *
     * @param key the key to load it under; not loaded yet, not empty
     * @param path the plugin library file
     * @param config the configuration bytes handed to the plugin's init (copied)
     * @return the generation of the loaded version (1 on the first load of a key)
     * @throws LibraryExistsException if a library is already loaded under the key
     * @throws LibraryLoadException if the library cannot be loaded or its init fails
     */
    public static long load(String key, String path, byte[] config) {
        return load(key, path, withConfig(config));
    }

    /**
     * Loads a plugin library under a new key with the given options: the configuration bytes
     * handed to its init, the digest the file must have, how many previous versions the key keeps
     * for {@link #rollback(String)}, and whether its retired versions stay mapped and it may
     * change the JVM's signal handlers. Registers the key's {@link LibraryMXBean}.
     *
     * @param key the key to load it under; not loaded yet, not empty
     * @param path the plugin library file
     * @param options how to load it; {@link LoadOptions#defaults()} for the defaults
     * @return the generation of the loaded version (1 on the first load of a key)
     * @throws LibraryExistsException if a library is already loaded under the key
     * @throws LibraryLoadException if the library cannot be loaded or its init fails, its digest
     *     is not {@link LoadOptions#getSha256()}, or (unless
     *     {@link LoadOptions#isAllowSignalHandlers()}) it changed the handler of any signal,
     *     which is then restored
     */
    public static long load(String key, String path, LoadOptions options) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        checkPath(path);
        checkNotNull(options, "options");
        if (options.isPreflight() || options.isIsolated()) {
            NativeLoader.ensureWorker(key, path);
        }
        synchronized (keyLock(key)) {
            long generation = NativeBridge.load(key, path, options.config(), options.bits(),
                    options.sha256(), options.getKeepVersions(), options.limits());
            Watcher.loaded(key, options);
            LibraryBeans.register(key);
            return generation;
        }
    }

    /**
     * Replaces the library loaded under a key by a new version, with empty configuration.
     *
     * @param key the loaded key
     * @param path the plugin library file; may be the same path as before, even when the file
     *     was overwritten in place
     * @return the new generation, larger than every earlier one of the key
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws LibraryLoadException if the new version cannot be loaded; the old one keeps serving
     * @see #replace(String, String, byte[])
     */
    public static long replace(String key, String path) {
        return replace(key, path, LoadOptions.defaults());
    }

    /**
     * Replaces the library loaded under a key by a new version. The new version is loaded and
     * initialised completely first, then swapped in atomically: calls that start after this method
     * returns run in the new version, while calls already running finish in the old one, which is
     * destroyed and closed after its last call has returned.
     *
     * @param key the loaded key
     * @param path the plugin library file; may be the same path as before, even when the file
     *     was overwritten in place
     * @param config the configuration bytes handed to the new version's init (copied)
     * @return the new generation, larger than every earlier one of the key
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws LibraryLoadException if the new version cannot be loaded; the old one keeps serving
     * @see #replace(String, String, LoadOptions)
     */
    public static long replace(String key, String path, byte[] config) {
        return replace(key, path, withConfig(config));
    }

    /**
     * Replaces the library loaded under a key by a new version loaded with the given options, as
     * {@link #replace(String, String, byte[])} does with a configuration alone. The options apply
     * to the new version only: whether the old version stays mapped after it retires was decided
     * when it was loaded.
     *
     * @param key the loaded key
     * @param path the plugin library file; may be the same path as before, even when the file
     *     was overwritten in place
     * @param options how to load the new version; {@link LoadOptions#defaults()} for the defaults
     * @return the new generation, larger than every earlier one of the key
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws LibraryLoadException if the new version cannot be loaded, its digest is not
     *     {@link LoadOptions#getSha256()}, or (unless {@link LoadOptions#isAllowSignalHandlers()})
     *     it changed the handler of any signal, which is then restored; the old version
     *     keeps serving
     */
    public static long replace(String key, String path, LoadOptions options) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        checkPath(path);
        checkNotNull(options, "options");
        if (options.isPreflight() || options.isIsolated()) {
            NativeLoader.ensureWorker(key, path);
        }
        long generation = NativeBridge.replace(key, path, options.config(), options.bits(),
                options.sha256(), options.getKeepVersions(), options.limits());
        Watcher.loaded(key, options);
        return generation;
    }

    /**
     * Swaps the key's most recent previous version back in, as a replace does: calls that start
     * after this method returns run in it, calls already running finish in the version rolled
     * back from, which is then destroyed and closed and not kept for another rollback; so each
     * rollback goes one version further back. The previous version is opened again from the
     * private copy kept when it was loaded (never from its path, which may hold another file by
     * now), with the configuration and options it was loaded with, and gets a new generation.
     * How many versions a key keeps is {@link LoadOptions.Builder#keepVersions(int)}: 1 unless
     * set.
     *
     * @param key the loaded key
     * @return the new generation, larger than every earlier one of the key
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws NoPreviousVersionException if the key keeps no previous version; nothing changes
     * @throws LibraryLoadException if the previous version cannot be opened again; the current
     *     version keeps serving and the kept versions stay as they were
     */
    public static long rollback(String key) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        return NativeBridge.rollback(key);
    }

    /**
     * Removes a key. New calls fail at once with {@link NoSuchLibraryException}; calls already
     * running finish, then the version is destroyed and closed (see
     * {@link #awaitRetired(String, long, TimeUnit)}). Every {@link LibraryHandle} opened on the key
     * throws {@link NoSuchLibraryException} from then on, even after the key is loaded again. The
     * key's {@link Watch}, if it has one, stops, and its {@link LibraryMXBean} is unregistered.
     *
     * @param key the key
     * @return {@code true} if a library was loaded under the key, {@code false} if none was
     */
    public static boolean unload(String key) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        // Under the key's lock, as load's bookkeeping is: otherwise a load of the key that
        // completed between the native unload and the clean-up would lose its bean, its watch
        // and its stored options to this unload.
        synchronized (keyLock(key)) {
            try {
                return NativeBridge.unload(key);
            } finally {
                HandleCache.forget(key);
                Watcher.unloaded(key);
                LibraryBeans.unregister(key);
            }
        }
    }

    /**
     * Serialises {@code load} and {@code unload} of one key with their Java bookkeeping (handle
     * cache, watch, JMX bean). Striped: two keys may share a lock, so a slow {@code init} can delay
     * an unload of another key, never a call. {@code replace} takes none (a watch replaces while
     * {@code unload} waits for it to finish).
     */
    private static final Object[] KEY_LOCKS = new Object[256];

    static {
        for (int i = 0; i < KEY_LOCKS.length; i++) {
            KEY_LOCKS[i] = new Object();
        }
    }

    private static Object keyLock(String key) {
        return KEY_LOCKS[(key.hashCode() & 0x7fffffff) % KEY_LOCKS.length];
    }

    /**
     * Watches a plugin file and replaces the key from it whenever it changes, with the default
     * settle time of 200 ms; see {@link #watch(String, String, WatchListener, long, TimeUnit)}.
     *
     * @param key the loaded key
     * @param path the file to watch, usually the one the key was loaded from
     * @param listener told of every replacement attempted
     * @return the watch, to close when done
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws IllegalStateException if the key is watched already
     * @throws IllegalArgumentException if the file's directory does not exist
     * @throws java.io.UncheckedIOException if the directory cannot be watched
     */
    public static Watch watch(String key, String path, WatchListener listener) {
        return watch(key, path, listener, Watcher.DEFAULT_SETTLE_MILLIS, TimeUnit.MILLISECONDS);
    }

    /**
     * Watches a plugin file and replaces the key from it whenever it changes. After the file is
     * created, written or moved into place (an atomic rename), the watch waits until its size and
     * modification time have stayed the same for the settle time, so that a file still being
     * written is never loaded, then calls {@link #replace(String, String, LoadOptions)} with the
     * options of the key's last successful {@code load} or {@code replace} through this class,
     * without their {@linkplain LoadOptions#getSha256() digest}, which named another file, and
     * always with {@linkplain LoadOptions#isPreflight() pre-flight}: the file is first loaded in
     * a short-lived child process, so that a file that is still only half written (its writer
     * paused for longer than the settle time) and crashes the dynamic linker kills that process,
     * not the JVM. A replacement that fails changes nothing: the old version keeps serving, and
     * the next change of the file is tried again. The listener hears of every attempt.
     *
     * <p>A writer can say when the file is complete: a file named like the watched one plus
     * {@code .sha256} beside it, holding the file's SHA-256 digest as {@code sha256sum} writes it
     * ({@code sha256sum live.so > live.so.sha256}). While that file exists the watch loads the
     * watched file only once its digest matches (anything else means "not finished": the watch
     * keeps waiting, silently), and passes the digest on as the expected
     * {@linkplain LoadOptions#getSha256() SHA-256}. The safe ways to publish a new version are
     * therefore to write it under another name in the same directory and rename it over the
     * watched file, or to write the file and then its {@code .sha256}.
     *
     * <p>The watch stops when it is closed, by {@link #unwatch(String)}, or when the key is
     * unloaded. The directory holding the file is watched (inotify on Linux), so the file may be
     * missing for a while; a symbolic link is not followed to its target's directory.
     *
     * @param key the loaded key
     * @param path the file to watch, usually the one the key was loaded from; every replacement
     *     loads this path
     * @param listener told of every replacement attempted, on the watch thread
     * @param settle how long the file must stay unchanged before it is loaded; 0 or more
     * @param unit the unit of {@code settle}
     * @return the watch, to close when done
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws IllegalStateException if the key is watched already
     * @throws IllegalArgumentException if {@code settle} is negative or the file's directory does
     *     not exist
     * @throws java.io.UncheckedIOException if the directory cannot be watched
     */
    public static Watch watch(String key, String path, WatchListener listener, long settle,
            TimeUnit unit) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        checkPath(path);
        checkNotNull(listener, "listener");
        checkNotNull(unit, "unit");
        if (settle < 0) {
            throw new IllegalArgumentException("settle must not be negative: " + settle);
        }
        return Watcher.watch(key, path, listener, unit.toNanos(settle));
    }

    /**
     * Stops the key's watch, as {@link Watch#close()} does.
     *
     * @param key the key
     * @return {@code true} if the key was watched, {@code false} if it was not
     */
    public static boolean unwatch(String key) {
        checkKey(key);
        return Watcher.unwatch(key);
    }

    /**
     * Calls the default method (the first of the plugin's method table).
     *
     * @param key the loaded key
     * @param input the input bytes
     * @return the output bytes
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public static byte[] call(String key, byte[] input) {
        NativeLoader.ensureLoaded();
        checkCallKey(key);
        checkNotNull(input, "input");
        return HandleCache.call(key, null, input);
    }

    /**
     * Calls a method by name.
     *
     * @param key the loaded key
     * @param method the method name
     * @param input the input bytes
     * @return the output bytes
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws UnknownMethodException if the plugin has no method of that name
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public static byte[] call(String key, String method, byte[] input) {
        NativeLoader.ensureLoaded();
        checkCallKey(key);
        checkMethod(method);
        checkNotNull(input, "input");
        return HandleCache.call(key, method, input);
    }

    /**
     * Calls the default method with a string, encoded as UTF-8, and decodes the output as UTF-8
     * (malformed bytes become U+FFFD).
     *
     * <p>The second string is the <em>input</em> of the default method (the first of the plugin's
     * method table), not a method name: {@code call("model", "version")} sends the text
     * {@code "version"} to the default method. To call a method by name with a string, use
     * {@link #call(String, String, String)}.
     *
     * @param key the loaded key
     * @param input the input text of the default method (not a method name)
     * @return the output text
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public static String call(String key, String input) {
        NativeLoader.ensureLoaded();
        checkCallKey(key);
        checkNotNull(input, "input");
        byte[] output = HandleCache.call(key, null, input.getBytes(StandardCharsets.UTF_8));
        return new String(output, StandardCharsets.UTF_8);
    }

    /**
     * Calls a method by name with a string, encoded as UTF-8, and decodes the output as UTF-8
     * (malformed bytes become U+FFFD).
     *
     * @param key the loaded key
     * @param method the method name
     * @param input the input text
     * @return the output text
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws UnknownMethodException if the plugin has no method of that name
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public static String call(String key, String method, String input) {
        NativeLoader.ensureLoaded();
        checkCallKey(key);
        checkMethod(method);
        checkNotNull(input, "input");
        byte[] output = HandleCache.call(key, method, input.getBytes(StandardCharsets.UTF_8));
        return new String(output, StandardCharsets.UTF_8);
    }

    /**
     * Calls the default method on direct buffers, without copying either: the plugin reads the
     * {@code in.remaining()} bytes at {@code in.position()} where they are and writes its output
     * straight into {@code out}, at most {@code out.remaining()} bytes at {@code out.position()}.
     * The two regions must not overlap.
     *
     * <p>On success {@code in}'s position moves to its limit and {@code out}'s position moves past
     * the bytes written. On any exception neither buffer's position or limit changes, but a plugin
     * that failed may already have overwritten bytes of {@code out}'s remaining region.
     *
     * <pre>{@code
     * ByteBuffer in = ByteBuffer.allocateDirect(4096);
     * ByteBuffer out = ByteBuffer.allocateDirect(4096);
     * in.put(request).flip();
     * int written = ProxySo.call("model", in, out);
     * out.flip();                                  // the answer: out.remaining() == written
     * }</pre>
     *
     * @param key the loaded key
     * @param in a direct buffer holding the input
     * @param out a direct, writable buffer for the output
     * @return the number of bytes written
     * @throws IllegalArgumentException if a buffer is not direct, or {@code out} is read-only
     * @throws OutputTooSmallException if the output needs more than {@code out.remaining()} bytes;
     *     {@link OutputTooSmallException#getRequired()} says how many at least
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws PluginException if the plugin reports an error or a caught panic
     */
    public static int call(String key, ByteBuffer in, ByteBuffer out) {
        NativeLoader.ensureLoaded();
        checkCallKey(key);
        DirectCall.checkBuffers(in, out);
        int inPosition = in.position();
        int inLength = in.limit() - inPosition;
        int outPosition = out.position();
        int outLength = out.limit() - outPosition;
        int written = HandleCache.callDirect(key, in, inPosition, inLength, out, outPosition,
                outLength);
        return DirectCall.advance(in, out, outPosition, outLength, written);
    }

    /**
     * Opens a handle on a key's default method: the key is resolved once, and every call through
     * the handle reaches the version current at that moment (it follows replacements) until the
     * key is unloaded. Close it when done.
     *
     * @param key the loaded key
     * @return a new handle, open
     * @throws NoSuchLibraryException if no library is loaded under the key
     */
    public static LibraryHandle handle(String key) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        return new LibraryHandle(key, null, NativeBridge.open(key, null));
    }

    /**
     * Opens a handle on a named method of a key, as {@link #handle(String)} does for the default
     * method. The method is checked against the version loaded now; a later version that lacks it
     * makes the handle's calls throw {@link UnknownMethodException}.
     *
     * @param key the loaded key
     * @param method the method that the handle's calls run
     * @return a new handle, open
     * @throws NoSuchLibraryException if no library is loaded under the key
     * @throws UnknownMethodException if the version loaded now has no method of that name
     */
    public static LibraryHandle handle(String key, String method) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        checkMethod(method);
        return new LibraryHandle(key, method, NativeBridge.open(key, method));
    }

    /**
     * Describes what is loaded under a key.
     *
     * @param key the key
     * @return the description, or {@code null} if no library is loaded under the key
     */
    public static LibraryInfo info(String key) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        return NativeBridge.info(key);
    }

    /**
     * Describes every loaded library. A key unloaded while the list is built may be missing.
     *
     * @return an unmodifiable list, sorted by key
     */
    public static List<LibraryInfo> list() {
        NativeLoader.ensureLoaded();
        String[] keys = NativeBridge.keys();
        Arrays.sort(keys);
        List<LibraryInfo> infos = new ArrayList<LibraryInfo>(keys.length);
        for (String key : keys) {
            LibraryInfo info = NativeBridge.info(key);
            if (info != null) {
                infos.add(info);
            }
        }
        return Collections.unmodifiableList(infos);
    }

    /**
     * Waits until every version of a key that was replaced or unloaded has finished its calls in
     * flight, been destroyed and been closed, so that none of its code stays mapped.
     *
     * @param key the key
     * @param timeout the longest time to wait; 0 or less only checks
     * @param unit the unit of {@code timeout}
     * @return {@code true} if no retired version of the key remains, {@code false} if one still did
     *     when the timeout elapsed
     */
    public static boolean awaitRetired(String key, long timeout, TimeUnit unit) {
        NativeLoader.ensureLoaded();
        checkKey(key);
        checkNotNull(unit, "unit");
        long nanos = unit.toNanos(timeout);
        long millis = nanos <= 0 ? 0
                : TimeUnit.NANOSECONDS.toMillis(nanos) + (nanos % 1_000_000L == 0 ? 0 : 1);
        return NativeBridge.awaitRetired(key, millis);
    }

    /** Options that carry only a configuration; a null one is refused by name. */
    private static LoadOptions withConfig(byte[] config) {
        checkNotNull(config, "config");
        return config.length == 0
                ? LoadOptions.defaults() : LoadOptions.builder().config(config).build();
    }

    private static void checkKey(String key) {
        checkCallKey(key);
        Text.checkWellFormed(key, "key");
    }

    /**
     * The checks of a call by key that cost nothing per call: whether the key is well-formed
     * UTF-16 is checked by {@link HandleCache} when it opens the key, since a key it has a handle
     * for was checked then.
     */
    private static void checkCallKey(String key) {
        checkNotNull(key, "key");
        if (key.isEmpty()) {
            throw new IllegalArgumentException("key must not be empty");
        }
    }

    private static void checkPath(String path) {
        checkNotNull(path, "path");
        if (path.isEmpty()) {
            throw new IllegalArgumentException("path must not be empty");
        }
        Text.checkWellFormed(path, "path");
    }

    /** Refuses a null method name, or one that is not well-formed UTF-16. */
    static void checkMethod(String method) {
        checkNotNull(method, "method");
        Text.checkWellFormed(method, "method");
    }

    static void checkNotNull(Object argument, String name) {
        if (argument == null) {
            throw new NullPointerException(name + " must not be null");
        }
    }
}
