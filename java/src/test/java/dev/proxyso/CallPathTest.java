package dev.proxyso;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;
import javax.management.MBeanServer;
import org.junit.Rule;
import org.junit.Test;

/**
 * The path calls take to libproxy.so: FFM downcalls on JDK 22 and later (the multi-release jar's
 * {@code META-INF/versions/22/dev/proxyso/CallPath.class}), JNI on older JDKs, with
 * {@code -Dproxyso.ffm=false}, and without native access; the same answers and exceptions either
 * way. The rest of the suite runs on both paths: on JDK 17 through JNI, on the newest JDK through
 * FFM (gradle test runs it on both).
 */
public class CallPathTest {
    @Rule
    public final Keys keys = new Keys();

    @Test
    public void theJdkDecidesThePath() throws Exception {
        String key = keys.next("path");
        ProxySo.load(key, TestSupport.fixture(TestSupport.FIXTURE));
        String expected = ChildJvm.feature() >= 22 ? "ffm" : "jni";
        assertEquals("JDK " + ChildJvm.feature(), expected, ProxySo.info(key).getCallPath());
        assertTrue(ProxySo.info(key).toString(),
                ProxySo.info(key).toString().contains("callPath=" + expected));
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        assertEquals(expected, server.getAttribute(LibraryBeans.name(key), "CallPath"));
    }

    @Test
    public void theJarIsMultiReleaseWithJava8BaseClasses() throws Exception {
        String jar = System.getProperty("proxyso.test.jar");
        boolean layer = Boolean.parseBoolean(System.getProperty("proxyso.test.ffmLayer"));
        try (JarFile file = new JarFile(jar)) {
            assertEquals("class file of Java 8", 52, major(file, "dev/proxyso/CallPath.class"));
            assertEquals("class file of Java 8", 52, major(file, "dev/proxyso/ProxySo.class"));
            String versioned = "META-INF/versions/22/dev/proxyso/CallPath.class";
            assertEquals(jar + " has " + versioned, layer, file.getEntry(versioned) != null);
            assertEquals(layer ? "true" : null,
                    file.getManifest().getMainAttributes().getValue("Multi-Release"));
            if (layer) {
                assertEquals("class file of Java 22", 66, major(file, versioned));
            }
        }
        if (ChildJvm.feature() >= 22) {
            assertTrue("the suite runs on JDK 22+ only with the layer built", layer);
        }
    }

    /** The major version of a class file in a jar. */
    private static int major(JarFile jar, String entry) throws IOException {
        ZipEntry found = jar.getEntry(entry);
        assertTrue(entry, found != null);
        try (DataInputStream in = new DataInputStream(jar.getInputStream(found))) {
            assertEquals(0xCAFEBABE, in.readInt());
            in.readUnsignedShort();
            return in.readUnsignedShort();
        }
    }

    @Test
    public void theSystemPropertyForcesJni() throws Exception {
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.singletonList("-D" + CallPath.FFM_PROPERTY + "=false"),
                CallPathProbe.class.getName(), "path");
        assertEquals(child.describe(), 0, child.exitCode);
        assertTrue(child.describe(), child.output.contains(CallPathProbe.PATH + "jni\n"));
        assertTrue(child.describe(), child.output.contains(CallPathProbe.CALLED));
        child.assertNoJniWarnings();
    }

    @Test
    public void withoutNativeAccessTheJvmWarnsOnceAndFfmAddsNoWarning() throws Exception {
        // JDK 24+ in its default mode (--illegal-native-access=warn): System.load warns once for
        // the class path and enables native access for it, so the FFM path serves without a
        // warning of its own. (On JDK 22 and 23 System.load does not warn and native access
        // stays off: CallPath logs which flag to pass, once, and JNI serves.)
        assumeTrue("JEP 472's warnings begin with JDK 24", ChildJvm.feature() >= 24);
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.singletonList(ChildJvm.NO_NATIVE_ACCESS),
                CallPathProbe.class.getName(), "path");
        assertEquals(child.describe(), 0, child.exitCode);
        assertTrue(child.describe(), child.output.contains(CallPathProbe.PATH + "ffm\n"));
        assertTrue(child.describe(), child.output.contains(CallPathProbe.CALLED));
        assertEquals("one warning: " + child.describe(), 1,
                count(child.output, "WARNING: A restricted method"));
        assertEquals(child.describe(), 1,
                count(child.output, "Use --enable-native-access=ALL-UNNAMED"));
    }

    @Test
    public void deniedNativeAccessIsALoadErrorNamingTheFlag() throws Exception {
        assumeTrue("--illegal-native-access exists from JDK 24 on", ChildJvm.feature() >= 24);
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Arrays.asList(ChildJvm.NO_NATIVE_ACCESS, "--illegal-native-access=deny"),
                CallPathProbe.class.getName(), "path");
        assertTrue(child.describe(), child.exitCode != 0);
        assertTrue(child.describe(), child.output.contains("UnsatisfiedLinkError"));
        assertTrue(child.describe(), child.output.contains("native access is denied: pass "
                + "--enable-native-access=ALL-UNNAMED to java"));
    }

    @Test
    public void failuresAreTheExceptionsOfTheJniPath() throws Exception {
        ChildJvm.Result child = ChildJvm.run(120, ChildJvm.testClassPath(),
                Collections.singletonList("-D" + CallPath.FFM_PROPERTY + "=false"),
                CallPathProbe.class.getName(), "errors");
        assertEquals(child.describe(), 0, child.exitCode);
        List<String> jni = new ArrayList<String>();
        for (String line : child.output.split("\n")) {
            if (line.startsWith(CallPathProbe.ERROR)) {
                jni.add(line.substring(CallPathProbe.ERROR.length()));
            }
        }
        keys.add(CallPathProbe.KEY);
        ProxySo.load(CallPathProbe.KEY, TestSupport.fixture(TestSupport.FIXTURE));
        List<String> here = CallPathProbe.errors(CallPathProbe.KEY);
        assertEquals(14, here.size());
        for (String line : here) {
            assertTrue(line, !line.startsWith("no exception"));
        }
        assertEquals("this JVM (" + CallPath.name() + ") against JNI", jni, here);
    }

    @Test
    public void outputsOfEverySizeComeBackWhole() {
        String key = keys.next("sizes");
        // Every call timed: the methods are known to be short after a few dozen calls, so that
        // critical downcalls serve most of the calls below (on JDK 22+).
        ProxySo.load(key, TestSupport.fixture(TestSupport.FIXTURE),
                LoadOptions.builder().exactTiming(true).build());
        // Growing, shrinking and repeated sizes, so that the output array's guess (the last
        // output's size) is right, too small (the output spills) and too large, by key and by
        // handle, in critical and ordinary downcalls (5 MB is not short).
        int[] sizes = {0, 1, 64, 64, 3, 70000, 70000, 100, 0, 5000000, 17, 4096, 4097, 4095};
        try (LibraryHandle big = ProxySo.handle(key, "big")) {
            for (int round = 0; round < 40; round++) {
                for (int size : sizes) {
                    byte[] input = TestSupport.utf8(Integer.toString(size));
                    byte[] output = round % 2 == 0 ? ProxySo.call(key, "big", input)
                            : big.call(input);
                    assertArrayEquals("size " + size + ", round " + round, expected(size), output);
                    byte[] echo = new byte[size % 100000];
                    Arrays.fill(echo, (byte) size);
                    assertArrayEquals(echo, ProxySo.call(key, "echo", echo));
                }
            }
        }
    }

    /** What the fixture's "big" answers: {@code i % 251} at each index. */
    private static byte[] expected(int size) {
        byte[] bytes = new byte[size];
        for (int i = 0; i < size; i++) {
            bytes[i] = (byte) (i % 251);
        }
        return bytes;
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) {
            n++;
        }
        return n;
    }
}
