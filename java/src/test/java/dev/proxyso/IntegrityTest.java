package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.EXAMPLE_V2;
import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.plugin;
import static dev.proxyso.TestSupport.sha256;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;

/**
 * {@link LoadOptions.Builder#sha256(String)} and {@link LibraryInfo#getSha256()}: a load or
 * replace with the right digest works, with a wrong one it fails naming path, expected and actual
 * digest and changes nothing, and every loaded version reports the digest Java computes of its
 * file.
 */
public class IntegrityTest {
    /** A digest no plugin file has. */
    private static final String WRONG =
            "0000000000000000000000000000000000000000000000000000000000000000";

    @Rule
    public final Keys keys = new Keys();

    private Path tempDir;

    @Before
    public void makeTempDir() throws Exception {
        tempDir = TestSupport.tempDir("proxyso-integrity");
    }

    @After
    public void removeTempDir() {
        TestSupport.deleteTree(tempDir);
    }

    private static LoadOptions withSha256(String hex) {
        return LoadOptions.builder().sha256(hex).build();
    }

    private static void assertNamesBothDigests(LibraryLoadException e, String key, String path,
            String expected, String actual) {
        assertEquals(key, e.getKey());
        assertEquals(path, e.getPath());
        String message = e.getMessage();
        assertTrue("message should name the path: " + message, message.contains(path));
        assertTrue("message should name the expected digest: " + message,
                message.toLowerCase(Locale.ROOT).contains(expected));
        assertTrue("message should name the actual digest: " + message,
                message.toLowerCase(Locale.ROOT).contains(actual));
    }

    @Test
    public void loadAndReplaceWithTheRightDigestWorkAndInfoReportsIt() throws Exception {
        String key = keys.next("sha-ok");
        String v1 = plugin(EXAMPLE_V1);
        String v2 = plugin(EXAMPLE_V2);
        assertEquals(1, ProxySo.load(key, v1, withSha256(sha256(v1))));
        assertEquals(sha256(v1), ProxySo.info(key).getSha256());
        assertEquals(sha256(v1), ProxySo.info(key).getGenerations().get(0).getSha256());
        // Upper case, as some tools print it, is the same digest.
        assertEquals(2, ProxySo.replace(key, v2,
                withSha256(sha256(v2).toUpperCase(Locale.ROOT))));
        assertEquals(sha256(v2), ProxySo.info(key).getSha256());
        assertEquals("x,ab", ProxySo.call(key, "x"));
        assertEquals(sha256(v1), ProxySo.info(key).getPreviousVersions().get(0).getSha256());
    }

    @Test
    public void loadWithAWrongDigestFailsNamingBothDigestsAndLoadsNothing() throws Exception {
        final String key = keys.next("sha-load");
        final String v1 = plugin(EXAMPLE_V1);
        LibraryLoadException e = assertThrows(LibraryLoadException.class,
                () -> ProxySo.load(key, v1, withSha256(WRONG)));
        assertNamesBothDigests(e, key, v1, WRONG, sha256(v1));
        assertNull(ProxySo.info(key));
        assertTrue("no bean for a key that did not load", !ManagementFactory
                .getPlatformMBeanServer().isRegistered(LibraryBeans.name(key)));
        assertThrows(NoSuchLibraryException.class, () -> ProxySo.call(key, "x"));
        // The same load with the right digest works.
        assertEquals(1, ProxySo.load(key, v1, withSha256(sha256(v1))));
    }

    @Test
    public void replaceWithAWrongDigestFailsAndTheOldVersionKeepsServing() throws Exception {
        final String key = keys.next("sha-replace");
        String v1 = plugin(EXAMPLE_V1);
        final String v2 = plugin(EXAMPLE_V2);
        ProxySo.load(key, v1);
        LibraryInfo before = ProxySo.info(key);
        // The digest of v1 is the wrong one for v2's file.
        final String expected = sha256(v1);
        LibraryLoadException e = assertThrows(LibraryLoadException.class,
                () -> ProxySo.replace(key, v2, withSha256(expected)));
        assertNamesBothDigests(e, key, v2, expected, sha256(v2));
        assertEquals(before, ProxySo.info(key));
        assertEquals("x", ProxySo.call(key, "x"));
        assertEquals(0, ProxySo.info(key).getStats().getReplacements());
        // Nothing was kept for rollback by the failed replace.
        assertThrows(NoPreviousVersionException.class, () -> ProxySo.rollback(key));
    }

    @Test
    public void theDigestIsOfTheBytesLoadedNotOfWhatThePathHoldsLater() throws Exception {
        String key = keys.next("sha-later");
        byte[] v1 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V1)));
        byte[] v2 = Files.readAllBytes(Paths.get(plugin(EXAMPLE_V2)));
        Path live = tempDir.resolve("live.so");
        Files.write(live, v1);
        ProxySo.load(key, live.toString());
        TestSupport.overwriteInPlace(live, v2);
        assertEquals(sha256(v1), ProxySo.info(key).getSha256());
        ProxySo.replace(key, live.toString());
        assertEquals(sha256(v2), ProxySo.info(key).getSha256());
        assertNotEquals(sha256(v1), sha256(v2));
    }

    @Test
    public void everyLoadedVersionReportsItsDigestWhileItDrains() throws Exception {
        final String key = keys.next("sha-draining");
        String fixture = fixture(FIXTURE);
        String v1 = plugin(EXAMPLE_V1);
        ProxySo.load(key, fixture, utf8("slow"));
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            final CountDownLatch started = new CountDownLatch(1);
            Future<String> slow = pool.submit(new Callable<String>() {
                @Override
                public String call() {
                    started.countDown();
                    return TestSupport.text(ProxySo.call(key, "sleep", utf8("1500")));
                }
            });
            assertTrue(started.await(10, TimeUnit.SECONDS));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (ProxySo.info(key).getStats().getInFlight() == 0
                    && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            ProxySo.replace(key, v1);
            LibraryInfo info = ProxySo.info(key);
            assertEquals(2, info.getGenerations().size());
            assertEquals(2, info.getGenerations().get(0).getGeneration());
            assertEquals(sha256(v1), info.getGenerations().get(0).getSha256());
            assertEquals(1, info.getGenerations().get(1).getGeneration());
            assertEquals(sha256(fixture), info.getGenerations().get(1).getSha256());
            assertEquals("slow", slow.get(30, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    public void aDigestMustBeSixtyFourHexadecimalDigits() {
        for (String bad : new String[] {"", "abc", WRONG.substring(1), WRONG + "0",
            WRONG.substring(1) + "g", WRONG.substring(1) + " ", WRONG.substring(1) + "\u0660",
            WRONG.substring(2) + "0x"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LoadOptions.builder().sha256(bad));
            assertTrue(e.getMessage(), e.getMessage().contains("64 hexadecimal digits"));
        }
        NullPointerException npe = assertThrows(NullPointerException.class,
                () -> LoadOptions.builder().sha256(null));
        assertTrue(npe.getMessage(), npe.getMessage().contains("sha256"));
        String mixed = "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCD";
        LoadOptions options = LoadOptions.builder().sha256(mixed).build();
        assertEquals(mixed.toLowerCase(Locale.ROOT), options.getSha256());
        assertEquals(options, LoadOptions.builder().sha256(mixed.toLowerCase(Locale.ROOT)).build());
        assertNull(LoadOptions.defaults().getSha256());
        assertTrue(options.toString(), options.toString().contains(options.getSha256()));
    }
}
