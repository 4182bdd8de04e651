// Errors as the Java client sees them: which exception, with which reply
// code and text, for the mistakes applications make (a missing queue or
// exchange, an inequivalent redeclaration, someone else's exclusive
// queue, an unknown delivery tag, a wrong password or vhost).

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import java.util.HashMap;
import java.util.Map;

public class Errors {
    public static void main(String[] args) throws Exception {
        Common.init(args);
        try (Connection conn = Common.factory().newConnection();
                Connection other = Common.factory().newConnection()) {
            Channel setup = conn.createChannel();
            setup.queueDelete("java-errors-durable");
            setup.exchangeDelete("java-errors-x");

            Common.step("passive declare of a missing queue",
                () -> conn.createChannel().queueDeclarePassive("java-errors-missing"));
            Common.step("passive declare of a missing exchange",
                () -> conn.createChannel().exchangeDeclarePassive("java-errors-missing"));

            setup.queueDeclare("java-errors-durable", true, false, false, null);
            Common.step("redeclare durable as transient",
                () -> conn.createChannel().queueDeclare("java-errors-durable", false, false, false, null));
            Map<String, Object> ttl = new HashMap<>();
            ttl.put("x-message-ttl", 1000);
            Common.step("redeclare with another argument",
                () -> conn.createChannel().queueDeclare("java-errors-durable", true, false, false, ttl));
            setup.exchangeDeclare("java-errors-x", "direct", false, true, null);
            Common.step("redeclare exchange with another type",
                () -> conn.createChannel().exchangeDeclare("java-errors-x", "topic", false, true, null));
            Common.step("declare a reserved exchange name",
                () -> conn.createChannel().exchangeDeclare("amq.java-errors", "direct"));
            Common.step("delete a default exchange",
                () -> conn.createChannel().exchangeDelete("amq.direct"));

            Channel owner = conn.createChannel();
            owner.queueDeclare("java-errors-exclusive", false, true, false, null);
            Common.step("declare another connection's exclusive queue",
                () -> other.createChannel().queueDeclare("java-errors-exclusive", false, true, false, null));
            Common.step("consume from another connection's exclusive queue",
                () -> other.createChannel().basicConsume("java-errors-exclusive", new DefaultConsumer(null)));

            Channel exclusive = conn.createChannel();
            exclusive.basicConsume("java-errors-durable", false, "", false, true, null, new DefaultConsumer(exclusive));
            Common.step("consume beside an exclusive consumer",
                () -> conn.createChannel().basicConsume("java-errors-durable", new DefaultConsumer(null)));
            Common.step("delete if unused, with a consumer",
                () -> conn.createChannel().queueDelete("java-errors-durable", true, false));
            exclusive.close();

            setup.basicPublish("", "java-errors-durable", null, "x".getBytes());
            Common.await(() -> messageCount(setup, "java-errors-durable") == 1);
            Common.step("delete if empty, with a message",
                () -> conn.createChannel().queueDelete("java-errors-durable", false, true));

            Common.step("ack an unknown delivery tag", () -> {
                Channel ch = conn.createChannel();
                ch.basicAck(999, false);
                return ch.queueDeclarePassive("java-errors-durable");
            });
            Common.step("publish to a missing exchange", () -> {
                Channel ch = conn.createChannel();
                ch.basicPublish("java-errors-missing", "k", null, "x".getBytes());
                return ch.queueDeclarePassive("java-errors-durable");
            });
            Common.step("bind to a missing exchange",
                () -> conn.createChannel().queueBind("java-errors-durable", "java-errors-missing", "k"));
            Common.step("qos with global prefetch then get", () -> {
                Channel ch = conn.createChannel();
                ch.basicQos(0, 5, true);
                return ch.basicGet("java-errors-durable", false).getEnvelope().getRoutingKey();
            });
            Common.step("purge a missing queue", () -> conn.createChannel().queuePurge("java-errors-missing"));

            setup.queueDelete("java-errors-durable");
            setup.exchangeDelete("java-errors-x");
        }

        Connection failing = Common.factory().newConnection();
        Common.step("declare exchange of an unknown type",
            () -> failing.createChannel().exchangeDeclare("java-errors-y", "no-such-type"));
        Common.step("connection after a connection error", () -> failing.isOpen());

        ConnectionFactory wrongPassword = Common.factory();
        wrongPassword.setPassword("wrong");
        Common.step("log in with a wrong password", () -> wrongPassword.newConnection());
        ConnectionFactory missingVhost = Common.factory();
        missingVhost.setVirtualHost("java-errors-no-such-vhost");
        Common.step("open a missing vhost", () -> missingVhost.newConnection());
        // Connections a scenario left open (a refused one) would keep the JVM up.
        System.exit(0);
    }

    static long messageCount(Channel ch, String queue) {
        try {
            return ch.messageCount(queue);
        } catch (Exception e) {
            return -1;
        }
    }
}
