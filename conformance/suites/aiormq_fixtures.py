"""pytest plugin supplying the broker fixtures that aiormq 7.2.4's sdist
conftest expects (upstream creates them from a Docker container).

Env: AMQP_URL (plain listener, e.g. amqp://guest:guest@127.0.0.1:5672/)
     AMQPS_PORT (TLS listener port on the same host, default 5671)
Loaded with `-p aiormq_fixtures` and this directory on PYTHONPATH.
"""
import os

import pytest
from yarl import URL


class _Broker:
    def __init__(self, url: URL, tls_port: int):
        self.id = "external"
        self.host = url.host or "127.0.0.1"
        self.ports = {
            "5672/tcp": url.port or 5672,
            "5671/tcp": tls_port,
            "15672/tcp": 15672,
            "15671/tcp": 15671,
        }


@pytest.fixture(scope="session")
def rabbitmq_container():
    url = URL(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    return _Broker(url, int(os.environ.get("AMQPS_PORT", "5671")))


@pytest.fixture(scope="session")
def amqp_direct_url(rabbitmq_container) -> URL:
    return URL.build(
        scheme="amqp", user="guest", password="guest", path="//",
        host=rabbitmq_container.host,
        port=rabbitmq_container.ports["5672/tcp"],
    )
