"""Users, vhosts and permissions: provisioned through the management HTTP
API (as Terraform and test suites do), then every permission rule exercised
through pika. Prints each outcome (HTTP status and error, or AMQP reply code
and text) so the output can be compared with RabbitMQ's.

Arguments: the AMQP port, then the management API's port."""
import re, sys, time
import pika
from _http import client

port, http_port = int(sys.argv[1]), int(sys.argv[2])
VHOST, OTHER = 'acc-v', 'acc-gone'

http = client(http_port)

def show(name, method, path, body=None, **kw):
    status, answer = http(method, path, body, **kw)
    if isinstance(answer, dict) and 'error' in answer:
        print(f'{name}: {status} {answer["error"]} | {answer.get("reason")}')
    else:
        print(f'{name}: {status}')

# Start clean (a previous run may have left these).
for v in (VHOST, OTHER):
    http('DELETE', f'vhosts/{v}')
for u in ('acc-u', 'acc-none', 'acc-imp', 'acc-t', 'acc-mgmt', 'acc-gone-user'):
    http('DELETE', f'users/{u}')

show('create vhost', 'PUT', f'vhosts/{VHOST}', {'description': 'access tests'})
show('create vhost again', 'PUT', f'vhosts/{VHOST}', {'description': 'access tests'})
show('create other vhost', 'PUT', f'vhosts/{OTHER}', {})
show('create user', 'PUT', 'users/acc-u', {'password': 'pw', 'tags': ''})
show('create user without permissions', 'PUT', 'users/acc-none', {'password': 'pw', 'tags': ''})
show('create impersonator', 'PUT', 'users/acc-imp', {'password': 'pw', 'tags': 'impersonator'})
show('create topic user', 'PUT', 'users/acc-t', {'password': 'pw', 'tags': ''})
show('create management user', 'PUT', 'users/acc-mgmt', {'password': 'pw', 'tags': 'management'})
show('create doomed user', 'PUT', 'users/acc-gone-user', {'password': 'pw', 'tags': ''})
show('update user', 'PUT', 'users/acc-u', {'password': 'pw', 'tags': ''})
show('set permissions', 'PUT', f'permissions/{VHOST}/acc-u', {'configure': '^cfg-', 'write': '^wr-', 'read': '^rd-'})
show('set permissions again', 'PUT', f'permissions/{VHOST}/acc-u', {'configure': '^cfg-', 'write': '^wr-', 'read': '^rd-'})
for user in ('acc-imp', 'acc-t', 'guest', 'acc-mgmt', 'acc-gone-user'):
    http('PUT', f'permissions/{VHOST}/{user}', {'configure': '.*', 'write': '.*', 'read': '.*'})
http('PUT', f'permissions/{OTHER}/acc-u', {'configure': '.*', 'write': '.*', 'read': '.*'})
show('set topic permissions', 'PUT', f'topic-permissions/{VHOST}/acc-t',
     {'exchange': 'amq.topic', 'write': '^{username}\\.', 'read': '^allowed\\.'})
show('permission for missing user', 'PUT', f'permissions/{VHOST}/nobody', {'configure': '.*', 'write': '.*', 'read': '.*'})
show('permission in missing vhost', 'PUT', 'permissions/no-such-vhost/acc-u', {'configure': '.*', 'write': '.*', 'read': '.*'})
show('permission with bad JSON', 'PUT', f'permissions/{VHOST}/acc-u', None)
show('get missing user', 'GET', 'users/nobody')
show('get missing vhost', 'GET', 'vhosts/no-such-vhost')
show('delete missing user', 'DELETE', 'users/nobody')
show('no credentials', 'GET', 'overview', user=None)
show('wrong password', 'GET', 'overview', user='acc-u', password='nope')
show('user without management tag', 'GET', 'overview', user='acc-u', password='pw')
show('management user lists users', 'GET', 'users', user='acc-mgmt', password='pw')
show('management user creates vhost', 'PUT', 'vhosts/acc-mgmt-v', {}, user='acc-mgmt', password='pw')
show('management user overview', 'GET', 'overview', user='acc-mgmt', password='pw')
status, perms = http('GET', f'permissions/{VHOST}/acc-u')
print('read permissions:', status, perms)
status, whoami = http('GET', 'whoami', user='acc-mgmt', password='pw')
print('whoami:', status, whoami)

# Objects the restricted user is tested against, made by guest.
admin = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, VHOST, heartbeat=0))
ach = admin.channel()
for x in ('wr-x', 'rd-x', 'cfg-x0'):
    ach.exchange_declare(x, 'direct')
ach.exchange_declare('rd-topic', 'topic')
for q in ('rd-q', 'wr-q', 'cfg-q0'):
    ach.queue_declare(q)
ach.basic_publish('', 'rd-q', b'm1')
ach.basic_publish('', 'rd-q', b'm2')

def connect(user, password='pw', vhost=VHOST):
    creds = pika.PlainCredentials(user, password)
    return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, vhost, creds, heartbeat=0))

def outcome(name, fn, user='acc-u', vhost=VHOST):
    try:
        c = connect(user, vhost=vhost)
    except pika.exceptions.ProbableAccessDeniedError as e:
        print(f'{name}: access denied {e.args}')
        return
    except pika.exceptions.ProbableAuthenticationError as e:
        print(f'{name}: authentication {e.args}')
        return
    except pika.exceptions.ConnectionClosedByBroker as e:
        print(f'{name}: connection {e.reply_code} {e.reply_text}')
        return
    ch = c.channel()
    ch.confirm_delivery()
    try:
        r = fn(ch)
        print(f'{name}: ok' + (f' {r}' if r is not None else ''))
    except pika.exceptions.ChannelClosedByBroker as e:
        text = re.sub(r'amq\.gen-[A-Za-z0-9_-]+', 'amq.gen-*', e.reply_text)
        print(f'{name}: channel {e.reply_code} {text}')
    except pika.exceptions.ConnectionClosedByBroker as e:
        print(f'{name}: connection {e.reply_code} {e.reply_text}')
    try:
        c.close()
    except Exception:
        pass

outcome('login without vhost access', lambda ch: None, user='acc-none')
outcome('login to missing vhost', lambda ch: None, vhost='acc-nowhere')
try:
    connect('acc-u', 'wrong')
    print('bad password: ok')
except pika.exceptions.ProbableAuthenticationError as e:
    print('bad password: authentication', e.args)
except pika.exceptions.ConnectionClosedByBroker as e:
    print('bad password: connection', e.reply_code, e.reply_text)

outcome('declare permitted queue', lambda ch: ch.queue_declare('cfg-q').method.queue)
outcome('declare queue without configure', lambda ch: ch.queue_declare('other-q'))
outcome('declare server-named queue', lambda ch: ch.queue_declare('', exclusive=True) and None)
outcome('passive declare without configure', lambda ch: ch.queue_declare('rd-q', passive=True).method.message_count)
outcome('declare permitted exchange', lambda ch: ch.exchange_declare('cfg-x', 'direct') and None)
outcome('declare exchange without configure', lambda ch: ch.exchange_declare('other-x', 'direct'))
outcome('declare exchange with unwritable alternate', lambda ch: ch.exchange_declare('cfg-ae', 'direct', arguments={'alternate-exchange': 'rd-x'}))
outcome('declare queue with unwritable dead-letter exchange', lambda ch: ch.queue_declare('cfg-dl', arguments={'x-dead-letter-exchange': 'rd-x'}))
outcome('delete queue without configure', lambda ch: ch.queue_delete('rd-q'))
outcome('delete exchange without configure', lambda ch: ch.exchange_delete('rd-x'))
outcome('delete permitted queue', lambda ch: ch.queue_delete('cfg-q0') and None)
outcome('publish to default exchange', lambda ch: ch.basic_publish('', 'rd-q', b'x'))
outcome('publish to writable exchange', lambda ch: ch.basic_publish('wr-x', 'k', b'x'))
outcome('publish to unwritable exchange', lambda ch: ch.basic_publish('rd-x', 'k', b'x'))
outcome('publish to missing unwritable exchange', lambda ch: ch.basic_publish('nope-x', 'k', b'x'))
outcome('publish with another user_id', lambda ch: ch.basic_publish('wr-x', 'k', b'x', pika.BasicProperties(user_id='someone')))
outcome('publish with own user_id', lambda ch: ch.basic_publish('wr-x', 'k', b'x', pika.BasicProperties(user_id='acc-u')))
outcome('impersonator publishes as another', lambda ch: ch.basic_publish('wr-x', 'k', b'x', pika.BasicProperties(user_id='someone')), user='acc-imp')
outcome('get from readable queue', lambda ch: ch.basic_get('rd-q', auto_ack=True)[2])
outcome('get without read', lambda ch: ch.basic_get('wr-q'))
outcome('consume without read', lambda ch: ch.basic_consume('wr-q', lambda *a: None))
outcome('consume readable queue', lambda ch: ch.basic_consume('rd-q', lambda *a: None, consumer_tag='t1'))
outcome('purge readable queue', lambda ch: ch.queue_purge('rd-q').method.message_count)
outcome('purge without read', lambda ch: ch.queue_purge('wr-q'))
outcome('bind permitted', lambda ch: ch.queue_bind('wr-q', 'rd-x', 'k') and None)
outcome('bind without write on queue', lambda ch: ch.queue_bind('rd-q', 'rd-x', 'k'))
outcome('bind without read on exchange', lambda ch: ch.queue_bind('wr-q', 'wr-x', 'k'))
outcome('unbind without write on queue', lambda ch: ch.queue_unbind('rd-q', 'rd-x', 'k'))
outcome('exchange bind permitted', lambda ch: ch.exchange_bind('wr-x', 'rd-x', 'k') and None)
outcome('exchange bind without write on destination', lambda ch: ch.exchange_bind('rd-x', 'rd-x', 'k'))
outcome('exchange bind without read on source', lambda ch: ch.exchange_bind('wr-x', 'wr-x', 'k'))
outcome('topic publish allowed key', lambda ch: ch.basic_publish('amq.topic', 'acc-t.logs', b'x'), user='acc-t')
outcome('topic publish denied key', lambda ch: ch.basic_publish('amq.topic', 'someone.logs', b'x'), user='acc-t')
outcome('topic publish other exchange', lambda ch: ch.basic_publish('rd-topic', 'someone.logs', b'x'), user='acc-t')
def topic_bind(key):
    def run(ch):
        q = ch.queue_declare('', exclusive=True).method.queue
        ch.queue_bind(q, 'amq.topic', key)
    return run
outcome('topic bind allowed key', topic_bind('allowed.x'), user='acc-t')
outcome('topic bind denied key', topic_bind('denied.x'), user='acc-t')

# Deleting a vhost closes its connections; deleting a user closes theirs.
def closed_by(name, conn, action):
    got = []
    try:
        ch = conn.channel()
        action()
        deadline = time.time() + 10
        while time.time() < deadline:
            conn.process_data_events(time_limit=0.1)
    except pika.exceptions.ConnectionClosedByBroker as e:
        got = [e.reply_code, e.reply_text]
    except pika.exceptions.StreamLostError as e:
        got = ['stream lost']
    print(f'{name}: {got}')

closed_by('vhost deleted under a connection', connect('acc-u', vhost=OTHER), lambda: show('delete vhost', 'DELETE', f'vhosts/{OTHER}'))
closed_by('user deleted under a connection', connect('acc-gone-user'), lambda: show('delete user', 'DELETE', 'users/acc-gone-user'))
show('delete vhost again', 'DELETE', f'vhosts/{OTHER}')
status, perms = http('GET', 'permissions')
print('permissions left for deleted vhost:', [p for p in perms if p['vhost'] == OTHER])
show('clear permissions', 'DELETE', f'permissions/{VHOST}/acc-u')
show('clear permissions again', 'DELETE', f'permissions/{VHOST}/acc-u')
outcome('login after permissions cleared', lambda ch: None)

admin.close()
for v in (VHOST,):
    http('DELETE', f'vhosts/{v}')
for u in ('acc-u', 'acc-none', 'acc-imp', 'acc-t', 'acc-mgmt'):
    http('DELETE', f'users/{u}')
