"""Celery app and tasks for Warren's Celery conformance driver (run.py).

Owns: the task definitions, the per-scenario app configuration (broker URL,
result backend, queue/exchange namespace) and the marker files that workers
write so the driver can poll for conditions without racing on fixed sleeps.

Two ways in:
  * the driver imports this module and calls ``create_app(...)`` once per
    scenario (client side: sends tasks, reads results, pings workers);
  * a worker subprocess runs ``celery -A tasks worker ...`` with the
    WARREN_CELERY_* environment variables below set by the driver, and picks
    up the module-level ``app`` built from them.

Environment (worker side):
  WARREN_CELERY_BROKER     broker URL, e.g. amqp://guest:guest@127.0.0.1:5672//
  WARREN_CELERY_BACKEND    result backend URL (rpc:// or db+sqlite:///FILE)
  WARREN_CELERY_NAMESPACE  unique per-scenario prefix for every queue and
                           exchange this app declares (default queue, control
                           and event exchanges), so runs never interfere
  WARREN_CELERY_MARKERS    directory for marker files (see ``write_marker``)
"""

import json
import os
import time

from celery import Celery
from celery.signals import task_received, worker_ready

ENV_BROKER = 'WARREN_CELERY_BROKER'
ENV_BACKEND = 'WARREN_CELERY_BACKEND'
ENV_NAMESPACE = 'WARREN_CELERY_NAMESPACE'
ENV_MARKERS = 'WARREN_CELERY_MARKERS'


def write_marker(name, payload=None):
    """Atomically create MARKERS/name holding JSON ``payload`` (no-op if unset)."""
    directory = os.environ.get(ENV_MARKERS)
    if not directory:
        return
    data = dict(payload or {}, pid=os.getpid(), time=time.time())
    tmp = os.path.join(directory, f'.{name}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, os.path.join(directory, name))


def count_markers(prefix):
    directory = os.environ.get(ENV_MARKERS)
    if not directory:
        return 0
    return sum(1 for n in os.listdir(directory) if n.startswith(prefix))


@worker_ready.connect
def _on_worker_ready(sender=None, **_):
    # Sent once every consumer bootstep (tasks, control/pidbox, gossip) is up.
    write_marker(f'ready-{sender.hostname}' if sender is not None else 'ready')


@task_received.connect
def _on_task_received(sender=None, request=None, **_):
    # Sent in the worker's main process when a task message is delivered,
    # before the ETA/countdown branch, i.e. it counts prefetched messages.
    write_marker(f'received-{request.id}', {'name': request.name})


def create_app(broker, backend, namespace):
    """Build a Celery app whose every broker object is prefixed by namespace."""
    app = Celery(f'warren-conformance-{namespace}', broker=broker,
                 backend=backend, set_as_current=False)
    app.conf.update(
        task_default_queue=namespace,
        task_default_exchange=namespace,
        task_default_routing_key=namespace,
        # pidbox exchanges become <ns>.pidbox / reply.<ns>.pidbox
        control_exchange=namespace,
        event_exchange=f'{namespace}.ev',
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # also the x-expires (ms) of rpc:// reply queues: a broker-side backstop
        result_expires=300,
        worker_redirect_stdouts=True,
        # Keep defaults that matter for the scenarios explicit:
        worker_prefetch_multiplier=4,
        task_acks_late=False,
    )

    @app.task(name='conf.add', shared=False)
    def add(x, y):
        return x + y

    @app.task(name='conf.tsum', shared=False)
    def tsum(values):
        return sum(values)

    @app.task(name='conf.mark', shared=False)
    def mark(name):
        """Record that this task ran (scenario eta_prefetch)."""
        write_marker(f'ran-{name}')
        return name

    @app.task(name='conf.slow_acks_late', shared=False, bind=True, acks_late=True)
    def slow_acks_late(self, token, first_sleep):
        """First delivery blocks for first_sleep s (to be SIGKILLed); later ones finish."""
        attempt = count_markers(f'started-{token}-') + 1
        redelivered = bool((self.request.delivery_info or {}).get('redelivered'))
        write_marker(f'started-{token}-{attempt}', {'redelivered': redelivered})
        if attempt == 1:
            time.sleep(first_sleep)
        write_marker(f'done-{token}-{attempt}', {'redelivered': redelivered})
        return {'token': token, 'attempt': attempt, 'redelivered': redelivered}

    @app.task(name='conf.flaky', shared=False, bind=True, max_retries=5)
    def flaky(self, token, fails):
        """Fail `fails` times, retrying with countdown=1 each time, then succeed."""
        write_marker(f'flaky-{token}-{self.request.retries}')
        if self.request.retries < fails:
            raise self.retry(countdown=1, exc=RuntimeError(f'planned failure {self.request.retries}'))
        return {'token': token, 'retries': self.request.retries}

    return app


app = (create_app(os.environ[ENV_BROKER], os.environ.get(ENV_BACKEND, 'rpc://'),
                  os.environ[ENV_NAMESPACE])
       if ENV_BROKER in os.environ else None)
