package dev.proxyso;

import java.util.Arrays;

/**
 * A previous version a key keeps for {@link ProxySo#rollback(String)}: an immutable snapshot, part
 * of a {@link LibraryInfo}. What a rollback opens again is the version's kept private copy, never
 * the path, so overwriting or deleting the file since changes nothing.
 *
 * <p>Thread-safety: immutable, so safe to share between threads. Exceptions: its methods throw
 * none.
 */
public final class PreviousVersion {
    private final long generation;
    private final String path;
    private final String sha256;

    PreviousVersion(long generation, String path, String sha256) {
        this.generation = generation;
        this.path = path;
        this.sha256 = sha256;
    }

    /**
     * Returns the generation the version had while it served (a rollback gives it a new one).
     *
     * @return the generation
     */
    public long getGeneration() {
        return generation;
    }

    /**
     * Returns the source path the version was loaded from, as it was given.
     *
     * @return the source path
     */
    public String getPath() {
        return path;
    }

    /**
     * Returns the SHA-256 digest of the version's file as it was loaded.
     *
     * @return 64 lower-case hexadecimal digits
     */
    public String getSha256() {
        return sha256;
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof PreviousVersion)) {
            return false;
        }
        PreviousVersion that = (PreviousVersion) other;
        return generation == that.generation
                && (path == null ? that.path == null : path.equals(that.path))
                && (sha256 == null ? that.sha256 == null : sha256.equals(that.sha256));
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {generation, path, sha256});
    }

    @Override
    public String toString() {
        return "PreviousVersion{generation=" + generation + ", path=" + path + ", sha256=" + sha256
                + "}";
    }
}
