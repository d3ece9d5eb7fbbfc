"""Real services: PostgreSQL, Redis, a Celery worker subprocess and an aiosmtpd server
(see tests/support/stack.py). Fixtures only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from celery import Celery
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from tests.support.lane import Lane, lane_for_a_test, shared_lane
from tests.support.processes import REPO, free_port, start_web, start_worker, stop_web, stop_worker
from tests.support.smtp import RecordingHandler, start_smtp_server
from tests.support.web import clear_rate_limits
from tests.support.stack import PG_ADMIN_URL, REDIS_URL, SEND_TABLES, TASK_QUEUE, Stack, in_process_factory

pytestmark = pytest.mark.integration


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
    proc = start_worker(stack.env(), stack.worker_log, queue=TASK_QUEUE, name=f"it-{uuid.uuid4().hex[:6]}@%h")
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
    # Behind a proxy on this host, as in production: its X-Forwarded-For names the client.
    # A click a second after its copy was sent is a person's (20 s in production): the click
    # tests need not wait out the scanners' window.
    proc = start_web(stack.env(DIGEST_INBOUND_SECRET="inbound-test-secret", DIGEST_FORWARDED_ALLOW_IPS="127.0.0.1",
                               DIGEST_CLICK_SCAN_SECONDS="1"),
                     stack.web_port,
                     REPO / "test-artifacts" / f"web-{stack.backend}.log")
    yield stack.base_url
    stop_web(proc)


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request, tmp_path) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    """The library in this process on each database (the session's PostgreSQL one, a SQLite
    file), with the send tables emptied: for the send_batch, release and DKIM tests."""
    yield from in_process_factory(request, tmp_path / "q.db", SEND_TABLES)


# The ops lane (see tests/support/lane.py), for the four ops test files.


@pytest.fixture(scope="session")
def ops_lane(stack: Stack) -> Iterator[Lane]:
    """One ops lane per stack (per backend), shared by every test that asks for `lane`."""
    yield from shared_lane(stack)


@pytest.fixture
def lane(live: Stack, ops_lane: Lane) -> Iterator[Lane]:
    """The ops lane on a clean database with the sample stories; nothing left running after."""
    yield from lane_for_a_test(live, ops_lane)


@pytest.fixture
def client(live: Stack, web: str) -> Iterator[httpx.Client]:
    """A browser-less visitor of `digest serve`: no cookies yet, redirects not followed, and
    the rate limits of earlier tests cleared. A module that needs another kind defines its own."""
    clear_rate_limits(live)
    with httpx.Client(base_url=web, timeout=30, follow_redirects=False) as c:
        yield c
