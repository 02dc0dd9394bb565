package dev.proxyso;

import static dev.proxyso.TestSupport.FIXTURE;
import static dev.proxyso.TestSupport.fixture;
import static dev.proxyso.TestSupport.mappingsOf;
import static dev.proxyso.TestSupport.utf8;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import org.junit.Rule;
import org.junit.Test;

/**
 * Control operations racing on the same keys: 8 threads each run 200 operations chosen at random
 * (load, replace, unload, call, info, and a load or replace whose init fails) on one key, then on
 * two. Every operation must succeed or throw exactly its documented exception, and the whole
 * history must be explainable by some order of the operations that agrees with real time.
 *
 * <p>Each load or replace hands the fixture a tag no other operation uses, and the default method
 * answers it, so every answer names the operation that loaded the version it came from. Each
 * operation's interval [start, end] is recorded with {@link System#nanoTime()}. An operation
 * takes effect at some instant inside its interval, so for an operation C, a state-changing
 * operation X (a successful load, replace or unload) can have produced the state C saw only if X
 * began before C ended and no other state-changing operation lies wholly between the end of X and
 * the start of C. Checked for every operation:
 *
 * <ul>
 *   <li>a call's answer comes from the load or replace whose tag it is, and that one could have
 *       been the latest; never from a load or replace that failed;
 *   <li>a successful load, an unload returning {@code false}, a {@link NoSuchLibraryException} and
 *       a {@code null} info need a possible predecessor that left the key unloaded (or the
 *       start); a {@link LibraryExistsException}, a successful replace, an unload returning
 *       {@code true} and an info need one that left it loaded, the info one of the same
 *       generation;
 *   <li>a load returns generation 1, a replace a larger one, and two replaces in real-time order
 *       with no load that could have come between them return increasing generations;
 *   <li>after every thread has joined: {@code info} and a final call agree, and match a possible
 *       last operation; every retired version is closed and unmapped.
 * </ul>
 *
 * <p>These are necessary conditions of a linearizable history, so a correct registry never fails
 * them however the threads are scheduled. The seed is printed on failure; set
 * {@code -Dproxyso.test.seed=N} to run with it again (the schedule still differs).
 */
public class ConcurrentControlTest {
    private static final int THREADS = 8;
    private static final int OPS_PER_THREAD = 200;
    private static final byte[] FAILING_INIT = utf8("fail-init");

    @Rule
    public final Keys keys = new Keys();

    /** The kinds of operation, with their weights in the random choice. */
    private enum Kind {
        LOAD(20), REPLACE(20), UNLOAD(15), CALL(25), INFO(10), BAD_LOAD(5), BAD_REPLACE(5);

        final int weight;

        Kind(int weight) {
            this.weight = weight;
        }

        static Kind pick(Random random) {
            int total = 0;
            for (Kind kind : values()) {
                total += kind.weight;
            }
            int n = random.nextInt(total);
            for (Kind kind : values()) {
                n -= kind.weight;
                if (n < 0) {
                    return kind;
                }
            }
            throw new AssertionError();
        }
    }

    /** One operation as it happened. */
    private static final class Op {
        final String key;
        final Kind kind;
        /** The tag a load or replace gave its version. */
        final String tag;
        long start;
        long end;
        /** Whether a load or replace returned, or an unload returned true. */
        boolean changed;
        /** An unload that returned false. */
        boolean unloadedNothing;
        long generation;
        /** A call's answer, or null. */
        String answer;
        LibraryInfo info;
        Throwable error;

        Op(String key, Kind kind, String tag) {
            this.key = key;
            this.kind = kind;
            this.tag = tag;
        }

        /** Whether this op is a successful load or replace: it left the key loaded. */
        boolean leftLoaded() {
            return changed && kind != Kind.UNLOAD;
        }

        /** Whether this op is an unload that removed the key. */
        boolean leftUnloaded() {
            return changed && kind == Kind.UNLOAD;
        }

        @Override
        public String toString() {
            String outcome = error != null ? error.getClass().getSimpleName()
                    : kind == Kind.CALL ? "answer " + answer
                    : kind == Kind.INFO ? (info == null ? "null" : "gen " + info.getGeneration())
                    : kind == Kind.UNLOAD ? String.valueOf(changed)
                    : "gen " + generation;
            return kind + (tag != null ? " " + tag : "") + " [" + start + ", " + end + "] -> "
                    + outcome;
        }
    }

    @Test
    public void eightThreadsRacingOnOneKey() throws Exception {
        race(keys.next("race"));
    }

    @Test
    public void eightThreadsRacingOnTwoKeys() throws Exception {
        race(keys.next("race-a"), keys.next("race-b"));
    }

    /** A finished op for the checker's own test. */
    private static Op op(Kind kind, String tag, long start, long end) {
        Op op = new Op("k", kind, tag);
        op.start = start;
        op.end = end;
        return op;
    }

    private static Op loaded(Kind kind, String tag, long start, long end, long generation) {
        Op op = op(kind, tag, start, end);
        op.changed = true;
        op.generation = generation;
        return op;
    }

    private static Op answered(String answer, long start, long end) {
        Op op = op(Kind.CALL, null, start, end);
        op.answer = answer;
        return op;
    }

    private static Op unloaded(boolean removed, long start, long end) {
        Op op = op(Kind.UNLOAD, null, start, end);
        op.changed = removed;
        op.unloadedNothing = !removed;
        return op;
    }

    private static List<String> violationsOf(Op... history) {
        List<String> violations = new ArrayList<String>();
        check("k", Arrays.asList(history), violations);
        return violations;
    }

    @Test
    public void theCheckerAcceptsPossibleHistoriesAndRejectsImpossibleOnes() {
        // Sequential and possible: load, call, replace, call, unload, call fails, load again.
        Op gone = op(Kind.CALL, null, 60, 70);
        gone.error = new NoSuchLibraryException("no library is loaded under key 'k'", "k");
        assertEquals(Collections.<String>emptyList(), violationsOf(
                loaded(Kind.LOAD, "a", 0, 10, 1), answered("a", 11, 20),
                loaded(Kind.REPLACE, "b", 21, 30, 2), answered("b", 31, 40),
                unloaded(true, 41, 50), gone, loaded(Kind.LOAD, "c", 71, 80, 1),
                answered("c", 81, 90)));
        // Overlapping: a call during a replace may answer from either version.
        assertEquals(Collections.<String>emptyList(), violationsOf(
                loaded(Kind.LOAD, "a", 0, 10, 1), loaded(Kind.REPLACE, "b", 20, 40, 2),
                answered("a", 25, 35), answered("b", 26, 36)));
        // A stale answer: "a" was replaced by "b" before the call began.
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 1),
                loaded(Kind.REPLACE, "b", 20, 30, 2), answered("a", 40, 50)).size());
        // An answer from a version that failed to load.
        Op failed = op(Kind.LOAD, "x", 20, 30);
        failed.error = new LibraryExistsException("a library is already loaded under key 'k'",
                "k");
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 1), failed,
                answered("x", 40, 50)).size());
        // A load that succeeds although the key was loaded and never unloaded.
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 1),
                loaded(Kind.LOAD, "b", 20, 30, 1)).size());
        // An unload that finds nothing right after a load.
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 1),
                unloaded(false, 20, 30)).size());
        // Generations that go backwards within one incarnation.
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 1),
                loaded(Kind.REPLACE, "b", 20, 30, 3), loaded(Kind.REPLACE, "c", 40, 50, 2))
                .size());
        // A load that returns a generation other than 1.
        assertEquals(1, violationsOf(loaded(Kind.LOAD, "a", 0, 10, 2)).size());
    }

    private void race(final String... raceKeys) throws Exception {
        final long seed = Long.getLong("proxyso.test.seed", System.nanoTime());
        final String path = fixture(FIXTURE);
        final List<List<Op>> perThread = new ArrayList<List<Op>>();
        final CyclicBarrier go = new CyclicBarrier(THREADS);
        final Throwable[] crashed = new Throwable[THREADS];
        List<Thread> threads = new ArrayList<Thread>();
        for (int t = 0; t < THREADS; t++) {
            final int id = t;
            final List<Op> ops = new ArrayList<Op>();
            perThread.add(ops);
            Thread thread = new Thread(new Runnable() {
                @Override
                public void run() {
                    Random random = new Random(seed + id);
                    try {
                        go.await();
                        for (int i = 0; i < OPS_PER_THREAD; i++) {
                            String key = raceKeys[random.nextInt(raceKeys.length)];
                            Kind kind = Kind.pick(random);
                            ops.add(perform(key, kind, "t" + id + "-" + i, path));
                        }
                    } catch (Throwable e) {
                        crashed[id] = e;
                    }
                }
            }, "race-" + t);
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join(120_000);
            assertTrue(thread.getName() + " is stuck (seed " + seed + ")", !thread.isAlive());
        }
        for (int t = 0; t < THREADS; t++) {
            if (crashed[t] != null) {
                throw new AssertionError("race-" + t + " failed (seed " + seed + ")", crashed[t]);
            }
        }

        List<String> violations = new ArrayList<String>();
        Set<String> snapshots = new LinkedHashSet<String>();
        Map<String, Integer> tally = new TreeMap<String, Integer>();
        for (String key : raceKeys) {
            List<Op> history = new ArrayList<Op>();
            for (List<Op> ops : perThread) {
                for (Op op : ops) {
                    if (op.key.equals(key)) {
                        String outcome = op.kind + " " + outcome(op);
                        tally.put(outcome, tally.containsKey(outcome) ? tally.get(outcome) + 1 : 1);
                        history.add(op);
                        if (op.info != null) {
                            snapshots.add(op.info.getSnapshotPath());
                        }
                    }
                }
            }
            // The final state, read after every thread joined, is checked like any other read.
            history.add(perform(key, Kind.INFO, null, path));
            history.add(perform(key, Kind.CALL, null, path));
            Op finalInfo = history.get(history.size() - 2);
            Op finalCall = history.get(history.size() - 1);
            if ((finalInfo.info == null) != (finalCall.error instanceof NoSuchLibraryException)) {
                violations.add(key + ": after the race info says " + finalInfo
                        + " but a call says " + finalCall);
            }
            if (finalInfo.info != null) {
                snapshots.add(finalInfo.info.getSnapshotPath());
            }
            check(key, history, violations);
        }
        if (!violations.isEmpty()) {
            fail(violations.size() + " violations (seed " + seed + ", -Dproxyso.test.seed="
                    + seed + "; outcomes " + tally + "), the first:\n  "
                    + String.join("\n  ", violations.subList(0, Math.min(20, violations.size()))));
        }
        // The race really raced: every outcome of every kind happened.
        for (String outcome : Arrays.asList("LOAD ok", "LOAD LibraryExistsException",
                "REPLACE ok", "REPLACE NoSuchLibraryException", "UNLOAD true", "UNLOAD false",
                "CALL ok", "CALL NoSuchLibraryException", "INFO ok", "INFO null",
                "BAD_LOAD LibraryLoadException", "BAD_REPLACE LibraryLoadException")) {
            assertTrue("seed " + seed + ": no '" + outcome + "' among " + tally,
                    tally.containsKey(outcome));
        }

        // Nothing left behind: unload, wait, and no version seen during the race is mapped.
        for (String key : raceKeys) {
            ProxySo.unload(key);
            assertTrue(ProxySo.awaitRetired(key, 30, TimeUnit.SECONDS));
        }
        for (String snapshot : snapshots) {
            assertEquals("seed " + seed + ": retired snapshot still mapped",
                    Collections.<String>emptyList(), mappingsOf(snapshot));
        }
    }

    /** The outcome of an op in a word, for the tally. */
    private static String outcome(Op op) {
        if (op.error != null) {
            return op.error.getClass().getSimpleName();
        }
        if (op.kind == Kind.UNLOAD) {
            return String.valueOf(op.changed);
        }
        return op.kind == Kind.INFO && op.info == null ? "null" : "ok";
    }

    /** Runs one operation, recording its interval and outcome; unexpected exceptions included. */
    private static Op perform(String key, Kind kind, String tag, String path) {
        Op op = new Op(key, kind, kind == Kind.LOAD || kind == Kind.REPLACE ? tag : null);
        op.start = System.nanoTime();
        try {
            switch (kind) {
                case LOAD:
                    op.generation = ProxySo.load(key, path, utf8(tag));
                    op.changed = true;
                    break;
                case REPLACE:
                    op.generation = ProxySo.replace(key, path, utf8(tag));
                    op.changed = true;
                    break;
                case UNLOAD:
                    op.changed = ProxySo.unload(key);
                    op.unloadedNothing = !op.changed;
                    break;
                case CALL:
                    op.answer = ProxySo.call(key, "");
                    break;
                case INFO:
                    op.info = ProxySo.info(key);
                    break;
                case BAD_LOAD:
                    ProxySo.load(key, path, FAILING_INIT);
                    op.changed = true;
                    break;
                case BAD_REPLACE:
                    ProxySo.replace(key, path, FAILING_INIT);
                    op.changed = true;
                    break;
                default:
                    throw new AssertionError(kind);
            }
        } catch (RuntimeException | Error e) {
            op.error = e;
        }
        op.end = System.nanoTime();
        return op;
    }

    /** Checks every op of one key's history; adds what is wrong to {@code violations}. */
    private static void check(String key, List<Op> history, List<String> violations) {
        List<Op> writes = new ArrayList<Op>();
        Map<String, Op> byTag = new HashMap<String, Op>();
        List<Op> loads = new ArrayList<Op>();
        for (Op op : history) {
            if (op.changed) {
                writes.add(op);
            }
            if (op.leftLoaded()) {
                byTag.put(op.tag, op);
                if (op.kind == Kind.LOAD) {
                    loads.add(op);
                }
            }
        }
        for (Op op : history) {
            String problem = outcomeProblem(key, op);
            if (problem == null) {
                problem = predecessorProblem(op, writes, byTag);
            }
            if (problem != null) {
                violations.add(key + ": " + op + ": " + problem);
            }
        }
        // Generations grow within one incarnation of the key.
        for (Op first : writes) {
            for (Op second : writes) {
                if (!first.leftLoaded() || second.kind != Kind.REPLACE || !second.changed
                        || first.end >= second.start || first.generation < second.generation) {
                    continue;
                }
                boolean loadBetween = false;
                for (Op load : loads) {
                    if (load != first && load.start < second.end && load.end > first.start) {
                        loadBetween = true;
                        break;
                    }
                }
                if (!loadBetween) {
                    violations.add(key + ": " + second + " returned a generation not larger than "
                            + first + ", which ended before it began, with no load between");
                }
            }
        }
    }

    /** Whether the op ended as documented for its kind, in itself; null if it did. */
    private static String outcomeProblem(String key, Op op) {
        Throwable e = op.error;
        if (e instanceof ProxySoException) {
            ProxySoException p = (ProxySoException) e;
            if (!key.equals(p.getKey()) || !p.getMessage().contains(key)) {
                return "exception does not name the key: " + e;
            }
        }
        switch (op.kind) {
            case LOAD:
                if (e == null) {
                    return op.generation == 1 ? null : "load returned generation " + op.generation;
                }
                return e instanceof LibraryExistsException ? null : "unexpected " + describe(e);
            case REPLACE:
                if (e == null) {
                    return op.generation >= 2 ? null
                            : "replace returned generation " + op.generation;
                }
                return e instanceof NoSuchLibraryException ? null : "unexpected " + describe(e);
            case UNLOAD:
            case INFO:
                return e == null ? null : "unexpected " + describe(e);
            case CALL:
                if (e == null) {
                    return op.answer != null ? null : "null answer";
                }
                return e instanceof NoSuchLibraryException ? null : "unexpected " + describe(e);
            case BAD_LOAD:
                return e instanceof LibraryLoadException || e instanceof LibraryExistsException
                        ? null : "a load whose init fails ended with " + describe(e);
            case BAD_REPLACE:
                return e instanceof LibraryLoadException || e instanceof NoSuchLibraryException
                        ? null : "a replace whose init fails ended with " + describe(e);
            default:
                return "unknown kind";
        }
    }

    /**
     * Whether some state-changing op (or the start) that could have been the latest before
     * {@code op} took effect explains its outcome; null if one does.
     */
    private static String predecessorProblem(Op op, List<Op> writes, Map<String, Op> byTag) {
        // Every write that ended before op began took effect before it; the latest-starting of
        // them bounds how early a possible predecessor may end.
        long bound = Long.MIN_VALUE;
        for (Op write : writes) {
            if (write.end < op.start) {
                bound = Math.max(bound, write.start);
            }
        }
        boolean startPossible = bound == Long.MIN_VALUE;
        if (op.kind == Kind.CALL && op.error == null) {
            Op source = byTag.get(op.answer);
            if (source == null) {
                return "the answer is no tag of a successful load or replace of this key";
            }
            return possible(source, op, bound) ? null
                    : "the answer comes from " + source + ", which cannot have been the latest";
        }
        Boolean needLoaded = null;
        long needGeneration = -1;
        Throwable e = op.error;
        if (e instanceof NoSuchLibraryException || op.unloadedNothing
                || (op.kind == Kind.LOAD && e == null)
                || (op.kind == Kind.INFO && op.info == null && e == null)) {
            needLoaded = Boolean.FALSE;
        } else if (e instanceof LibraryExistsException || (op.kind == Kind.REPLACE && e == null)
                || (op.kind == Kind.UNLOAD && op.changed)) {
            needLoaded = Boolean.TRUE;
        } else if (op.kind == Kind.INFO && op.info != null) {
            needLoaded = Boolean.TRUE;
            needGeneration = op.info.getGeneration();
        }
        if (needLoaded == null) {
            return null;
        }
        if (!needLoaded && startPossible) {
            return null;
        }
        for (Op write : writes) {
            if (write != op && possible(write, op, bound)
                    && write.leftLoaded() == needLoaded
                    && (needGeneration < 0 || write.generation == needGeneration)) {
                return null;
            }
        }
        return "no operation that could have been the latest before it left the key "
                + (needLoaded ? "loaded" + (needGeneration < 0 ? "" : " at that generation")
                        : "unloaded");
    }

    /** Whether {@code write} can have been the latest state change before {@code op}. */
    private static boolean possible(Op write, Op op, long bound) {
        return write != op && write.start < op.end && write.end >= bound;
    }

    private static String describe(Throwable e) {
        return e == null ? "success" : e.toString();
    }
}
