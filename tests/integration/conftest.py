"""Real services: PostgreSQL, Redis, a Celery worker subprocess and an aiosmtpd server.

No service is mocked or skipped: if PostgreSQL or Redis is missing the tests fail, and
scripts/test.sh is what starts them on a fresh machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from tests.support.smtp import RecordingHandler, free_port, start_smtp_server

if TYPE_CHECKING:
    from tests.support.lane import Lane

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
WORKER_READY_SECONDS = 60
# Each pytest session gets its own Celery queue, so that test runs sharing one Redis never
# take each other's tasks.
TASK_QUEUE = f"digest-test-{uuid.uuid4().hex[:10]}"
TABLES = ["deliveries", "edition_stories", "edition_curation", "editions", "consent_events", "notices",
          "suppressions", "newsletter_subscriptions", "newsletters", "audit_log", "api_tokens", "web_sessions", "users",
          "subscriber_topics", "subscribers", "stories"]

pytestmark = pytest.mark.integration


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
        client = redis.Redis.from_url(self.broker_url)
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            unacked = [v for v in client.hvals("unacked") if TASK_QUEUE.encode() in v]
            quiet = quiet + 1 if client.llen(TASK_QUEUE) == 0 and not unacked else 0
            if quiet >= 3:
                return
            time.sleep(0.05)
        raise AssertionError("the worker did not drain the queue")

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


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_smtp_server()
    yield controller.port, handler
    controller.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"digest_it_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def broker_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.delete(TASK_QUEUE)
    return REDIS_URL


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
        "DIGEST_LEASE_SECONDS": "30",
        "DIGEST_SMTP_HELO": "digest-tests.localhost",
        "DIGEST_TASK_QUEUE": TASK_QUEUE,
        "PYTHONPATH": str(REPO),
    }
    env.update(extra)
    return env


def start_worker(stack: Stack, concurrency: int = 2) -> subprocess.Popen[bytes]:
    stack.worker_log.parent.mkdir(parents=True, exist_ok=True)
    with stack.worker_log.open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool=prefork",
             f"--concurrency={concurrency}", "--without-heartbeat", "--without-gossip",
             "--without-mingle", "-Q", TASK_QUEUE, "-n", f"it-{uuid.uuid4().hex[:6]}@%h",
             "--loglevel=INFO"],
            cwd=REPO, env=stack.env(), stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {stack.worker_log.read_text(errors='replace')[-3000:]}")
        if b" ready." in stack.worker_log.read_bytes():
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker not ready: {stack.worker_log.read_text(errors='replace')[-3000:]}")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def stack(request, smtp_server, broker_url, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    port, handler = smtp_server
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'digest.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    client = Celery("digest-tests", broker=broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=TASK_QUEUE)
    stack = Stack(
        backend=request.param, database_url=database_url, engine=engine,
        factory=sessionmaker(engine, expire_on_commit=False), smtp=handler, smtp_port=port,
        broker_url=broker_url, client=client,
        worker_log=REPO / "test-artifacts" / f"worker-{request.param}.log",
        web_port=free_port(),
    )
    redis.Redis.from_url(broker_url).delete(TASK_QUEUE)
    proc = start_worker(stack)
    stack.worker_pid = proc.pid
    yield stack
    stop_worker(proc)
    engine.dispose()


@pytest.fixture
def live(stack: Stack) -> Stack:
    stack.reset()
    return stack


@pytest.fixture(scope="session")
def web(stack: Stack) -> Iterator[str]:
    """`digest serve` as a real uvicorn process on the stack's database and Redis."""
    log_path = REPO / "test-artifacts" / f"web-{stack.backend}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "serve", "--host", "127.0.0.1", "--port", str(stack.web_port)],
            cwd=REPO, env=stack.env(DIGEST_INBOUND_SECRET="inbound-test-secret"),
            stdout=log, stderr=subprocess.STDOUT,
        )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited: {log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{stack.base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(f"web server not ready: {log_path.read_text(errors='replace')[-3000:]}")
    yield stack.base_url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# The ops lane (see tests/support/lane.py), for the four ops test files. lane.py needs this
# module's Stack, so it is imported where the fixtures run, not at the top.


@pytest.fixture(scope="session")
def ops_lane(stack: Stack) -> Iterator[Lane]:
    """One ops lane per stack (per backend), shared by every test that asks for `lane`."""
    from tests.support.lane import shared_lane

    yield from shared_lane(stack)


@pytest.fixture
def lane(live: Stack, ops_lane: Lane) -> Iterator[Lane]:
    """The ops lane on a clean database with the sample stories; nothing left running after."""
    from tests.support.lane import lane_for_a_test

    yield from lane_for_a_test(live, ops_lane)
