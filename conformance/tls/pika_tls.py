"""pika over TLS: PLAIN with the CA trusted, then EXTERNAL with a client
certificate. Arguments: the TLS port, the directory with the PEM files."""
import ssl, sys
import pika

port, certs = int(sys.argv[1]), sys.argv[2]

def context(client_cert):
    ctx = ssl.create_default_context(cafile=f'{certs}/ca.pem')
    if client_cert:
        ctx.load_cert_chain(f'{certs}/client.pem', f'{certs}/client.key')
    return ctx

def round_trip(params, body):
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    q = ch.queue_declare('', exclusive=True).method.queue
    ch.basic_publish('', q, body)
    while True:
        method, props, got = ch.basic_get(q, auto_ack=True)
        if got is not None:
            break
    conn.close()
    return got

plain = pika.ConnectionParameters('localhost', port, credentials=pika.PlainCredentials('guest', 'guest'),
                                  ssl_options=pika.SSLOptions(context(False), 'localhost'))
print('plain over tls:', round_trip(plain, b'pika over tls'))
external = pika.ConnectionParameters('localhost', port, credentials=pika.credentials.ExternalCredentials(),
                                     ssl_options=pika.SSLOptions(context(True), 'localhost'))
print('external:', round_trip(external, b'pika external'))
