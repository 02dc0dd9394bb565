package dev.proxyso;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a main class in a child JVM, for what must not happen in the test JVM (a crash on purpose,
 * a signal handler left changed, {@code System.exit}) or must not be disturbed by other tests (the
 * soak's measurements). The child gets {@code -Xcheck:jni} and the proxyso system properties of
 * the test JVM; its standard output and error are collected together.
 */
final class ChildJvm {
    /** The system properties passed on to the child, when the test JVM has them. */
    private static final String[] PROPERTIES = {
        "proxyso.plugins.dir", "proxyso.fixtures.dir", "proxyso.release.dir", "proxyso.tempdir",
        "proxyso.snapshotDir", "proxyso.test.tmp", "proxyso.worker",
    };

    /** How a child JVM ended. */
    static final class Result {
        /** The exit code; meaningless if the child had to be killed. */
        final int exitCode;
        /** Standard output and error, interleaved. */
        final String output;
        /** The command line, for messages. */
        final List<String> command;

        Result(int exitCode, String output, List<String> command) {
            this.exitCode = exitCode;
            this.output = output;
            this.command = command;
        }

        /** Everything a failed assertion should show. */
        String describe() {
            return "child JVM exited with " + exitCode + "\ncommand: " + String.join(" ", command)
                    + "\n--- output ---\n" + output + "--- end of output ---";
        }

        /** Fails if -Xcheck:jni reported misuse in the child. */
        void assertNoJniWarnings() {
            assertFalse("-Xcheck:jni reported JNI misuse in the child: " + describe(),
                    output.contains("WARNING in native method"));
        }
    }

    /**
     * A JVM option that keeps {@link #run} from enabling native access on JDK 22 and later: the
     * child runs as a service started without {@code --enable-native-access} would.
     */
    static final String NO_NATIVE_ACCESS = "-Dproxyso.test.nativeAccess=none";

    private ChildJvm() {
    }

    /** The class path of the test JVM: the jar, the test classes and JUnit. */
    /** The running JDK's feature release: 8 for "1.8", 17 for "17". */
    static int feature() {
        String version = System.getProperty("java.specification.version", "1.8");
        String major = version.startsWith("1.") ? version.substring(2) : version;
        int dot = major.indexOf('.');
        return Integer.parseInt(dot < 0 ? major : major.substring(0, dot));
    }

    static String testClassPath() {
        return System.getProperty("java.class.path");
    }

    /**
     * Runs {@code mainClass} and waits for it; a child still running after {@code timeoutSeconds}
     * is killed and fails the test.
     */
    static Result run(long timeoutSeconds, String classPath, List<String> jvmOptions,
            String mainClass, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<String>();
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xcheck:jni");
        if (feature() >= 22 && !jvmOptions.contains(NO_NATIVE_ACCESS)) {
            // As a service on a current JDK would run: no restricted-method warning.
            command.add("--enable-native-access=ALL-UNNAMED");
        }
        for (String property : PROPERTIES) {
            String value = System.getProperty(property);
            if (value != null) {
                command.add("-D" + property + "=" + value);
            }
        }
        command.addAll(jvmOptions);
        command.add("-cp");
        command.add(classPath);
        command.add(mainClass);
        command.addAll(Arrays.asList(args));

        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        process.getOutputStream().close();
        final InputStream in = process.getInputStream();
        final ByteArrayOutputStream collected = new ByteArrayOutputStream();
        Thread reader = new Thread(new Runnable() {
            @Override
            public void run() {
                byte[] buffer = new byte[8192];
                try {
                    int n;
                    while ((n = in.read(buffer)) > 0) {
                        synchronized (collected) {
                            collected.write(buffer, 0, n);
                        }
                    }
                } catch (IOException ignored) {
                    // The child was killed: what was read so far is what there is.
                }
            }
        }, "child-jvm-output");
        reader.start();
        boolean finished = process.waitFor(timeoutSeconds, TimeUnit.SECONDS);
        if (!finished) {
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
        reader.join(30_000);
        String output;
        synchronized (collected) {
            output = new String(collected.toByteArray(), StandardCharsets.UTF_8);
        }
        Result result = new Result(finished ? process.exitValue() : -1, output, command);
        if (!finished) {
            fail("child JVM still running after " + timeoutSeconds + " s, killed: "
                    + result.describe());
        }
        return result;
    }
}
