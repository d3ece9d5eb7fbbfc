"""Recovery with the default settings, measured from outside (the issue's scenario): how
long from a SIGKILL to the next message and to the end, and what a host lost with its
disk (its send journal) costs in duplicates.

Every process runs with the deployed DIGEST_LEASE_SECONDS and DIGEST_SWEEP_EVERY_SECONDS;
the figures are printed (RECOVERY, HOST LOSS) and asserted against RECOVERY_SECONDS and
the host-loss bound stated in docs/send.md.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery.sender import RECHECK_EVERY_SECONDS
from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import Delivery, Edition, EditionStatus
from tests.support.chaos import RECOVERY_SECONDS, RedisServer
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import REPO, free_port, kill_group, launch_beat, launch_worker
from tests.support.smtp import ChaosHandler, hard_bounces
from tests.support.stack import PG_ADMIN_URL

pytestmark = pytest.mark.chaos
# The issue measured 3,000 readers at 100 msg/s; fewer keep the test short, and the
# recovery figures do not depend on the count (DIGEST_TEST_RECOVERY_READERS to measure more).
READERS = int(os.environ.get("DIGEST_TEST_RECOVERY_READERS", "1500"))
RATE_PER_SECOND = 100
HOST_LOSS_READERS = 3000
BATCH_SIZE = 500  # the default DIGEST_BATCH_SIZE
TIME_LIMIT_SECONDS = 150


@dataclass
class Scene:
    factory: sessionmaker[Session]
    env: dict[str, str]
    handler: ChaosHandler
    redis: RedisServer
    queue: str
    logs: Path
    addresses: list[str]
    processes: list


@contextmanager
def scene(tag: str, tmp_path: Path, readers: int, **env: str) -> Iterator[Scene]:
    """A database, a private Redis, an SMTP server that refuses nothing (but the 1 % of
    hard bounces), beat, and `readers` readers; the settings all default but `env`."""
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"digest_{tag}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin.url.set(database=name).render_as_string(hide_password=False)
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    handler = ChaosHandler()
    handler.rng.random = lambda: 1.0  # type: ignore[method-assign]  # no 4xx, no drops: only the kills
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    smtp.start()
    queue = f"digest-{tag}-{uuid.uuid4().hex[:8]}"
    full_env = {
        **os.environ, "PYTHONPATH": str(REPO), "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": f"{tag}-secret-0123456789",
        "DIGEST_DATABASE_URL": database_url, "DIGEST_BROKER_URL": redis_server.url,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "DIGEST_TASK_QUEUE": queue,
        "DIGEST_RELEASE_EVERY_SECONDS": "0.5", "DIGEST_JOURNAL_DIR": str(tmp_path / "journal"),
        "DIGEST_LOG_FORMAT": "text", **env,
    }
    engine = make_engine(database_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    logs = REPO / "test-artifacts" / f"{tag}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    processes: list = []
    try:
        upgrade(engine)
        seed_stories(factory)
        addresses = seed_readers(factory, readers)
        processes.append(launch_beat(full_env, tmp_path / "beat", log=logs / "beat.log", append=True,
                                     own_session=True))
        yield Scene(factory, full_env, handler, redis_server, queue, logs, addresses, processes)
    finally:
        for proc in processes:
            kill_group(proc)
        smtp.stop()
        redis_server.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def worker(s: Scene, label: str, concurrency: int = 2, **env: str):  # type: ignore[no-untyped-def]
    proc = launch_worker({**s.env, **env}, s.logs / f"{label}.log", queue=s.queue,
                         name=f"{label}-{uuid.uuid4().hex[:4]}@%h", concurrency=concurrency,
                         append=True, own_session=True)
    s.processes.append(proc)
    return proc


def received(s: Scene) -> int:
    with s.handler.lock:
        return len(s.handler.received)


def wait_until_sent(s: Scene, edition_id: int, deadline: float) -> float:
    """The time the edition became sent (AssertionError at the deadline)."""
    while time.monotonic() < deadline:
        with s.factory() as session:
            if session.get_one(Edition, edition_id, populate_existing=True).status == EditionStatus.SENT:
                return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"edition not sent in time: {received(s)} messages received; see {s.logs}")


def outcome(s: Scene, edition_id: int) -> tuple[Counter[str], Counter[str]]:
    """(copies per recipient, deliveries per status), once nothing is in flight."""
    time.sleep(1)
    with s.handler.lock:
        copies = Counter(rcpt for rcpt, _, _ in s.handler.received)
    with s.factory() as session:
        statuses = Counter(str(st) for (st,) in session.execute(
            select(Delivery.status).where(Delivery.edition_id == edition_id)))
    return copies, statuses


def test_sending_resumes_within_recovery_seconds_of_a_sigkill_that_lost_the_queue(tmp_path: Path) -> None:
    """The issue's measurement: 100 msg/s, the worker SIGKILLed at a fifth of the readers
    and Redis restarted without persistence (its queue lost), the worker restarted as a
    supervisor would. Sending resumes within RECOVERY_SECONDS; nobody gets two copies."""
    started = time.monotonic()
    with scene("recovery", tmp_path, READERS, DIGEST_RATE_LIMIT_PER_SECOND=str(RATE_PER_SECOND)) as s:
        proc = worker(s, "worker")
        edition_id = due_edition(s.factory, "Recovery edition")
        while received(s) < READERS // 5:
            assert time.monotonic() - started < TIME_LIMIT_SECONDS, f"never reached a fifth; see {s.logs}"
            time.sleep(0.01)
        s.handler.quiet_moment()  # not inside the one window no sender can close (test_chaos.py)
        killed_at, before = time.monotonic(), received(s)
        kill_group(proc)
        s.redis.stop()  # without persistence: every queued task is gone
        s.redis.start()
        s.handler.release()
        worker(s, "worker-restarted")
        while received(s) == before:
            assert time.monotonic() - killed_at < TIME_LIMIT_SECONDS, f"nothing sent after the kill; see {s.logs}"
            time.sleep(0.05)
        resumed_at = time.monotonic()
        done_at = wait_until_sent(s, edition_id, started + TIME_LIMIT_SECONDS)
        copies, statuses = outcome(s, edition_id)
        bouncing = {a for a in s.addresses if hard_bounces(a)}
        figures = {"readers": READERS, "rate": RATE_PER_SECOND, "killed_after": before,
                   "kill_to_next_message": round(resumed_at - killed_at, 1),
                   "kill_to_sent": round(done_at - killed_at, 1), "delivered": len(copies),
                   "duplicates": sum(n - 1 for n in copies.values()), "deliveries": dict(statuses),
                   "seconds": round(time.monotonic() - started, 1)}
        print("\nRECOVERY", figures)
        assert figures["kill_to_next_message"] <= RECOVERY_SECONDS, figures
        # and then the rest at the rate limit, with a few seconds for the tail (the last flush, the finish)
        assert figures["kill_to_sent"] <= RECOVERY_SECONDS + (READERS - before) / RATE_PER_SECOND + 10, figures
        assert figures["duplicates"] == 0, figures
        assert set(copies) == set(s.addresses) - bouncing, figures
        assert statuses == Counter({"sent": READERS - len(bouncing), "bounced": len(bouncing)}), figures


def test_a_host_lost_with_its_journal_duplicates_at_most_its_last_record_interval(tmp_path: Path) -> None:
    """Two worker hosts (a journal folder each) at full speed; one dies and its disk with it
    (SIGKILL, then its journal deleted), at any moment. The other sends everything the dead
    one left, after its lease. The only copies sent twice are what the dead host sent and had
    not yet recorded: at most one record interval of each batch it was running, that is
    min(DIGEST_BATCH_SIZE, DIGEST_RECORD_EVERY_MESSAGES, RECHECK_EVERY_SECONDS of sending)."""
    started = time.monotonic()
    with scene("hostloss", tmp_path, HOST_LOSS_READERS) as s:
        journal_a, journal_b = tmp_path / "host-a-journal", tmp_path / "host-b-journal"
        host_a = worker(s, "host-a", DIGEST_JOURNAL_DIR=str(journal_a), DIGEST_SMTP_HELO="host-a.localhost",
                        concurrency=1)
        worker(s, "host-b", DIGEST_JOURNAL_DIR=str(journal_b), DIGEST_SMTP_HELO="host-b.localhost", concurrency=1)
        edition_id = due_edition(s.factory, "Host loss edition")

        def from_a() -> list[float]:
            with s.handler.lock:
                return [t for (_, t, _), helo in zip(s.handler.received, s.handler.helos, strict=True)
                        if helo == "host-a.localhost"]

        while len(from_a()) < BATCH_SIZE * 1.4:  # host A well into its second batch
            assert time.monotonic() - started < TIME_LIMIT_SECONDS, f"host A never got going; see {s.logs}"
            time.sleep(0.002)
        kill_group(host_a)  # mid-batch, at whatever moment: a host does not pick its death
        killed_at = time.monotonic()
        shutil.rmtree(journal_a, ignore_errors=True)  # its disk is gone with it
        # What host A sent in the last record interval (and the flush and message around it).
        window = RECHECK_EVERY_SECONDS + 0.5
        a_last_interval = sum(1 for t in from_a() if t > killed_at - window)
        with s.handler.lock:
            before = len(s.handler.received)
            received_by_then = Counter(rcpt for rcpt, _, _ in s.handler.received)
        done_at = wait_until_sent(s, edition_id, started + TIME_LIMIT_SECONDS)
        copies, statuses = outcome(s, edition_id)
        duplicates = sum(n - 1 for n in copies.values())
        with s.handler.lock:
            first_seen = {}
            for rcpt, t, _ in s.handler.received:
                first_seen.setdefault(rcpt, t)
        sent_twice = [rcpt for rcpt, n in copies.items() if n > 1]
        bouncing = {a for a in s.addresses if hard_bounces(a)}
        figures = {"readers": HOST_LOSS_READERS, "host_a_sent": len(from_a()), "received_at_kill": before,
                   "duplicates": duplicates, "host_a_last_interval": a_last_interval,
                   # how long before the death the first of the re-sent messages had gone out
                   "duplicate_window_ms": round(1000 * (killed_at - min((first_seen[r] for r in sent_twice),
                                                                          default=killed_at))),
                   "bound": min(BATCH_SIZE, a_last_interval), "kill_to_sent": round(done_at - killed_at, 1),
                   "deliveries": dict(statuses), "seconds": round(time.monotonic() - started, 1)}
        print("\nHOST LOSS", figures)
        assert all(received_by_then[r] == 1 for r in sent_twice), figures  # only copies from before the death
        assert duplicates <= figures["bound"], figures
        # the other host sends the rest meanwhile; the dead one's rows follow within RECOVERY_SECONDS
        assert figures["kill_to_sent"] <= RECOVERY_SECONDS + 15, figures
        assert figures["duplicate_window_ms"] <= window * 1000, figures
        assert set(copies) == set(s.addresses) - bouncing, figures  # nothing lost
        assert statuses == Counter({"sent": HOST_LOSS_READERS - len(bouncing), "bounced": len(bouncing)}), figures
