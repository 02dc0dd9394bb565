package dev.proxyso;

import java.nio.charset.StandardCharsets;

/**
 * A child JVM for {@link IsolatedTest}: loads {@code libfx_crash.so} isolated from a thread that
 * then ends, calls it from the main thread (the worker must outlive the loading thread: the
 * parent-death signal fires when the thread that spawned it ends), prints the worker's pid and
 * sleeps until it is killed.
 */
public final class IsolatedProbe {
    /** Printed before the worker's pid. */
    static final String PID = "probe: worker pid ";

    private IsolatedProbe() {
    }

    public static void main(String[] args) throws Exception {
        final String path = TestSupport.fixture("libfx_crash.so");
        Thread loader = new Thread(new Runnable() {
            @Override
            public void run() {
                ProxySo.load("isolated", path,
                        LoadOptions.builder().isolated(true).build());
            }
        }, "short-lived-loader");
        loader.start();
        loader.join();
        // The loading thread is gone; its worker serves on.
        Thread.sleep(200);
        String pid = new String(ProxySo.call("isolated", "pid", new byte[0]),
                StandardCharsets.UTF_8);
        // Had the worker been spawned from the loading thread, its end would have killed it.
        System.out.println("probe: crashes " + ProxySo.info("isolated").getStats().getCrashes());
        System.out.println(PID + pid);
        System.out.flush();
        Thread.sleep(600_000);
    }
}
