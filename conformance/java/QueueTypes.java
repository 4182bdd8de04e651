// Quorum queues and streams through the Java client: the headers each
// queue type adds to deliveries (x-delivery-count, x-stream-offset) as the
// client decodes them, stream offsets as consume arguments, and what each
// refuses.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class QueueTypes {
    public static void main(String[] args) throws Exception {
        Common.init(args);
        try (Connection conn = Common.factory().newConnection()) {
            quorum(conn);
            stream(conn);
        }
        // Connections a scenario left open (a refused one) would keep the JVM up.
        System.exit(0);
    }

    static Map<String, Object> type(String type) {
        Map<String, Object> args = new HashMap<>();
        args.put("x-queue-type", type);
        return args;
    }

    static void quorum(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = "java-queue-types-quorum";
        c.queueDelete(queue);
        Common.out("quorum declare: " + c.queueDeclare(queue, true, false, false, type("quorum")).getQueue());
        c.basicPublish("", queue, null, "q".getBytes());
        Common.await(() -> Messages.count(c, queue) == 1);
        GetResponse first = c.basicGet(queue, false);
        Common.out("quorum first get headers: " + first.getProps().getHeaders());
        c.basicNack(first.getEnvelope().getDeliveryTag(), false, true);
        Common.await(() -> Messages.count(c, queue) == 1);
        GetResponse again = c.basicGet(queue, false);
        Common.out("quorum redelivered " + again.getEnvelope().isRedeliver() + ", x-delivery-count "
            + Common.show(again.getProps().getHeaders().get("x-delivery-count")));
        c.basicAck(again.getEnvelope().getDeliveryTag(), false);
        Common.step("quorum declared transient",
            () -> conn.createChannel().queueDeclare("java-queue-types-q2", false, false, false, type("quorum")));
        Common.step("quorum declared exclusive",
            () -> conn.createChannel().queueDeclare("java-queue-types-q3", true, true, false, type("quorum")));
        c.queueDelete(queue);
    }

    static void stream(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String stream = "java-queue-types-stream";
        c.queueDelete(stream);
        c.queueDeclare(stream, true, false, false, type("stream"));
        c.confirmSelect();
        // One at a time: each is a chunk of its own in RabbitMQ, so "last"
        // is the last message, not the last of a batch.
        boolean confirmed = true;
        for (int i = 0; i < 5; i++) {
            c.basicPublish("", stream, null, ("s" + i).getBytes());
            confirmed &= c.waitForConfirms(10_000);
        }
        Common.out("stream confirms: " + confirmed);
        for (Object offset : new Object[] {"first", 3L, "last", "next"}) {
            Channel reader = conn.createChannel();
            reader.basicQos(10);
            List<String> seen = Collections.synchronizedList(new ArrayList<>());
            Map<String, Object> args = new HashMap<>();
            args.put("x-stream-offset", offset);
            reader.basicConsume(stream, false, args, new DefaultConsumer(reader) {
                @Override
                public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
                    seen.add(new String(body) + "@" + Common.show(props.getHeaders().get("x-stream-offset")));
                }
            });
            int expected = offset.equals("first") ? 5 : offset.equals(3L) ? 2 : offset.equals("last") ? 1 : 0;
            if (expected == 0) {
                c.basicPublish("", stream, null, "s5".getBytes());
                c.waitForConfirms(10_000);
                expected = 1;
            }
            final int want = expected;
            Common.await(() -> seen.size() >= want);
            Common.out("stream from " + offset + ": " + seen);
            reader.close();
        }
        // Each refusal is a connection error in RabbitMQ (540 for basic.get):
        // each on a connection of its own.
        Common.step("stream basic.get", () -> fresh().basicGet(stream, false));
        Common.step("stream consume without ack", () -> {
            Channel ch = fresh();
            ch.basicQos(10);
            return ch.basicConsume(stream, true, new DefaultConsumer(ch));
        });
        Common.step("stream consume without prefetch", () -> {
            Channel ch = fresh();
            return ch.basicConsume(stream, false, new DefaultConsumer(ch));
        });
        for (String offset : new String[] {"1x", "0h", "yesterday"}) {
            Common.step("stream consume from offset " + offset, () -> {
                Channel ch = fresh();
                ch.basicQos(10);
                Map<String, Object> args = new HashMap<>();
                args.put("x-stream-offset", offset);
                return ch.basicConsume(stream, false, args, new DefaultConsumer(ch));
            });
        }
        for (String age : new String[] {"0D", "7Q", "yesterday"}) {
            Common.step("stream declared with x-max-age " + age, () -> {
                Map<String, Object> args = type("stream");
                args.put("x-max-age", age);
                return fresh().queueDeclare("java-queue-types-aged", true, false, false, args).getQueue();
            });
        }
        try (Connection cleanup = Common.factory().newConnection()) {
            cleanup.createChannel().queueDelete(stream);
        }
    }

    /** A channel on a connection of its own (closed with the program). */
    static Channel fresh() throws Exception {
        return Common.factory().newConnection().createChannel();
    }
}
