package dev.proxyso;

import java.nio.file.Paths;

/**
 * Run in a child JVM by {@link SnapshotDirTest}, whose {@code -Dproxyso.snapshotDir} it uses.
 * Prints one fact a line; the first argument picks the case:
 *
 * <ul>
 *   <li>{@code load}: loads the example plugin, prints the private snapshot directory (or the
 *       load's exception) and exits;
 *   <li>{@code hold}: loads the example plugin with {@code keepVersions(3)} and replaces it once,
 *       so copies are kept for rollback, prints its private directory and {@code ready}, then
 *       waits to be killed.
 * </ul>
 */
public final class SnapshotProbe {
    /** Printed before the private directory's path. */
    static final String DIR = "probe: dir ";
    /** Printed by {@code hold} once everything is loaded. */
    static final String READY = "probe: ready";

    private SnapshotProbe() {
    }

    public static void main(String[] args) throws Exception {
        String example = TestSupport.plugin(TestSupport.EXAMPLE_V1);
        LoadOptions keep = LoadOptions.builder().keepVersions(3).build();
        try {
            ProxySo.load("probe", example, keep);
        } catch (LibraryLoadException e) {
            System.out.println("probe: LibraryLoadException: " + e.getMessage());
            return;
        }
        if ("hold".equals(args[0])) {
            ProxySo.replace("probe", TestSupport.plugin(TestSupport.EXAMPLE_V2), keep);
        }
        String snapshot = ProxySo.info("probe").getSnapshotPath();
        System.out.println(DIR + Paths.get(snapshot).getParent());
        if ("hold".equals(args[0])) {
            System.out.println(READY);
            System.out.flush();
            Thread.sleep(10 * 60 * 1000L);
        }
    }
}
