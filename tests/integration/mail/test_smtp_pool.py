"""A pool of SMTP servers: weighted, with failover when one is down or drops connections."""

from __future__ import annotations

import pytest

import digest.mail.transport as transport_module
from digest.config import Settings
from digest.mail.transport import PoolTransport, SendError, make_transport
from tests.support.processes import free_port
from tests.support.smtp import start_smtp_server

pytestmark = pytest.mark.integration


def _settings(url: str) -> Settings:
    return Settings(env="test", secret_key="pool-test-secret-0123456789", smtp_url=url, smtp_helo="pool.localhost")


@pytest.fixture(autouse=True)
def _fresh_pool_state() -> None:
    transport_module._down_until.clear()


def test_failover_to_the_next_server_when_one_is_down() -> None:
    controller, handler = start_smtp_server()
    dead_port = free_port()  # nothing listens here
    try:
        pool = make_transport(_settings(f"smtp://127.0.0.1:{dead_port}?weight=100,smtp://127.0.0.1:{controller.port}"))
        assert isinstance(pool, PoolTransport)
        for n in range(5):
            with pool.connect() as connection:
                connection.send("digest@news.example.com", f"r{n}@example.org",
                                b"Subject: t\r\nMessage-ID: <x@y>\r\n\r\nhello\r\n")
        assert len(handler.messages) == 5
        assert f"smtp://127.0.0.1:{dead_port}?weight=100" in transport_module._down_until
    finally:
        controller.stop()


def test_weights_share_the_traffic() -> None:
    first, first_handler = start_smtp_server()
    second, second_handler = start_smtp_server()
    try:
        pool = make_transport(_settings(f"smtp://127.0.0.1:{first.port}?weight=3,smtp://127.0.0.1:{second.port}?weight=1"))
        for n in range(200):
            with pool.connect() as connection:
                connection.send("digest@news.example.com", f"r{n}@example.org", b"Subject: t\r\n\r\nhi\r\n")
        share = len(first_handler.messages) / 200
        assert 0.6 < share < 0.9  # 0.75 expected; 200 draws keep it well inside
        assert len(first_handler.messages) + len(second_handler.messages) == 200
    finally:
        first.stop()
        second.stop()


def test_all_servers_down_is_a_connection_error() -> None:
    pool = make_transport(_settings(f"smtp://127.0.0.1:{free_port()},smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(SendError) as failure, pool.connect():
        pass
    assert failure.value.connection_lost


def test_an_outbox_cannot_join_a_pool() -> None:
    with pytest.raises(ValueError, match="outbox"):
        make_transport(_settings("outbox:///tmp/x,smtp://127.0.0.1:25"))
