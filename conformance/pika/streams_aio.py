"""Streams through aio-pika (asyncio; the client of many FastAPI and
aiohttp services): a stream declared with its arguments, the refusals an
asyncio client sees as exceptions, every x-stream-offset form, the offset
header on deliveries, acks as credit, and two consumers reading the same
messages independently. Prints each outcome so the output can be
compared with RabbitMQ's (the pika script streams.py covers the rest).

Arguments: the AMQP port, then the management API's port."""
import asyncio
import datetime
import sys

import aio_pika
import aiormq

port = int(sys.argv[1])
NAME = 'aio-events'
S = {'x-queue-type': 'stream'}


def refusal(e):
    """An exception the broker's close raised, as a line: its class names
    the reply code, its text is the broker's."""
    return f'{type(e).__name__} {e.args[0] if e.args else ""}'


class Session:
    """The connection, opened again after the broker closed it."""

    def __init__(self):
        self.conn = None

    async def open(self):
        self.conn = await aio_pika.connect(f'amqp://guest:guest@127.0.0.1:{port}/')

    async def channel(self, **kwargs):
        try:
            return await self.conn.channel(**kwargs)
        except (RuntimeError, aiormq.exceptions.AMQPError):
            # Closed by the broker (aio-pika may not have marked it yet).
            await self.open()
            return await self.conn.channel(**kwargs)


async def main():
    session = Session()
    await session.open()

    async def attempt(name, make):
        """Runs make(channel) on a channel of its own; prints the outcome."""
        ch = await session.channel()
        try:
            result = await make(ch)
            print(f'{name}: ok{"" if result is None else " " + str(result)}')
        except aiormq.exceptions.AMQPError as e:
            print(f'{name}: {refusal(e)}')
            # Let the client see the close through before going on.
            await asyncio.sleep(0.1)
        finally:
            try:
                await ch.close()
            except (RuntimeError, aiormq.exceptions.AMQPError):
                pass

    async def consume(offset, want, prefetch=100, ack=True, limit=3.0):
        """Consumes on a channel of its own until `want` arrived (or `limit`
        seconds); returns (body, x-stream-offset, redelivered) of each."""
        ch = await session.channel()
        await ch.set_qos(prefetch_count=prefetch)
        queue = await ch.get_queue(NAME, ensure=False)
        got = []
        enough = asyncio.Event()

        async def on(message):
            got.append((message.body.decode(), message.headers.get('x-stream-offset'), message.redelivered))
            if ack:
                await message.ack()
            if len(got) >= want:
                enough.set()

        arguments = {} if offset is None else {'x-stream-offset': offset}
        try:
            await queue.consume(on, arguments=arguments)
        except aiormq.exceptions.AMQPError as e:
            return refusal(e)
        try:
            await asyncio.wait_for(enough.wait(), limit)
        except asyncio.TimeoutError:
            pass
        # A little longer: nothing more should come.
        await asyncio.sleep(0.2)
        if not ch.is_closed:
            await ch.close()
        return got

    setup = await session.channel()
    await setup.queue_delete(NAME)
    await setup.close()
    await attempt('non-durable', lambda ch: ch.declare_queue(NAME, durable=False, arguments=S))
    await attempt('auto-delete', lambda ch: ch.declare_queue(NAME, durable=True, auto_delete=True, arguments=S))
    await attempt('bad x-max-age', lambda ch: ch.declare_queue(NAME, durable=True, arguments={**S, 'x-max-age': '10x'}))
    await attempt('x-max-age in years', lambda ch: ch.declare_queue(NAME, durable=True, arguments={**S, 'x-max-age': '1Y'}))
    await attempt('another x-max-age', lambda ch: ch.declare_queue(NAME, durable=True, arguments={**S, 'x-max-age': '7D'}))
    async def delete(ch):
        return (await ch.queue_delete(NAME)).message_count

    await attempt('delete', delete)

    async def declare(ch):
        queue = await ch.declare_queue(NAME, durable=True, arguments={**S, 'x-max-age': '7D'})
        return queue.declaration_result.message_count

    await attempt('declare', declare)
    publisher = await session.channel(publisher_confirms=True)
    for i in range(10):
        confirm = await publisher.default_exchange.publish(
            aio_pika.Message(f'e{i}'.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=NAME)
        if i == 0:
            print('confirmed:', type(confirm).__name__)

    async def get(ch):
        queue = await ch.get_queue(NAME, ensure=False)
        return await queue.get(fail=False)

    await attempt('basic.get', get)

    async def no_ack(ch):
        await ch.set_qos(prefetch_count=10)
        queue = await ch.get_queue(NAME, ensure=False)
        await queue.consume(lambda message: None, no_ack=True)

    await attempt('no-ack consumer', no_ack)

    async def no_prefetch(ch):
        queue = await ch.get_queue(NAME, ensure=False)
        await queue.consume(lambda message: None)

    await attempt('consumer without prefetch', no_prefetch)

    async def purge(ch):
        queue = await ch.get_queue(NAME, ensure=False)
        await queue.purge()

    await attempt('purge', purge)

    print('first:', await consume('first', 10))
    print('next (the default):', await consume(None, 1, limit=0.5))
    print('last:', await consume('last', 1))
    print('offset 7:', await consume(7, 3))
    print('offset past the end:', await consume(1000, 1, limit=0.5))
    print('an hour ago:', len(await consume('1h', 10)))
    print('since a past time:', len(await consume(datetime.datetime(2020, 1, 1), 10)))
    print('since a future time:', await consume(datetime.datetime(2100, 1, 1), 1, limit=0.5))
    print('bad offset spec:', await consume('1x', 1))
    print('prefetch 3 without acks:', await consume('first', 10, prefetch=3, ack=False, limit=1.0))

    # Two consumers read the same messages independently; a new one reaches both.
    seen = {'a': [], 'b': []}
    channels = []
    for name in seen:
        ch = await session.channel()
        await ch.set_qos(prefetch_count=50)
        queue = await ch.get_queue(NAME, ensure=False)

        async def on(message, name=name):
            seen[name].append(message.body.decode())
            await message.ack()

        await queue.consume(on, arguments={'x-stream-offset': 'first'})
        channels.append(ch)
    for _ in range(60):
        if len(seen['a']) >= 10 and len(seen['b']) >= 10:
            break
        await asyncio.sleep(0.05)
    publisher = await session.channel(publisher_confirms=True)
    await publisher.default_exchange.publish(
        aio_pika.Message(b'e10', delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=NAME)
    for _ in range(60):
        if len(seen['a']) >= 11 and len(seen['b']) >= 11:
            break
        await asyncio.sleep(0.05)
    print('two consumers:', seen['a'] == seen['b'], len(seen['a']), seen['a'][-1])
    for ch in channels:
        await ch.close()
    print('still there after acks:', len(await consume('first', 11)))

    await (await session.channel()).queue_delete(NAME)
    await session.conn.close()


asyncio.run(main())
