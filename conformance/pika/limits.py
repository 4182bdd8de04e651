"""Vhost limits (max-connections, max-queues) and user limits
(max-connections, max-channels), set through the management HTTP API and
met through pika. Prints each outcome so the output can be compared with
RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import sys
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
V = 'lim-v'

http = client(http_port)

def show(name, method, path, body=None):
    status, answer = http(method, path, body)
    if isinstance(answer, dict) and 'error' in answer:
        print(f'{name}: {status} {answer["error"]} | {answer.get("reason")!r}')
    elif isinstance(answer, list):
        print(f'{name}: {status} {answer}')
    else:
        print(f'{name}: {status}')

def connect(user='guest', password='guest'):
    creds = pika.PlainCredentials(user, password)
    return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, V, creds, heartbeat=0))

def attempt(name, fn):
    try:
        r = fn()
        print(f'{name}: ok')
        return r
    except pika.exceptions.ProbableAccessDeniedError as e:
        print(f'{name}: access denied {e.args}')
    except pika.exceptions.ChannelClosedByBroker as e:
        print(f'{name}: channel {e.reply_code} {e.reply_text}')
    except pika.exceptions.ConnectionClosedByBroker as e:
        print(f'{name}: connection {e.reply_code} {e.reply_text}')
    except pika.exceptions.AMQPConnectionError as e:
        print(f'{name}: connection error {type(e).__name__} {e.args}')

http('DELETE', f'vhosts/{V}')
http('DELETE', 'users/lim-u')
show('create vhost', 'PUT', f'vhosts/{V}', {})
http('PUT', f'permissions/{V}/guest', {'configure': '.*', 'write': '.*', 'read': '.*'})
show('create user', 'PUT', 'users/lim-u', {'password': 'pw', 'tags': ''})
http('PUT', f'permissions/{V}/lim-u', {'configure': '.*', 'write': '.*', 'read': '.*'})

show('set vhost max-connections', 'PUT', f'vhost-limits/{V}/max-connections', {'value': 2})
show('set vhost max-queues', 'PUT', f'vhost-limits/{V}/max-queues', {'value': 2})
show('vhost limits', 'GET', f'vhost-limits/{V}')
show('bad limit name', 'PUT', f'vhost-limits/{V}/max-widgets', {'value': 2})
show('bad limit value', 'PUT', f'vhost-limits/{V}/max-queues', {'value': 'many'})
show('missing value', 'PUT', f'vhost-limits/{V}/max-queues', {})

held = [attempt(f'connection {i}', connect) for i in (1, 2)]
attempt('connection over the vhost limit', connect)
ch = held[0].channel()
attempt('queue 1', lambda: ch.queue_declare('q1'))
attempt('queue 2', lambda: ch.queue_declare('q2'))
attempt('redeclare at the limit', lambda: ch.queue_declare('q2'))
attempt('queue over the limit', lambda: ch.queue_declare('q3'))
for c in held:
    try:
        c.close()
    except Exception:
        pass
show('clear vhost max-connections', 'DELETE', f'vhost-limits/{V}/max-connections')
show('clear vhost max-queues', 'DELETE', f'vhost-limits/{V}/max-queues')
show('clear missing limit', 'DELETE', f'vhost-limits/{V}/max-queues')

show('set user max-connections', 'PUT', 'user-limits/lim-u/max-connections', {'value': 1})
show('set user max-channels', 'PUT', 'user-limits/lim-u/max-channels', {'value': 2})
show('user limits', 'GET', 'user-limits/lim-u')
c = attempt('user connection 1', lambda: connect('lim-u', 'pw'))
attempt('user connection over the limit', lambda: connect('lim-u', 'pw'))
if c:
    attempt('channel 1', c.channel)
    attempt('channel 2', c.channel)
    attempt('channel over the limit', c.channel)
show('clear user max-connections', 'DELETE', 'user-limits/lim-u/max-connections')
zero = attempt('set vhost max-connections 0', lambda: show('zero', 'PUT', f'vhost-limits/{V}/max-connections', {'value': 0}))
attempt('connection with limit 0', connect)
show('negative means no limit', 'PUT', f'vhost-limits/{V}/max-connections', {'value': -1})
c2 = attempt('connection with limit -1', connect)
http('DELETE', f'vhosts/{V}')
http('DELETE', 'users/lim-u')
