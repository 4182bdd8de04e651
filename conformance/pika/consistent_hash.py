"""The consistent-hash exchange (RabbitMQ's x-consistent-hash plugin):
binding weights and their validation, the share of keys each queue gets,
the same key always reaching the same queue, hashing on a header or a
property, and messages without that header or property. Prints each
outcome so the output can be compared with RabbitMQ's (shares as checks
within a tolerance: the hash functions differ).

Arguments: the AMQP port, then the management API's port."""
import sys
import time
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
http = client(http_port)
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0))
ch = conn.channel()


def attempt(name, fn):
    global ch
    try:
        fn()
        print(f'{name}: ok')
    except pika.exceptions.ChannelClosedByBroker as e:
        print(f'{name}: channel {e.reply_code} {e.reply_text}')
        ch = conn.channel()
        # Confirms: a publish returns once routed, so depths read after it are exact.
        ch.confirm_delivery()


def fresh_queue(name):
    ch.queue_delete(name)
    ch.queue_declare(name)


def depth(name):
    return ch.queue_declare(name, passive=True).method.message_count


def drain(name):
    bodies = []
    while True:
        method, props, body = ch.basic_get(name, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body.decode())



for x in ('chx', 'chx-h', 'chx-p', 'chx-t', 'chx-c'):
    ch.exchange_delete(x)
ch.confirm_delivery()
attempt('declare', lambda: ch.exchange_declare('chx', 'x-consistent-hash'))
status, info = http('GET', 'exchanges/%2F/chx')
print('exchange type:', info['type'])
status, overview = http('GET', 'overview')
print('listed type:', [t for t in overview['exchange_types'] if t['name'] == 'x-consistent-hash'])

queues = ['chq1', 'chq2', 'chq3', 'chq4']
weights = [1, 1, 2, 4]
for q, w in zip(queues, weights):
    fresh_queue(q)
    attempt(f'bind {q} weight {w}', lambda: ch.queue_bind(q, 'chx', str(w)))
attempt('weight not a number', lambda: ch.queue_bind('chq1', 'chx', 'abc'))
attempt('weight zero', lambda: ch.queue_bind('chq1', 'chx', '0'))
attempt('weight negative', lambda: ch.queue_bind('chq1', 'chx', '-3'))

N = 20000
for i in range(N):
    ch.basic_publish('chx', f'key-{i}', f'key-{i}'.encode())
counts = [depth(q) for q in queues]
print('all routed:', sum(counts) == N)
for q, w, n in zip(queues, weights, counts):
    share = n / N
    print(f'{q} share within 2.5 points of {w}/8:', abs(share - w / 8) < 0.025)
first = {}
for q in queues:
    for body in drain(q):
        first[body] = q
for i in range(2000):
    ch.basic_publish('chx', f'key-{i}', f'key-{i}'.encode())
again = {}
for q in queues:
    for body in drain(q):
        again[body] = q
print('same key, same queue:', all(first[k] == again[k] for k in again), len(again))
# A binding removed: its keys go to the others.
ch.queue_unbind('chq2', 'chx', '1')
for i in range(2000):
    ch.basic_publish('chx', f'key-{i}', f'key-{i}'.encode())
print('removed queue gets nothing:', depth('chq2') == 0)
after = {}
for q in queues:
    for body in drain(q):
        after[body] = q
print('its keys went elsewhere:', all(after[k] != 'chq2' for k in after), len(after))

# Hashing on a header.
attempt('declare on a header', lambda: ch.exchange_declare('chx-h', 'x-consistent-hash', arguments={'hash-header': 'account'}))
for q in ('hq1', 'hq2'):
    fresh_queue(q)
    ch.queue_bind(q, 'chx-h', '1')
for i in range(1000):
    ch.basic_publish('chx-h', f'random-{i}', f'{i % 40}'.encode(), pika.BasicProperties(headers={'account': f'acct-{i % 40}'}))
placed = {}
for q in ('hq1', 'hq2'):
    for body in drain(q):
        placed.setdefault(body, set()).add(q)
print('one queue per header value:', all(len(v) == 1 for v in placed.values()), len(placed))
print('both queues used:', len(set().union(*placed.values())) == 2)
ch.basic_publish('chx-h', 'rk', b'no header')
print('without the header, routed:', depth('hq1') + depth('hq2'))

# Hashing on a property.
attempt('declare on message_id', lambda: ch.exchange_declare('chx-p', 'x-consistent-hash', arguments={'hash-property': 'message_id'}))
for q in ('pq1', 'pq2'):
    fresh_queue(q)
    ch.queue_bind(q, 'chx-p', '1')
for i in range(1000):
    ch.basic_publish('chx-p', f'random-{i}', f'{i % 40}'.encode(), pika.BasicProperties(message_id=f'order-{i % 40}'))
placed = {}
for q in ('pq1', 'pq2'):
    for body in drain(q):
        placed.setdefault(body, set()).add(q)
print('one queue per message id:', all(len(v) == 1 for v in placed.values()), len(placed))
ch.basic_publish('chx-p', 'rk', b'no id')
print('without a message id, routed:', depth('pq1') + depth('pq2'))
for prop, args in (('timestamp', pika.BasicProperties(timestamp=1700000000)), ('correlation_id', pika.BasicProperties(correlation_id='c-1'))):
    name = 'chx-t' if prop == 'timestamp' else 'chx-c'
    attempt(f'declare on {prop}', lambda: ch.exchange_declare(name, 'x-consistent-hash', arguments={'hash-property': prop}))
    fresh_queue(f'{name}-q')
    ch.queue_bind(f'{name}-q', name, '2')
    ch.basic_publish(name, 'rk', b'x', args)
    print(f'routed on {prop}:', depth(f'{name}-q'))
attempt('unsupported property', lambda: ch.exchange_declare('chx-bad', 'x-consistent-hash', arguments={'hash-property': 'app_id'}))
attempt('header and property', lambda: ch.exchange_declare('chx-bad', 'x-consistent-hash', arguments={'hash-header': 'h', 'hash-property': 'message_id'}))

for x in ('chx', 'chx-h', 'chx-p', 'chx-t', 'chx-c'):
    ch.exchange_delete(x)
for q in queues + ['hq1', 'hq2', 'pq1', 'pq2', 'chx-t-q', 'chx-c-q']:
    ch.queue_delete(q)
conn.close()
