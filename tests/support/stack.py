"""The integration stack: a database (PostgreSQL or SQLite), Redis, the session's Celery
worker and SMTP server, and a port for `digest serve`; what its processes are told
(worker_env); and the services' addresses.

No service is mocked or skipped: if PostgreSQL or Redis is missing the tests fail, and
scripts/test.sh is what starts them on a fresh machine. The fixtures that build a Stack
are in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from tests.support.processes import REPO, drain_queue, free_port
from tests.support.smtp import RecordingHandler

PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Each pytest session gets its own Celery queue, so that test runs sharing one Redis never
# take each other's tasks.
TASK_QUEUE = f"digest-test-{uuid.uuid4().hex[:10]}"
TABLES = ["ab_tests", "click_history", "click_history_consents", "open_counts", "click_counts", "click_uniques", "click_hours", "click_flushes", "feed_items", "feeds", "edition_tallies", "deliveries",
          "reader_delivery_summaries", "delivery_compactions",
          "edition_stories", "edition_curation", "editions", "consent_events", "notices", "suppressions",
          "newsletter_subscriptions", "newsletters", "audit_log", "api_tokens", "web_sessions", "users", "subscriber_topics",
          "subscribers", "stories"]
# What the in-process send tests empty before each test (see in_process_factory).
SEND_TABLES = ["ab_tests", "click_history", "click_history_consents", "open_counts", "click_counts", "click_uniques", "click_hours", "click_flushes", "feed_items", "feeds", "edition_tallies", "deliveries",
               "reader_delivery_summaries", "delivery_compactions",
               "edition_stories", "editions", "subscriber_topics", "subscribers", "stories"]


@dataclass
class Stack:
    backend: str
    database_url: str
    engine: Engine
    factory: sessionmaker[Session]
    smtp: RecordingHandler
    smtp_port: int
    broker_url: str
    client: Celery
    worker_log: Path
    web_port: int
    worker_pid: int = 0  # the stack's Celery worker (its main process)
    # Where a test serves the publisher's pages and feeds (tests.support.http_server): the
    # one loopback port the stack's processes may fetch from (DIGEST_FETCH_ALLOW).
    publisher_port: int = field(default_factory=free_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return worker_env(self, **extra)

    def reset(self) -> None:
        with self.engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        self.smtp.clear()

    def drain(self, timeout: float = 30) -> None:
        """Wait until our queue holds no waiting or unacknowledged task (three looks in a row)."""
        drain_queue(self.broker_url, TASK_QUEUE, timeout, lambda: "the worker did not drain the queue")

    def wait_for_edition(self, edition_id: int, statuses: tuple[str, ...] = ("sent",),
                         timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                status = conn.execute(text("SELECT status FROM editions WHERE id = :i"), {"i": edition_id}).scalar_one()
            if status in statuses:
                return status
            time.sleep(0.1)
        log_tail = self.worker_log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"edition {edition_id} still {status!r} after {timeout}s; worker log:\n{log_tail}")


def worker_env(stack: Stack, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DIGEST_ENV": "test",
        "DIGEST_SECRET_KEY": "integration-test-secret-0123456789",
        "DIGEST_DATABASE_URL": stack.database_url,
        "DIGEST_BROKER_URL": stack.broker_url,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{stack.smtp_port}",
        "DIGEST_BASE_URL": stack.base_url,
        "DIGEST_BATCH_SIZE": "50",
        "DIGEST_RETRY_BASE_SECONDS": "0.5",
        # A subject test's wait counts seconds, not minutes, here: "--ab-wait 12" decides after 12 s.
        "DIGEST_AB_WAIT_UNIT_SECONDS": "1",
        "DIGEST_SMTP_HELO": "digest-tests.localhost",
        "DIGEST_TASK_QUEUE": TASK_QUEUE,
        "DIGEST_FETCH_ALLOW": f"127.0.0.1:{stack.publisher_port}",
        "PYTHONPATH": str(REPO),
    }
    env.update(extra)
    return env


def settle(live: Stack) -> None:
    """Let the worker finish what is queued (notices are acks_late, so drained = done)."""
    live.drain()
    time.sleep(0.3)  # a task between BRPOP and the unacked hash is invisible to drain()
    live.drain()


def in_process_factory(request: pytest.FixtureRequest, sqlite_file: Path,
                       tables: list[str]) -> Iterator[sessionmaker[Session]]:
    """The body of a `factory` fixture parametrized over ["postgresql", "sqlite"], for tests
    that run the library in this process: the session's PostgreSQL database or a SQLite
    file at `sqlite_file`, migrated, with `tables` emptied."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{sqlite_file}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"DELETE FROM {table}"))
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
