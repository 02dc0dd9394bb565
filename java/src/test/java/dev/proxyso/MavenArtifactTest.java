package dev.proxyso;

import static dev.proxyso.TestSupport.EXAMPLE_V1;
import static dev.proxyso.TestSupport.dirFromProperty;
import static dev.proxyso.TestSupport.plugin;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * The Maven artifact dev.proxyso:proxyso, as {@code gradle buildRepo} lays out the publication
 * under build/repo: its pom says what a repository needs, its jars hold what they should, and a
 * fresh consumer project that knows nothing but the coordinates and the repository builds and
 * calls a plugin through it, offline, with Gradle.
 */
public class MavenArtifactTest {
    /** How long the consumer's Gradle build may take (measured: about 10 s on an idle machine). */
    private static final long CONSUMER_TIMEOUT_SECONDS = 180;

    private static String coordinates() {
        String value = System.getProperty("proxyso.test.coordinates");
        assertNotNull("system property proxyso.test.coordinates is not set", value);
        return value;
    }

    /** The directory of the artifact's version in the repository, checked to exist. */
    private static Path versionDir() {
        String[] gav = coordinates().split(":");
        assertEquals("group:artifact:version, not " + coordinates(), 3, gav.length);
        Path dir = dirFromProperty("proxyso.test.repo").resolve(gav[0].replace('.', '/'))
                .resolve(gav[1]).resolve(gav[2]);
        assertTrue("no version directory " + dir, Files.isDirectory(dir));
        return dir;
    }

    private static Path artifact(String suffix) {
        String[] gav = coordinates().split(":");
        Path file = versionDir().resolve(gav[1] + "-" + gav[2] + suffix);
        assertTrue("not published: " + file, Files.isRegularFile(file));
        return file;
    }

    private static String child(Element parent, String name) {
        NodeList nodes = parent.getElementsByTagName(name);
        assertTrue("the pom has no <" + name + "> in <" + parent.getTagName() + ">",
                nodes.getLength() > 0);
        String text = nodes.item(0).getTextContent().trim();
        assertTrue("the pom's <" + name + "> is empty", !text.isEmpty());
        return text;
    }

    @Test
    public void pomNamesTheProjectLicenseScmAndDevelopersAndNeedsNoDependency() throws Exception {
        String[] gav = coordinates().split(":");
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        Document pom = factory.newDocumentBuilder().parse(artifact(".pom").toFile());
        Element project = pom.getDocumentElement();
        assertEquals("project", project.getTagName());
        assertEquals(gav[0], child(project, "groupId"));
        assertEquals(gav[1], child(project, "artifactId"));
        assertEquals(gav[2], child(project, "version"));
        assertEquals("proxyso", child(project, "name"));
        assertTrue(child(project, "description").contains("native plugin libraries"));
        assertTrue(child(project, "url").startsWith("https://"));
        Element license = (Element) project.getElementsByTagName("license").item(0);
        assertNotNull("the pom has no <license>", license);
        assertEquals("Apache-2.0", child(license, "name"));
        assertEquals("https://www.apache.org/licenses/LICENSE-2.0.txt", child(license, "url"));
        Element scm = (Element) project.getElementsByTagName("scm").item(0);
        assertNotNull("the pom has no <scm>", scm);
        assertTrue(child(scm, "connection").startsWith("scm:git:"));
        assertTrue(child(scm, "url").startsWith("https://"));
        Element developer = (Element) project.getElementsByTagName("developer").item(0);
        assertNotNull("the pom has no <developer>", developer);
        child(developer, "name");
        // The jar needs nothing else at run time: a consumer gets no transitive dependency.
        assertEquals(0, project.getElementsByTagName("dependency").getLength());
    }

    @Test
    public void jarsHoldTheNativeLibraryTheWorkerTheSourcesAndTheJavadoc() throws IOException {
        try (ZipFile jar = new ZipFile(artifact(".jar").toFile())) {
            assertEntry(jar, "dev/proxyso/ProxySo.class");
            assertTrue("no libproxy.so in the jar", jar.stream()
                    .anyMatch(e -> e.getName().matches("dev/proxyso/native/[^/]+/libproxy\\.so")));
            assertTrue("no proxyso-worker in the jar", jar.stream().anyMatch(
                    e -> e.getName().matches("dev/proxyso/native/[^/]+/proxyso-worker")));
        }
        try (ZipFile sources = new ZipFile(artifact("-sources.jar").toFile())) {
            assertEntry(sources, "dev/proxyso/ProxySo.java");
            assertEntry(sources, "dev/proxyso/LibraryHandle.java");
            // Generated from src/jni/contract.rs, and part of the sources all the same.
            assertEntry(sources, "dev/proxyso/NativeContract.java");
        }
        try (ZipFile javadoc = new ZipFile(artifact("-javadoc.jar").toFile())) {
            assertEntry(javadoc, "index.html");
            assertEntry(javadoc, "dev/proxyso/ProxySo.html");
        }
    }

    private static void assertEntry(ZipFile zip, String name) {
        assertNotNull(zip.getName() + " has no " + name, zip.getEntry(name));
    }

    @Test
    public void freshGradleProjectBuildsOfflineAgainstTheRepositoryAndCallsAPlugin()
            throws Exception {
        Path repo = dirFromProperty("proxyso.test.repo");
        String jar = artifact(".jar").toRealPath().toString();
        String tmp = System.getProperty("proxyso.test.tmp");
        assertNotNull("system property proxyso.test.tmp is not set", tmp);
        Path consumer = Files.createTempDirectory(Files.createDirectories(Paths.get(tmp)),
                "consumer-");
        Path sources = Files.createDirectories(consumer.resolve("src/main/java/example"));
        write(consumer.resolve("settings.gradle"), "rootProject.name = 'consumer'\n");
        write(consumer.resolve("build.gradle"), String.join("\n",
                "apply plugin: 'java'",
                "sourceCompatibility = '1.8'",
                "targetCompatibility = '1.8'",
                "// Only the repository under test: the jar cannot come from anywhere else.",
                "repositories { maven { url " + groovy(repo.toUri().toString()) + " } }",
                "dependencies { implementation " + groovy(coordinates()) + " }",
                "task runMain(type: JavaExec) {",
                "    classpath = sourceSets.main.runtimeClasspath",
                "    if (gradle.gradleVersion.tokenize('.')[0].toInteger() >= 7) {",
                "        mainClass.set('example.Main')",
                "    } else {",
                "        main = 'example.Main'",
                "    }",
                "    jvmArgs '-Xcheck:jni'",
                "    systemProperty 'proxyso.tempdir', "
                        + groovy(System.getProperty("proxyso.tempdir")),
                "    systemProperty 'proxyso.snapshotDir', "
                        + groovy(System.getProperty("proxyso.snapshotDir")),
                "    args " + groovy(plugin(EXAMPLE_V1)),
                "}",
                ""));
        write(sources.resolve("Main.java"), String.join("\n",
                "package example;",
                "",
                "import dev.proxyso.ProxySo;",
                "",
                "public class Main {",
                "    public static void main(String[] args) {",
                "        System.out.println(\"jar=\" + ProxySo.class.getProtectionDomain()",
                "                .getCodeSource().getLocation().getPath());",
                "        System.out.println(\"generation=\"",
                "                + ProxySo.load(\"consumer\", args[0]));",
                "        System.out.println(\"version=\"",
                "                + ProxySo.call(\"consumer\", \"version\", \"\"));",
                "        System.out.println(\"echo=\" + ProxySo.call(\"consumer\", \"hello\"));",
                "        ProxySo.unload(\"consumer\");",
                "    }",
                "}",
                ""));

        List<String> command = new ArrayList<String>(Arrays.asList(gradle(), "--offline",
                "--no-daemon", "--console=plain", "-q", "--project-cache-dir",
                consumer.resolve(".gradle").toString(), "-p", consumer.toString(), "runMain"));
        long start = System.nanoTime();
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        Process process = builder.start();
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> copy(process.getInputStream(), output), "consumer-out");
        reader.start();
        if (!process.waitFor(CONSUMER_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            reader.join();
            fail("the consumer build took more than " + CONSUMER_TIMEOUT_SECONDS + " s: "
                    + describe(command, output));
        }
        reader.join();
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        String text = new String(output.toByteArray(), StandardCharsets.UTF_8);
        System.out.println("consumer build and run: " + millis + " ms");
        assertEquals(describe(command, output), 0, process.exitValue());
        List<String> lines = Arrays.asList(text.split("\n"));
        assertTrue(describe(command, output), lines.contains("jar=" + jar));
        assertTrue(describe(command, output), lines.contains("generation=1"));
        assertTrue(describe(command, output), lines.contains("version=1.0.0"));
        assertTrue(describe(command, output), lines.contains("echo=hello"));
        assertTrue("-Xcheck:jni reported JNI misuse: " + describe(command, output),
                !text.contains("WARNING in native method"));
        // Passed: the consumer is of no more use (a failed one stays, to look at).
        delete(consumer);
    }

    private static void delete(Path dir) throws IOException {
        List<Path> paths = new ArrayList<Path>();
        try (java.util.stream.Stream<Path> walk = Files.walk(dir)) {
            walk.forEach(paths::add);
        }
        for (int i = paths.size() - 1; i >= 0; i--) {
            Files.delete(paths.get(i));
        }
    }

    /** The gradle that runs this build (its home, from the build), or the one on the PATH. */
    private static String gradle() {
        String home = System.getProperty("proxyso.test.gradleHome", "");
        if (!home.isEmpty()) {
            File bin = new File(home, "bin/gradle");
            if (bin.canExecute()) {
                return bin.getAbsolutePath();
            }
        }
        return "gradle";
    }

    /** A Groovy single-quoted string literal. */
    private static String groovy(String text) {
        assertNotNull(text);
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    private static void write(Path file, String text) throws IOException {
        Files.write(file, text.getBytes(StandardCharsets.UTF_8));
    }

    private static void copy(InputStream in, ByteArrayOutputStream out) {
        byte[] buffer = new byte[8192];
        try {
            for (int n; (n = in.read(buffer)) >= 0; ) {
                synchronized (out) {
                    out.write(buffer, 0, n);
                }
            }
        } catch (IOException e) {
            synchronized (out) {
                byte[] note = ("\n(reading the output failed: " + e + ")\n")
                        .getBytes(StandardCharsets.UTF_8);
                out.write(note, 0, note.length);
            }
        }
    }

    private static String describe(List<String> command, ByteArrayOutputStream output) {
        String text;
        synchronized (output) {
            text = new String(output.toByteArray(), StandardCharsets.UTF_8);
        }
        return "command: " + String.join(" ", command) + "\n--- output ---\n" + text
                + "--- end of output ---";
    }
}
