package dev.proxyso;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * Run in a child JVM by {@link NativeLoaderTest}: uses the API twice and prints what happened, one
 * fact a line, and which {@code libproxy} files are mapped.
 */
public final class LoaderProbe {
    private LoaderProbe() {
    }

    public static void main(String[] args) throws Exception {
        for (int attempt = 1; attempt <= 2; attempt++) {
            try {
                System.out.println("attempt " + attempt + ": keys " + ProxySo.list().size());
            } catch (UnsatisfiedLinkError e) {
                System.out.println("attempt " + attempt + ": UnsatisfiedLinkError: "
                        + e.getMessage().replace('\n', '|'));
            }
        }
        for (String line : Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8)) {
            int at = line.indexOf('/');
            if (at >= 0 && line.contains("libproxy")) {
                System.out.println("mapped: " + line.substring(at));
            }
        }
    }
}
