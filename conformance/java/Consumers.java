// Consumers as the Java client runs them: prefetch holding back
// deliveries until acks, nack and reject with and without requeue,
// basic.recover, the broker cancelling a consumer whose queue was deleted,
// basic.cancel, and a direct reply-to round trip.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

public class Consumers {
    /** What a consumer was told, in order. */
    static class Recording extends DefaultConsumer {
        final List<String> events = Collections.synchronizedList(new ArrayList<>());
        final List<Long> tags = Collections.synchronizedList(new ArrayList<>());

        Recording(Channel ch) {
            super(ch);
        }

        @Override
        public void handleConsumeOk(String tag) {
            events.add("consume-ok " + tag);
        }

        @Override
        public void handleCancelOk(String tag) {
            events.add("cancel-ok " + tag);
        }

        @Override
        public void handleCancel(String tag) {
            events.add("cancelled by broker " + tag);
        }

        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
            tags.add(env.getDeliveryTag());
            events.add("deliver " + new String(body) + " redelivered " + env.isRedeliver());
        }

        int deliveries() {
            return tags.size();
        }

        void print(String name) {
            synchronized (events) {
                for (String e : events) {
                    Common.out(name + ": " + e);
                }
                events.clear();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Common.init(args);
        try (Connection conn = Common.factory().newConnection()) {
            prefetch(conn);
            settlements(conn);
            cancellation(conn);
            directReplyTo(conn);
        }
        // Connections a scenario left open (a refused one) would keep the JVM up.
        System.exit(0);
    }

    static void prefetch(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = c.queueDeclare().getQueue();
        c.basicQos(10);
        Recording consumer = new Recording(c);
        String tag = c.basicConsume(queue, false, "java-prefetch", consumer);
        Common.out("consumer tag: " + tag);
        Channel publisher = conn.createChannel();
        for (int i = 0; i < 25; i++) {
            publisher.basicPublish("", queue, null, ("p" + i).getBytes());
        }
        Common.await(() -> consumer.deliveries() == 10 && Messages.count(publisher, queue) == 15);
        Common.out("held back by prefetch: delivered " + consumer.deliveries() + ", ready "
            + Messages.count(publisher, queue) + ", consumers " + publisher.consumerCount(queue));
        c.basicAck(consumer.tags.get(9), true);
        Common.await(() -> consumer.deliveries() == 20);
        c.basicAck(consumer.tags.get(19), true);
        Common.await(() -> consumer.deliveries() == 25);
        c.basicAck(consumer.tags.get(24), true);
        c.basicCancel(tag);
        Common.await(() -> consumer.events.stream().anyMatch(e -> e.startsWith("cancel-ok")));
        Common.out("delivered in order: " + inOrder(consumer.events, "p", 25));
        consumer.events.removeIf(e -> e.startsWith("deliver"));
        consumer.print("prefetch");
        c.close();
        publisher.close();
    }

    static void settlements(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = c.queueDeclare().getQueue();
        Recording consumer = new Recording(c);
        c.basicPublish("", queue, null, "s".getBytes());
        c.basicConsume(queue, false, "java-settle", consumer);
        Common.await(() -> consumer.deliveries() == 1);
        c.basicNack(consumer.tags.get(0), false, true);
        Common.await(() -> consumer.deliveries() == 2);
        c.basicReject(consumer.tags.get(1), true);
        Common.await(() -> consumer.deliveries() == 3);
        c.basicRecover(true);
        Common.await(() -> consumer.deliveries() == 4);
        c.basicNack(consumer.tags.get(3), false, false);
        Common.await(() -> Messages.count(c, queue) == 0);
        Common.out("delivery tags: " + consumer.tags);
        consumer.print("settle");
        c.close();
    }

    static void cancellation(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = c.queueDeclare("java-consumers-deleted", false, false, true, null).getQueue();
        Recording consumer = new Recording(c);
        c.basicConsume(queue, false, "java-cancelled", consumer);
        conn.createChannel().queueDelete(queue);
        Common.await(() -> consumer.events.stream().anyMatch(e -> e.startsWith("cancelled")));
        consumer.print("deleted queue");
        Common.out("channel still open: " + c.isOpen());
        c.close();
    }

    static void directReplyTo(Connection conn) throws Exception {
        Channel server = conn.createChannel();
        String requests = server.queueDeclare().getQueue();
        List<String> replyTos = Collections.synchronizedList(new ArrayList<>());
        server.basicConsume(requests, true, new DefaultConsumer(server) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body)
                    throws java.io.IOException {
                replyTos.add(props.getReplyTo());
                AMQP.BasicProperties reply = new AMQP.BasicProperties.Builder()
                    .correlationId(props.getCorrelationId()).build();
                server.basicPublish("", props.getReplyTo(), reply, ("re: " + new String(body)).getBytes());
            }
        });
        Channel client = conn.createChannel();
        List<String> replies = Collections.synchronizedList(new ArrayList<>());
        client.basicConsume("amq.rabbitmq.reply-to", true, new DefaultConsumer(client) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
                replies.add(new String(body) + " corr " + props.getCorrelationId() + " key " + env.getRoutingKey());
            }
        });
        AMQP.BasicProperties request = new AMQP.BasicProperties.Builder()
            .replyTo("amq.rabbitmq.reply-to").correlationId("c-1").build();
        client.basicPublish("", requests, request, "ping".getBytes());
        Common.await(() -> replies.size() == 1);
        Common.out("reply-to seen by the server: " + replyTos);
        Common.out("reply: " + replies);
        Common.step("publish with reply-to outside a reply consumer", () -> {
            Channel other = conn.createChannel();
            other.basicPublish("", requests, request, "ping".getBytes());
            return other.queueDeclarePassive(requests).getConsumerCount();
        });
        server.close();
        client.close();
    }

    /** Whether the deliveries among `events` were prefix0..prefix(n-1) in order. */
    static boolean inOrder(List<String> events, String prefix, int n) {
        List<String> bodies = new ArrayList<>();
        synchronized (events) {
            for (String e : events) {
                if (e.startsWith("deliver ")) {
                    bodies.add(e.split(" ")[1]);
                }
            }
        }
        if (bodies.size() != n) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (!bodies.get(i).equals(prefix + i)) {
                return false;
            }
        }
        return true;
    }
}
