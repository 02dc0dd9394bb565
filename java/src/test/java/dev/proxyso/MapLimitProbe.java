package dev.proxyso;

import java.io.RandomAccessFile;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Run in a child JVM by {@link MapLimitTest}, so that running out of memory mappings cannot take
 * the test JVM with it. Sets {@code proxyso.mapReserve} so that only a few hundred mappings are
 * left above the reserve, loads example v1 under new keys until a load is refused, and then checks
 * what a refusal must leave behind. Prints one fact a line; {@code FAIL ...} for a broken
 * expectation.
 */
public final class MapLimitProbe {
    /** Mappings left between the process's count at start and the reserve. */
    private static final int ROOM = 400;
    /** The most loads tried before giving up: without a budget, loads are never refused. */
    private static final int MAX_LOADS = 1000;

    private MapLimitProbe() {
    }

    static long limit() throws Exception {
        // One line; readAllBytes trusts the size /proc reports, which is not the text's.
        return Long.parseLong(Files.readAllLines(Paths.get("/proc/sys/vm/max_map_count"),
                StandardCharsets.US_ASCII).get(0).trim());
    }

    static int mappings() throws Exception {
        return Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8).size();
    }

    public static void main(String[] args) throws Exception {
        long limit = limit();
        int start = mappings();
        long reserve = limit - start - ROOM;
        // Read when libproxy.so is configured, at the first use below.
        System.setProperty("proxyso.mapReserve", Long.toString(reserve));
        System.out.println("limit " + limit);
        System.out.println("start " + start);
        System.out.println("reserve " + reserve);
        String v1 = TestSupport.plugin(TestSupport.EXAMPLE_V1);
        String v2 = TestSupport.plugin(TestSupport.EXAMPLE_V2);

        List<String> loaded = new ArrayList<String>();
        ProxySo.load("k0", v1);
        ProxySo.replace("k0", v2);
        loaded.add("k0");
        LibraryLoadException refused = null;
        for (int i = 1; i <= MAX_LOADS && refused == null; i++) {
            String key = "k" + i;
            try {
                ProxySo.load(key, v1);
                loaded.add(key);
            } catch (LibraryLoadException e) {
                refused = e;
                System.out.println("refused key " + e.getKey());
                System.out.println("refused path " + e.getPath().equals(v1));
                System.out.println("refused loaded " + (ProxySo.info(key) != null));
            }
        }
        System.out.println("loads before refusal " + loaded.size());
        if (refused == null) {
            System.out.println("FAIL never refused after " + MAX_LOADS + " loads, mappings "
                    + mappings());
            return;
        }
        System.out.println("message " + refused.getMessage());

        // Further past the line, by mappings of our own: replace and rollback map a new
        // version too, and are refused the same way.
        List<MappedByteBuffer> extra = new ArrayList<MappedByteBuffer>();
        Path page = Files.createTempFile("proxyso-map-limit", ".bin");
        try (RandomAccessFile file = new RandomAccessFile(page.toFile(), "rw")) {
            file.setLength(4096);
            for (int i = 0; i < 40; i++) {
                extra.add(file.getChannel().map(FileChannel.MapMode.READ_ONLY, 0, 4096));
            }
        } finally {
            Files.delete(page);
        }
        try {
            ProxySo.replace("k0", v1);
            System.out.println("FAIL replace admitted");
        } catch (LibraryLoadException e) {
            System.out.println("replace refused " + e.getMessage().contains("vm.max_map_count"));
        }
        try {
            ProxySo.rollback("k0");
            System.out.println("FAIL rollback admitted");
        } catch (LibraryLoadException e) {
            System.out.println("rollback refused " + e.getMessage().contains("vm.max_map_count"));
        }
        System.out.println("k0 generation " + ProxySo.info("k0").getGeneration()
                + " previous " + ProxySo.info("k0").getPreviousVersions().size());

        int answered = 0;
        for (String key : loaded) {
            if (ProxySo.call(key, key).equals(key.equals("k0") ? key + ",ab" : key)) {
                answered++;
            }
        }
        System.out.println("answered " + answered + " of " + loaded.size());

        // Unloading frees room again.
        for (String key : new ArrayList<String>(loaded.subList(loaded.size() / 2, loaded.size()))) {
            ProxySo.unload(key);
            ProxySo.awaitRetired(key, 10, TimeUnit.SECONDS);
            loaded.remove(key);
        }
        System.out.println("after unload load " + ProxySo.load("again", v1));
        System.out.println("after unload rollback " + ProxySo.rollback("k0"));
        System.out.println("again answers " + ProxySo.call("again", "hi"));
        System.out.println("extra mappings kept " + extra.size());
        System.out.println("done");
    }
}
