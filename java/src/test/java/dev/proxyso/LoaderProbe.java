package dev.proxyso;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Run in a child JVM by {@link NativeLoaderTest}: uses the API twice and prints what happened, one
 * fact a line, and which {@code libproxy} files are mapped ({@code mapped: PATH}). For each one it
 * prints the owner and mode of the mapped file itself, read through {@code /proc/self/map_files}
 * even though it is deleted ({@code mapped-file: uid=U mode=M}), and of the directory it was in,
 * with that directory's entries ({@code private-dir: DIR uid=U mode=M entries=[...]}). With the
 * arguments {@code --extract RESOURCE} it then extracts that resource as an executable with
 * {@link NativeLoader#extract(String, boolean)}, prints {@code extracted: PATH uid=U mode=M} and
 * runs it ({@code ran: OUTPUT}). With {@code --then-link-to TARGET} (or
 * {@code --then-dir-of USER}) after those, it first removes the private directory, puts a link to
 * TARGET (a directory owned by USER) in its place and extracts the resource again
 * ({@code extracted again: PATH uid=U mode=M}).
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
        List<String> printed = new ArrayList<String>();
        for (String line : Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8)) {
            int at = line.indexOf('/');
            if (at < 0 || !line.contains("libproxy")) {
                continue;
            }
            String path = line.substring(at);
            System.out.println("mapped: " + path);
            if (printed.contains(path)) {
                continue;
            }
            printed.add(path);
            String range = line.substring(0, line.indexOf(' '));
            // Follows the magic link to the mapped inode, deleted or not.
            System.out.println("mapped-file: " + describe(Paths.get("/proc/self/map_files", range),
                    true));
            Path dir = Paths.get(path.replace(" (deleted)", "")).getParent();
            if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                TreeSet<String> entries = new TreeSet<String>();
                try (Stream<Path> list = Files.list(dir)) {
                    list.forEach(p -> entries.add(p.getFileName().toString()));
                }
                System.out.println("private-dir: " + dir + " " + describe(dir, false)
                        + " entries=" + entries);
            }
        }
        if (args.length >= 2 && args[0].equals("--extract")) {
            Path extracted = NativeLoader.extract(args[1], true);
            System.out.println("extracted: " + extracted + " " + describe(extracted, false));
            if (args.length == 4 && (args[2].equals("--then-link-to")
                    || args[2].equals("--then-dir-of"))) {
                // As a /tmp cleaner and then another user might: the private directory goes, and
                // a link to somewhere else, or a directory of that user, takes its name.
                Path dir = extracted.getParent();
                Files.delete(extracted);
                Files.delete(dir);
                if (args[2].equals("--then-link-to")) {
                    Files.createSymbolicLink(dir, Paths.get(args[3]));
                } else {
                    Files.createDirectory(dir);
                    Files.setOwner(dir, dir.getFileSystem().getUserPrincipalLookupService()
                            .lookupPrincipalByName(args[3]));
                }
                Path again = NativeLoader.extract(args[1], true);
                System.out.println("extracted again: " + again + " " + describe(again, false));
                extracted = again;
            }
            Process process = new ProcessBuilder(extracted.toString()).redirectErrorStream(true)
                    .start();
            process.getOutputStream().close();
            InputStream in = process.getInputStream();
            ByteArrayOutputStream output = new ByteArrayOutputStream();
            byte[] buffer = new byte[4096];
            int n;
            while ((n = in.read(buffer)) > 0) {
                output.write(buffer, 0, n);
            }
            System.out.println("ran: exit " + process.waitFor() + " "
                    + new String(output.toByteArray(), StandardCharsets.UTF_8).trim());
        }
    }

    private static String describe(Path path, boolean follow) throws Exception {
        Map<String, Object> attributes = follow
                ? Files.readAttributes(path, "unix:uid,mode")
                : Files.readAttributes(path, "unix:uid,mode", LinkOption.NOFOLLOW_LINKS);
        return "uid=" + attributes.get("uid") + " mode="
                + String.format("%04o", ((Integer) attributes.get("mode")) & 07777);
    }
}
