// The Java client's automatic recovery (on by default in the client):
// when the broker closes the connection (here with a connection error),
// the client reconnects, declares its exchanges, queues (a server-named
// one under a new name) and bindings again and restarts its consumers;
// messages published after that reach them.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoveryListener;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

public class Recovery {
    public static void main(String[] args) throws Exception {
        Common.init(args);
        ConnectionFactory factory = Common.factory();
        factory.setAutomaticRecoveryEnabled(true);
        factory.setTopologyRecoveryEnabled(true);
        factory.setNetworkRecoveryInterval(100);
        Connection conn = factory.newConnection();
        AtomicInteger recovered = new AtomicInteger();
        ((Recoverable) conn).addRecoveryListener(new RecoveryListener() {
            @Override
            public void handleRecovery(Recoverable r) {
                recovered.incrementAndGet();
            }

            @Override
            public void handleRecoveryStarted(Recoverable r) {}
        });

        Channel ch = conn.createChannel();
        ch.queueDelete("java-recovery-work");
        ch.queueDeclare("java-recovery-work", true, false, false, null);
        ch.exchangeDeclare("java-recovery-x", "fanout", false, true, null);
        String named = ch.queueDeclare().getQueue();
        ch.queueBind(named, "java-recovery-x", "");
        ch.basicQos(5);
        List<String> work = Collections.synchronizedList(new ArrayList<>());
        List<String> fanout = Collections.synchronizedList(new ArrayList<>());
        ch.basicConsume("java-recovery-work", false, "java-recovery-worker", collect(ch, work, true));
        ch.basicConsume(named, true, collect(ch, fanout, false));
        ch.basicPublish("", "java-recovery-work", null, "before".getBytes());
        ch.basicPublish("java-recovery-x", "", null, "before".getBytes());
        Common.await(() -> work.size() == 1 && fanout.size() == 1);

        Common.step("a connection error", () -> {
            conn.createChannel().exchangeDeclare("java-recovery-bad", "no-such-type");
            return "declared";
        });
        Common.out("recovered: " + Common.await(() -> recovered.get() == 1) + ", open " + conn.isOpen()
            + ", channel " + ch.getChannelNumber() + " open " + ch.isOpen());
        ch.basicPublish("", "java-recovery-work", null, "after".getBytes());
        ch.basicPublish("java-recovery-x", "", null, "after".getBytes());
        Common.await(() -> work.size() == 2 && fanout.size() == 2);
        Common.out("work consumer got: " + work);
        Common.out("fanout consumer got: " + fanout);
        Common.out("queue consumers: " + ch.consumerCount("java-recovery-work"));
        ch.queueDelete("java-recovery-work");
        conn.close();
        System.exit(0);
    }

    static DefaultConsumer collect(Channel ch, List<String> into, boolean ack) {
        return new DefaultConsumer(ch) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body)
                    throws java.io.IOException {
                into.add(new String(body));
                if (ack) {
                    getChannel().basicAck(env.getDeliveryTag(), false);
                }
            }
        };
    }
}
