"""Queue features through pika (dead-lettering and x-death, TTL, length limits,
priorities, quorum delivery limits, single active consumer); prints outcomes
with generated names masked, for comparison with RabbitMQ."""
import pika, sys, uuid, time
port = int(sys.argv[1])
def conn(): return pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0))
def u(p): return p + '-' + uuid.uuid4().hex[:6]
def norm(h, names):
    # replace random names with placeholders, drop times
    if h is None: return None
    def fix(v):
        if isinstance(v, bytes): v = v.decode()
        if isinstance(v, str):
            for k, n in names.items(): v = v.replace(n, k)
            return v
        if isinstance(v, dict): return {k: fix(x) for k, x in sorted(v.items()) if k != 'time'}
        if isinstance(v, list): return [fix(x) for x in v]
        return v
    return fix(h)
out = []
c = conn(); ch = c.channel()
# 1. reject -> DLX with x-death
dlx = u('dlx'); src = u('src'); dlq = u('dlq')
names = {'DLX': dlx, 'SRC': src, 'DLQ': dlq}
ch.exchange_declare(dlx, 'fanout'); ch.queue_declare(dlq); ch.queue_bind(dlq, dlx)
ch.queue_declare(src, arguments={'x-dead-letter-exchange': dlx})
ch.basic_publish('', src, b'm1', pika.BasicProperties(headers={'a': 1}, expiration='60000'))
m, p, b = ch.basic_get(src); ch.basic_reject(m.delivery_tag, requeue=False)
time.sleep(0.2)
m, p, b = ch.basic_get(dlq, auto_ack=True)
out.append(('reject dl', m.exchange.replace(dlx,'DLX'), m.routing_key.replace(src,'SRC'), norm(p.headers, names), p.expiration))
# 2. reject again from dlq back to src: count grows
ch.queue_delete(dlq); ch.queue_delete(src)
# 3. TTL expiry with dlrk
src2 = u('ttl'); dlq2 = u('dlq2'); names.update({'SRC2': src2, 'DLQ2': dlq2})
ch.queue_declare(dlq2)
ch.queue_declare(src2, arguments={'x-message-ttl': 100, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq2})
ch.basic_publish('', src2, b'm2')
time.sleep(0.5)
m, p, b = ch.basic_get(dlq2, auto_ack=True)
out.append(('ttl dl', m and m.routing_key.replace(dlq2, 'DLQ2'), m and norm(p.headers, names)))
out.append(('ttl src count', ch.queue_declare(src2, passive=True).method.message_count))
# 4. per message expiration
src3 = u('exp'); names['SRC3'] = src3
ch.queue_declare(src3, arguments={'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq2})
ch.basic_publish('', src3, b'm3', pika.BasicProperties(expiration='50'))
time.sleep(0.4)
m, p, b = ch.basic_get(dlq2, auto_ack=True)
out.append(('expiration dl', m and norm(p.headers, names), m and p.expiration))
# 5. max length drop head
src4 = u('ml'); names['SRC4'] = src4
ch.queue_declare(src4, arguments={'x-max-length': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq2})
for i in range(4): ch.basic_publish('', src4, b'%d' % i)
time.sleep(0.2)
got = []
while True:
    m, p, b = ch.basic_get(src4, auto_ack=True)
    if not m: break
    got.append(b)
out.append(('maxlen remaining', got))
dl = []
while True:
    m, p, b = ch.basic_get(dlq2, auto_ack=True)
    if not m: break
    dl.append((b, norm(p.headers, names)['x-death'][0]['reason']))
out.append(('maxlen dead', dl))
# 6. reject-publish with confirms
src5 = u('rp')
ch.queue_declare(src5, arguments={'x-max-length': 1, 'x-overflow': 'reject-publish'})
ch.confirm_delivery()
res = []
for i in range(3):
    try:
        ch.basic_publish('', src5, b'x'); res.append('ack')
    except pika.exceptions.NackError: res.append('nack')
out.append(('reject-publish', res))
c.close()
c = conn(); ch = c.channel()
# 7. priority
src6 = u('prio')
ch.queue_declare(src6, arguments={'x-max-priority': 5})
for pr in [1, 5, 3, 5, 0, 9]:
    ch.basic_publish('', src6, b'%d' % pr, pika.BasicProperties(priority=pr))
got = []
while True:
    m, p, b = ch.basic_get(src6, auto_ack=True)
    if not m: break
    got.append(b)
out.append(('priority order', got))
# 8. quorum delivery limit + x-delivery-count
src7 = u('qq'); names['SRC7'] = src7
ch.queue_declare(src7, durable=True, arguments={'x-queue-type': 'quorum', 'x-delivery-limit': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq2})
ch.basic_publish('', src7, b'q'); time.sleep(0.5)
hs = []
for i in range(3):
    m, p, b = ch.basic_get(src7)
    if not m: hs.append(None); break
    hs.append((m.redelivered, (p.headers or {}).get('x-delivery-count')))
    ch.basic_nack(m.delivery_tag, requeue=True)
    time.sleep(0.5)
out.append(('quorum redeliveries', hs))
time.sleep(0.2)
m, p, b = ch.basic_get(dlq2, auto_ack=True)
out.append(('quorum dl', m and norm(p.headers, names)))
ch.queue_delete(src7)
# 9. cycle: ttl queue dead-letters to itself -> dropped
src8 = u('cyc'); names['SRC8'] = src8
ch.queue_declare(src8, arguments={'x-message-ttl': 50, 'x-dead-letter-exchange': ''})
ch.basic_publish('', src8, b'c')
time.sleep(0.4)
out.append(('cycle count', ch.queue_declare(src8, passive=True).method.message_count))
# 10. SAC
src9 = u('sac')
ch.queue_declare(src9, arguments={'x-single-active-consumer': True})
c2 = conn(); ch2 = c2.channel()
got = {'a': 0, 'b': 0}
ch.basic_consume(src9, lambda c_, m, p, b: got.__setitem__('a', got['a'] + 1), auto_ack=True)
ch2.basic_consume(src9, lambda c_, m, p, b: got.__setitem__('b', got['b'] + 1), auto_ack=True)
for i in range(10): ch.basic_publish('', src9, b'x')
for _ in range(5):
    c.process_data_events(0.05); c2.process_data_events(0.05)
out.append(('sac split', got))
c2.close()
ch.queue_delete(src9); ch.queue_delete(src8); ch.queue_delete(src6); ch.queue_delete(src5); ch.queue_delete(src4); ch.queue_delete(src3); ch.queue_delete(src2); ch.queue_delete(dlq2)
c.close()
for o in out: print(o)
