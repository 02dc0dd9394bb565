package dev.proxyso;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Run in a child JVM by {@link CallPathTest}. Prints one fact a line; the first argument picks the
 * case:
 *
 * <ul>
 *   <li>{@code path}: loads the fixture, calls it by key, by handle and on direct buffers, and
 *       prints the call path that served ({@link #PATH}) and {@link #CALLED};
 *   <li>{@code errors}: prints {@link #errors(String)}, the exceptions of calls that fail, one a
 *       line ({@link #ERROR});
 *   <li>{@code turn-long}: {@link #turnLong(String, int)} on 2 KiB inputs, then prints whether a
 *       call ran critically ({@link #CRITICAL} and {@code yes} or {@code no}).
 * </ul>
 */
public final class CallPathProbe {
    /** Printed before the call path. */
    static final String PATH = "probe: path ";
    /** Printed once the calls answered correctly. */
    static final String CALLED = "probe: called";
    /** Printed before each failed call's exception. */
    static final String ERROR = "probe: error ";
    /** Printed before whether a call ran critically. */
    static final String CRITICAL = "probe: critical ";
    /** The key every case loads the fixture under. */
    static final String KEY = "call-path-probe";

    private CallPathProbe() {
    }

    public static void main(String[] args) throws Exception {
        if ("turn-long".equals(args[0])) {
            System.out.println(CRITICAL + (turnedLongCritically() ? "yes" : "no"));
            return;
        }
        ProxySo.load(KEY, TestSupport.fixture(TestSupport.FIXTURE));
        if ("errors".equals(args[0])) {
            for (String line : errors(KEY)) {
                System.out.println(ERROR + line);
            }
            return;
        }
        System.out.println(PATH + ProxySo.info(KEY).getCallPath());
        for (int i = 0; i < 3; i++) {
            String text = "call " + i;
            check(text, TestSupport.text(ProxySo.call(KEY, "echo", TestSupport.utf8(text))));
            try (LibraryHandle handle = ProxySo.handle(KEY, "echo")) {
                check(text, TestSupport.text(handle.call(TestSupport.utf8(text))));
                ByteBuffer in = ByteBuffer.allocateDirect(16);
                in.put(TestSupport.utf8(text));
                in.flip();
                ByteBuffer out = ByteBuffer.allocateDirect(16);
                int written = handle.call(in, out);
                byte[] bytes = new byte[written];
                out.flip();
                out.get(bytes);
                check(text, TestSupport.text(bytes));
            }
        }
        System.out.println(CALLED);
    }

    /**
     * Makes the fixture's {@code sleep} known to be short on inputs of {@code size} bytes (a
     * hundred timed calls that sleep 0 ms), then long: two calls in a row that sleep 20 ms.
     *
     * @param key the fixture, loaded with its tag {@code slept} and every call timed
     * @param size the inputs' size: zeros, then the number of milliseconds
     */
    static void turnLong(String key, int size) {
        for (int i = 0; i < 100; i++) {
            check("slept", TestSupport.text(ProxySo.call(key, "sleep", padded(0, size))));
        }
        for (int i = 0; i < 2; i++) {
            check("slept", TestSupport.text(ProxySo.call(key, "sleep", padded(20, size))));
        }
    }

    /** {@code millis} in decimal, after as many zeros as make {@code size} bytes. */
    private static byte[] padded(int millis, int size) {
        String digits = Integer.toString(millis);
        StringBuilder text = new StringBuilder(size);
        for (int i = digits.length(); i < size; i++) {
            text.append('0');
        }
        return TestSupport.utf8(text.append(digits).toString());
    }

    /** {@link #turnLong} in this JVM, then whether the log said a call ran critically. */
    private static boolean turnedLongCritically() throws InterruptedException {
        LogCapture log = new LogCapture();
        log.before();
        try {
            ProxySo.load(KEY, TestSupport.fixture(TestSupport.FIXTURE), LoadOptions.builder()
                    .config(TestSupport.utf8("slept")).exactTiming(true).build());
            turnLong(KEY, 2048);
            ProxySo.unload(KEY);
            // The log keeps its order: once the unload is logged, so is any earlier strike.
            log.await("[" + KEY + "#1] unloaded");
            return log.contains("in a critical call");
        } finally {
            log.after();
        }
    }

    private static void check(String expected, String actual) {
        if (!expected.equals(actual)) {
            throw new AssertionError("expected '" + expected + "', got '" + actual + "'");
        }
    }

    /**
     * Calls that fail, through every way a call takes (by key, by key and method, by handle, by
     * handle and method, on direct buffers), each described by its exception: class, message and
     * the getters of its class. {@code key} is the fixture's key; it is unloaded at the end.
     */
    static List<String> errors(String key) {
        List<String> lines = new ArrayList<String>();
        byte[] input = TestSupport.utf8("12");
        try (LibraryHandle echo = ProxySo.handle(key, "echo");
                LibraryHandle fail = ProxySo.handle(key, "fail")) {
            lines.add(describe(() -> ProxySo.call(key + "-missing", input)));
            lines.add(describe(() -> ProxySo.call(key, "no-such-method", input)));
            lines.add(describe(() -> ProxySo.call(key, "fail", input)));
            lines.add(describe(() -> ProxySo.call(key, "panic", input)));
            lines.add(describe(() -> ProxySo.call(key, "panic-string", input)));
            lines.add(describe(() -> ProxySo.call(key, "reserve-absurd", input)));
            lines.add(describe(() -> ProxySo.call(key, "sleep", TestSupport.utf8("soon"))));
            lines.add(describe(() -> fail.call(input)));
            lines.add(describe(() -> echo.call("no-such-method", input)));
            lines.add(describe(() -> echo.call("fail", input)));
            lines.add(describe(() -> {
                ByteBuffer in = ByteBuffer.allocateDirect(10);
                in.put(new byte[10]);
                in.flip();
                return echo.call(in, ByteBuffer.allocateDirect(4));
            }));
            lines.add(describe(() -> fail.call(ByteBuffer.allocateDirect(2),
                    ByteBuffer.allocateDirect(2))));
            ProxySo.unload(key);
            lines.add(describe(() -> echo.call(input)));
            lines.add(describe(() -> ProxySo.call(key, input)));
        }
        return lines;
    }

    /** A call whose exception is described. */
    interface Call {
        Object run();
    }

    private static String describe(Call call) {
        try {
            return "no exception: " + call.run();
        } catch (RuntimeException | ProxySoInternalError e) {
            StringBuilder text = new StringBuilder(e.getClass().getSimpleName())
                    .append(": ").append(e.getMessage());
            if (e instanceof ProxySoException) {
                text.append(" [key ").append(((ProxySoException) e).getKey()).append(']');
            }
            if (e instanceof PluginException) {
                PluginException p = (PluginException) e;
                text.append(" [method ").append(p.getMethod()).append(", code ")
                        .append(p.getCode()).append(", panic ").append(p.isPanic()).append(']');
            }
            if (e instanceof UnknownMethodException) {
                text.append(" [method ").append(((UnknownMethodException) e).getMethod())
                        .append(']');
            }
            if (e instanceof OutputTooSmallException) {
                OutputTooSmallException o = (OutputTooSmallException) e;
                text.append(" [method ").append(o.getMethod()).append(", required ")
                        .append(o.getRequired()).append(']');
            }
            // The capacity a refused reserve quotes is that of the buffer the call had, which
            // depends on the path and on the thread's earlier calls.
            return text.toString().replaceAll("written, capacity \\d+\\)", "written, capacity N)");
        }
    }
}
