package dev.proxyso;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Collections;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.Test;

/**
 * Too many loaded versions for the kernel's limit on mappings: a load, replace or rollback that
 * would leave the JVM less than its reserve is refused with a {@link LibraryLoadException} that
 * names the figures, before the JVM itself runs out (which aborts it). In a child JVM, so that a
 * failure cannot take the test JVM with it.
 */
public class MapLimitTest {
    private static String line(ChildJvm.Result result, String prefix) {
        for (String line : result.output.split("\n")) {
            if (line.startsWith(prefix + " ")) {
                return line.substring(prefix.length() + 1);
            }
        }
        throw new AssertionError("no line '" + prefix + " ...': " + result.describe());
    }

    @Test
    public void loadsAreRefusedBeforeTheJvmRunsOutOfMappings() throws Exception {
        ChildJvm.Result result = ChildJvm.run(180, ChildJvm.testClassPath(),
                Collections.<String>emptyList(), "dev.proxyso.MapLimitProbe");
        String all = result.describe();
        assertEquals(all, 0, result.exitCode);
        assertTrue(all, !result.output.contains("FAIL"));
        result.assertNoJniWarnings();
        long limit = Long.parseLong(line(result, "limit"));
        long start = Long.parseLong(line(result, "start"));
        long reserve = Long.parseLong(line(result, "reserve"));
        int loads = Integer.parseInt(line(result, "loads before refusal"));
        assertTrue(all, loads >= 5);

        String message = line(result, "message");
        Matcher current = Pattern.compile("this process has (\\d+) and the kernel allows (\\d+)")
                .matcher(message);
        assertTrue(message, current.find());
        long count = Long.parseLong(current.group(1));
        assertEquals(message, limit, Long.parseLong(current.group(2)));
        // Refused where the reserve starts (give or take what the JVM mapped meanwhile), far
        // from the kernel's limit.
        assertTrue(message, count > start && count + reserve <= limit + 100);
        assertTrue(message, message.contains(reserve + " are kept in reserve for the JVM"));
        assertTrue(message, message.contains("(vm.max_map_count)"));
        assertTrue(message, message.contains("sysctl -w vm.max_map_count="));
        assertTrue(message, message.contains("proxyso.mapReserve"));
        assertTrue(message, message.startsWith("cannot load '"));

        assertEquals(all, "k" + loads, line(result, "refused key"));
        assertEquals(all, "true", line(result, "refused path"));
        assertEquals(all, "false", line(result, "refused loaded"));
        assertEquals(all, "true", line(result, "replace refused"));
        assertEquals(all, "true", line(result, "rollback refused"));
        assertEquals(all, "2 previous 1", line(result, "k0 generation"));
        assertEquals(all, loads + " of " + loads, line(result, "answered"));
        assertEquals(all, "1", line(result, "after unload load"));
        assertEquals(all, "3", line(result, "after unload rollback"));
        assertEquals(all, "hi", line(result, "again answers"));
        assertTrue(all, result.output.contains("\ndone"));
    }

    @Test
    public void aReserveThatIsNotANumberIsRefusedByName() throws Exception {
        ChildJvm.Result result = ChildJvm.run(60, ChildJvm.testClassPath(),
                Collections.singletonList("-Dproxyso.mapReserve=lots"),
                "dev.proxyso.LoaderProbe");
        assertTrue(result.describe(), result.output.contains(
                "proxyso.mapReserve must be a whole number of memory mappings (0 or more), not "
                + "'lots'"));
    }
}
