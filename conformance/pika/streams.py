"""Streams (x-queue-type: stream) over AMQP 0-9-1: what a declaration may
and may not say, the refusals (basic.get, no-ack or prefetch-less
consumers, purge, nack), every x-stream-offset form, the offset header on
deliveries, prefetch as credit, several consumers reading independently,
and retention by size. Prints each outcome so the output can be compared
with RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import datetime
import sys
import time
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
http = client(http_port)
S = {'x-queue-type': 'stream'}


def connect():
    return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0))


conn = connect()
ch = conn.channel()


def attempt(name, fn):
    global conn, ch
    try:
        result = fn()
        print(f'{name}: ok{"" if result is None else " " + str(result)}')
    except pika.exceptions.ChannelClosedByBroker as e:
        print(f'{name}: channel {e.reply_code} {e.reply_text}')
        ch = conn.channel()
    except pika.exceptions.ConnectionClosedByBroker as e:
        print(f'{name}: connection {e.reply_code} {e.reply_text}')
        conn = connect()
        ch = conn.channel()


def consume(queue, offset, want, prefetch=100, ack=True, limit=3.0):
    """Consumes on a channel of its own until `want` arrived (or `limit`
    seconds); returns (body, x-stream-offset, redelivered) of each."""
    sub = conn.channel()
    sub.basic_qos(prefetch_count=prefetch)
    got = []

    def on(channel, method, properties, body):
        headers = properties.headers or {}
        got.append((body.decode(), headers.get('x-stream-offset'), method.redelivered))
        if ack:
            channel.basic_ack(method.delivery_tag)

    arguments = {} if offset is None else {'x-stream-offset': offset}
    try:
        sub.basic_consume(queue, on, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as e:
        return f'channel {e.reply_code} {e.reply_text}'
    deadline = time.time() + limit
    while len(got) < want and time.time() < deadline:
        conn.process_data_events(time_limit=0.05)
    # A little longer: nothing more should come.
    conn.process_data_events(time_limit=0.2)
    sub.close()
    return got


ch.queue_delete('events')
attempt('non-durable', lambda: ch.queue_declare('events', durable=False, arguments=S))
attempt('exclusive', lambda: ch.queue_declare('events', durable=True, exclusive=True, arguments=S))
attempt('auto-delete', lambda: ch.queue_declare('events', durable=True, auto_delete=True, arguments=S))
attempt('x-max-length', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-max-length': 10}))
attempt('bad x-max-age', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-max-age': '10x'}))
attempt('dead-lettering', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-dead-letter-exchange': 'x'}))
attempt('message TTL', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-message-ttl': 1000}))
attempt('declare', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-max-age': '7D'}).method.message_count)
ch.confirm_delivery()
for i in range(10):
    ch.basic_publish('', 'events', f'e{i}'.encode(), pika.BasicProperties(delivery_mode=2))
attempt('redeclare', lambda: ch.queue_declare('events', durable=True, arguments={**S, 'x-max-age': '7D'}).method.message_count)
attempt('passive', lambda: ch.queue_declare('events', passive=True).method.message_count)
status, info = http('GET', 'queues/%2F/events')
print('api:', info['type'], info['durable'], info['arguments'])
attempt('basic.get', lambda: ch.basic_get('events'))
attempt('no-ack consumer', lambda: ch.basic_consume('events', lambda *a: None, auto_ack=True))
attempt('consumer without prefetch', lambda: ch.basic_consume('events', lambda *a: None))
ch.basic_qos(prefetch_count=5, global_qos=True)
attempt('consumer with a global prefetch only', lambda: ch.basic_consume('events', lambda *a: None))
attempt('purge', lambda: ch.queue_purge('events'))
ch.confirm_delivery()

print('first:', consume('events', 'first', 10))
print('next (the default):', consume('events', None, 1, limit=0.5))
print('last:', consume('events', 'last', 1))
print('offset 7:', consume('events', 7, 3))
print('offset past the end:', consume('events', 1000, 1, limit=0.5))
print('offset -1:', consume('events', -1, 10))
print('an hour ago:', len(consume('events', '1h', 10)))
print('since a past time:', len(consume('events', datetime.datetime(2020, 1, 1), 10)))
print('since a future time:', consume('events', datetime.datetime(2100, 1, 1), 1, limit=0.5))
print('bad interval:', consume('events', '1x', 1))
print('prefetch 2 without acks:', consume('events', 'first', 10, prefetch=2, ack=False, limit=1.0))

# Two consumers read the same messages independently; new ones reach both.
a = conn.channel()
b = conn.channel()
seen = {'a': [], 'b': []}
for name, sub in (('a', a), ('b', b)):
    sub.basic_qos(prefetch_count=50)
    sub.basic_consume('events', lambda c, m, p, body, name=name: (seen[name].append(body.decode()), c.basic_ack(m.delivery_tag)),
                      arguments={'x-stream-offset': 'first'})
deadline = time.time() + 3
while (len(seen['a']) < 10 or len(seen['b']) < 10) and time.time() < deadline:
    conn.process_data_events(time_limit=0.05)
ch.basic_publish('', 'events', b'e10', pika.BasicProperties(delivery_mode=2))
deadline = time.time() + 3
while (len(seen['a']) < 11 or len(seen['b']) < 11) and time.time() < deadline:
    conn.process_data_events(time_limit=0.05)
print('two consumers:', seen['a'] == seen['b'], len(seen['a']), seen['a'][-1])
a.close()
b.close()

# Acks do not remove anything: all of it is still there.
print('still there after acks:', len(consume('events', 'first', 11)))

# nack and reject are refused on a stream (the connection closes).
nack = conn.channel()
nack.basic_qos(prefetch_count=10)
got = []
nack.basic_consume('events', lambda c, m, p, body: (got.append(body), c.basic_nack(m.delivery_tag, requeue=True)),
                   arguments={'x-stream-offset': 'last'})
try:
    deadline = time.time() + 2
    while time.time() < deadline:
        conn.process_data_events(time_limit=0.05)
    print('nack: no error')
except pika.exceptions.ConnectionClosedByBroker as e:
    print(f'nack: connection {e.reply_code} {e.reply_text}')
conn = connect()
ch = conn.channel()
ch.confirm_delivery()

# Retention by size: small segments, a small limit, whole segments dropped.
# (A name of its own each run: RabbitMQ deletes a stream's files lazily.)
bounded = f'bounded-{int(time.time() * 1000)}'
ch.queue_declare(bounded, durable=True, arguments={**S, 'x-max-length-bytes': 20000, 'x-stream-max-segment-size-bytes': 5000})
for i in range(200):
    ch.basic_publish('', bounded, (f'{i:04d}' + 'x' * 996).encode(), pika.BasicProperties(delivery_mode=2))
kept = consume(bounded, 'first', 200, limit=2.0)
print('retention kept fewer:', 0 < len(kept) < 200, 'dropped the oldest:', not kept[0][0].startswith('0000'),
      'kept the newest:', kept[-1][0].startswith('0199'), 'in order:', kept == sorted(kept))
print('within the limit and a segment:', len(kept) * 1000 <= 20000 + 5000 + 1000)

for q in ('events', bounded):
    ch.queue_delete(q)
conn.close()
