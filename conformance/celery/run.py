#!/usr/bin/env python3
"""Celery-against-a-broker scenario driver for Warren's conformance suite.

Owns: starting/stopping real Celery worker subprocesses (kombu + py-amqp, the
``pyamqp``/``amqp://`` transport) against a broker URL, running each
scenario's client side, checking its condition with a bounded poll, and
printing one PASS/FAIL line per scenario with its timing.

Usage (with the venv from requirements.txt):
    python run.py --url amqp://guest:guest@127.0.0.1:5672//
    python run.py --url ... --only eta_prefetch [--only ping]
    python run.py --list

Every scenario gets its own namespace (queue, task exchange, pidbox and event
exchanges all prefixed ``wcc-<run>-<scenario>``), its own temp dir (worker
logs, marker files, sqlite result db) and its own worker processes, which are
started in their own process group and killed (SIGKILL to the group) when the
scenario ends, whatever happens. Exit status is 0 only if every selected
scenario passed.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep __pycache__ out of the repo

import tasks as conf_tasks  # noqa: E402  (needs sys.path above)
from celery import chord, group  # noqa: E402
from kombu import Connection  # noqa: E402

RUN_ID = uuid.uuid4().hex[:8]


class Failure(Exception):
    """A scenario's checked condition did not hold."""


def wait_for(what, predicate, timeout, interval=0.05):
    """Poll predicate until truthy or timeout; return its value or raise Failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Failure(f'timed out after {timeout:.0f}s waiting for {what}')
        time.sleep(interval)


class Worker:
    """One `celery worker` subprocess in its own process group."""

    def __init__(self, ctx, name, concurrency, extra_args=()):
        self.ctx = ctx
        self.hostname = f'{ctx.namespace}-{name}@localhost'
        self.log_path = os.path.join(ctx.tmp, f'worker-{name}.log')
        env = dict(os.environ)
        env.update({
            conf_tasks.ENV_BROKER: ctx.url,
            conf_tasks.ENV_BACKEND: ctx.backend,
            conf_tasks.ENV_NAMESPACE: ctx.namespace,
            conf_tasks.ENV_MARKERS: ctx.markers,
            'PYTHONPATH': HERE + os.pathsep + env.get('PYTHONPATH', ''),
            'PYTHONUNBUFFERED': '1',
            'PYTHONDONTWRITEBYTECODE': '1',
        })
        cmd = [sys.executable, '-m', 'celery', '-A', 'tasks', 'worker',
               '--loglevel', 'DEBUG' if ctx.debug else 'INFO',
               '--pool', 'prefork', '--concurrency', str(concurrency),
               '--hostname', self.hostname, '--queues', ctx.namespace,
               *extra_args]
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(cmd, cwd=ctx.tmp, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        ctx.workers.append(self)

    def wait_ready(self, timeout=30):
        marker = os.path.join(self.ctx.markers, f'ready-{self.hostname}')

        def ready():
            if self.proc.poll() is not None:
                raise Failure(f'worker {self.hostname} exited with {self.proc.returncode} '
                              f'before it was ready')
            return os.path.exists(marker)
        wait_for(f'worker {self.hostname} ready', ready, timeout)

    def kill(self, sig=signal.SIGKILL):
        """Send sig to the worker's whole process group (main + pool children)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace=8.0):
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)  # warm shutdown: requeue unacked, close cleanly
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)  # reap any pool child left behind
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()

    def log_tail(self, lines=25):
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''


class Ctx:
    """Per-scenario state: namespace, temp dir, client app, workers."""

    def __init__(self, url, scenario, backend, debug, keep):
        self.url = url
        self.debug = debug
        self.keep = keep
        self.namespace = f'wcc-{RUN_ID}-{scenario}'
        self.tmp = tempfile.mkdtemp(prefix=f'celery-conf-{scenario}-')
        self.markers = os.path.join(self.tmp, 'markers')
        os.mkdir(self.markers)
        if backend == 'sqlite':
            backend = 'db+sqlite:///' + os.path.join(self.tmp, 'results.sqlite')
        self.backend = backend
        self.workers = []
        self.app = conf_tasks.create_app(url, backend, self.namespace)
        if backend.startswith('db+'):
            # Create the result tables once, before several processes race to.
            self.app.backend.ResultSession().close()

    def worker(self, name, concurrency=1, extra_args=()):
        w = Worker(self, name, concurrency, extra_args)
        w.wait_ready()
        return w

    def task(self, name):
        return self.app.tasks[f'conf.{name}']

    def marker(self, name):
        path = os.path.join(self.markers, name)
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def count(self, prefix):
        return sum(1 for n in os.listdir(self.markers) if n.startswith(prefix))

    def close(self, failed):
        """Stop workers, delete broker objects; return worker log tails if failed."""
        for w in self.workers:
            w.stop()
        report = ''
        if failed:
            for w in self.workers:
                tail = w.log_tail()
                if tail:
                    report += f'    --- last lines of {w.log_path} ---\n'
                    report += '    ' + tail.rstrip().replace('\n', '\n    ') + '\n'
        rpc_queue = None
        if self.backend.startswith('rpc'):
            rpc_queue = self.app.backend.oid  # the client's reply queue
        try:
            self.app.close()
        except Exception:
            pass
        self.cleanup_broker(rpc_queue)
        if not (self.keep or failed):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return report

    def cleanup_broker(self, rpc_queue=None):
        """Delete what this scenario declared (others are auto-delete/expiring)."""
        ns = self.namespace
        queues = [ns] + [f'{w.hostname}.{ns}.pidbox' for w in self.workers]
        if rpc_queue:
            queues.append(rpc_queue)
        exchanges = [ns, f'{ns}.pidbox', f'reply.{ns}.pidbox', f'{ns}.ev']
        try:
            with Connection(self.url, connect_timeout=5) as conn:
                for q in queues:
                    try:
                        conn.channel().queue_delete(q)
                    except Exception:
                        pass
                for e in exchanges:
                    try:
                        conn.channel().exchange_delete(e)
                    except Exception:
                        pass
        except Exception as exc:
            print(f'    (cleanup of {ns} on the broker failed: {exc})')


# --------------------------------------------------------------------------
# Scenarios. Each returns a short detail string on success, raises on failure.

def scenario_basic(ctx):
    """add(2, 3) through the rpc:// result backend."""
    ctx.worker('w1')
    r = ctx.task('add').delay(2, 3)
    got = r.get(timeout=20)
    if got != 5:
        raise Failure(f'add(2, 3) returned {got!r}')
    return 'add(2,3)=5 via rpc://'


ETA_TASKS = 8
ETA_COUNTDOWN = 60
ETA_IMMEDIATE_DEADLINE = 10.0


def scenario_eta_prefetch(ctx):
    """8 countdown=60 tasks fill prefetch 8 (-c 2 x multiplier 4); an immediate task must still run."""
    ctx.worker('w1', concurrency=2)
    mark = ctx.task('mark')
    for i in range(ETA_TASKS):
        mark.apply_async((f'eta-{i}',), countdown=ETA_COUNTDOWN)
    try:
        wait_for(f'the worker to receive all {ETA_TASKS} countdown tasks',
                 lambda: ctx.count('received-') >= ETA_TASKS, 20)
    except Failure as exc:
        raise Failure(f'{exc} (received {ctx.count("received-")})')
    t0 = time.monotonic()
    mark.delay('now')
    try:
        wait_for('the immediate task to run', lambda: ctx.marker('ran-now'),
                 ETA_IMMEDIATE_DEADLINE)
    except Failure:
        raise Failure(
            f'an immediate task did not run within {ETA_IMMEDIATE_DEADLINE:.0f}s while '
            f'{ETA_TASKS} countdown={ETA_COUNTDOWN}s tasks were held by the worker: the '
            f'consumer is stuck at its initial prefetch ({ctx.qos_note}); on RabbitMQ 3.10 it '
            f'runs at once')
    return f'immediate task ran {time.monotonic() - t0:.2f}s after send ({ctx.qos_note})'


def scenario_acks_late_redelivery(ctx):
    """acks_late task; its worker is SIGKILLed mid-task; a second worker completes it."""
    w1 = ctx.worker('w1')
    token = uuid.uuid4().hex[:8]
    r = ctx.task('slow_acks_late').delay(token, 120)
    wait_for('the first worker to start the task',
             lambda: ctx.marker(f'started-{token}-1'), 20)
    w1.kill(signal.SIGKILL)
    w1.proc.wait(10)
    if ctx.marker(f'done-{token}-1'):
        raise Failure('first attempt completed although its worker was killed')
    ctx.worker('w2')
    done = wait_for('the second worker to complete the redelivered task',
                    lambda: ctx.marker(f'done-{token}-2'), 30)
    got = r.get(timeout=20)
    if got != {'token': token, 'attempt': 2, 'redelivered': True}:
        raise Failure(f'unexpected result {got!r} (want attempt 2, redelivered=True)')
    if not done.get('redelivered'):
        raise Failure('second delivery did not carry redelivered=True')
    return 'attempt 2 ran on the second worker with redelivered=True'


def scenario_retry_countdown(ctx):
    """A task that fails twice with self.retry(countdown=1), then succeeds."""
    ctx.worker('w1')
    token = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    r = ctx.task('flaky').delay(token, 2)
    got = r.get(timeout=30)
    elapsed = time.monotonic() - t0
    if got != {'token': token, 'retries': 2}:
        raise Failure(f'unexpected result {got!r}')
    if elapsed < 1.5:
        raise Failure(f'two countdown=1 retries finished in {elapsed:.2f}s: countdown ignored')
    return f'succeeded after 2 retries in {elapsed:.2f}s'


def scenario_chord(ctx):
    """chord(group(add(i, i) for i in 0..5), tsum) with the sqlite result backend."""
    ctx.worker('w1', concurrency=2)
    add, tsum = ctx.task('add'), ctx.task('tsum')
    n = 6
    r = chord(group(add.s(i, i) for i in range(n)))(tsum.s())
    got = r.get(timeout=40)
    want = sum(2 * i for i in range(n))
    if got != want:
        raise Failure(f'chord callback returned {got!r}, want {want}')
    return f'callback tsum = {got}'


def scenario_ping(ctx):
    """control.ping and inspect().ping() get a pong from the worker."""
    w = ctx.worker('w1')

    def ping():
        replies = ctx.app.control.ping(destination=[w.hostname], timeout=1.0)
        return replies if replies == [{w.hostname: {'ok': 'pong'}}] else None
    t0 = time.monotonic()
    wait_for('a reply to control.ping', ping, 15, interval=0)
    t_ping = time.monotonic() - t0

    def inspect_ping():
        replies = ctx.app.control.inspect(destination=[w.hostname], timeout=1.0).ping()
        return replies if replies == {w.hostname: {'ok': 'pong'}} else None
    wait_for('a reply to inspect().ping()', inspect_ping, 15, interval=0)
    return f'pong from {w.hostname} ({t_ping:.2f}s)'


SCENARIOS = [
    # name, function, result backend
    ('basic', scenario_basic, 'rpc://'),
    ('eta_prefetch', scenario_eta_prefetch, 'rpc://'),
    ('acks_late_redelivery', scenario_acks_late_redelivery, 'sqlite'),
    ('retry_countdown', scenario_retry_countdown, 'sqlite'),
    ('chord', scenario_chord, 'sqlite'),
    ('ping', scenario_ping, 'rpc://'),
]


def broker_info(url):
    """Return (product, version, kombu's qos_semantics_matches_spec) for url."""
    with Connection(url, connect_timeout=5) as conn:
        conn.connect()
        props = conn.connection.server_properties
        product = props.get('product')
        version = props.get('version')
        if isinstance(product, bytes):
            product = product.decode()
        if isinstance(version, bytes):
            version = version.decode()
        return product, version, conn.qos_semantics_matches_spec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--url', default=os.environ.get('CELERY_BROKER_URL'),
                    help='broker URL, e.g. amqp://guest:guest@127.0.0.1:5672//')
    ap.add_argument('--only', action='append', default=[],
                    help='run only this scenario (repeatable)')
    ap.add_argument('--list', action='store_true', help='list scenarios and exit')
    ap.add_argument('--debug', action='store_true', help='workers log at DEBUG')
    ap.add_argument('--keep', action='store_true', help='keep temp dirs of passing scenarios')
    args = ap.parse_args()

    if args.list:
        for name, fn, backend in SCENARIOS:
            print(f'{name:22} [{backend}] {fn.__doc__}')
        return 0
    if not args.url:
        ap.error('--url is required (or set CELERY_BROKER_URL)')
    names = [s[0] for s in SCENARIOS]
    for o in args.only:
        if o not in names:
            ap.error(f'unknown scenario {o!r}; known: {", ".join(names)}')
    selected = [s for s in SCENARIOS if not args.only or s[0] in args.only]

    # Turn SIGINT/SIGTERM/SIGHUP into SystemExit so every finally: (worker kill)
    # runs; SIGINT explicitly too, since it is ignored when started with `&`.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    start = time.monotonic()
    try:
        product, version, matches_spec = broker_info(args.url)
    except Exception as exc:
        print(f'FAIL cannot connect to {args.url}: {exc}')
        return 2
    apply_global = not matches_spec
    qos_note = (f'product={product!r} version={version!r} -> worker sends '
                f'basic.qos(global={apply_global})')
    print(f'broker {args.url}: {qos_note}; run id {RUN_ID}')

    failed = []
    for name, fn, backend in selected:
        t0 = time.monotonic()
        ctx = None
        ok = False
        report = ''
        try:
            ctx = Ctx(args.url, name, backend, args.debug, args.keep)
            ctx.qos_note = qos_note
            detail = fn(ctx)
            ok = True
        except Failure as exc:
            detail = str(exc)
        except Exception as exc:  # a client error is a failure too, with its trace
            detail = f'{type(exc).__name__}: {exc}'
            if args.debug:
                traceback.print_exc()
        except (KeyboardInterrupt, SystemExit):
            print(f'FAIL {name:22} interrupted; stopping its workers', flush=True)
            raise
        finally:
            if ctx is not None:
                report = ctx.close(failed=not ok)
        status = 'PASS' if ok else 'FAIL'
        print(f'{status} {name:22} {time.monotonic() - t0:6.2f}s  {detail}', flush=True)
        if not ok:
            failed.append(name)
            if ctx is not None:
                print(f'    temp dir kept: {ctx.tmp}')
            print(report, end='')

    total = time.monotonic() - start
    print(f'{len(selected) - len(failed)} passed, {len(failed)} failed')
    print(f'total {total:.1f}s')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
