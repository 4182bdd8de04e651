"""Dynamic shovels (RabbitMQ's shovel plugin, `shovel` runtime parameters
over the management HTTP API) moving messages between queues of one
broker: a dead-letter queue replayed into a work queue, a continuous
shovel into an exchange, a count limit, queues declared by the shovel,
the status and parameter listings, and the validation errors. Prints each
outcome so the output can be compared with RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import sys
import time
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
V = 'sh-v'
URI = 'amqp:///sh-v'
http = client(http_port)


def show(name, method, path, body=None):
    status, answer = http(method, path, body)
    if isinstance(answer, dict) and 'error' in answer:
        print(f'{name}: {status} {answer["error"]} | {answer.get("reason")!r}')
    else:
        print(f'{name}: {status}')


def until(what, check, limit=15):
    deadline = time.time() + limit
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f'timed out waiting for {what}')
    return False


def depth(queue):
    status, q = http('GET', f'queues/{V}/{queue}')
    return q.get('messages') if status == 200 else None


def shovel_names():
    status, shovels = http('GET', f'shovels/{V}')
    return sorted(s['name'] for s in shovels) if status == 200 else status


def shovel(name, **value):
    value = {'src-uri': URI, 'dest-uri': URI, **{k.replace('_', '-'): v for k, v in value.items()}}
    show(f'define {name}', 'PUT', f'parameters/shovel/{V}/{name}', {'value': value})


http('DELETE', f'vhosts/{V}')
http('PUT', f'vhosts/{V}', {})
http('PUT', f'permissions/{V}/guest', {'configure': '.*', 'write': '.*', 'read': '.*'})
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, V, heartbeat=0))
ch = conn.channel()
ch.confirm_delivery()
for q in ('dlq', 'work', 'inbox', 'fwd-out', 'counted', 'counted-dst'):
    ch.queue_declare(q, durable=True)
ch.queue_bind('fwd-out', 'amq.topic', 'fwd.#')

# Validation, as RabbitMQ words it.
def bad(name, value):
    show(name, 'PUT', f'parameters/shovel/{V}/bad', {'value': value})
bad('no src-uri', {'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'work'})
bad('no dest-uri', {'src-uri': URI, 'src-queue': 'dlq', 'dest-queue': 'work'})
bad('no source', {'src-uri': URI, 'dest-uri': URI, 'dest-queue': 'work'})
bad('two sources', {'src-uri': URI, 'src-queue': 'dlq', 'src-exchange': 'x', 'dest-uri': URI})
bad('two destinations', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'dest-exchange': 'x'})
bad('bad scheme', {'src-uri': 'foo://bar', 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w'})
bad('queue not text', {'src-uri': URI, 'src-queue': 5, 'dest-uri': URI, 'dest-queue': 'w'})
bad('bad delete-after', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'src-delete-after': 'sometimes'})
bad('negative delete-after', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'src-delete-after': -1})
bad('bad ack-mode', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'ack-mode': 'sometimes'})
bad('bad flag', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'dest-add-forward-headers': 'yes'})
bad('unknown key', {'src-uri': URI, 'src-queue': 'dlq', 'dest-uri': URI, 'dest-queue': 'w', 'bogus': 1})
show('no value', 'PUT', f'parameters/shovel/{V}/bad', {'nothing': 1})
show('unknown component', 'PUT', f'parameters/federation-upstream/{V}/bad', {'value': {}})
show('unknown vhost', 'PUT', 'parameters/shovel/no-such-vhost/bad', {'value': {'src-uri': URI, 'src-queue': 'q', 'dest-uri': URI}})
show('missing parameter', 'GET', f'parameters/shovel/{V}/nope')
show('missing shovel', 'GET', f'shovels/vhost/{V}/nope')
show('delete missing', 'DELETE', f'parameters/shovel/{V}/nope')
print('shovels after refusals:', shovel_names())

# Replaying a dead-letter queue: everything it holds, then the shovel goes.
for i in range(10):
    props = pika.BasicProperties(delivery_mode=2, message_id=f'm{i}', headers={'attempt': i}, content_type='text/plain')
    ch.basic_publish('', 'dlq', f'body {i}'.encode(), props)
shovel('replay', src_queue='dlq', dest_queue='work', src_delete_after='queue-length', ack_mode='on-confirm')
until('the replay to finish', lambda: depth('work') == 10 and depth('dlq') == 0 and shovel_names() == [])
print('after replay: work', depth('work'), 'dlq', depth('dlq'), 'shovels', shovel_names())
for i in range(10):
    method, props, body = ch.basic_get('work', auto_ack=True)
    print('moved:', body.decode(), repr(method.exchange), method.routing_key, method.redelivered,
          props.message_id, props.headers, props.delivery_mode, props.content_type)

# A continuous shovel into an exchange, with a routing key of its own.
shovel('forward', src_queue='inbox', dest_exchange='amq.topic', dest_exchange_key='fwd.key')
until('the shovel to run', lambda: http('GET', f'shovels/vhost/{V}/forward')[1][0].get('state') == 'running')
for i in range(3):
    ch.basic_publish('', 'inbox', f'fwd {i}'.encode(), pika.BasicProperties(delivery_mode=2))
until('three forwarded', lambda: depth('fwd-out') == 3)
print('forwarded:', depth('fwd-out'), 'left in inbox:', depth('inbox'))
method, props, body = ch.basic_get('fwd-out', auto_ack=True)
print('forwarded message:', body.decode(), method.exchange, method.routing_key)
status, listed = http('GET', f'shovels/{V}')
for s in listed:
    print('status:', {k: v for k, v in sorted(s.items()) if k not in ('node', 'timestamp')})
status, one = http('GET', f'shovels/vhost/{V}/forward')
print('one shovel:', status, type(one).__name__, len(one), sorted(one[0]))
status, params = http('GET', f'parameters/shovel/{V}')
print('parameters:', status, params)
status, param = http('GET', f'parameters/shovel/{V}/forward')
print('parameter:', status, param)
show('redefine', 'PUT', f'parameters/shovel/{V}/forward', {'value': {'src-uri': URI, 'src-queue': 'inbox', 'dest-uri': URI, 'dest-exchange': 'amq.topic'}})
until('the redefined shovel to run', lambda: http('GET', f'shovels/vhost/{V}/forward')[1][0].get('state') == 'running')
ch.basic_publish('', 'inbox', b'keeps its key', pika.BasicProperties(delivery_mode=2, headers={'k': 'v'}))
until('it to leave (unroutable: nothing is bound to its key yet)', lambda: depth('inbox') == 0)
ch.queue_bind('fwd-out', 'amq.topic', 'inbox')
ch.basic_publish('', 'inbox', b'original key', pika.BasicProperties(delivery_mode=2))
until('the original key routed', lambda: depth('fwd-out') == 3)
for _ in range(3):
    method, props, body = ch.basic_get('fwd-out', auto_ack=True)
    print('after redefine:', body.decode(), method.exchange, method.routing_key)
show('delete forward', 'DELETE', f'parameters/shovel/{V}/forward')
show('delete forward again', 'DELETE', f'parameters/shovel/{V}/forward')
print('shovels after delete:', shovel_names())

# A count: exactly that many move, then the shovel goes.
for i in range(5):
    ch.basic_publish('', 'counted', f'c{i}'.encode(), pika.BasicProperties(delivery_mode=2))
shovel('count', src_queue='counted', dest_queue='counted-dst', src_delete_after=2)
until('two counted', lambda: depth('counted-dst') == 2 and shovel_names() == [])
time.sleep(0.3)
print('counted: moved', depth('counted-dst'), 'left', depth('counted'), 'shovels', shovel_names())

# Queues that do not exist are declared by the shovel, durable.
shovel('declares', src_queue='made-src', dest_queue='made-dst', src_delete_after='queue-length')
until('the declared queues', lambda: depth('made-src') is not None and depth('made-dst') is not None)
for q in ('made-src', 'made-dst'):
    status, info = http('GET', f'queues/{V}/{q}')
    print('declared:', q, status, info['durable'], info['auto_delete'], info['arguments'])
until('the declaring shovel to go', lambda: shovel_names() == [])

conn.close()
http('DELETE', f'vhosts/{V}')
