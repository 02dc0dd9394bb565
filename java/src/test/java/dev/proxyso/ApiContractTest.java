package dev.proxyso;

import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.text;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.Rule;
import org.junit.Test;
import org.junit.function.ThrowingRunnable;

/** The Java API's contract: arguments, unknown and existing keys, info, list, strings. */
public class ApiContractTest {
    @Rule
    public final Keys keys = new Keys();

    private static void assertNpe(String argument, ThrowingRunnable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertNotNull("NPE without message for " + argument, e.getMessage());
        assertTrue("NPE message should name '" + argument + "': " + e.getMessage(),
                e.getMessage().contains(argument));
    }

    @Test
    public void nullArgumentsThrowNullPointerExceptionNamingTheArgument() {
        final String key = keys.next("null");
        final String path = fixture(FIXTURE);
        ProxySo.load(key, path, utf8("null-test"));
        final byte[] bytes = new byte[0];

        assertNpe("key", () -> ProxySo.load(null, path));
        assertNpe("path", () -> ProxySo.load(key + "x", null));
        assertNpe("key", () -> ProxySo.load(null, path, bytes));
        assertNpe("path", () -> ProxySo.load(key + "x", null, bytes));
        assertNpe("config", () -> ProxySo.load(key + "x", path, (byte[]) null));
        assertNpe("options", () -> ProxySo.load(key + "x", path, (LoadOptions) null));
        assertNpe("key", () -> ProxySo.load(null, path, LoadOptions.defaults()));
        assertNpe("path", () -> ProxySo.load(key + "x", null, LoadOptions.defaults()));
        assertNpe("key", () -> ProxySo.replace(null, path));
        assertNpe("path", () -> ProxySo.replace(key, null));
        assertNpe("key", () -> ProxySo.replace(null, path, bytes));
        assertNpe("path", () -> ProxySo.replace(key, null, bytes));
        assertNpe("config", () -> ProxySo.replace(key, path, (byte[]) null));
        assertNpe("options", () -> ProxySo.replace(key, path, (LoadOptions) null));
        assertNpe("key", () -> ProxySo.replace(null, path, LoadOptions.defaults()));
        assertNpe("path", () -> ProxySo.replace(key, null, LoadOptions.defaults()));
        assertNpe("key", () -> ProxySo.unload(null));
        assertNpe("key", () -> ProxySo.call(null, bytes));
        assertNpe("input", () -> ProxySo.call(key, (byte[]) null));
        assertNpe("key", () -> ProxySo.call(null, "tag", bytes));
        assertNpe("method", () -> ProxySo.call(key, null, bytes));
        assertNpe("input", () -> ProxySo.call(key, "tag", (byte[]) null));
        assertNpe("key", () -> ProxySo.call(null, "tag", "text"));
        assertNpe("method", () -> ProxySo.call(key, null, "text"));
        assertNpe("input", () -> ProxySo.call(key, "tag", (String) null));
        assertNpe("key", () -> ProxySo.call(null, "text"));
        assertNpe("input", () -> ProxySo.call(key, (String) null));
        assertNpe("key", () -> ProxySo.info(null));
        assertNpe("key", () -> ProxySo.awaitRetired(null, 1, TimeUnit.SECONDS));
        assertNpe("unit", () -> ProxySo.awaitRetired(key, 1, null));
        assertNpe("key", () -> ProxySo.rollback(null));
        final WatchListener listener = event -> { };
        assertNpe("key", () -> ProxySo.watch(null, path, listener));
        assertNpe("path", () -> ProxySo.watch(key, null, listener));
        assertNpe("listener", () -> ProxySo.watch(key, path, null));
        assertNpe("unit", () -> ProxySo.watch(key, path, listener, 1, null));
        assertNpe("key", () -> ProxySo.unwatch(null));
        assertNpe("sha256", () -> LoadOptions.builder().sha256(null));

        // None of that touched the loaded library, watched it, or loaded another key.
        assertFalse(ProxySo.unwatch(key));
        assertEquals(1, ProxySo.info(key).getGeneration());
        assertNull(ProxySo.info(key + "x"));
        assertEquals("null-test", ProxySo.call(key, ""));
    }

    @Test
    public void emptyKeyIsAnIllegalArgument() {
        final String path = fixture(FIXTURE);
        assertThrows(IllegalArgumentException.class, () -> ProxySo.load("", path));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.replace("", path));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.unload(""));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.call("", new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.call("", "x"));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.info(""));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.rollback(""));
        assertThrows(IllegalArgumentException.class,
                () -> ProxySo.watch("", path, event -> { }));
        assertThrows(IllegalArgumentException.class, () -> ProxySo.unwatch(""));
        assertNull(ProxySo.info("x" + keys.next("empty")));
    }

    @Test
    public void unknownKeyIsNoSuchLibraryForCallAndReplaceFalseForUnloadNullForInfo() {
        final String key = keys.next("unknown");
        NoSuchLibraryException onCall = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.call(key, new byte[0]));
        assertEquals(key, onCall.getKey());
        assertTrue(onCall.getMessage(), onCall.getMessage().contains(key));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "tag", new byte[0]));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "text"));
        NoSuchLibraryException onReplace = assertThrows(NoSuchLibraryException.class,
                () -> ProxySo.replace(key, fixture(FIXTURE)));
        assertEquals(key, onReplace.getKey());
        assertFalse(ProxySo.unload(key));
        assertNull(ProxySo.info(key));
        // A failed replace of an unknown key must not have loaded it.
        assertNull(ProxySo.info(key));
        for (LibraryInfo info : ProxySo.list()) {
            assertNotEquals(key, info.getKey());
        }
    }

    @Test
    public void loadOfALoadedKeyIsLibraryExistsAndLeavesItServing() {
        final String key = keys.next("exists");
        final String path = fixture(FIXTURE);
        assertEquals(1, ProxySo.load(key, path, utf8("first")));
        LibraryExistsException e = assertThrows(LibraryExistsException.class,
                () -> ProxySo.load(key, path, utf8("second")));
        assertEquals(key, e.getKey());
        assertTrue(e.getMessage(), e.getMessage().contains(key));
        assertEquals(1, ProxySo.info(key).getGeneration());
        assertEquals("first", ProxySo.call(key, ""));
    }

    @Test
    public void unknownMethodIsUnknownMethodException() {
        final String key = keys.next("method");
        ProxySo.load(key, fixture(FIXTURE), utf8("m"));
        UnknownMethodException e = assertThrows(UnknownMethodException.class,
                () -> ProxySo.call(key, "no-such-method", new byte[0]));
        assertEquals(key, e.getKey());
        assertEquals("no-such-method", e.getMethod());
        assertTrue(e.getMessage(), e.getMessage().contains("no-such-method"));
        assertEquals("m", text(ProxySo.call(key, "tag", new byte[0])));
    }

    @Test
    public void stringCallRoundTripsNonAsciiUtf8() {
        final String key = keys.next("utf8");
        ProxySo.load(key, fixture(FIXTURE), utf8("tag"));
        String text = "héllo wörld, Ελληνικά, 日本語, emoji \uD83D\uDE80, nul \u0000 end";
        assertArrayEquals(utf8(text), ProxySo.call(key, "echo", utf8(text)));
        // The example plugin's default method echoes: through the String overload both ways.
        final String echo = keys.next("utf8-echo");
        ProxySo.load(echo, TestSupport.plugin(TestSupport.EXAMPLE_V1));
        assertEquals(text, ProxySo.call(echo, text));
        // The fixture's default method returns its tag; a non-ASCII tag comes back decoded.
        final String other = keys.next("utf8-tag");
        String tag = "tæg-\u00e9\u4e2d\uD83D\uDE00";
        ProxySo.load(other, fixture(FIXTURE), utf8(tag));
        assertEquals(tag, ProxySo.call(other, "ignored input ü"));
    }

    @Test
    public void infoDescribesTheLoadedVersion() {
        final String key = keys.next("info");
        String path = fixture(FIXTURE);
        assertEquals(1, ProxySo.load(key, path, utf8("i")));
        LibraryInfo info = ProxySo.info(key);
        assertNotNull(info);
        assertEquals(key, info.getKey());
        assertEquals(1, info.getGeneration());
        assertEquals(path, info.getPath());
        assertEquals("fixture", info.getName());
        assertNotNull(info.getVersion());
        assertFalse(info.getVersion().isEmpty());
        assertFalse(info.isSerialized());
        List<String> methods = info.getMethods();
        assertEquals("tag", methods.get(0));
        for (String method : new String[] {"echo", "fail", "panic", "sleep", "big"}) {
            assertTrue(method + " missing from " + methods, methods.contains(method));
        }
        assertThrows(UnsupportedOperationException.class, () -> methods.add("x"));
        assertNotNull(info.getSnapshotPath());
        assertNotEquals("the snapshot must be a private copy, not the source", path,
                info.getSnapshotPath());
        assertFalse("snapshot " + info.getSnapshotPath() + " is not mapped",
                mappingsOf(info.getSnapshotPath()).isEmpty());
        assertTrue("the source file itself must not be mapped: " + mappingsOf(path),
                mappingsOf(path).isEmpty());

        LibraryInfo again = ProxySo.info(key);
        assertEquals(info, again);
        assertEquals(info.hashCode(), again.hashCode());
        assertTrue(info.toString(), info.toString().contains(key));
        assertTrue(info.toString(), info.toString().contains("generation=1"));

        long next = ProxySo.replace(key, path, utf8("j"));
        LibraryInfo replaced = ProxySo.info(key);
        assertEquals(next, replaced.getGeneration());
        assertNotEquals(info, replaced);
        assertNotEquals(info.getSnapshotPath(), replaced.getSnapshotPath());
        // The instance taken before is a snapshot: it did not change.
        assertEquals(1, info.getGeneration());
    }

    @Test
    public void listHoldsEveryLoadedKeySortedAndUnmodifiable() {
        final String path = fixture(FIXTURE);
        String a = keys.next("list-a");
        String b = keys.next("list-b");
        List<String> mine = new ArrayList<String>();
        ProxySo.load(b, path, utf8("b"));
        ProxySo.load(a, path, utf8("a"));
        ProxySo.replace(b, path, utf8("b2"));
        List<LibraryInfo> list = ProxySo.list();
        for (int i = 1; i < list.size(); i++) {
            assertTrue("not sorted: " + list.get(i - 1).getKey() + " before "
                    + list.get(i).getKey(),
                    list.get(i - 1).getKey().compareTo(list.get(i).getKey()) < 0);
        }
        for (LibraryInfo info : list) {
            if (info.getKey().equals(a) || info.getKey().equals(b)) {
                mine.add(info.getKey());
                assertEquals(ProxySo.info(info.getKey()), info);
            }
        }
        assertEquals(2, mine.size());
        assertEquals(a, mine.get(0));
        assertEquals(b, mine.get(1));
        assertThrows(UnsupportedOperationException.class, () -> list.remove(0));

        assertTrue(ProxySo.unload(a));
        for (LibraryInfo info : ProxySo.list()) {
            assertNotEquals(a, info.getKey());
        }
    }

    @Test
    public void nativeExceptionKindsMapToTheirClasses() {
        Throwable t = NativeBridge.exception(NativeContract.KIND_NO_SUCH_LIBRARY, "k", null, null, 0, "m0");
        assertEquals(NoSuchLibraryException.class, t.getClass());
        assertEquals("k", ((ProxySoException) t).getKey());
        assertEquals("m0", t.getMessage());
        t = NativeBridge.exception(NativeContract.KIND_LIBRARY_EXISTS, "k", null, null, 0, "m1");
        assertEquals(LibraryExistsException.class, t.getClass());
        t = NativeBridge.exception(NativeContract.KIND_LOAD, "k", "/p.so", null, 0, "m2");
        assertEquals(LibraryLoadException.class, t.getClass());
        assertEquals("/p.so", ((LibraryLoadException) t).getPath());
        t = NativeBridge.exception(NativeContract.KIND_PLUGIN_ERROR, "k", null, "meth", 42, "m3");
        PluginException error = (PluginException) t;
        assertEquals("meth", error.getMethod());
        assertEquals(42, error.getCode());
        assertFalse(error.isPanic());
        t = NativeBridge.exception(NativeContract.KIND_PLUGIN_PANIC, "k", null, "meth", 3, "m4");
        assertTrue(((PluginException) t).isPanic());
        t = NativeBridge.exception(NativeContract.KIND_UNKNOWN_METHOD, "k", null, "meth", 0, "m5");
        assertEquals("meth", ((UnknownMethodException) t).getMethod());
        t = NativeBridge.exception(NativeContract.KIND_ILLEGAL_ARGUMENT, null, null, null, 0, "m6");
        assertEquals(IllegalArgumentException.class, t.getClass());
        t = NativeBridge.exception(NativeContract.KIND_INTERNAL, null, null, null, 0, "m7");
        assertEquals(ProxySoInternalError.class, t.getClass());
        t = NativeBridge.exception(NativeContract.KIND_NO_PREVIOUS_VERSION, "k", null, null, 0, "m10");
        assertEquals(NoPreviousVersionException.class, t.getClass());
        assertEquals("k", ((ProxySoException) t).getKey());
        assertEquals("m10", t.getMessage());
        t = NativeBridge.exception(99, null, null, null, 0, null);
        assertEquals(ProxySoInternalError.class, t.getClass());
        assertNotNull(t.getMessage());
    }

    @Test
    public void infoStatisticsAreWhatNativeCodePassedAndNullArraysAreEmpty() {
        // Laid out by the contract's indices, as native code lays them out.
        long[] keyStats = new long[NativeContract.KEY_STATS_LEN];
        keyStats[NativeContract.KEY_STATS_CALLS] = 10;
        keyStats[NativeContract.KEY_STATS_FAILED] = 2;
        keyStats[NativeContract.KEY_STATS_IN_FLIGHT] = 1;
        keyStats[NativeContract.KEY_STATS_TOTAL_NANOS] = 500;
        keyStats[NativeContract.KEY_STATS_MAX_NANOS] = 90;
        keyStats[NativeContract.KEY_STATS_REPLACEMENTS] = 3;
        keyStats[NativeContract.KEY_STATS_ROLLBACKS] = 1;
        keyStats[NativeContract.KEY_STATS_CRASHES] = 5;
        keyStats[NativeContract.KEY_STATS_ISOLATED] = 1;
        keyStats[NativeContract.KEY_STATS_WORKER_PID] = 4242;
        int stride = NativeContract.GENERATION_STATS_LEN;
        long[] generations = new long[2 * stride];
        long[][] figures = {{4, 6, 1, 0, 300, 90, 1000, 2}, {3, 4, 1, 1, 200, 80, 2000, 0}};
        int[] at = {NativeContract.GENERATION_STATS_GENERATION,
            NativeContract.GENERATION_STATS_CALLS, NativeContract.GENERATION_STATS_FAILED,
            NativeContract.GENERATION_STATS_IN_FLIGHT, NativeContract.GENERATION_STATS_TOTAL_NANOS,
            NativeContract.GENERATION_STATS_MAX_NANOS, NativeContract.GENERATION_STATS_LOAD_NANOS,
            NativeContract.GENERATION_STATS_CRASHES};
        for (int g = 0; g < 2; g++) {
            for (int f = 0; f < at.length; f++) {
                generations[g * stride + at[f]] = figures[g][f];
            }
        }
        LibraryInfo info = new LibraryInfo("k", 4, "/p.so", "/snap.so", "n", "1", null, false,
                false, 0, 0, "ab", keyStats, "boom", generations,
                new String[] {"d4", "d3"}, 2, new long[] {3, 1}, new String[] {"/p3.so", "/p1.so"},
                new String[] {"d3", "d1"});
        assertTrue(info.isIsolated());
        assertEquals(4242, info.getWorkerPid());
        assertEquals(5, info.getStats().getCrashes());
        assertEquals(2, info.getGenerations().get(0).getCrashes());
        assertEquals("ab", info.getSha256());
        CallStats stats = info.getStats();
        assertEquals(10, stats.getCalls());
        assertEquals(2, stats.getFailedCalls());
        assertEquals(1, stats.getInFlight());
        assertEquals(500, stats.getTotalCallNanos());
        assertEquals(90, stats.getMaxCallNanos());
        assertEquals(50, stats.getMeanCallNanos());
        assertEquals(3, stats.getReplacements());
        assertEquals(1, stats.getRollbacks());
        assertEquals("boom", stats.getLastError());
        assertEquals(2, info.getGenerations().size());
        GenerationStats serving = info.getGenerations().get(0);
        assertEquals(4, serving.getGeneration());
        assertEquals("d4", serving.getSha256());
        assertEquals(6, serving.getCalls());
        assertEquals(1, serving.getFailedCalls());
        assertEquals(0, serving.getInFlight());
        assertEquals(300, serving.getTotalCallNanos());
        assertEquals(90, serving.getMaxCallNanos());
        assertEquals(1000, serving.getLoadNanos());
        assertEquals(3, info.getGenerations().get(1).getGeneration());
        assertEquals(1, info.getGenerations().get(1).getInFlight());
        assertEquals(2000, info.getGenerations().get(1).getLoadNanos());
        assertEquals(2, info.getKeepVersions());
        assertEquals(2, info.getPreviousVersions().size());
        assertEquals(3, info.getPreviousVersions().get(0).getGeneration());
        assertEquals("/p3.so", info.getPreviousVersions().get(0).getPath());
        assertEquals("d3", info.getPreviousVersions().get(0).getSha256());
        assertEquals("d1", info.getPreviousVersions().get(1).getSha256());
        assertThrows(UnsupportedOperationException.class,
                () -> info.getGenerations().remove(0));
        assertThrows(UnsupportedOperationException.class,
                () -> info.getPreviousVersions().clear());

        // Native code must never see this constructor throw: nulls and short arrays are empty.
        LibraryInfo bare = new LibraryInfo("k", 1, "/p.so", "/snap.so", "n", "1", null, false,
                false, 0, 0, null, null, null, new long[] {1, 2, 3}, null, 0, null, null, null);
        assertEquals(0, bare.getStats().getCalls());
        assertEquals(0, bare.getStats().getMeanCallNanos());
        assertTrue(bare.getGenerations().isEmpty());
        assertTrue(bare.getPreviousVersions().isEmpty());
        assertTrue(bare.getMethods().isEmpty());
        assertTrue(bare.toString(), bare.toString().contains("stats="));
    }
}
