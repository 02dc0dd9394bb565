package dev.proxyso;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.rules.ExternalResource;

/**
 * Hands out unique keys and unloads every one of them after the test, whatever happened, then waits
 * for their retired versions to close.
 */
final class Keys extends ExternalResource {
    private static final AtomicLong COUNTER = new AtomicLong();

    private final List<String> keys = new ArrayList<String>();

    /** A key no other test uses, unloaded after this test. */
    synchronized String next(String name) {
        String key = "test-" + name + "-" + COUNTER.incrementAndGet() + "-" + System.nanoTime();
        keys.add(key);
        return key;
    }

    /** Unloads {@code key} too after this test: for keys a test builds from {@link #next}. */
    synchronized void add(String key) {
        keys.add(key);
    }

    @Override
    protected synchronized void after() {
        for (String key : keys) {
            try {
                ProxySo.unload(key);
            } catch (RuntimeException | LinkageError ignored) {
                // The test has already reported what went wrong.
            }
        }
        for (String key : keys) {
            try {
                ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
            } catch (RuntimeException | LinkageError ignored) {
                // Same.
            }
        }
        keys.clear();
    }
}
