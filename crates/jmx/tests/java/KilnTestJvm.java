// A JVM for kiln-jmx-exporter's tests: it serves its own MBeans through the two bridges the
// exporter reads, on one JDK HTTP server.
//
//   /jolokia/      Jolokia 1.7.1's protocol handler (Debian's libjolokia-core-java)
//   /jmx           Hadoop's JMXJsonServlet (PySpark's hadoop-client-api jar)
//   /auth/jmx      the same servlet behind HTTP basic auth (monitor / s3cret)
//
// Usage: java -cp <jars>:<classes> KilnTestJvm [port]. It prints "listening <port>" once ready
// and exits when its standard input closes, so a test that dies never leaves it behind.

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

import javax.management.MBeanServer;
import javax.management.ObjectName;

import com.sun.net.httpserver.BasicAuthenticator;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import org.apache.hadoop.jmx.JMXJsonServlet;
import org.apache.hadoop.metrics2.MetricsCollector;
import org.apache.hadoop.metrics2.MetricsSource;
import org.apache.hadoop.metrics2.lib.DefaultMetricsSystem;
import org.apache.hadoop.metrics2.lib.Interns;
import org.apache.hadoop.metrics2.source.JvmMetrics;
import org.apache.hadoop.shaded.javax.servlet.http.HttpServletRequest;
import org.apache.hadoop.shaded.javax.servlet.http.HttpServletResponse;
import org.jolokia.backend.BackendManager;
import org.jolokia.config.ConfigKey;
import org.jolokia.config.Configuration;
import org.jolokia.http.HttpRequestHandler;
import org.jolokia.restrictor.AllowAllRestrictor;
import org.jolokia.util.LogHandler;
import org.json.simple.JSONAware;

public final class KilnTestJvm {

    // ---- Test MBeans -------------------------------------------------------------------

    /** An MXBean, so the JDK maps its types to open types: composite, tabular, date. */
    public interface SampleMXBean {
        long getCount();
        double getRatio();
        double getNotANumber();
        boolean isEnabled();
        String getState();
        Date getStarted();
        Usage getUsage();
        Map<String, Long> getCountsByKind();
        long[] getHistory();
    }

    /** Becomes CompositeData with items committed, max, used. */
    public static final class Usage {
        private final long used;
        private final long max;
        public Usage(long used, long max) { this.used = used; this.max = max; }
        public long getUsed() { return used; }
        public long getMax() { return max; }
        public long getCommitted() { return max / 2; }
    }

    public static final class Sample implements SampleMXBean {
        private final AtomicLong count = new AtomicLong(41);
        public long getCount() { return count.incrementAndGet(); }
        public double getRatio() { return 0.25; }
        public double getNotANumber() { return Double.NaN; }
        public boolean isEnabled() { return true; }
        public String getState() { return "RUNNING"; }
        public Date getStarted() { return new Date(1_700_000_000_000L); }
        public Usage getUsage() { return new Usage(1024, 4096); }
        public Map<String, Long> getCountsByKind() {
            Map<String, Long> counts = new LinkedHashMap<>();
            counts.put("read", 7L);
            counts.put("write", 3L);
            return counts;
        }
        public long[] getHistory() { return new long[] {1, 2, 3}; }
    }

    /**
     * A Hadoop metrics2 source publishing what a NameNode's FSNamesystem does, registered the
     * way Hadoop registers it: metrics2 turns it into the MBean
     * Hadoop:service=NameNode,name=FSNamesystem with tag.* string attributes.
     */
    public static final class FSNamesystemSource implements MetricsSource {
        @Override
        public void getMetrics(MetricsCollector collector, boolean all) {
            collector.addRecord("FSNamesystem")
                    .setContext("dfs")
                    .tag(Interns.info("HAState", "HA state of the NameNode"), "active")
                    .tag(Interns.info("TotalSyncTimes", "Total sync times"), "12 7")
                    .addGauge(Interns.info("CapacityTotal", "Total capacity"), 107_351_072_768L)
                    .addGauge(Interns.info("CapacityTotalGB", "Total capacity in GB"), 100.0f)
                    .addGauge(Interns.info("CapacityUsed", "Used capacity"), 4_206_592L)
                    .addGauge(Interns.info("CapacityRemaining", "Remaining capacity"), 93_924_278_272L)
                    .addGauge(Interns.info("CapacityUsedNonDFS", "Non-DFS use"), 13_422_587_904L)
                    .addGauge(Interns.info("BlocksTotal", "Blocks"), 15L)
                    .addGauge(Interns.info("FilesTotal", "Files"), 42L)
                    .addGauge(Interns.info("MissingBlocks", "Missing blocks"), 0L)
                    .addGauge(Interns.info("UnderReplicatedBlocks", "Under-replicated"), 2L)
                    .addGauge(Interns.info("CorruptBlocks", "Corrupt"), 0L)
                    .addGauge(Interns.info("NumLiveDataNodes", "Live DataNodes"), 3)
                    .addGauge(Interns.info("NumDeadDataNodes", "Dead DataNodes"), 1)
                    .addGauge(Interns.info("TotalLoad", "Total load"), 5)
                    .addCounter(Interns.info("ExpiredHeartbeats", "Expired heartbeats"), 4L);
        }
    }

    /**
     * A NameNode's NameNodeActivity counters (Hadoop:service=NameNode,name=NameNodeActivity),
     * whose FilesCreated meets FSNamesystem's FilesTotal once jmx_exporter 1.x strips the
     * suffixes of both.
     */
    public static final class NameNodeActivitySource implements MetricsSource {
        @Override
        public void getMetrics(MetricsCollector collector, boolean all) {
            collector.addRecord("NameNodeActivity")
                    .setContext("dfs")
                    .tag(Interns.info("ProcessName", "Process name"), "NameNode")
                    .addCounter(Interns.info("CreateFileOps", "Create file operations"), 57L)
                    .addCounter(Interns.info("FilesCreated", "Files created"), 61L)
                    .addCounter(Interns.info("FilesAppended", "Files appended"), 3L)
                    .addCounter(Interns.info("FilesDeleted", "Files deleted"), 19L)
                    .addCounter(Interns.info("FilesRenamed", "Files renamed"), 8L)
                    .addGauge(Interns.info("TransactionsAvgTime", "Average transaction time"), 0.25)
                    .addCounter(Interns.info("TransactionsNumOps", "Transactions"), 212L);
        }
    }

    /** A Standard MBean shaped like a Kafka Yammer meter. */
    public interface MeterMBean {
        long getCount();
        double getOneMinuteRate();
    }

    public static final class Meter implements MeterMBean {
        private final long count;
        public Meter(long count) { this.count = count; }
        public long getCount() { return count; }
        public double getOneMinuteRate() { return count / 60.0; }
    }

    /** A ResourceManager's ClusterMetrics: NodeManagers by state. */
    public interface ClusterMetricsMBean {
        int getNumActiveNMs();
        int getNumLostNMs();
        int getNumUnhealthyNMs();
        int getNumDecommissionedNMs();
    }

    public static final class ClusterMetrics implements ClusterMetricsMBean {
        public int getNumActiveNMs() { return 4; }
        public int getNumLostNMs() { return 0; }
        public int getNumUnhealthyNMs() { return 1; }
        public int getNumDecommissionedNMs() { return 0; }
    }

    /** A ResourceManager's QueueMetrics for one queue. */
    public interface QueueMetricsMBean {
        int getAppsRunning();
        int getAppsPending();
        long getAllocatedMB();
        long getAvailableMB();
        long getPendingMB();
        int getAllocatedContainers();
        int getPendingContainers();
    }

    public static final class QueueMetrics implements QueueMetricsMBean {
        private final int scale;
        public QueueMetrics(int scale) { this.scale = scale; }
        public int getAppsRunning() { return 2 * scale; }
        public int getAppsPending() { return scale; }
        public long getAllocatedMB() { return 24576L * scale; }
        public long getAvailableMB() { return 8192L * scale; }
        public long getPendingMB() { return 4096L * scale; }
        public int getAllocatedContainers() { return 6 * scale; }
        public int getPendingContainers() { return scale; }
    }

    /**
     * With -Dkiln.yarn=true, a ResourceManager's beans too, as Hadoop names them, so one
     * JVM stands for the NameNode and the ResourceManager of a small cluster.
     */
    private static void registerYarnBeans(MBeanServer server) throws Exception {
        server.registerMBean(new ClusterMetrics(),
                new ObjectName("Hadoop:service=ResourceManager,name=ClusterMetrics"));
        server.registerMBean(new QueueMetrics(2),
                new ObjectName("Hadoop:service=ResourceManager,name=QueueMetrics,q0=root"));
        server.registerMBean(new QueueMetrics(1),
                new ObjectName("Hadoop:service=ResourceManager,name=QueueMetrics,q0=root,q1=default"));
    }

    private static void registerBeans(MBeanServer server) throws Exception {
        server.registerMBean(new Sample(), new ObjectName("kiln.test:type=Sample,name=first"));
        server.registerMBean(new Sample(),
                new ObjectName("kiln.test:type=Sample,name=\"quoted,name\""));
        server.registerMBean(new Meter(42),
                new ObjectName("kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec"));
        server.registerMBean(new Meter(7),
                new ObjectName("kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=orders"));
        // Real Hadoop metrics2 sources: JvmMetrics and the metrics system's own statistics.
        DefaultMetricsSystem.initialize("NameNode");
        JvmMetrics.initSingleton("NameNode", "kiln-test");
        DefaultMetricsSystem.instance().register("FSNamesystem", "FSNamesystem status",
                new FSNamesystemSource());
        DefaultMetricsSystem.instance().register("NameNodeActivity", "NameNode activity",
                new NameNodeActivitySource());
    }

    // ---- Jolokia -----------------------------------------------------------------------

    private static HttpRequestHandler jolokia() {
        Configuration config = new Configuration(ConfigKey.AGENT_ID, "kiln-test");
        LogHandler log = new LogHandler.StdoutLogHandler(false);
        BackendManager backend = new BackendManager(config, log, new AllowAllRestrictor());
        return new HttpRequestHandler(config, backend, log);
    }

    private static void serveJolokia(HttpRequestHandler handler, HttpExchange exchange)
            throws IOException {
        String context = exchange.getHttpContext().getPath();
        String path = exchange.getRequestURI().getRawPath();
        String pathInfo = URLDecoder.decode(path.substring(Math.min(context.length(), path.length())),
                StandardCharsets.UTF_8);
        Map<String, String[]> params = queryParameters(exchange.getRequestURI().getRawQuery());
        JSONAware json;
        try {
            if ("POST".equals(exchange.getRequestMethod())) {
                json = handler.handlePostRequest(path, exchange.getRequestBody(), "utf-8", params);
            } else {
                json = handler.handleGetRequest(path, pathInfo, params);
            }
        } catch (Throwable error) {
            json = handler.handleThrowable(error);
        }
        respond(exchange, 200, "application/json", json.toJSONString());
    }

    // ---- Hadoop /jmx -------------------------------------------------------------------

    /** Hadoop's servlet, with the admin check (HttpServer2's job) switched off. */
    public static final class OpenJmxServlet extends JMXJsonServlet {
        @Override
        protected boolean isInstrumentationAccessAllowed(HttpServletRequest request,
                HttpServletResponse response) {
            return true;
        }
    }

    private static void serveHadoop(OpenJmxServlet servlet, HttpExchange exchange)
            throws IOException {
        Map<String, String[]> params = queryParameters(exchange.getRequestURI().getRawQuery());
        StringWriter body = new StringWriter();
        PrintWriter writer = new PrintWriter(body);
        int[] status = {200};
        InvocationHandler request = (proxy, method, args) -> {
            switch (method.getName()) {
                case "getParameter": {
                    String[] values = params.get((String) args[0]);
                    return values == null ? null : values[0];
                }
                case "getMethod": return exchange.getRequestMethod();
                default: return defaultValue(method);
            }
        };
        InvocationHandler response = (proxy, method, args) -> {
            switch (method.getName()) {
                case "getWriter": return writer;
                case "setStatus": status[0] = (Integer) args[0]; return null;
                default: return defaultValue(method);
            }
        };
        servlet.doGet(
                (HttpServletRequest) java.lang.reflect.Proxy.newProxyInstance(
                        KilnTestJvm.class.getClassLoader(),
                        new Class<?>[] {HttpServletRequest.class}, request),
                (HttpServletResponse) java.lang.reflect.Proxy.newProxyInstance(
                        KilnTestJvm.class.getClassLoader(),
                        new Class<?>[] {HttpServletResponse.class}, response));
        writer.flush();
        respond(exchange, status[0], "application/json; charset=utf8", body.toString());
    }

    private static Object defaultValue(Method method) {
        Class<?> type = method.getReturnType();
        if (type == boolean.class) return false;
        if (type == int.class) return 0;
        if (type == long.class) return 0L;
        return null;
    }

    // ---- HTTP plumbing -----------------------------------------------------------------

    private static Map<String, String[]> queryParameters(String rawQuery) {
        Map<String, List<String>> collected = new HashMap<>();
        if (rawQuery != null) {
            for (String pair : rawQuery.split("&")) {
                if (pair.isEmpty()) continue;
                int eq = pair.indexOf('=');
                String key = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq),
                        StandardCharsets.UTF_8);
                String value = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1),
                        StandardCharsets.UTF_8);
                collected.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
            }
        }
        Map<String, String[]> params = new HashMap<>();
        collected.forEach((key, values) -> params.put(key, values.toArray(new String[0])));
        return params;
    }

    private static void respond(HttpExchange exchange, int status, String type, String body)
            throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static void drain(InputStream in) throws IOException {
        ByteArrayOutputStream ignored = new ByteArrayOutputStream();
        in.transferTo(ignored);
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
        registerBeans(ManagementFactory.getPlatformMBeanServer());
        if (Boolean.getBoolean("kiln.yarn")) {
            registerYarnBeans(ManagementFactory.getPlatformMBeanServer());
        }

        HttpRequestHandler jolokia = jolokia();
        OpenJmxServlet hadoop = new OpenJmxServlet();
        hadoop.init();

        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/jolokia", exchange -> serveJolokia(jolokia, exchange));
        server.createContext("/jmx", exchange -> serveHadoop(hadoop, exchange));
        server.createContext("/auth/jmx", exchange -> serveHadoop(hadoop, exchange))
                .setAuthenticator(new BasicAuthenticator("kiln") {
                    @Override
                    public boolean checkCredentials(String user, String password) {
                        return "monitor".equals(user) && "s3cret".equals(password);
                    }
                });
        server.start();
        System.out.println("listening " + server.getAddress().getPort());
        System.out.flush();

        drain(System.in);
        server.stop(0);
        System.exit(0);
    }
}
