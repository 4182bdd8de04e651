// What the Java client scenarios share: a connection factory for the
// broker under test (port from the first argument, automatic recovery off
// so an error shows as the error), output with generated names masked, a
// description of an error as the broker's reply code and text, and waits
// on conditions with a deadline.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.Method;
import com.rabbitmq.client.ShutdownSignalException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

final class Common {
    static int port = 5672;

    private Common() {}

    static void init(String[] args) {
        if (args.length > 0) {
            port = Integer.parseInt(args[0]);
        }
    }

    static ConnectionFactory factory() {
        ConnectionFactory f = new ConnectionFactory();
        f.setHost("127.0.0.1");
        f.setPort(port);
        f.setAutomaticRecoveryEnabled(false);
        f.setTopologyRecoveryEnabled(false);
        return f;
    }

    static void out(String line) {
        System.out.println(mask(line));
    }

    static String mask(String s) {
        return s.replaceAll("amq\\.gen-[A-Za-z0-9_\\-]+", "amq.gen-*")
            .replaceAll("amq\\.ctag-[A-Za-z0-9_\\-]+", "amq.ctag-*")
            .replaceAll("amq\\.rabbitmq\\.reply-to\\.[A-Za-z0-9_.=+/\\-]+", "amq.rabbitmq.reply-to.*");
    }

    /** The broker's close reason in an exception's causes, or its class. */
    static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ShutdownSignalException) {
                Method reason = ((ShutdownSignalException) t).getReason();
                if (reason instanceof AMQP.Channel.Close) {
                    AMQP.Channel.Close c = (AMQP.Channel.Close) reason;
                    return "channel.close " + c.getReplyCode() + " " + c.getReplyText();
                }
                if (reason instanceof AMQP.Connection.Close) {
                    AMQP.Connection.Close c = (AMQP.Connection.Close) reason;
                    return "connection.close " + c.getReplyCode() + " " + c.getReplyText();
                }
            }
        }
        return e.getClass().getSimpleName() + " " + e.getMessage();
    }

    interface Step {
        Object run() throws Exception;
    }

    /** Prints what a step returned, or how it failed. */
    static void step(String name, Step step) {
        String result;
        try {
            Object value = step.run();
            result = value == null ? "null" : value.toString();
        } catch (Exception e) {
            // Whether the close came before the next call (AlreadyClosed)
            // or with it is a race: both say the broker's reason alike.
            result = "error: " + describe(e);
        }
        out(name + ": " + result);
    }

    /** Waits up to ten seconds for `condition`; false if it never held. */
    static boolean await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(5);
        }
        return true;
    }

    /** A header value as `Class:value`, tables and arrays in full (keys sorted). */
    static String show(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof LongString) {
            return "LongString:" + value;
        }
        if (value instanceof byte[]) {
            return "byte[]:" + ((byte[]) value).length;
        }
        if (value instanceof Map) {
            Map<String, String> sorted = new TreeMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
                sorted.put(String.valueOf(e.getKey()), show(e.getValue()));
            }
            return "Map:" + sorted;
        }
        if (value instanceof List) {
            List<String> items = new ArrayList<>();
            for (Object item : (List<?>) value) {
                items.add(show(item));
            }
            return "List:" + items;
        }
        if (value instanceof java.util.Date) {
            return "Date:" + ((java.util.Date) value).getTime() / 1000;
        }
        return value.getClass().getSimpleName() + ":" + value;
    }
}
