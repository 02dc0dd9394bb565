package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.Rule;
import org.junit.Test;
import org.junit.function.ThrowingRunnable;

/**
 * Keys and method names as text: one that is not well-formed UTF-16 (an unpaired surrogate) is
 * refused everywhere, by Java and again by native code, rather than turned into U+FFFD and so
 * into another key; a character outside the BMP (a surrogate pair) works; and a message never
 * quotes a huge key, method name or path whole.
 */
public class KeyTextTest {
    /** The fixture whose methods are "echo" and "echo-🚀". */
    private static final String UNICODE = "libfx_unicode.so";
    /** U+1F680, a surrogate pair in Java. */
    private static final String ROCKET = "\uD83D\uDE80";
    /** 1 MiB. */
    private static final int HUGE = 1 << 20;
    /** What every message about a huge key, method name or path must stay under. */
    private static final int SHORT = 1000;

    @Rule
    public final Keys keys = new Keys();

    private static final WatchListener IGNORE = new WatchListener() {
        @Override
        public void onReplace(WatchEvent event) {
        }
    };

    /** Runs {@code action}, expects the refusal of {@code argument} at {@code index}. */
    private static void assertIllFormed(String argument, int index, ThrowingRunnable action) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, action);
        String message = e.getMessage();
        assertTrue(message, message.startsWith(argument + " is not well-formed UTF-16"));
        assertTrue(message, message.endsWith(" at index " + index));
    }

    /** Every public entry point that takes a key refuses one with an unpaired surrogate. */
    private static void assertKeyRefusedEverywhere(final String bad, int index) throws Exception {
        final String path = plugin(EXAMPLE_V1);
        final byte[] input = utf8("x");
        List<ThrowingRunnable> actions = Arrays.<ThrowingRunnable>asList(
            () -> ProxySo.load(bad, path),
            () -> ProxySo.load(bad, path, new byte[0]),
            () -> ProxySo.load(bad, path, LoadOptions.defaults()),
            () -> ProxySo.replace(bad, path),
            () -> ProxySo.replace(bad, path, new byte[0]),
            () -> ProxySo.replace(bad, path, LoadOptions.defaults()),
            () -> ProxySo.rollback(bad),
            () -> ProxySo.unload(bad),
            () -> ProxySo.call(bad, input),
            () -> ProxySo.call(bad, "echo", input),
            () -> ProxySo.call(bad, "x"),
            () -> ProxySo.call(bad, ByteBuffer.allocateDirect(1), ByteBuffer.allocateDirect(8)),
            () -> ProxySo.handle(bad),
            () -> ProxySo.handle(bad, "echo"),
            () -> ProxySo.info(bad),
            () -> ProxySo.awaitRetired(bad, 0, TimeUnit.SECONDS),
            () -> ProxySo.watch(bad, path, IGNORE),
            () -> ProxySo.watch(bad, path, IGNORE, 1, TimeUnit.SECONDS),
            () -> ProxySo.unwatch(bad));
        for (ThrowingRunnable action : actions) {
            assertIllFormed("key", index, action);
        }
    }

    /** The loaded keys that start with {@code prefix}. */
    private static List<String> loadedWithPrefix(String prefix) {
        List<String> found = new ArrayList<String>();
        for (LibraryInfo info : ProxySo.list()) {
            if (info.getKey().startsWith(prefix)) {
                found.add(info.getKey());
            }
        }
        return found;
    }

    @Test
    public void keysWithUnpairedSurrogatesAreRefusedAndNothingIsLoaded() throws Exception {
        String prefix = keys.next("surrogate");
        for (String surrogate : new String[] {"\uD800", "\uDBFF", "\uDC00", "\uDFFF"}) {
            assertKeyRefusedEverywhere(prefix + surrogate, prefix.length());
            assertKeyRefusedEverywhere(prefix + surrogate + "tail", prefix.length());
        }
        // A high surrogate followed by no low one, after a well-formed pair.
        assertKeyRefusedEverywhere(prefix + ROCKET + "\uD83Dx", prefix.length() + 2);
        assertEquals(new ArrayList<String>(), loadedWithPrefix(prefix));
    }

    @Test
    public void anIllFormedKeyNeverReachesTheLibraryOfItsReplacementCharacterTwin()
            throws Exception {
        String prefix = keys.next("twin");
        String twin = prefix + "\uFFFD";
        keys.add(twin);
        assertEquals(1, ProxySo.load(twin, plugin(EXAMPLE_V1)));
        for (String bad : new String[] {prefix + "\uD800", prefix + "\uDBFF"}) {
            // Before: a LibraryExistsException, and calls answered by the twin's library.
            assertIllFormed("key", prefix.length(), () -> ProxySo.load(bad, plugin(EXAMPLE_V1)));
            assertIllFormed("key", prefix.length(), () -> ProxySo.call(bad, "who"));
            assertIllFormed("key", prefix.length(), () -> ProxySo.handle(bad));
            assertIllFormed("key", prefix.length(), () -> ProxySo.info(bad));
            assertIllFormed("key", prefix.length(), () -> ProxySo.unload(bad));
        }
        assertEquals(Arrays.asList(twin), loadedWithPrefix(prefix));
        assertEquals("still here", ProxySo.call(twin, "still here"));
        assertEquals(1, ProxySo.info(twin).getGeneration());
    }

    @Test
    public void theNativeSideRefusesIllFormedTextItself() throws Exception {
        String prefix = keys.next("native");
        String twin = prefix + "\uFFFD";
        keys.add(twin);
        ProxySo.load(twin, plugin(EXAMPLE_V1));
        String bad = prefix + "\uD800";
        String path = plugin(EXAMPLE_V1);
        byte[] input = utf8("x");
        // Straight to NativeBridge, past the Java checks.
        int at = prefix.length();
        assertIllFormed("key", at, () -> NativeBridge.load(bad, path, new byte[0], 0, null, -1,
                null));
        assertIllFormed("key", at, () -> NativeBridge.replace(bad, path, new byte[0], 0, null,
                -1, null));
        assertIllFormed("key", at, () -> NativeBridge.rollback(bad));
        assertIllFormed("key", at, () -> NativeBridge.unload(bad));
        assertIllFormed("key", at, () -> NativeBridge.call(bad, null, input));
        assertIllFormed("key", at, () -> NativeBridge.open(bad, null));
        assertIllFormed("key", at, () -> NativeBridge.info(bad));
        assertIllFormed("key", at, () -> NativeBridge.awaitRetired(bad, 0));
        assertIllFormed("path", path.length(), () -> NativeBridge.replace(twin, path + "\uDC00",
                new byte[0], 0, null, -1, null));
        assertIllFormed("method", 4, () -> NativeBridge.call(twin, "echo\uD800", input));
        assertIllFormed("method", 4, () -> NativeBridge.open(twin, "echo\uD800"));
        long id = NativeBridge.open(twin, null);
        try {
            assertIllFormed("method", 0,
                    () -> NativeBridge.callHandle(id, "\uDBFFecho", input, false));
            assertIllFormed("method", 1, () -> NativeBridge.callDirect(id, "e\uDC00",
                    ByteBuffer.allocateDirect(1), 0, 1, ByteBuffer.allocateDirect(8), 0, 8, false));
        } finally {
            NativeBridge.close(id);
        }
        assertEquals(Arrays.asList(twin), loadedWithPrefix(prefix));
        assertEquals(1, ProxySo.info(twin).getGeneration());
        assertEquals("x", ProxySo.call(twin, "x"));
    }

    @Test
    public void methodNamesWithUnpairedSurrogatesAreRefused() throws Exception {
        String key = keys.next("method");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        byte[] input = utf8("x");
        assertIllFormed("method", 4, () -> ProxySo.call(key, "echo\uD800", input));
        assertIllFormed("method", 0, () -> ProxySo.handle(key, "\uDC00echo"));
        try (LibraryHandle handle = ProxySo.handle(key)) {
            assertIllFormed("method", 1, () -> handle.call("e\uDBFF", input));
            assertEquals("x", handle.call("x"));
        }
        assertIllFormed("path", 1, () -> ProxySo.replace(key, "/\uD800.so"));
        assertEquals(1, ProxySo.info(key).getGeneration());
    }

    @Test
    public void supplementaryCharactersWorkAsKeysAndMethodNames() throws Exception {
        String key = keys.next("rocket-" + ROCKET);
        String method = "echo-" + ROCKET;
        assertEquals(1, ProxySo.load(key, fixture(UNICODE)));
        assertEquals(Arrays.asList("echo", method), ProxySo.info(key).getMethods());
        assertEquals(Arrays.asList(key), loadedWithPrefix(key));
        assertEquals("in", ProxySo.call(key, "in"));
        assertEquals(ROCKET + "in", text(ProxySo.call(key, method, utf8("in"))));
        try (LibraryHandle handle = ProxySo.handle(key, method)) {
            assertEquals(ROCKET + "x", handle.call("x"));
            assertArrayEquals(utf8(ROCKET + "y"), handle.call(method, utf8("y")));
        }
        UnknownMethodException unknown = assertThrows(UnknownMethodException.class,
                () -> ProxySo.call(key, "echo-\uD83D\uDE81", utf8("x")));
        assertEquals("echo-\uD83D\uDE81", unknown.getMethod());
        assertTrue(unknown.getMessage(), unknown.getMessage().contains("'echo-\uD83D\uDE81'"));
        assertTrue(ProxySo.unload(key));
        assertNull(ProxySo.info(key));
    }

    /** The message is short, still says {@code what}, and shows the cut text's length. */
    private static void assertShort(Throwable e, String what, int length) {
        String message = e.getMessage();
        assertTrue(e.getClass().getSimpleName() + " of " + message.length() + " chars: "
                + message.substring(0, Math.min(message.length(), 2000)),
                message.length() < SHORT);
        assertTrue(message, message.contains(what));
        assertTrue(message, message.contains("\u2026(" + length + " bytes)"));
    }

    @Test
    public void messagesQuoteAHugeKeyMethodOrPathCutShort() throws Exception {
        char[] k = new char[HUGE];
        Arrays.fill(k, 'k');
        String huge = new String(k);
        String path = plugin(EXAMPLE_V1);
        NoSuchLibraryException onCall = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.call(huge, utf8("x")));
        assertShort(onCall, "no library is loaded under key 'kkk", HUGE);
        assertEquals("getKey() keeps the key whole", huge, onCall.getKey());
        assertShort(assertThrows(NoSuchLibraryException.class, () -> ProxySo.handle(huge)),
                "no library is loaded under key", HUGE);
        assertShort(assertThrows(IllegalArgumentException.class, () -> ProxySo.rollback(huge)),
                "longer than 1024 bytes", HUGE);
        assertShort(assertThrows(IllegalArgumentException.class, () -> ProxySo.load(huge, path)),
                "longer than 1024 bytes", HUGE);
        assertShort(assertThrows(IllegalArgumentException.class,
                () -> ProxySo.replace(huge, path)), "longer than 1024 bytes", HUGE);
        assertShort(assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.watch(huge, path, IGNORE)), "no library is loaded under key", HUGE);

        String key = keys.next("huge");
        ProxySo.load(key, path);
        assertShort(assertThrows(UnknownMethodException.class,
                () -> ProxySo.call(key, huge, utf8("x"))), "has no method 'kkk", HUGE);
        String hugePath = "/tmp/" + huge + ".so";
        int pathBytes = hugePath.length();
        assertShort(assertThrows(LibraryLoadException.class,
                () -> ProxySo.replace(key, hugePath)), "cannot load '/tmp/kkk", pathBytes);
        assertShort(assertThrows(LibraryLoadException.class,
                () -> ProxySo.load(keys.next("huge-path"), hugePath)), "cannot load", pathBytes);
        assertShort(assertThrows(IllegalArgumentException.class,
                () -> ProxySo.watch(key, "/" + huge + "/x.so", IGNORE)), "cannot watch '/kkk",
                HUGE + 6);
        assertEquals(1, ProxySo.info(key).getGeneration());
        assertEquals("x", ProxySo.call(key, "x"));
    }

    @Test
    public void shownCutsOnACharacterBoundary() {
        assertEquals("model", Text.shown("model"));
        StringBuilder rockets = new StringBuilder("a");
        for (int i = 0; i < 100; i++) {
            rockets.append(ROCKET);
        }
        // 1 + 4 * 100 = 401 bytes of UTF-8: "a" and 63 rockets fit in 256.
        String cut = Text.shown(rockets.toString());
        assertEquals(rockets.substring(0, 1 + 63 * 2) + "\u2026(401 bytes)", cut);
    }
}
