"""Policies and operator policies: set through the management HTTP API,
their effects observed through pika (length limits, TTLs, dead-lettering,
alternate exchanges, precedence of arguments and operator caps, live
changes), and the API's answers. Prints each outcome so the output can be
compared with RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import sys, time, urllib.request
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
V = 'pol-v'
VP = urllib.request.quote(V, safe='')

http = client(http_port)

def show(name, method, path, body=None):
    status, answer = http(method, path, body)
    if isinstance(answer, dict) and 'error' in answer:
        print(f'{name}: {status} {answer["error"]} | {answer.get("reason")!r}')
    else:
        print(f'{name}: {status}')

def policy(name, pattern, definition, apply_to='queues', priority=0, operator=False):
    kind = 'operator-policies' if operator else 'policies'
    show(f'set {kind[:-3]} {name}', 'PUT', f'{kind}/{VP}/{name}',
         {'pattern': pattern, 'definition': definition, 'apply-to': apply_to, 'priority': priority})

def wait_for(what, check, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f'timed out waiting for {what}')
    return False

def depth(ch, q):
    return ch.queue_declare(q, passive=True).method.message_count

def queue_info(q, policy=None, operator_policy=None):
    """What the API shows of a queue's policies, once it shows the
    expected ones (RabbitMQ's statistics lag by a few seconds)."""
    def fields():
        status, info = http('GET', f'queues/{VP}/{q}')
        return {k: info.get(k) for k in ('policy', 'operator_policy', 'effective_policy_definition')}
    wait_for(f'{q} to show {policy}', lambda: (fields()['policy'], fields()['operator_policy']) == (policy, operator_policy), 20)
    return fields()

http('DELETE', f'vhosts/{VP}')
show('create vhost', 'PUT', f'vhosts/{VP}', {})
http('PUT', f'permissions/{VP}/guest', {'configure': '.*', 'write': '.*', 'read': '.*'})
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, V, heartbeat=0))
ch = conn.channel()
ch.confirm_delivery()

def publish(exchange, key, n, body=b'm'):
    for i in range(n):
        ch.basic_publish(exchange, key, body + str(i).encode())

# A length limit from a policy, changed and removed live.
policy('len', '^len-', {'max-length': 2})
ch.queue_declare('len-q')
publish('', 'len-q', 5)
print('max-length 2 from policy:', depth(ch, 'len-q'))
print('queue shows:', queue_info('len-q', 'len'))
policy('len', '^len-', {'max-length': 1})
wait_for('the new limit', lambda: depth(ch, 'len-q') == 1)
print('after lowering to 1:', depth(ch, 'len-q'))
m = ch.basic_get('len-q', auto_ack=True)
print('the newest survives:', m[2])
show('delete policy', 'DELETE', f'policies/{VP}/len')
publish('', 'len-q', 3)
print('without the policy:', depth(ch, 'len-q'))
print('queue shows:', queue_info('len-q', None))

# The lowest limit of the argument, the policy and the operator policy
# applies; a string argument wins over the policy's.
policy('len2', '^arg-', {'max-length': 4, 'message-ttl': 600000, 'overflow': 'drop-head'})
ch.queue_declare('arg-q', arguments={'x-max-length': 3, 'x-overflow': 'reject-publish'})
for i in range(5):
    try:
        ch.basic_publish('', 'arg-q', b'x')
        print('publish', i, 'confirmed')
    except pika.exceptions.NackError:
        print('publish', i, 'nacked')
print('x-max-length 3 and policy 4:', depth(ch, 'arg-q'))
policy('cap', '^arg-', {'max-length': 2}, operator=True)
# With reject-publish, a lower limit refuses new messages but keeps those
# already in the queue.
print('operator caps at 2, reject-publish keeps:', depth(ch, 'arg-q'))
try:
    ch.basic_publish('', 'arg-q', b'x')
    print('publish over the cap confirmed')
except pika.exceptions.NackError:
    print('publish over the cap nacked')
print('queue shows:', queue_info('arg-q', 'len2', 'cap'))
show('delete operator policy', 'DELETE', f'operator-policies/{VP}/cap')

# Priority: the higher one applies.
policy('low', '^prio-', {'max-length': 1}, priority=1)
policy('high', '^prio-', {'max-length': 4}, priority=5)
ch.queue_declare('prio-q')
publish('', 'prio-q', 6)
print('priority 5 over 1:', depth(ch, 'prio-q'), queue_info('prio-q', 'high')['policy'])

# apply-to: a policy for exchanges does not touch queues.
policy('xonly', '^scope-', {'max-length': 1}, apply_to='exchanges')
ch.queue_declare('scope-q')
publish('', 'scope-q', 3)
print('exchanges-only policy on a queue:', depth(ch, 'scope-q'))

# Message TTL from a policy.
policy('ttl', '^ttl-', {'message-ttl': 200})
ch.queue_declare('ttl-q')
publish('', 'ttl-q', 2)
wait_for('messages to expire', lambda: depth(ch, 'ttl-q') == 0)
print('message-ttl from policy:', depth(ch, 'ttl-q'))

# Dead-lettering from a policy.
ch.exchange_declare('dlx', 'fanout')
ch.queue_declare('dead')
ch.queue_bind('dead', 'dlx')
policy('dl', '^dl-', {'dead-letter-exchange': 'dlx', 'dead-letter-routing-key': 'died'})
ch.queue_declare('dl-q')
publish('', 'dl-q', 1)
method, props, body = ch.basic_get('dl-q')
ch.basic_reject(method.delivery_tag, requeue=False)
wait_for('the dead letter', lambda: depth(ch, 'dead') == 1)
method, props, body = ch.basic_get('dead', auto_ack=True)
death = props.headers['x-death'][0]
print('dead-lettered by policy:', body, method.routing_key, death['reason'], death['queue'], death['exchange'])

# An alternate exchange from a policy.
ch.exchange_declare('ae', 'fanout')
ch.queue_declare('unrouted')
ch.queue_bind('unrouted', 'ae')
policy('alt', '^main-', {'alternate-exchange': 'ae'}, apply_to='exchanges')
ch.exchange_declare('main-x', 'direct')
publish('main-x', 'nowhere', 1)
print('alternate exchange from policy:', depth(ch, 'unrouted'))
wait_for('the exchange to show its policy', lambda: http('GET', f'exchanges/{VP}/main-x')[1].get('policy') == 'alt', 20)
print('exchange shows policy:', http('GET', f'exchanges/{VP}/main-x')[1].get('policy'))

# Queue expiry from a policy.
policy('exp', '^exp-', {'expires': 300})
ch.queue_declare('exp-q')
status, _ = http('GET', f'queues/{VP}/exp-q')
print('declared:', status)
wait_for('the queue to expire', lambda: http('GET', f'queues/{VP}/exp-q')[0] == 404)
print('expired by policy:', http('GET', f'queues/{VP}/exp-q')[0])

# What the API answers.
status, p = http('GET', f'policies/{VP}/ttl')
print('policy:', status, p)
status, plist = http('GET', f'policies/{VP}')
print('policies listed:', sorted(x['name'] for x in plist))
show('unknown key', 'PUT', f'policies/{VP}/bad', {'pattern': '.*', 'definition': {'colour': 'blue'}})
show('bad value', 'PUT', f'policies/{VP}/bad', {'pattern': '.*', 'definition': {'message-ttl': 'soon'}})
show('bad apply-to', 'PUT', f'policies/{VP}/bad', {'pattern': '.*', 'definition': {'message-ttl': 1}, 'apply-to': 'nothing'})
show('missing definition', 'PUT', f'policies/{VP}/bad', {'pattern': '.*'})
show('operator key not allowed', 'PUT', f'operator-policies/{VP}/bad', {'pattern': '.*', 'definition': {'dead-letter-exchange': 'x'}})
show('ha-mode accepted', 'PUT', f'policies/{VP}/ha', {'pattern': '^ha-', 'definition': {'ha-mode': 'all'}})
show('policy in missing vhost', 'PUT', 'policies/no-such-vhost/p', {'pattern': '.*', 'definition': {'message-ttl': 1}})
show('delete missing policy', 'DELETE', f'policies/{VP}/nope')
status, defs = http('GET', f'definitions/{VP}')
print('exported policies:', sorted(p['name'] for p in defs['policies']))

conn.close()
http('DELETE', f'vhosts/{VP}')
