package dev.proxyso.tools;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The command line of the demo, the soak and the benchmark: {@code --name value} or
 * {@code --name=value} options and {@code --flag} switches, each also settable as the system
 * property {@code <prefix>.<name>}. Unknown arguments and options without a value are refused when
 * it is built, so that a typo never runs with a default; {@code -h} or {@code --help} prints the
 * usage and exits.
 */
public final class CommandLine {
    private final String prefix;
    private final Map<String, String> values = new HashMap<String, String>();
    private final Map<String, Boolean> switches = new HashMap<String, Boolean>();
    private final Map<String, String> defaults = new HashMap<String, String>();

    /**
     * Reads {@code args}.
     *
     * @param usage the usage line printed for {@code --help}
     * @param prefix the system property prefix, for example {@code soak}
     * @param names the options that take a value
     * @param flags the switches that take none
     * @param args the arguments
     * @throws IllegalArgumentException on an unknown argument or an option without a value
     */
    public CommandLine(String usage, String prefix, List<String> names, List<String> flags,
            String[] args) {
        this.prefix = prefix;
        for (String flag : flags) {
            switches.put(flag, Boolean.getBoolean(prefix + "." + flag));
        }
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h") || arg.equals("--help")) {
                System.out.println("usage: " + usage);
                System.exit(0);
            }
            String name = arg.startsWith("--") ? arg.substring(2).replaceFirst("=.*", "") : "";
            if (flags.contains(name) && !arg.contains("=")) {
                switches.put(name, true);
            } else if (!names.contains(name)) {
                throw new IllegalArgumentException("unexpected argument " + arg + " (try --help)");
            } else if (arg.contains("=")) {
                values.put(name, arg.substring(arg.indexOf('=') + 1));
            } else if (i + 1 < args.length) {
                values.put(name, args[++i]);
            } else {
                throw new IllegalArgumentException(arg + " needs a value");
            }
        }
    }

    /**
     * Reads {@code args} with options only.
     *
     * @param usage the usage line printed for {@code --help}
     * @param prefix the system property prefix
     * @param names the options that take a value
     * @param args the arguments
     * @return the command line
     */
    public static CommandLine of(String usage, String prefix, String[] names, String[] args) {
        return new CommandLine(usage, prefix, Arrays.asList(names),
                Arrays.<String>asList(), args);
    }

    /**
     * Returns an option's value: from the command line, else the system property, else
     * {@code fallback}.
     *
     * @param name the option, without {@code --}
     * @param fallback the default
     * @return the value
     */
    public String get(String name, String fallback) {
        String value = values.get(name);
        if (value == null) {
            value = System.getProperty(prefix + "." + name, defaults.get(name));
        }
        return value != null ? value : fallback;
    }

    /**
     * Sets defaults that take the place of each {@code get}'s own fallback (for a mode such as
     * {@code --quick}); what the command line or a property gives still wins.
     *
     * @param pairs name and value pairs
     * @return this
     */
    public CommandLine withDefaults(String[][] pairs) {
        for (String[] pair : pairs) {
            defaults.put(pair[0], pair[1]);
        }
        return this;
    }

    /**
     * Returns an option's whole-number value, at least {@code least}.
     *
     * @param name the option, without {@code --}
     * @param fallback the default
     * @param least the smallest value allowed
     * @return the value
     * @throws IllegalArgumentException if it is not a number or smaller than {@code least}
     */
    public long getLong(String name, long fallback, long least) {
        String text = get(name, Long.toString(fallback));
        long value;
        try {
            value = Long.parseLong(text.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " takes a whole number, not " + text);
        }
        if (value < least) {
            throw new IllegalArgumentException("--" + name + " must be at least " + least);
        }
        return value;
    }

    /**
     * As {@link #getLong(String, long, long)}, for an {@code int}.
     *
     * @param name the option, without {@code --}
     * @param fallback the default
     * @param least the smallest value allowed
     * @return the value
     */
    public int getInt(String name, int fallback, int least) {
        long value = getLong(name, fallback, least);
        if (value > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("--" + name + " is too large: " + value);
        }
        return (int) value;
    }

    /**
     * Returns whether a switch was given (on the command line or as a {@code true} property).
     *
     * @param flag the switch, without {@code --}
     * @return true if it was given
     */
    public boolean has(String flag) {
        Boolean on = switches.get(flag);
        return on != null && on;
    }
}
