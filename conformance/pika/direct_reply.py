"""Direct reply-to through pika, printed for comparison with RabbitMQ."""
import pika, sys, time
port = int(sys.argv[1])
out = []
c = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0)); ch = c.channel()
srv = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0)); sch = srv.channel()
q = sch.queue_declare('', exclusive=True).method.queue
replies = []
ch.basic_consume('amq.rabbitmq.reply-to', lambda c_, m, p, b: replies.append((m.exchange, m.routing_key.startswith('amq.rabbitmq.reply-to.'), b, m.redelivered)), auto_ack=True)
ch.basic_publish('', q, b'req', pika.BasicProperties(reply_to='amq.rabbitmq.reply-to', correlation_id='c1'))
time.sleep(0.2)
m, p, b = sch.basic_get(q, auto_ack=True)
out.append(('server sees reply_to prefix', p.reply_to.startswith('amq.rabbitmq.reply-to.'), p.reply_to != 'amq.rabbitmq.reply-to'))
out.append(('passive declare reply-to', sch.queue_declare('amq.rabbitmq.reply-to', passive=True).method.queue))
out.append(('passive declare address', sch.queue_declare(p.reply_to, passive=True).method.queue == p.reply_to))
sch.basic_publish('', p.reply_to, b'resp', pika.BasicProperties(correlation_id=p.correlation_id))
for _ in range(5): c.process_data_events(0.05)
out.append(('replies', replies))
c2 = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port, heartbeat=0)); ch2 = c2.channel()
try:
    ch2.basic_publish('', q, b'req', pika.BasicProperties(reply_to='amq.rabbitmq.reply-to')); ch2.queue_declare('', exclusive=True)
    out.append(('no reply consumer', 'ok'))
except Exception as e: out.append(('no reply consumer', str(e)))
ch3 = c2.channel()
try:
    ch3.basic_consume('amq.rabbitmq.reply-to', lambda *a: None, auto_ack=False); out.append(('ack reply consumer', 'ok'))
except Exception as e: out.append(('ack reply consumer', str(e)))
for o in out: print(o)
