"""Error cases through pika: each prints its outcome (reply code and text),
with generated names masked, so the output can be compared with RabbitMQ's."""
import pika, sys, uuid, re
port = int(sys.argv[1])
def conn():
    return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0))
def u(p): return p + '-' + uuid.uuid4().hex[:6]
results = {}
def case(name, fn):
    c = conn(); ch = c.channel()
    try:
        r = fn(c, ch)
        results[name] = ('ok', str(r) if r is not None else None)
    except pika.exceptions.ChannelClosedByBroker as e:
        results[name] = ('channel', e.reply_code, e.reply_text)
    except pika.exceptions.ConnectionClosedByBroker as e:
        results[name] = ('connection', e.reply_code, e.reply_text)
    except Exception as e:
        results[name] = ('other', type(e).__name__, str(e))
    try: c.close()
    except Exception: pass

Q = u('q'); X = u('x')
case('passive missing exchange', lambda c, ch: ch.exchange_declare('nope-x', passive=True))
case('passive missing queue', lambda c, ch: ch.queue_declare('nope-q', passive=True))
def redecl_x(c, ch):
    ch.exchange_declare(X, 'direct'); ch.exchange_declare(X, 'fanout')
case('exchange type mismatch', redecl_x)
def redecl_x2(c, ch):
    x = u('x2'); ch.exchange_declare(x, 'direct'); ch.exchange_declare(x, 'direct', durable=True)
case('exchange durable mismatch', redecl_x2)
case('amq prefix exchange', lambda c, ch: ch.exchange_declare('amq.foo', 'direct'))
case('amq.direct redeclare ok', lambda c, ch: ch.exchange_declare('amq.direct', 'direct', durable=True))
case('amq.direct redeclare nondurable', lambda c, ch: ch.exchange_declare('amq.direct', 'direct'))
case('amq prefix queue', lambda c, ch: ch.queue_declare('amq.foo'))
case('unknown exchange type', lambda c, ch: ch.exchange_declare(u('x3'), 'foo'))
case('delete amq.direct', lambda c, ch: ch.exchange_delete('amq.direct'))
case('delete default exchange', lambda c, ch: ch.exchange_delete(''))
case('delete missing exchange', lambda c, ch: ch.exchange_delete('nope-x'))
case('delete missing queue', lambda c, ch: ch.queue_delete('nope-q'))
case('bind default exchange', lambda c, ch: (ch.queue_declare(Q), ch.queue_bind(Q, '', 'k')))
case('bind missing exchange', lambda c, ch: ch.queue_bind(Q, 'nope-x', 'k'))
case('bind missing queue', lambda c, ch: ch.queue_bind('nope-q', 'amq.direct', 'k'))
case('bind missing both', lambda c, ch: ch.queue_bind('nope-q', 'nope-x', 'k'))
case('unbind missing binding', lambda c, ch: ch.queue_unbind(Q, 'amq.direct', 'never-bound'))
case('unbind missing queue', lambda c, ch: ch.queue_unbind('nope-q', 'amq.direct', 'k'))
def q_durable(c, ch):
    q = u('qd'); ch.queue_declare(q); ch.queue_declare(q, durable=True)
case('queue durable mismatch', q_durable)
def q_args(c, ch):
    q = u('qa'); ch.queue_declare(q, arguments={'x-message-ttl': 100}); ch.queue_declare(q, arguments={'x-message-ttl': 200})
case('queue arg mismatch', q_args)
def q_args2(c, ch):
    q = u('qa'); ch.queue_declare(q, arguments={'x-message-ttl': 100}); ch.queue_declare(q)
case('queue arg missing on redeclare', q_args2)
def q_args3(c, ch):
    q = u('qa'); ch.queue_declare(q); ch.queue_declare(q, arguments={'x-foo': 1})
case('queue unknown arg redeclare', q_args3)
def excl(c, ch):
    q = u('qe'); ch.queue_declare(q, exclusive=True)
    c2 = conn(); ch2 = c2.channel()
    try: ch2.queue_declare(q, passive=True)
    finally:
        try: c2.close()
        except Exception: pass
case('exclusive other conn passive', excl)
def excl2(c, ch):
    q = u('qe'); ch.queue_declare(q, exclusive=True)
    ch.queue_declare(q)
case('exclusive same conn redeclare nonexclusive', excl2)
def ifunused(c, ch):
    q = u('qu'); ch.queue_declare(q); ch.basic_consume(q, lambda *a: None); ch.queue_delete(q, if_unused=True)
case('queue delete if-unused', ifunused)
def ifempty(c, ch):
    q = u('qm'); ch.queue_declare(q); ch.basic_publish('', q, b'x'); ch.queue_delete(q, if_empty=True)
case('queue delete if-empty', ifempty)
def xifunused(c, ch):
    x = u('xu'); ch.exchange_declare(x, 'fanout'); q = u('q'); ch.queue_declare(q, exclusive=True); ch.queue_bind(q, x); ch.exchange_delete(x, if_unused=True)
case('exchange delete if-unused', xifunused)
case('publish missing exchange', lambda c, ch: (ch.basic_publish('nope-x', 'k', b'x'), ch.queue_declare('', exclusive=True)))
def internal(c, ch):
    x = u('xi'); ch.exchange_declare(x, 'fanout', internal=True); ch.basic_publish(x, 'k', b'x'); ch.queue_declare('', exclusive=True)
case('publish internal', internal)
case('ack unknown', lambda c, ch: (ch.basic_ack(5), ch.queue_declare('', exclusive=True)))
case('ack multiple unknown', lambda c, ch: (ch.basic_ack(5, multiple=True), ch.queue_declare('', exclusive=True)))
case('reject unknown', lambda c, ch: (ch.basic_reject(7), ch.queue_declare('', exclusive=True)))
def dupctag(c, ch):
    q = ch.queue_declare('', exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None, consumer_tag='t1'); ch.basic_consume(q, lambda *a: None, consumer_tag='t1')
case('duplicate consumer tag', dupctag)
def exclcons(c, ch):
    q = ch.queue_declare('', exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None, exclusive=True); ch.basic_consume(q, lambda *a: None)
case('exclusive consumer', exclcons)
def exclcons2(c, ch):
    q = ch.queue_declare('', exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None); ch.basic_consume(q, lambda *a: None, exclusive=True)
case('exclusive consumer second', exclcons2)
case('qos prefetch size', lambda c, ch: ch.basic_qos(prefetch_size=10))
case('consume missing queue', lambda c, ch: ch.basic_consume('nope-q', lambda *a: None))
case('get missing queue', lambda c, ch: ch.basic_get('nope-q'))
case('purge missing queue', lambda c, ch: ch.queue_purge('nope-q'))
case('tx commit not tx', lambda c, ch: ch.tx_commit())
case('tx rollback not tx', lambda c, ch: ch.tx_rollback())
case('confirm then tx', lambda c, ch: (ch.confirm_delivery(), ch.tx_select()))
case('tx then confirm', lambda c, ch: (ch.tx_select(), ch.confirm_delivery()))
case('recover requeue false', lambda c, ch: ch.basic_recover(requeue=False))
case('empty queue name no previous', lambda c, ch: ch.queue_bind('', 'amq.direct', 'k'))
case('passive default exchange', lambda c, ch: ch.exchange_declare('', passive=True))
case('declare default exchange', lambda c, ch: ch.exchange_declare('', 'direct'))
def e2e_default(c, ch):
    ch.exchange_bind('amq.fanout', '', 'k')
case('exchange bind from default', e2e_default)
def e2e_missing(c, ch):
    ch.exchange_bind('amq.fanout', 'nope-x', 'k')
case('exchange bind missing source', e2e_missing)
def e2e_missing2(c, ch):
    ch.exchange_bind('nope-x', 'amq.fanout', 'k')
case('exchange bind missing dest', e2e_missing2)
def big_ttl(c, ch): ch.queue_declare(u('q'), arguments={'x-message-ttl': 'abc'})
case('ttl wrong type', big_ttl)
case('ttl negative', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-message-ttl': -1}))
case('expires zero', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-expires': 0}))
case('max priority 256', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-max-priority': 256}))
case('max length negative', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-max-length': -1}))
case('overflow invalid', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-overflow': 'foo'}))
case('queue type invalid', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-queue-type': 'foo'}))
case('quorum exclusive', lambda c, ch: ch.queue_declare(u('q'), exclusive=True, arguments={'x-queue-type': 'quorum'}))
case('quorum nondurable', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-queue-type': 'quorum'}))
case('quorum autodelete', lambda c, ch: ch.queue_declare(u('q'), durable=True, auto_delete=True, arguments={'x-queue-type': 'quorum'}))
case('dlx wrong type', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-dead-letter-exchange': 5}))
case('dlrk without dlx', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-dead-letter-routing-key': 'k'}))
case('sac wrong type', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-single-active-consumer': 'yes'}))
case('delivery limit classic', lambda c, ch: ch.queue_declare(u('q'), arguments={'x-delivery-limit': 5}))
case('consumer priority wrong', lambda c, ch: (lambda q: ch.basic_consume(q, lambda *a: None, arguments={'x-priority': 'high'}))(ch.queue_declare('', exclusive=True).method.queue))
def user_id(c, ch):
    ch.basic_publish('', 'x', b'x', pika.BasicProperties(user_id='bob')); ch.queue_declare('', exclusive=True)
case('user_id mismatch', user_id)
def bad_expiration(value):
    def run(c, ch):
        ch.basic_publish('', 'nowhere', b'x', pika.BasicProperties(expiration=value)); ch.queue_declare('', exclusive=True)
    return run
for value in ['abc', '-5', '1.5', '99999999999', '315360000000', '315360000001', '9999999999999999',
              '18446744073709551615', '+7', '007', '-0', '']:
    case(f'expiration {value!r}', bad_expiration(value))
def ex_cap(c, ch): ch.exchange_declare(u('x'), 'direct', arguments={'alternate-exchange': 5})
case('alternate exchange wrong type', ex_cap)
def max_ch(c, ch):
    import pika.exceptions
    return c._impl.params.channel_max
case('channel max', max_ch)
def vhost(c, ch): return None
try:
    c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, virtual_host='nope'))
    results['unknown vhost'] = ('ok',)
except Exception as e:
    results['unknown vhost'] = (type(e).__name__, str(e))
try:
    c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, credentials=pika.PlainCredentials('guest', 'bad')))
    results['bad password'] = ('ok',)
except Exception as e:
    results['bad password'] = (type(e).__name__, str(e))
def mask(text):
    text = re.sub(r"amq\.gen-[A-Za-z0-9_-]+", "amq.gen-X", text)
    text = re.sub(r"ctag[0-9.]*[0-9a-f]{32}", "ctag-X", text)
    return re.sub(r"[a-z0-9]+-[0-9a-f]{6}", "NAME", text)
for k in results: print(k, '=>', mask(str(results[k])))
