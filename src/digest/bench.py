"""`digest bench`: the send path measured in one run, against real services on loopback.

Each figure stands next to a baseline or ceiling measured in the same run on the same
machine, so that its ratio still means something on a slower or noisier host:

1. message preparation, the send loop's hot path (`sender._send_one`, socket left out),
   against the standard library's build and against render + premailer per reader;
2. the raw SMTP ceiling: a plain smtplib loop over C connections to Postfix's smtp-sink;
3. end to end: an edition released to N readers on PostgreSQL, sent by a prefork Celery
   worker on Redis to the same smtp-sink; messages/s against (2) with the same C, and the
   CPU each party spent per message (worker, PostgreSQL, smtp-sink), which other load on
   the machine disturbs far less than wall-clock rates;
4. planning: release + batch ranges + enqueue in a child process for growing reader
   counts, its seconds and peak RSS;
5. one-click unsubscribe latency under an open-loop load from a second process;
6. SQL statements send_batch issues for a batch of 500 and one of 5000.

Every database is a fresh `digest_bench_<random>` and every Celery queue a fresh name, both
removed at the end; pub/sub (departure announcements) goes to a private redis-server;
every wait has a deadline; load stays on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_READERS = 20_000
DEFAULT_PLAN_SIZES = (100_000, 300_000, 1_000_000)
QUICK_READERS = 1_000
QUICK_PLAN_SIZES = (2_000, 5_000)

BATCH_SIZE = 500  # DIGEST_BATCH_SIZE for the end-to-end run (the production default)
WORKER_CONCURRENCY = 2  # prefork children: one per core on the 2-core reference machine
SAMPLE_WINDOW_HOURS = 24 * 365 * 10  # the sample stories are from May 2023
BENCH_SECRET = "bench-secret-" + "0123456789abcdef"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SINK_BACKLOG = 1024
UNSUBSCRIBE_RATE_PER_SECOND = 200
UNSUBSCRIBE_THREADS = 8
ROUND_TRIP_BATCHES = (500, 5_000)

# Goals, from the issue.
GOAL_PREP_US = 50.0
GOAL_E2E_SHARE_OF_CEILING = 0.60
GOAL_PLAN_1M_SECONDS = 60.0
GOAL_PLAN_RSS_MB = 300.0
PLAN_RSS_FLAT_RATIO = 1.25  # "flat": the largest size's peak within 25 % of the smallest's
GOAL_UNSUBSCRIBE_P99_MS = 25.0

SERVICE_READY_SECONDS = 60
SMTP_CEILING_TIMEOUT_SECONDS = 60
PLAN_CHILD_TIMEOUT_SECONDS = 600


class BenchError(Exception):
    """A service is missing or a step did not finish; the message says which."""


@dataclass(frozen=True)
class BenchOptions:
    readers: int = DEFAULT_READERS
    plan_sizes: tuple[int, ...] = DEFAULT_PLAN_SIZES
    quick: bool = False
    pg_url: str = DEFAULT_PG_URL
    redis_url: str = DEFAULT_REDIS_URL

    # Iterations and durations: the full run's, or the smoke test's.
    @property
    def fast_iterations(self) -> int:
        return 1_000 if self.quick else 5_000

    @property
    def stdlib_iterations(self) -> int:
        return 100 if self.quick else 500

    @property
    def naive_iterations(self) -> int:
        return 5 if self.quick else 40

    @property
    def smtp_seconds(self) -> float:
        return 1.0 if self.quick else 5.0

    @property
    def unsubscribe_seconds(self) -> float:
        return 2.0 if self.quick else 10.0


@dataclass
class Figure:
    """One row of the table and one entry of the JSON file."""

    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    ratio_unit: str = ""  # "×" or "%"
    goal: str = ""
    met: bool | None = None


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"figures": {key: asdict(figure) for key, figure in self.figures.items()},
                "details": self.details}


# ------------------------------------------------------------------ services and helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on 127.0.0.1:{port} within {seconds:.0f} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, seconds: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_smtp_sink() -> str:
    """Postfix's smtp-sink, installed from Debian's `postfix` package when missing."""
    found = shutil.which("smtp-sink") or (SMTP_SINK if os.access(SMTP_SINK, os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("smtp-sink is missing: install Debian's postfix package (as root) and run again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"]):
        done = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-500:]}")
    if not os.access(SMTP_SINK, os.X_OK):
        raise BenchError("installed postfix but found no smtp-sink")
    return SMTP_SINK


class Sink(NamedTuple):
    port: int
    pid: int


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    """smtp-sink on a free loopback port: accepts and discards, prints nothing per message
    (no -c, -d or -D), a deep listen backlog; as `nobody` when we are root (it refuses to
    keep root privileges)."""
    binary = ensure_smtp_sink()
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([binary, "-4", *user, "-h", "bench-sink", f"127.0.0.1:{port}", str(SMTP_SINK_BACKLOG)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, proc, "smtp-sink")
        yield Sink(port, proc.pid)
    finally:
        _stop(proc, seconds=5)
        if proc.stderr is not None:
            proc.stderr.close()


@contextmanager
def private_redis() -> Iterator[str | None]:
    """A throwaway redis-server for DIGEST_REDIS_URL (rate limits, departure announcements).

    Pub/sub channels are global to a Redis server, whatever the database number: on a
    shared Redis the bench's unsubscribes would reach other workers' departure listeners
    (and theirs ours), each side skipping readers by id. None when redis-server is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--logfile", ""],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc, seconds=5)


@contextmanager
def process_env(**values: str | None) -> Iterator[None]:
    """Set DIGEST_ variables for this process (in-process steps read get_settings())."""
    from digest.config import get_settings

    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is not None:
            os.environ[key] = value
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database with digest's schema, dropped afterwards."""
    from digest.store.engine import make_engine
    from digest.store.migrate import upgrade

    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"digest_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - one line naming the service
        admin.dispose()
        raise BenchError(f"cannot create a database on {admin.url.render_as_string()}: "
                         f"{type(exc).__name__}: {exc}") from None
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed_stories(factory: sessionmaker[Session]) -> None:
    from digest.stories import ingest_source

    with factory.begin() as session:
        ingest_source(session, "sample:sample_feed.json")
        ingest_source(session, "sample:sample_article.txt")


def seed_readers(engine: Engine, count: int) -> None:
    """`count` active readers in one INSERT … SELECT (tokens 43 characters, like new_token)."""
    with engine.begin() as conn:
        conn.execute(text(
            """
            INSERT INTO subscribers (email, email_key, name, status, token, consent_source,
                                     created_at, confirmed_at, frequency)
            SELECT 'reader' || g || '@example.org', 'reader' || g || '@example.org',
                   CASE WHEN g % 7 = 0 THEN NULL ELSE 'Reader ' || g END, 'active',
                   substr(md5(g::text || random()::text) || md5(random()::text), 1, 43), 'bench',
                   now(), now(), 'every'
            FROM generate_series(1, CAST(:n AS bigint)) AS g
            """), {"n": count})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE subscribers"))


def due_edition(factory: sessionmaker[Session], subject: str = "The featured stories from Political IQ") -> int:
    from digest.store.models import Edition, EditionStatus, utcnow

    with factory.begin() as session:
        edition = Edition(subject=subject, send_at=utcnow() - timedelta(seconds=1),
                          status=EditionStatus.SCHEDULED, max_stories=5, window_hours=SAMPLE_WINDOW_HOURS)
        session.add(edition)
        session.flush()
        return edition.id


def celery_client(broker_url: str, queue: str) -> Any:
    """A bare Celery client that publishes what `send_batch.delay` publishes, on `queue`."""
    from celery import Celery

    client = Celery("digest-bench", broker=broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=queue,
                       broker_connection_retry_on_startup=False)
    return client


def forget_queue(broker_url: str, queue: str) -> int:
    """Delete a queue and kombu's binding for it; returns how many messages it still held."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        left = int(client.llen(queue))
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        return left
    finally:
        client.close()


def service_env(database_url: str, broker_url: str, queue: str, smtp_port: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DIGEST_ENV": "test",
        "DIGEST_SECRET_KEY": BENCH_SECRET,
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_BROKER_URL": broker_url,
        "DIGEST_TASK_QUEUE": queue,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DIGEST_SMTP_HELO": "bench.localhost",
        "DIGEST_BATCH_SIZE": str(BATCH_SIZE),
        "DIGEST_BASE_URL": "https://news.example.com",
    }
    env.pop("DIGEST_RECORD_EVERY_MESSAGES", None)  # the default, as the issue asks
    if os.environ.get("DIGEST_REDIS_URL"):  # private_redis(), set by run_bench
        env["DIGEST_REDIS_URL"] = os.environ["DIGEST_REDIS_URL"]
    env.update(extra)
    return env


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its children it has reaped (0 once gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(parents.get(pid, ()))
    return found


def _tail(path: Path, chars: int = 2_000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# ------------------------------------------------------------------ 1. message preparation


class _Row(NamedTuple):
    id: int
    subscriber_id: int
    attempts: int


class _ReaderRow(NamedTuple):
    id: int
    email: str
    name: str | None
    token: str
    status: str


class _NullConnection:
    """Stands in for the SMTP connection: the figure is preparation, not the socket."""

    last: bytes = b""

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        self.last = message


NAMES = ["Olena Kovalenko", "James O'Neill", "Aisha Bello", "Mateo García", None, "Zoë Čapek",
         "Priya Raman", "Liam Walsh", "Kwame Mensah", "Ingrid Søreide", "Tomás Ó Briain", None]


def sample_edition_view() -> Any:
    """A realistic 5-story edition from the package samples: the article (which the demo
    pins) and the four most recent featured feed stories."""
    from digest.render import EditionView, StoryView
    from digest.store.models import utcnow
    from digest.stories.ingest import load_source, parse_source

    article = parse_source(load_source("sample:sample_article.txt"), origin="sample:sample_article.txt")
    feed = parse_source(load_source("sample:sample_feed.json"))
    featured = sorted((s for s in feed if s.featured), key=lambda s: s.published_at, reverse=True)[:4]
    stories = tuple(
        StoryView(id=number, title=s.title, url=s.url, summary=s.summary, published_at=s.published_at,
                  image_url=s.image_url, author=s.author, topics=tuple(s.topics))
        for number, s in enumerate([*article, *featured], start=1))
    return EditionView(id=1, subject="The featured stories from Political IQ", send_at=utcnow(), stories=stories)


def sample_readers(count: int) -> list[_ReaderRow]:
    return [_ReaderRow(i, f"reader{i}@example.org", NAMES[i % len(NAMES)], secrets.token_urlsafe(32), "active")
            for i in range(1, count + 1)]


def measure_message_prep(options: BenchOptions) -> dict[str, Any]:
    from digest.config import Settings
    from digest.mailer.message import Personal, build_message_stdlib, message_id_for
    from digest.render import Reader, reader_values, render_edition
    from digest.sender import _send_one, shared_headers
    from digest.store.models import utcnow

    settings = Settings(env="test", secret_key=BENCH_SECRET)
    view = sample_edition_view()
    rendered = render_edition(view)
    shared = shared_headers(view, rendered.subject, settings)
    shared_bytes = shared.encoded_shared
    domain, envelope_from = settings.sender_domain, settings.sender_address
    readers = sample_readers(options.fast_iterations)
    connection = _NullConnection()

    def fast(reader: _ReaderRow) -> None:
        _send_one(connection, view.id, shared, shared_bytes, rendered, _Row(reader.id, reader.id, 0), reader,
                  envelope_from, domain, settings, utcnow)

    def stdlib_build(reader: _ReaderRow, edition: Any) -> bytes:
        values = reader_values(Reader(email=reader.email, name=reader.name, token=reader.token))
        html_body, text_body = edition.personalise(values)
        return build_message_stdlib(shared, Personal(
            to_name=reader.name, to_address=reader.email,
            message_id=message_id_for(view.id, reader.id, domain, settings.secret_key), date=utcnow(),
            unsubscribe_url=values["unsubscribe_url"], unsubscribe_token=reader.token,
            text=text_body, html=html_body))

    def timed(run: Callable[[_ReaderRow], object], batch: list[_ReaderRow]) -> list[float]:
        samples = []
        clock = time.perf_counter_ns
        for reader in batch:
            started = clock()
            run(reader)
            samples.append((clock() - started) / 1_000)
        return samples

    timed(fast, readers[:200])  # warm caches (Date header, lru caches, allocator)
    fast_us = timed(fast, readers)
    message_bytes = len(connection.last)
    stdlib_us = timed(lambda r: stdlib_build(r, rendered), readers[: options.stdlib_iterations])
    naive_us = timed(lambda r: stdlib_build(r, render_edition(view)), readers[: options.naive_iterations])
    return {
        "fast_median_us": statistics.median(fast_us), "fast_p99_us": _percentile(fast_us, 0.99),
        "fast_iterations": len(fast_us),
        "stdlib_median_us": statistics.median(stdlib_us), "stdlib_iterations": len(stdlib_us),
        "naive_median_us": statistics.median(naive_us), "naive_iterations": len(naive_us),
        "message_bytes": message_bytes, "stories": len(view.stories),
    }


# ------------------------------------------------------------------ 2. raw SMTP ceiling


def ceiling_message() -> bytes:
    """One message as the send loop builds it for the sample edition (~20 KB)."""
    from digest.config import Settings
    from digest.render import render_edition
    from digest.sender import _send_one, shared_headers
    from digest.store.models import utcnow

    settings = Settings(env="test", secret_key=BENCH_SECRET)
    view = sample_edition_view()
    rendered = render_edition(view)
    shared = shared_headers(view, rendered.subject, settings)
    reader = sample_readers(1)[0]
    connection = _NullConnection()
    _send_one(connection, view.id, shared, shared.encoded_shared, rendered, _Row(1, 1, 0), reader,
              settings.sender_address, settings.sender_domain, settings, utcnow)
    return connection.last


def _smtp_client(port: int, message: bytes, seconds: float, barrier: Any, results: Any) -> None:
    """One sending process: one connection, sendmail in a loop for `seconds`."""
    import smtplib

    client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.localhost", timeout=30)
    client.ehlo()
    barrier.wait(timeout=SMTP_CEILING_TIMEOUT_SECONDS)
    sent = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        client.sendmail("digest@news.example.com", [f"reader{sent}@example.org"], message)
        sent += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    client.quit()
    results.put((sent, elapsed, cpu))


def measure_smtp_ceiling(port: int, connections: int, seconds: float) -> dict[str, Any]:
    """Messages/s over `connections` sending processes, and their CPU per message."""
    message = ceiling_message()
    context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
    barrier = context.Barrier(connections + 1)
    results = context.Queue()
    procs = [context.Process(target=_smtp_client, args=(port, message, seconds, barrier, results), daemon=True)
             for _ in range(connections)]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=SMTP_CEILING_TIMEOUT_SECONDS)
        outcomes = [results.get(timeout=seconds + SMTP_CEILING_TIMEOUT_SECONDS) for _ in procs]
    except Exception as exc:  # noqa: BLE001 - a broken barrier or an empty queue: one message
        raise BenchError(f"the SMTP ceiling clients did not finish: {type(exc).__name__}") from None
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    sent_total = sum(outcome[0] for outcome in outcomes)
    return {
        "messages_per_second": sum(sent / elapsed for sent, elapsed, _ in outcomes),
        "messages": sent_total, "connections": connections, "seconds": seconds, "message_bytes": len(message),
        "client_cpu_us_per_message": sum(cpu for _, _, cpu in outcomes) / max(1, sent_total) * 1e6,
    }


# ------------------------------------------------------------------ 3. end to end


@contextmanager
def celery_worker(env: dict[str, str], queue: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The production worker command (prefork, concurrency 2) on a private queue."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "digest.celery_app", "worker", "--pool=prefork",
             f"--concurrency={WORKER_CONCURRENCY}", "--without-heartbeat", "--without-gossip",
             "--without-mingle", "-Q", queue, "-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--loglevel=INFO"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVICE_READY_SECONDS
        while b" ready." not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the Celery worker did not start; its log ends:\n{_tail(log_path)}")
            time.sleep(0.1)
        yield proc
    finally:
        _stop(proc)


def _delivery_counts(factory: sessionmaker[Session], edition_id: int) -> dict[str, int]:
    with factory() as session:
        rows = session.execute(text("SELECT status, count(*) FROM deliveries WHERE edition_id = :e GROUP BY status"),
                               {"e": edition_id}).all()
    return {status: int(count) for status, count in rows}


def _postgres_backends(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        # This session's own backend included: it is the one release_due ran on.
        return list(session.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
                    .scalars())


def measure_end_to_end(options: BenchOptions, database_url: str, sink: Sink, workdir: Path) -> dict[str, Any]:
    """Release to sent, wall clock; and the CPU each party spent per message meanwhile
    (the worker's processes, PostgreSQL's backends for this database, smtp-sink), which
    stays meaningful when other work shares the machine."""
    from digest.pipeline import release_due
    from digest.store.engine import make_engine
    from digest.store.models import utcnow

    engine = make_engine(database_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    try:
        seed_stories(factory)
        seeded = time.perf_counter()
        seed_readers(engine, options.readers)
        seed_seconds = time.perf_counter() - seeded
        edition_id = due_edition(factory)
        queue = f"digest-bench-{uuid.uuid4().hex[:10]}"
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir(exist_ok=True)
        env = service_env(database_url, options.redis_url, queue, sink.port,
                          PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))  # as docker-compose runs it
        log_path = workdir / "worker.log"
        client = celery_client(options.redis_url, queue)
        try:
            with celery_worker(env, queue, log_path) as worker:
                def enqueue(edition: int, first_id: int, last_id: int) -> None:
                    client.send_task("digest.send_batch", args=(edition, first_id, last_id), queue=queue)

                workers = process_tree(worker.pid)
                cpu_before = {pid: cpu_seconds(pid) for pid in [*workers, *_postgres_backends(factory), sink.pid]}
                started = time.perf_counter()
                released = release_due(factory, utcnow(), BATCH_SIZE, enqueue)
                release_seconds = time.perf_counter() - started
                if released != [edition_id]:
                    raise BenchError(f"release_due released {released}, expected [{edition_id}]")
                deadline = started + 60 + options.readers / 200
                while True:
                    with factory() as session:
                        status = session.execute(text("SELECT status, status_reason FROM editions WHERE id = :e"),
                                                 {"e": edition_id}).one()
                    if status[0] == "sent":
                        break
                    if status[0] != "sending" or time.perf_counter() > deadline:
                        raise BenchError(f"edition {status[0]} ({status[1] or 'no reason'}) after "
                                         f"{time.perf_counter() - started:.0f} s; counts "
                                         f"{_delivery_counts(factory, edition_id)}; worker log ends:\n"
                                         f"{_tail(log_path)}")
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started

                def spent(pids: list[int]) -> float:
                    return sum(cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in pids) / options.readers * 1e6

                cpu_us = {"worker": spent(process_tree(worker.pid)), "postgres": spent(_postgres_backends(factory)),
                          "smtp_sink": spent([sink.pid])}
        finally:
            client.close()
            forget_queue(options.redis_url, queue)
        counts = _delivery_counts(factory, edition_id)
        if counts.get("sent", 0) != options.readers:
            raise BenchError(f"only {counts.get('sent', 0)} of {options.readers} deliveries sent: {counts}")
        return {
            "readers": options.readers, "seconds": elapsed, "release_seconds": release_seconds,
            "messages_per_second": options.readers / elapsed, "counts": counts,
            "batch_size": BATCH_SIZE, "worker_concurrency": WORKER_CONCURRENCY,
            "seed_seconds": seed_seconds, "edition_id": edition_id,
            "cpu_us_per_message": cpu_us, "cpu_cores_busy": sum(cpu_us.values()) * options.readers / 1e6 / elapsed,
        }
    finally:
        engine.dispose()


# ------------------------------------------------------------------ 4. planning


def plan_child(spec_json: str) -> None:
    """Runs in a child process: release one due edition (claim, freeze stories, INSERT …
    SELECT the deliveries), cut it into batch ranges and publish every batch, as
    pipeline.release_due does. Prints timings and this process's peak RSS as JSON."""
    spec = json.loads(spec_json)
    from digest.pipeline import release_due
    from digest.store.engine import make_engine
    from digest.store.models import utcnow

    engine = make_engine(spec["url"])
    factory = sessionmaker(engine, expire_on_commit=False)
    client = celery_client(spec["broker_url"], spec["queue"])
    marks: dict[str, float] = {}
    published = 0

    def enqueue(edition: int, first_id: int, last_id: int) -> None:
        nonlocal published
        marks.setdefault("first_enqueue", time.perf_counter())
        client.send_task("digest.send_batch", args=(edition, first_id, last_id), queue=spec["queue"])
        published += 1

    started = time.perf_counter()
    released = release_due(factory, utcnow(), BATCH_SIZE, enqueue)
    finished = time.perf_counter()
    client.close()
    with engine.connect() as conn:
        planned = conn.execute(text("SELECT planned_count FROM editions WHERE id = :e"),
                               {"e": spec["edition_id"]}).scalar_one()
    engine.dispose()
    status = Path("/proc/self/status").read_text()
    vmhwm_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    print(json.dumps({
        "released": released, "planned": planned, "batches": published, "seconds": finished - started,
        "release_and_ranges_seconds": marks.get("first_enqueue", finished) - started,
        "enqueue_seconds": finished - marks.get("first_enqueue", finished), "vmhwm_kb": vmhwm_kb,
    }))


def _run_plan_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The child's JSON line. Its peak RSS is its own VmHWM: wait4's ru_maxrss is no good
    here, since Linux carries the forking parent's high-water mark across the exec."""
    try:
        done = subprocess.run([sys.executable, "-c", "import sys, digest.bench as b; b.plan_child(sys.argv[1])",
                               json.dumps(spec)], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PLAN_CHILD_TIMEOUT_SECONDS, check=False,
                              env={**os.environ, "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": BENCH_SECRET})
    except subprocess.TimeoutExpired:
        raise BenchError(f"planning {spec} took over {PLAN_CHILD_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        raise BenchError(f"planning child failed ({done.returncode}): {done.stderr.decode(errors='replace')[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = result.pop("vmhwm_kb") / 1024
    return result


def measure_planning(options: BenchOptions, size: int) -> dict[str, Any]:
    from digest.store.engine import make_engine

    with scratch_database(options.pg_url) as url:
        engine = make_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        try:
            seed_stories(factory)
            seeded = time.perf_counter()
            seed_readers(engine, size)
            seed_seconds = time.perf_counter() - seeded
            edition_id = due_edition(factory)
        finally:
            engine.dispose()
        queue = f"digest-bench-plan-{uuid.uuid4().hex[:10]}"
        try:
            result = _run_plan_child({"url": url, "edition_id": edition_id, "broker_url": options.redis_url,
                                      "queue": queue})
        finally:
            queued = forget_queue(options.redis_url, queue)
    expected_batches = math.ceil(size / BATCH_SIZE)
    if result["planned"] != size or result["batches"] != expected_batches or queued != expected_batches:
        raise BenchError(f"planning {size} readers: planned {result['planned']}, published {result['batches']}, "
                         f"queue held {queued}; expected {size} and {expected_batches} batches")
    return {"readers": size, "seed_seconds": seed_seconds, "queued_in_redis": queued, **result}


# ------------------------------------------------------------------ 5. one-click unsubscribe


def _unsubscribe_load(port: int, tokens: list[str], rate: float, threads: int, results: Any) -> None:
    """Open loop: request i is due at start + i/rate whatever happened before it, so a slow
    answer shows up as latency (measured from the due time), not as a lower offered rate."""
    body = b"List-Unsubscribe=One-Click"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    samples: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for index in range(offset, len(tokens), threads):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                connection.request("POST", f"/unsubscribe/{tokens[index]}", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            done = time.perf_counter()
            mine.append((done - due, done - sent, status, done - start))
        connection.close()
        with lock:
            samples.extend(mine)  # type: ignore[arg-type]

    pool = [threading.Thread(target=worker, args=(offset,)) for offset in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(samples)


@contextmanager
def web_server(env: dict[str, str], log_path: Path) -> Iterator[int]:
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "digest.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVICE_READY_SECONDS
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"`digest serve` did not start; its log ends:\n{_tail(log_path)}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
                connection.close()
            except OSError:
                pass
            time.sleep(0.2)
        yield port
    finally:
        _stop(proc)


def measure_unsubscribe(options: BenchOptions, database_url: str, smtp_port: int, workdir: Path) -> dict[str, Any]:
    from digest.store.engine import make_engine

    rate = UNSUBSCRIBE_RATE_PER_SECOND
    needed = int(rate * options.unsubscribe_seconds)
    warmup = 20
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            active = conn.execute(text("SELECT count(*) FROM subscribers WHERE status = 'active'")).scalar_one()
            if active < needed + warmup:
                seed_readers_offset(engine, needed + warmup - active)
            tokens = list(conn.execute(text("SELECT token FROM subscribers WHERE status = 'active' "
                                            "ORDER BY random() LIMIT :n"), {"n": needed + warmup}).scalars())
        env = service_env(database_url, options.redis_url, f"digest-bench-{uuid.uuid4().hex[:10]}", smtp_port,
                          DIGEST_LOG_FORMAT="json")
        with web_server(env, workdir / "web.log") as port:
            context = multiprocessing.get_context("spawn")
            for phase_tokens, phase_rate in ((tokens[:warmup], 50.0), (tokens[warmup:], float(rate))):
                queue = context.Queue()
                load = context.Process(target=_unsubscribe_load,
                                       args=(port, phase_tokens, phase_rate, UNSUBSCRIBE_THREADS, queue), daemon=True)
                load.start()
                try:
                    samples = queue.get(timeout=len(phase_tokens) / phase_rate + 60)
                except Exception:  # noqa: BLE001 - queue.Empty: the load process is stuck
                    raise BenchError(f"the unsubscribe load did not finish; server log ends:\n"
                                     f"{_tail(workdir / 'web.log')}") from None
                finally:
                    load.join(timeout=10)
                    if load.is_alive():
                        load.kill()
        with engine.connect() as conn:
            unsubscribed = conn.execute(text("SELECT count(*) FROM subscribers WHERE status = 'unsubscribed' "
                                             "AND unsubscribe_channel = 'one-click'")).scalar_one()
    finally:
        engine.dispose()
    ok = [s for s in samples if s[2] == 200]
    if not ok:
        raise BenchError(f"no unsubscribe request succeeded; statuses {Counter(s[2] for s in samples)}")
    latencies_ms = [s[0] * 1000 for s in samples]
    service_ms = [s[1] * 1000 for s in samples]
    last_done = max(s[3] for s in samples)
    return {
        "offered_per_second": rate, "seconds": options.unsubscribe_seconds, "requests": len(samples),
        "ok": len(ok), "errors": dict(Counter(s[2] for s in samples if s[2] != 200)),
        "achieved_per_second": len(ok) / last_done,
        "p50_ms": _percentile(latencies_ms, 0.50), "p99_ms": _percentile(latencies_ms, 0.99),
        "max_ms": max(latencies_ms), "service_p50_ms": _percentile(service_ms, 0.50),
        "service_p99_ms": _percentile(service_ms, 0.99), "unsubscribed_in_database": int(unsubscribed),
        "threads": UNSUBSCRIBE_THREADS,
    }


def seed_readers_offset(engine: Engine, count: int) -> None:
    """More readers on top of existing ones (addresses past the current maximum id)."""
    with engine.begin() as conn:
        top = conn.execute(text("SELECT coalesce(max(id), 0) FROM subscribers")).scalar_one()
        conn.execute(text(
            """
            INSERT INTO subscribers (email, email_key, name, status, token, consent_source,
                                     created_at, confirmed_at, frequency)
            SELECT 'extra' || g || '@example.org', 'extra' || g || '@example.org', 'Extra ' || g, 'active',
                   substr(md5(g::text || random()::text) || md5(random()::text), 1, 43), 'bench',
                   now(), now(), 'every'
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
            """), {"lo": top + 1, "hi": top + count})


# ------------------------------------------------------------------ 6. SQL per batch


def measure_round_trips(options: BenchOptions) -> dict[str, Any]:
    """send_batch in this process with a RecordingTransport, counting what reaches the
    driver: statements (an executemany counts once), transactions, pool checkouts."""
    from digest.config import Settings
    from digest.mailer.transport import RecordingTransport
    from digest.planner import release_edition
    from digest.sender import send_batch
    from digest.store.engine import make_engine
    from digest.store.models import utcnow

    total = sum(ROUND_TRIP_BATCHES)
    with scratch_database(options.pg_url) as url:
        engine = make_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        try:
            seed_stories(factory)
            seed_readers(engine, total)
            edition_id = due_edition(factory)
            with factory.begin() as session:
                release_edition(session, edition_id, utcnow())
            with engine.connect() as conn:
                ids = list(conn.execute(text("SELECT id FROM deliveries WHERE edition_id = :e ORDER BY id"),
                                        {"e": edition_id}).scalars())
            settings = Settings(env="test", secret_key=BENCH_SECRET, database_url=url,
                                batch_size=BATCH_SIZE)
            counts: Counter[str] = Counter()

            def on_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
                counts["statements"] += 1
                counts["parameter_sets"] += len(parameters) if executemany else 1

            listeners: list[tuple[Any, str, Callable[..., None]]] = [
                (engine, "before_cursor_execute", on_statement),
                (engine, "begin", lambda conn: counts.update(["transactions"])),
                (engine, "commit", lambda conn: counts.update(["commits"])),
                (engine, "rollback", lambda conn: counts.update(["rollbacks"])),
                (engine.pool, "checkout", lambda *args: counts.update(["checkouts"])),
            ]
            for target, name, listener in listeners:
                event.listen(target, name, listener)
            by_size: dict[str, dict[str, Any]] = {}
            offset = 0
            for size in ROUND_TRIP_BATCHES:
                counts.clear()
                transport = RecordingTransport()
                started = time.perf_counter()
                outcome = send_batch(factory, edition_id, ids[offset], ids[offset + size - 1], transport, settings)
                seconds = time.perf_counter() - started
                if len(transport.sent) != size:
                    raise BenchError(f"send_batch of {size} sent {len(transport.sent)}: {outcome.counts}")
                by_size[str(size)] = {**counts, "seconds": seconds,
                                      "record_every_messages": settings.record_every_messages}
                offset += size
            for target, name, listener in listeners:
                event.remove(target, name, listener)
            return by_size
        finally:
            engine.dispose()


# ------------------------------------------------------------------ the run


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(memory_gb, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def run_bench(options: BenchOptions, progress: Console) -> Results:
    results = Results()
    results.details["machine"] = machine()
    results.details["options"] = {**asdict(options), "pg_url": _hide_password(options.pg_url)}
    results.details["load_average_at_start"] = os.getloadavg()
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        progress.print(f"[yellow]warning: load average {os.getloadavg()[0]:.1f} before the run: other work on "
                       "this machine will lower the figures[/yellow]", highlight=False)
    started = time.perf_counter()
    connections = WORKER_CONCURRENCY  # one worker, prefork: one SMTP connection per child

    def step(title: str) -> None:
        progress.print(f"[dim]{time.perf_counter() - started:6.1f} s[/dim]  {title}", highlight=False)

    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    failed = True
    try:
        with ExitStack() as stack:
            side_redis = stack.enter_context(private_redis())
            results.details["side_redis"] = "private redis-server" if side_redis else "shared (redis-server missing)"
            stack.enter_context(process_env(DIGEST_REDIS_URL=side_redis))
            step(f"message preparation ({options.fast_iterations} messages)")
            prep = results.details["message_prep"] = measure_message_prep(options)
            sink = stack.enter_context(smtp_sink())
            port = sink.port
            step(f"raw SMTP ceiling ({connections} connections, {options.smtp_seconds:.0f} s)")
            ceiling = results.details["smtp_ceiling"] = measure_smtp_ceiling(port, connections, options.smtp_seconds)
            step(f"end to end ({options.readers} readers)")
            database_url = stack.enter_context(scratch_database(options.pg_url))
            e2e = results.details["end_to_end"] = measure_end_to_end(options, database_url, sink, workdir)
            # Again right after, so the two bracket the end-to-end run on a machine whose
            # other load changes: the ceiling is their mean.
            step("raw SMTP ceiling again")
            after = measure_smtp_ceiling(port, connections, options.smtp_seconds)
            ceiling["before_and_after"] = [ceiling["messages_per_second"], after["messages_per_second"]]
            ceiling["messages_per_second"] = statistics.mean(ceiling["before_and_after"])
            ceiling["client_cpu_us_per_message"] = statistics.mean(
                [ceiling["client_cpu_us_per_message"], after["client_cpu_us_per_message"]])
            step(f"one-click unsubscribe ({UNSUBSCRIBE_RATE_PER_SECOND}/s for {options.unsubscribe_seconds:.0f} s)")
            unsub = results.details["unsubscribe"] = measure_unsubscribe(options, database_url, port, workdir)
            step(f"SQL statements per send_batch {ROUND_TRIP_BATCHES}")
            trips = results.details["round_trips"] = measure_round_trips(options)
            plans = results.details["planning"] = []
            for size in options.plan_sizes:
                step(f"planning {size} readers")
                plans.append(measure_planning(options, size))
        failed = False
    finally:
        if failed:
            progress.print(f"logs kept in {workdir}", highlight=False)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results.details["seconds"] = time.perf_counter() - started
    results.details["load_average_at_end"] = os.getloadavg()
    step("done")
    _figures(results, prep, ceiling, e2e, plans, unsub, trips, connections)
    return results


def _figures(results: Results, prep: dict[str, Any], ceiling: dict[str, Any], e2e: dict[str, Any],
             plans: list[dict[str, Any]], unsub: dict[str, Any], trips: dict[str, Any], connections: int) -> None:
    f = results.figures
    fast, stdlib, naive = prep["fast_median_us"], prep["stdlib_median_us"], prep["naive_median_us"]
    f["prep_fast_us"] = Figure("prep: fast path, median", fast, "µs", stdlib, "stdlib build",
                               stdlib / fast, "× faster", f"≤ {GOAL_PREP_US:.0f} µs", fast <= GOAL_PREP_US)
    f["prep_stdlib_us"] = Figure("prep: stdlib build, median", stdlib, "µs", fast, "fast path",
                                 stdlib / fast, "× slower")
    f["prep_naive_us"] = Figure("prep: render + premailer per reader", naive, "µs", fast, "fast path",
                                naive / fast, "× slower")
    rate = ceiling["messages_per_second"]
    f["smtp_ceiling_msgs"] = Figure(f"SMTP ceiling: smtplib × {connections} → smtp-sink", rate, "msg/s")
    e2e_rate = e2e["messages_per_second"]
    share = e2e_rate / rate
    f["e2e_msgs"] = Figure(f"end to end: {e2e['readers']:,} readers, {connections} conns", e2e_rate, "msg/s",
                           rate, "SMTP ceiling", share * 100, "%", f"≥ {GOAL_E2E_SHARE_OF_CEILING * 100:.0f} % of ceiling",
                           share >= GOAL_E2E_SHARE_OF_CEILING)
    worker_cpu, client_cpu = e2e["cpu_us_per_message"]["worker"], ceiling["client_cpu_us_per_message"]
    f["e2e_worker_cpu_us"] = Figure("end to end: worker CPU per message", worker_cpu, "µs", client_cpu,
                                    "smtplib client", worker_cpu / client_cpu, "×")
    postgres_cpu = e2e["cpu_us_per_message"]["postgres"]
    f["e2e_postgres_cpu_us"] = Figure("end to end: PostgreSQL CPU per message", postgres_cpu, "µs", worker_cpu,
                                      "worker", postgres_cpu / worker_cpu, "×")
    smallest = plans[0]
    for plan in plans:
        size = plan["readers"]
        name = _size_name(size)
        goal_time = size >= 1_000_000
        f[f"plan_{size}_seconds"] = Figure(
            f"plan {name}: release + ranges + enqueue", plan["seconds"], "s",
            goal=f"≤ {GOAL_PLAN_1M_SECONDS:.0f} s per 1M" if goal_time else "",
            met=(plan["seconds"] <= GOAL_PLAN_1M_SECONDS * size / 1_000_000) if goal_time else None)
        growth = plan["peak_rss_mb"] / smallest["peak_rss_mb"]
        f[f"plan_{size}_rss_mb"] = Figure(
            f"plan {name}: peak RSS", plan["peak_rss_mb"], "MB", smallest["peak_rss_mb"],
            f"at {_size_name(smallest['readers'])}", growth, "×",
            f"≤ {GOAL_PLAN_RSS_MB:.0f} MB, ≤ {PLAN_RSS_FLAT_RATIO}× smallest",
            plan["peak_rss_mb"] <= GOAL_PLAN_RSS_MB and growth <= PLAN_RSS_FLAT_RATIO)
    f["unsubscribe_p99_ms"] = Figure(
        f"unsubscribe p99 at {unsub['offered_per_second']}/s", unsub["p99_ms"], "ms",
        unsub["p50_ms"], "p50", goal=f"≤ {GOAL_UNSUBSCRIBE_P99_MS:.0f} ms",
        met=unsub["p99_ms"] <= GOAL_UNSUBSCRIBE_P99_MS and not unsub["errors"])
    f["unsubscribe_rate"] = Figure("unsubscribe: achieved rate", unsub["achieved_per_second"], "req/s",
                                   unsub["offered_per_second"], "offered",
                                   unsub["achieved_per_second"] / unsub["offered_per_second"] * 100, "%")
    small, large = (trips[str(size)] for size in ROUND_TRIP_BATCHES)
    f[f"sql_per_batch_{ROUND_TRIP_BATCHES[0]}"] = Figure(
        f"SQL statements: send_batch of {ROUND_TRIP_BATCHES[0]}", small["statements"], "")
    f[f"sql_per_batch_{ROUND_TRIP_BATCHES[1]}"] = Figure(
        f"SQL statements: send_batch of {ROUND_TRIP_BATCHES[1]}", large["statements"], "",
        small["statements"], f"batch of {ROUND_TRIP_BATCHES[0]}", large["statements"] / small["statements"], "×",
        "equal", large["statements"] == small["statements"])


def _size_name(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return f"{size:,}"


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _number(value: float, unit: str) -> str:
    if unit in ("µs", "ms", "s"):
        return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:,.2f}×" if value < 10 else f"{value:,.0f}×"
    if unit == "%":
        return f"{value:.0f} %"
    return f"{value:,.0f} {unit}".rstrip()


COLUMNS = ("figure", "value", "baseline / ceiling (same run)", "ratio", "goal", "met?")


def _cells(figure: Figure) -> tuple[str, str, str, str, str]:
    """(figure, value, baseline, ratio, goal) as printed."""
    baseline = "—" if figure.baseline is None else (
        f"{figure.baseline_label} {_number(figure.baseline, figure.unit)}".strip())
    if figure.ratio is None:
        ratio = "—"
    elif figure.ratio_unit == "%":
        ratio = f"{figure.ratio:.0f} %"
    else:
        ratio = f"{_number(figure.ratio, '×')}{figure.ratio_unit.removeprefix('×')}"
    return figure.label, _number(figure.value, figure.unit), baseline, ratio, figure.goal or "—"


def table(results: Results) -> Table:
    grid = Table(title="digest bench", title_justify="left")
    for column, justify in zip(COLUMNS, ("left", "right", "right", "right", "left", "center"), strict=True):
        grid.add_column(column, justify=justify)  # type: ignore[arg-type]
    for figure in results.figures.values():
        met = Text("—") if figure.met is None else (Text("yes", style="green") if figure.met
                                                     else Text("NO", style="bold red"))
        grid.add_row(*(Text(cell) for cell in _cells(figure)), met)
    return grid


def markdown_table(saved: dict[str, Any]) -> str:
    """The table as GitHub markdown, from a `--json` file's content (for the README):
    python -c 'import json,sys,digest.bench as b; print(b.markdown_table(json.load(open(sys.argv[1]))))' FILE"""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---|:-:|"]
    for entry in saved["figures"].values():
        figure = Figure(**entry)
        met = "—" if figure.met is None else ("yes" if figure.met else "**no**")
        lines.append("| " + " | ".join((*_cells(figure), met)) + " |")
    return "\n".join(lines)
