package dev.proxyso;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Run in a child JVM by {@link CxxExceptionTest}: a C++ plugin ({@code libfx_throws.so}) lets
 * exceptions escape its functions, which without the host's landing pad aborts the JVM. Prints
 * one fact a line, then {@code probe: done}; the first argument picks the case:
 *
 * <ul>
 *   <li>{@code method}: its methods throw a {@code std::runtime_error("boom")} and an int, and the
 *       version keeps serving;
 *   <li>{@code init}: its {@code init} throws; the load fails, and a later load of the key works;
 *   <li>{@code destroy}: its {@code destroy} throws when the version is unloaded; the version
 *       retires all the same, and the proxy logs it.
 * </ul>
 */
public final class CxxExceptionProbe {
    /** The last line of a probe that got to its end. */
    static final String DONE = "probe: done";
    /** The longest wait for the log record of the destroy case. */
    private static final long RECORD_SECONDS = 30;

    private CxxExceptionProbe() {
    }

    public static void main(String[] args) throws Exception {
        String library = TestSupport.fixture("libfx_throws.so");
        switch (args[0]) {
            case "method":
                method(library);
                break;
            case "init":
                init(library);
                break;
            case "destroy":
                destroy(library);
                break;
            default:
                throw new IllegalArgumentException(args[0]);
        }
        say("done");
    }

    private static void say(String line) {
        System.out.println("probe: " + line);
        System.out.flush();
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static void method(String library) {
        ProxySo.load("cxx", library);
        for (String method : new String[] {"throw", "throw-int"}) {
            try {
                ProxySo.call("cxx", method, utf8("in"));
                say(method + " returned, which it must not");
            } catch (PluginException e) {
                say(method + ": PluginException key=" + e.getKey() + " method=" + e.getMethod()
                        + " panic=" + e.isPanic() + " code=" + e.getCode() + " message="
                        + e.getMessage());
            }
            say("next call answered " + ProxySo.call("cxx", "next-" + method));
        }
        say("unloaded " + ProxySo.unload("cxx"));
    }

    private static void init(String library) {
        try {
            ProxySo.load("cxx", library, utf8("init-throws"));
            say("loaded, which it must not");
        } catch (LibraryLoadException e) {
            say("LibraryLoadException key=" + e.getKey() + " path=" + e.getPath() + " message="
                    + e.getMessage());
        }
        say("info after the failed load: " + ProxySo.info("cxx"));
        say("mappings of the fixture: " + TestSupport.mappingsOf("libfx_throws.so").size());
        ProxySo.load("cxx", library);
        say("loaded again, answered " + ProxySo.call("cxx", "fine"));
        say("unloaded " + ProxySo.unload("cxx"));
    }

    private static void destroy(String library) throws InterruptedException {
        final List<LogRecord> records = new ArrayList<LogRecord>();
        Logger proxy = Logger.getLogger(LogBridge.PROXY_LOGGER);
        Handler handler = new Handler() {
            @Override
            public void publish(LogRecord record) {
                synchronized (records) {
                    records.add(record);
                    records.notifyAll();
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        handler.setLevel(Level.ALL);
        proxy.addHandler(handler);
        long generation = ProxySo.load("cxx", library, utf8("destroy-throws"));
        String snapshot = ProxySo.info("cxx").getSnapshotPath();
        say("loaded generation " + generation + ", answered " + ProxySo.call("cxx", "hello"));
        say("unloaded " + ProxySo.unload("cxx"));
        say("retired " + ProxySo.awaitRetired("cxx", 10, TimeUnit.SECONDS));
        say("snapshot still mapped: " + !TestSupport.mappingsOf(snapshot).isEmpty());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(RECORD_SECONDS);
        synchronized (records) {
            while (true) {
                for (LogRecord record : records) {
                    if (record.getMessage().contains("destroy of plugin")) {
                        say("logged " + record.getLevel() + " " + record.getMessage());
                        return;
                    }
                }
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    say("no destroy record was logged");
                    return;
                }
                records.wait(left);
            }
        }
    }
}
