package dev.proxyso;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.management.InstanceAlreadyExistsException;
import javax.management.InstanceNotFoundException;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.MalformedObjectNameException;
import javax.management.ObjectName;

/**
 * One {@link LibraryMXBean} per loaded key in the platform MBean server: registered after a
 * successful {@code load}, unregistered after {@code unload}. JMX is a view: a failure to
 * register is logged and never fails the load.
 *
 * <p>The bean names only its key and reads {@link ProxySo#info(String)} on every attribute, so
 * one registered bean serves whatever is loaded under the key. A load and an unload of one key
 * racing each other must leave a bean exactly when the key is loaded: both change the
 * registration under one lock, and the unregistering side checks that the key is still not
 * loaded.
 */
final class LibraryBeans {
    private static final Logger LOG = Logger.getLogger(LogBridge.PROXY_LOGGER);
    private static final Object LOCK = new Object();

    private LibraryBeans() {
    }

    /**
     * The bean's name.
     *
     * @param key the key
     * @return {@code dev.proxyso:type=Library,key="<key, quoted>"}
     */
    static ObjectName name(String key) {
        try {
            return new ObjectName("dev.proxyso:type=Library,key=" + ObjectName.quote(key));
        } catch (MalformedObjectNameException e) {
            // ObjectName.quote makes any text a valid value.
            throw new IllegalStateException("no ObjectName for key '" + Text.shown(key) + "'", e);
        }
    }

    /** Registers the key's bean unless it is registered already or the key is not loaded. */
    static void register(String key) {
        try {
            ObjectName name = name(key);
            MBeanServer server = ManagementFactory.getPlatformMBeanServer();
            synchronized (LOCK) {
                if (!server.isRegistered(name) && NativeBridge.isLoaded(key)) {
                    server.registerMBean(new Bean(key), name);
                }
            }
        } catch (InstanceAlreadyExistsException raced) {
            // Someone else's bean under our name; leave it.
            LOG.log(Level.FINE, "a bean named for key '" + Text.shown(key) + "' exists already",
                    raced);
        } catch (JMException | RuntimeException | LinkageError e) {
            LOG.log(Level.WARNING, "cannot register the JMX bean of key '" + Text.shown(key)
                    + "'", e);
        }
    }

    /** Unregisters the key's bean, if it has one and the key is not loaded (again). */
    static void unregister(String key) {
        try {
            ObjectName name = name(key);
            MBeanServer server = ManagementFactory.getPlatformMBeanServer();
            synchronized (LOCK) {
                if (server.isRegistered(name) && !NativeBridge.isLoaded(key)) {
                    server.unregisterMBean(name);
                }
            }
        } catch (InstanceNotFoundException gone) {
            // Unregistered by someone else meanwhile: what we wanted.
        } catch (JMException | RuntimeException | LinkageError e) {
            LOG.log(Level.WARNING, "cannot unregister the JMX bean of key '"
                    + Text.shown(key) + "'", e);
        }
    }

    /** The bean: each attribute a fresh {@link NativeBridge#info(String)}. */
    static final class Bean implements LibraryMXBean {
        private final String key;

        Bean(String key) {
            this.key = key;
        }

        private LibraryInfo info() {
            LibraryInfo info = NativeBridge.info(key);
            if (info == null) {
                throw new IllegalStateException("no library is loaded under key '"
                        + Text.shown(key) + "'");
            }
            return info;
        }

        @Override
        public String getKey() {
            return key;
        }

        @Override
        public long getGeneration() {
            return info().getGeneration();
        }

        @Override
        public String getPath() {
            return info().getPath();
        }

        @Override
        public String getSha256() {
            return info().getSha256();
        }

        @Override
        public String getPluginName() {
            return info().getName();
        }

        @Override
        public String getPluginVersion() {
            return info().getVersion();
        }

        @Override
        public long getCalls() {
            return info().getStats().getCalls();
        }

        @Override
        public long getFailedCalls() {
            return info().getStats().getFailedCalls();
        }

        @Override
        public long getInFlight() {
            return info().getStats().getInFlight();
        }

        @Override
        public long getTotalCallNanos() {
            return info().getStats().getTotalCallNanos();
        }

        @Override
        public long getMaxCallNanos() {
            return info().getStats().getMaxCallNanos();
        }

        @Override
        public long getMeanCallNanos() {
            return info().getStats().getMeanCallNanos();
        }

        @Override
        public long getLoadNanos() {
            List<GenerationStats> generations = info().getGenerations();
            return generations.isEmpty() ? 0 : generations.get(0).getLoadNanos();
        }

        @Override
        public long getReplacements() {
            return info().getStats().getReplacements();
        }

        @Override
        public long getRollbacks() {
            return info().getStats().getRollbacks();
        }

        @Override
        public String getLastError() {
            return info().getStats().getLastError();
        }

        @Override
        public String getCallPath() {
            return CallPath.name();
        }

        @Override
        public int getKeepVersions() {
            return info().getKeepVersions();
        }

        @Override
        public long getRetiredVersions() {
            return info().getRetiredVersions();
        }

        @Override
        public long getPinnedVersions() {
            return info().getPinnedVersions();
        }

        @Override
        public long getDestroysRunning() {
            return info().getDestroysRunning();
        }

        @Override
        public long getSlowDestroys() {
            return info().getSlowDestroys();
        }

        @Override
        public boolean isIsolated() {
            return info().isIsolated();
        }

        @Override
        public int getWorkerPid() {
            return info().getWorkerPid();
        }

        @Override
        public long getCrashes() {
            return info().getStats().getCrashes();
        }
    }
}
