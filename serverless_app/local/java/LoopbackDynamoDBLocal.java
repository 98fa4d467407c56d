// Starts AWS's DynamoDB Local (3.x) exactly as its own main class does, but listening on one address
// (127.0.0.1 unless -Dwschat.host=... is given) instead of every interface, and exiting when its parent
// process goes away (its stdin reaches end of file).
//
// DynamoDB Local has no option for the listening address: ServerRunner builds a DynamoDBProxyServer,
// which creates a Jetty Server(port), i.e. one ServerConnector without a host (all interfaces). This
// launcher lets ServerRunner parse the usual command line and build that server, sets the host of its
// Jetty connectors, then starts it. Run with the source launcher (Java 11+):
//   java -cp DynamoDBLocal.jar LoopbackDynamoDBLocal.java -port 8000 -inMemory -sharedDb
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("wschat.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost(host);
        }
        if (Boolean.getBoolean("wschat.exitOnStdinEof")) {
            Thread watchdog = new Thread(() -> {
                try {
                    while (System.in.read() != -1) { }
                } catch (Exception ignored) { }
                Runtime.getRuntime().halt(0);
            }, "parent-watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host + " (wschat loopback launcher)");
    }
}
