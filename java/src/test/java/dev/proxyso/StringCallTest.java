package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.plugin;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Rule;
import org.junit.Test;

/**
 * The string calls: {@code call(key, method, input)} runs the named method, and
 * {@code call(key, input)} runs the default method with that input (the example plugin's default
 * method, {@code echo}, returns its input; {@code version} returns "1.0.0"; {@code len} returns
 * the input's length in bytes).
 */
public class StringCallTest {
    /** Two bytes of UTF-8, then four (a character outside the BMP, a surrogate pair in Java). */
    private static final String NON_ASCII = "\u00e9\ud834\udd1e";

    @Rule
    public final Keys keys = new Keys();

    @Test
    public void threeStringCallRunsTheNamedMethodWithUtf8Input() {
        String key = keys.next("string-method");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        assertEquals("1.0.0", ProxySo.call(key, "version", ""));
        // The input reaches the method as UTF-8: 2 + 4 bytes.
        assertEquals("6", ProxySo.call(key, "len", NON_ASCII));
        // And the output comes back decoded as UTF-8.
        assertEquals(NON_ASCII, ProxySo.call(key, "echo", NON_ASCII));
        UnknownMethodException nope = assertThrows(UnknownMethodException.class,
                () -> ProxySo.call(key, "nope", "x"));
        assertEquals(key, nope.getKey());
        assertEquals("nope", nope.getMethod());
        // The library serves on.
        assertEquals("1.0.0", ProxySo.call(key, "version", "ignored"));
    }

    @Test
    public void twoStringCallIsTheDefaultMethodWithThatInputNotAMethodName() {
        String key = keys.next("string-default");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        // "version" and "len" are method names of the plugin, but here they are echo's input.
        assertEquals("version", ProxySo.call(key, "version"));
        assertEquals("len", ProxySo.call(key, "len"));
        assertEquals(NON_ASCII, ProxySo.call(key, NON_ASCII));
    }

    @Test
    public void handleStringCallsRunTheNamedMethodOrTheHandlesOwn() {
        String key = keys.next("string-handle");
        ProxySo.load(key, plugin(EXAMPLE_V1));
        try (LibraryHandle byDefault = ProxySo.handle(key);
                LibraryHandle len = ProxySo.handle(key, "len")) {
            assertEquals("1.0.0", byDefault.call("version", ""));
            assertEquals("6", byDefault.call("len", NON_ASCII));
            assertEquals(NON_ASCII, byDefault.call("echo", NON_ASCII));
            // One string: the input of the handle's own method.
            assertEquals("version", byDefault.call("version"));
            assertEquals("7", len.call("version"));
            // Two: the named method, whatever the handle's own is.
            assertEquals("1.0.0", len.call("version", ""));
            assertEquals("abc", len.call("echo", "abc"));
            UnknownMethodException nope = assertThrows(UnknownMethodException.class,
                    () -> len.call("nope", "x"));
            assertEquals("nope", nope.getMethod());
        }
    }
}
