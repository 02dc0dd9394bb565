package dev.proxyso;

/**
 * The two rules for text that names things (keys, method names, paths): it must be well-formed
 * UTF-16, and a message quotes it cut to a bounded length. The native side keeps the same rules
 * ({@code src/jni/strings.rs} refuses ill-formed strings, {@code src/text.rs} cuts what a message
 * quotes), so a message reads the same whichever side builds it.
 */
final class Text {
    /** The most bytes of UTF-8 that a message quotes of one key, method name or path. */
    static final int MAX_SHOWN = 256;

    private Text() {
    }

    /**
     * Refuses text that is not well-formed UTF-16: native code sees text as UTF-8, which has no
     * form for an unpaired surrogate, so two such keys would otherwise name one library.
     *
     * @param text the argument, not {@code null}
     * @param name the argument's name, for the message
     * @throws IllegalArgumentException naming the argument, the surrogate and its index
     */
    static void checkWellFormed(String text, String name) {
        int length = text.length();
        for (int i = 0; i < length; i++) {
            char c = text.charAt(i);
            if (!Character.isSurrogate(c)) {
                continue;
            }
            if (Character.isHighSurrogate(c) && i + 1 < length
                    && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
                continue;
            }
            throw new IllegalArgumentException(name + " is not well-formed UTF-16: an unpaired"
                    + " surrogate \\u" + String.format("%04X", (int) c) + " at index " + i);
        }
    }

    /**
     * The text as a message quotes it: whole up to {@link #MAX_SHOWN} bytes of UTF-8, otherwise
     * its first characters that fit, followed by {@code …(N bytes)} with its whole length in
     * UTF-8.
     *
     * @param text the text, or {@code null}
     * @return the text to quote ({@code "null"} for {@code null})
     */
    static String shown(String text) {
        if (text == null) {
            return "null";
        }
        // At most 3 bytes of UTF-8 per UTF-16 unit: short text needs no counting.
        if (text.length() <= MAX_SHOWN / 3) {
            return text;
        }
        int bytes = 0;
        int cut = -1;
        int length = text.length();
        for (int i = 0; i < length; ) {
            int codePoint = text.codePointAt(i);
            int width = utf8Width(codePoint);
            if (cut < 0 && bytes + width > MAX_SHOWN) {
                cut = i;
            }
            bytes += width;
            i += Character.charCount(codePoint);
        }
        if (cut < 0) {
            return text;
        }
        return text.substring(0, cut) + "\u2026(" + bytes + " bytes)";
    }

    /** The UTF-8 length of a code point; an unpaired surrogate counts as 3, as in CESU-8. */
    private static int utf8Width(int codePoint) {
        if (codePoint < 0x80) {
            return 1;
        } else if (codePoint < 0x800) {
            return 2;
        } else if (codePoint < 0x10000) {
            return 3;
        }
        return 4;
    }
}
