// Messages as the Java client sends and gets them back: what the
// connection negotiates, every property and header type round-tripped,
// confirms (and a nack from a full queue), mandatory returns,
// transactions, bodies over frame_max, exchange-to-exchange and headers
// routing, and dead-lettering's x-death header.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.MessageProperties;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public class Messages {
    public static void main(String[] args) throws Exception {
        Common.init(args);
        ConnectionFactory factory = Common.factory();
        factory.setRequestedHeartbeat(7);
        try (Connection conn = factory.newConnection()) {
            Common.out("heartbeat: " + conn.getHeartbeat());
            Common.out("frame max: " + conn.getFrameMax());
            Common.out("channel max: " + conn.getChannelMax());
            Map<String, Object> server = conn.getServerProperties();
            Common.out("product: " + server.get("product"));
            Common.out("capabilities: " + Common.show(server.get("capabilities")));

            Channel ch = conn.createChannel();
            roundTrip(ch);
            confirms(ch, conn);
            returns(conn);
            transactions(conn);
            largeBody(conn);
            routing(conn);
            deadLettering(conn);
        }
        // Connections a scenario left open (a refused one) would keep the JVM up.
        System.exit(0);
    }

    static void roundTrip(Channel ch) throws Exception {
        String queue = ch.queueDeclare().getQueue();
        Common.out("server-named queue: " + queue);
        Map<String, Object> headers = new HashMap<>();
        headers.put("string", "text");
        headers.put("int", 42);
        headers.put("long", 1L << 40);
        headers.put("short", (short) 7);
        headers.put("byte", (byte) 3);
        headers.put("bool", true);
        headers.put("double", 1.5d);
        headers.put("float", 2.5f);
        headers.put("decimal", new BigDecimal("3.14"));
        headers.put("date", new Date(1_700_000_000_000L));
        headers.put("bytes", new byte[] {1, 2, 3});
        headers.put("list", Arrays.asList("a", 1, false));
        headers.put("table", Collections.singletonMap("inner", "v"));
        headers.put("void", null);
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
            .contentType("application/json")
            .contentEncoding("utf-8")
            .headers(headers)
            .deliveryMode(2)
            .priority(5)
            .correlationId("corr-1")
            .replyTo("reply-queue")
            .expiration("60000")
            .messageId("msg-1")
            .timestamp(new Date(1_700_000_000_000L))
            .type("order.created")
            .userId("guest")
            .appId("java-conformance")
            .build();
        ch.basicPublish("", queue, props, "{\"a\":1}".getBytes("UTF-8"));
        Common.await(() -> count(ch, queue) == 1);
        GetResponse got = ch.basicGet(queue, false);
        AMQP.BasicProperties p = got.getProps();
        Common.out("get: tag " + got.getEnvelope().getDeliveryTag() + " redelivered "
            + got.getEnvelope().isRedeliver() + " exchange '" + got.getEnvelope().getExchange()
            + "' key " + got.getEnvelope().getRoutingKey() + " remaining " + got.getMessageCount()
            + " body " + new String(got.getBody(), "UTF-8"));
        Common.out("properties: " + p.getContentType() + " " + p.getContentEncoding() + " " + p.getDeliveryMode()
            + " " + p.getPriority() + " " + p.getCorrelationId() + " " + p.getReplyTo() + " "
            + p.getExpiration() + " " + p.getMessageId() + " " + p.getTimestamp().getTime() / 1000 + " "
            + p.getType() + " " + p.getUserId() + " " + p.getAppId());
        for (Map.Entry<String, Object> e : new TreeMap<>(p.getHeaders()).entrySet()) {
            Common.out("header " + e.getKey() + " = " + Common.show(e.getValue()));
        }
        ch.basicAck(got.getEnvelope().getDeliveryTag(), false);
        Common.out("get from empty: " + ch.basicGet(queue, true));
        AMQP.BasicProperties bad = new AMQP.BasicProperties.Builder().userId("someone-else").build();
        Common.step("publish with another user id", () -> {
            Channel other = ch.getConnection().createChannel();
            other.basicPublish("", queue, bad, new byte[0]);
            return other.queueDeclarePassive(queue).getMessageCount();
        });
    }

    static void confirms(Channel ch, Connection conn) throws Exception {
        Channel c = conn.createChannel();
        c.confirmSelect();
        String queue = c.queueDeclare("", true, true, false, null).getQueue();
        for (int i = 0; i < 500; i++) {
            c.basicPublish("", queue, MessageProperties.PERSISTENT_TEXT_PLAIN, ("m" + i).getBytes());
        }
        Common.out("confirms: " + c.waitForConfirms(10_000) + ", next seq " + c.getNextPublishSeqNo()
            + ", queue " + c.queueDeclarePassive(queue).getMessageCount());

        Map<String, Object> limit = new HashMap<>();
        limit.put("x-max-length", 2);
        limit.put("x-overflow", "reject-publish");
        String full = c.queueDeclare("", false, true, false, limit).getQueue();
        // Which publishes were nacked, a multiple nack counting for every
        // one still open up to its tag (the broker may nack either way).
        long first = c.getNextPublishSeqNo();
        java.util.SortedSet<Long> open = Collections.synchronizedSortedSet(new java.util.TreeSet<>());
        java.util.SortedSet<Long> nacked = Collections.synchronizedSortedSet(new java.util.TreeSet<>());
        for (long seq = first; seq < first + 4; seq++) {
            open.add(seq);
        }
        c.addConfirmListener(
            (tag, multiple) -> settle(open, null, tag, multiple),
            (tag, multiple) -> settle(open, nacked, tag, multiple));
        for (int i = 0; i < 4; i++) {
            c.basicPublish("", full, null, ("f" + i).getBytes());
        }
        boolean allAcked = c.waitForConfirms(10_000);
        List<Long> relative = new ArrayList<>();
        for (long seq : nacked) {
            relative.add(seq - first);
        }
        Common.out("confirms with a full queue: " + allAcked + ", nacked " + relative
            + ", queue " + c.queueDeclarePassive(full).getMessageCount());
        c.close();
    }

    static void settle(java.util.SortedSet<Long> open, java.util.SortedSet<Long> nacked, long tag, boolean multiple) {
        synchronized (open) {
            List<Long> settled = new ArrayList<>(multiple ? open.headSet(tag + 1) : open.subSet(tag, tag + 1));
            open.removeAll(settled);
            if (nacked != null) {
                nacked.addAll(settled);
            }
        }
    }

    static void returns(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        List<String> returned = Collections.synchronizedList(new ArrayList<>());
        c.addReturnListener((code, text, exchange, key, props, body) ->
            returned.add(code + " " + text + " '" + exchange + "' " + key + " " + new String(body)));
        c.basicPublish("amq.direct", "java-messages-nowhere", true, null, "lost".getBytes());
        c.basicPublish("", "java-messages-no-queue", true, null, "lost2".getBytes());
        Common.await(() -> returned.size() == 2);
        for (String r : returned) {
            Common.out("returned: " + r);
        }
        c.close();
    }

    static void transactions(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = c.queueDeclare().getQueue();
        c.txSelect();
        for (int i = 0; i < 3; i++) {
            c.basicPublish("", queue, null, "t".getBytes());
        }
        c.txRollback();
        Common.out("after rollback: " + c.queueDeclarePassive(queue).getMessageCount());
        for (int i = 0; i < 2; i++) {
            c.basicPublish("", queue, null, "t".getBytes());
        }
        c.txCommit();
        Common.out("after commit: " + c.queueDeclarePassive(queue).getMessageCount());
        GetResponse got = c.basicGet(queue, false);
        c.basicAck(got.getEnvelope().getDeliveryTag(), false);
        c.txRollback();
        Common.out("ack rolled back: " + c.queueDeclarePassive(queue).getMessageCount());
        Common.step("confirm select on a transactional channel", () -> {
            c.confirmSelect();
            return "selected";
        });
    }

    static void largeBody(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        String queue = c.queueDeclare().getQueue();
        byte[] body = new byte[1 << 20];
        for (int i = 0; i < body.length; i++) {
            body[i] = (byte) (i * 31);
        }
        c.basicPublish("", queue, null, body);
        Common.await(() -> count(c, queue) == 1);
        GetResponse got = c.basicGet(queue, true);
        Common.out("1 MiB body: " + got.getBody().length + " equal " + Arrays.equals(body, got.getBody()));
        c.basicPublish("", queue, null, new byte[0]);
        Common.await(() -> count(c, queue) == 1);
        Common.out("empty body: " + c.basicGet(queue, true).getBody().length);
        c.close();
    }

    static void routing(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        c.exchangeDeclare("java-messages-src", "topic", false, true, null);
        c.exchangeDeclare("java-messages-dst", "fanout", false, true, null);
        c.exchangeBind("java-messages-dst", "java-messages-src", "orders.#");
        String queue = c.queueDeclare().getQueue();
        c.queueBind(queue, "java-messages-dst", "");
        c.basicPublish("java-messages-src", "orders.eu.created", null, "o1".getBytes());
        c.basicPublish("java-messages-src", "users.created", null, "u1".getBytes());
        Common.await(() -> count(c, queue) >= 1);
        GetResponse got = c.basicGet(queue, true);
        Common.out("exchange to exchange: " + new String(got.getBody()) + " via '" + got.getEnvelope().getExchange()
            + "' key " + got.getEnvelope().getRoutingKey() + ", left " + count(c, queue));

        c.exchangeDeclare("java-messages-headers", "headers", false, true, null);
        String all = c.queueDeclare().getQueue();
        String any = c.queueDeclare().getQueue();
        Map<String, Object> matchAll = new HashMap<>();
        matchAll.put("x-match", "all");
        matchAll.put("format", "pdf");
        matchAll.put("type", "report");
        c.queueBind(all, "java-messages-headers", "", matchAll);
        Map<String, Object> matchAny = new HashMap<>(matchAll);
        matchAny.put("x-match", "any");
        c.queueBind(any, "java-messages-headers", "", matchAny);
        Map<String, Object> pdf = new HashMap<>();
        pdf.put("format", "pdf");
        c.basicPublish("java-messages-headers", "", new AMQP.BasicProperties.Builder().headers(pdf).build(),
            "p".getBytes());
        pdf.put("type", "report");
        c.basicPublish("java-messages-headers", "", new AMQP.BasicProperties.Builder().headers(pdf).build(),
            "r".getBytes());
        Common.await(() -> count(c, any) == 2 && count(c, all) == 1);
        Common.out("headers exchange: all " + count(c, all) + ", any " + count(c, any));
        c.exchangeDelete("java-messages-src");
        c.exchangeDelete("java-messages-dst");
        c.exchangeDelete("java-messages-headers");
        c.close();
    }

    static void deadLettering(Connection conn) throws Exception {
        Channel c = conn.createChannel();
        c.exchangeDeclare("java-messages-dlx", "fanout", false, true, null);
        String dead = c.queueDeclare().getQueue();
        c.queueBind(dead, "java-messages-dlx", "");
        Map<String, Object> args = new HashMap<>();
        args.put("x-dead-letter-exchange", "java-messages-dlx");
        String work = c.queueDeclare("", false, true, false, args).getQueue();
        c.basicPublish("", work, null, "poison".getBytes());
        Common.await(() -> count(c, work) == 1);
        GetResponse got = c.basicGet(work, false);
        c.basicReject(got.getEnvelope().getDeliveryTag(), false);
        Common.await(() -> count(c, dead) == 1);
        GetResponse deadLettered = c.basicGet(dead, true);
        Map<String, Object> headers = new TreeMap<>(deadLettered.getProps().getHeaders());
        for (Map.Entry<String, Object> e : headers.entrySet()) {
            String shown = Common.show(e.getValue()).replaceAll("time=Date:[0-9]+", "time=Date:*");
            Common.out("dead-lettered header " + e.getKey() + " = " + shown);
        }
        c.exchangeDelete("java-messages-dlx");
        c.close();
    }

    static long count(Channel ch, String queue) {
        try {
            return ch.messageCount(queue);
        } catch (Exception e) {
            return -1;
        }
    }
}
