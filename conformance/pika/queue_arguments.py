"""Queue arguments RabbitMQ 3.10 compares on redeclaration beyond the
classic ones (a stream's retention and size, the initial cluster size,
the leader locator), and x-queue-leader-locator's values and queue types.
Prints each outcome so the output can be compared with RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import sys

import pika

port = int(sys.argv[1])
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0))
ch = conn.channel()


def declare_twice(name, queue_type, key, first, second):
    """Declares with `first`, then again with `second`; prints the outcome."""
    global ch
    try:
        ch.queue_delete(name)
        ch.queue_declare(name, durable=True, arguments={'x-queue-type': queue_type, key: first})
        if second is not None:
            ch.queue_declare(name, durable=True, arguments={'x-queue-type': queue_type, key: second})
        print(queue_type, key, first, second, 'ok')
    except pika.exceptions.ChannelClosedByBroker as e:
        print(queue_type, key, first, second, e.reply_code, e.reply_text)
        ch = conn.channel()
    ch.queue_delete(name)


for i, (queue_type, key, first, second) in enumerate([
    ('stream', 'x-max-age', '1h', '2h'),
    ('stream', 'x-max-age', '1h', '1h'),
    ('stream', 'x-stream-max-segment-size-bytes', 5000, 6000),
    ('stream', 'x-initial-cluster-size', 1, 2),
    ('stream', 'x-queue-leader-locator', 'client-local', 'balanced'),
    ('quorum', 'x-queue-leader-locator', 'client-local', 'balanced'),
    ('quorum', 'x-queue-leader-locator', 'balanced', None),
    ('quorum', 'x-queue-leader-locator', 'random', None),
    ('quorum', 'x-queue-leader-locator', 'least-leaders', None),
    ('quorum', 'x-queue-leader-locator', 'nope', None),
    ('stream', 'x-queue-leader-locator', 'nope', None),
    ('stream', 'x-queue-leader-locator', 5, None),
    ('classic', 'x-queue-leader-locator', 'balanced', None),
    ('quorum', 'x-dead-letter-strategy', 'at-least-once', None),
]):
    declare_twice(f'arguments-{i}', queue_type, key, first, second)
conn.close()
