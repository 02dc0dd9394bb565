package dev.proxyso;

import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.runner.Description;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunListener;

/**
 * Runs every JUnit test class of a directory and prints a line per test, as Gradle's test task
 * does, then {@code java: N passed, N failed, N skipped}: the suite on a JDK that Debian's Gradle
 * 4.4 cannot run its test workers on (it installs a security manager, which JDK 24 and later
 * refuse). {@code gradle test} runs it on the newest JDK 22 or later it finds.
 */
public final class SuiteRunner {
    private SuiteRunner() {
    }

    /**
     * Runs the suite.
     *
     * @param args the test classes directory
     * @throws Exception if a test class cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        File root = new File(args[0]);
        List<String> names = new ArrayList<String>();
        collect(root, root, names);
        Collections.sort(names);
        List<Class<?>> classes = new ArrayList<Class<?>>();
        for (String name : names) {
            classes.add(Class.forName(name));
        }
        final int[] counts = new int[3];
        final List<Failure> failures = new ArrayList<Failure>();
        JUnitCore core = new JUnitCore();
        core.addListener(new RunListener() {
            private Description failed;

            @Override
            public void testFailure(Failure failure) {
                failed = failure.getDescription();
                failures.add(failure);
                counts[1]++;
                System.out.println(name(failure.getDescription()) + " FAILED");
                System.out.println(failure.getTrace());
            }

            @Override
            public void testAssumptionFailure(Failure failure) {
                failed = failure.getDescription();
                counts[2]++;
                System.out.println(name(failure.getDescription()) + " SKIPPED");
            }

            @Override
            public void testIgnored(Description description) {
                counts[2]++;
                System.out.println(name(description) + " SKIPPED");
            }

            @Override
            public void testFinished(Description description) {
                if (!description.equals(failed)) {
                    counts[0]++;
                    System.out.println(name(description) + " PASSED");
                }
                System.out.flush();
            }
        });
        Result result = core.run(classes.toArray(new Class<?>[0]));
        // Again at the end, where a long log is read first: which tests failed, and why.
        for (Failure failure : failures) {
            String message = String.valueOf(failure.getMessage());
            int newline = message.indexOf('\n');
            System.out.println("failed: " + name(failure.getDescription()) + ": "
                    + (newline < 0 ? message : message.substring(0, newline)));
        }
        System.out.println("java: " + counts[0] + " passed, " + counts[1] + " failed, "
                + counts[2] + " skipped (JDK " + System.getProperty("java.version") + ")");
        System.exit(result.wasSuccessful() && counts[0] > 0 ? 0 : 1);
    }

    private static String name(Description description) {
        return description.getClassName() + " > " + description.getMethodName();
    }

    /** The classes named {@code *Test} below {@code dir}, not nested ones. */
    private static void collect(File root, File dir, List<String> names) {
        File[] entries = dir.listFiles();
        if (entries == null) {
            return;
        }
        for (File entry : entries) {
            if (entry.isDirectory()) {
                collect(root, entry, names);
            } else if (entry.getName().endsWith("Test.class") && !entry.getName().contains("$")) {
                String relative = root.toURI().relativize(entry.toURI()).getPath();
                names.add(relative.substring(0, relative.length() - ".class".length())
                        .replace('/', '.'));
            }
        }
    }
}
