"""A send under disruption, for the chaos tests (tests/chaos/): `send_through` is the send
itself (real beat, real prefork worker, aiosmtpd) with the disruptions a test asks for at
given points; `RedisServer`, a private Redis to restart; `longest_gap`, the recovery
figure every chaos test asserts on."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

import redis

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import Delivery, Edition, EditionStatus
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import REPO, free_port, kill_group, launch_beat, launch_worker
from tests.support.smtp import ChaosHandler, hard_bounces

READERS = 1500
# From a kill (or any disruption) to the next message, with the default settings: the lease
# (DIGEST_LEASE_SECONDS, 20) and one sweep (DIGEST_SWEEP_EVERY_SECONDS, 5) at most.
RECOVERY_SECONDS = 30


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart loses its queue."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def longest_gap(arrivals: list[float], since: float) -> float:
    """The longest time without a message from `since` to the last arrival: the worst
    stall a disruption at `since` caused."""
    times = [since] + sorted(t for t in arrivals if t > since)
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)

# (fraction of the readers received at the SMTP server, what to call it, what to do then)
Disruption = tuple[float, str, Callable[[], None]]


def send_through(tag: str, database_url: str, tmp_path: Path, disruptions: list[Disruption], *,
                 worker_database_url: str | None = None, time_limit_seconds: float = 120) -> dict[str, object]:
    """Send an edition to READERS readers (an empty database at `database_url`) with a real
    beat and prefork worker, which reach it at `worker_database_url` (default: the same).
    Each disruption runs once that share of the readers has a copy. Runs with the default
    lease and sweep settings. Asserts that every eligible reader got exactly one copy, every
    delivery is final, the edition is sent and, from the end of the first disruption, no
    RECOVERY_SECONDS went by without a message;
    prints and returns the figures (the line starts with TAG)."""
    started = time.monotonic()
    handler = ChaosHandler()
    handler.rng.random = lambda: 1.0  # type: ignore[method-assign]  # no refusals: only the database fails
    from aiosmtpd.controller import Controller

    smtp = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    smtp.start()
    queue = f"digest-{tag}-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": f"{tag}-secret-0123456789",
        "DIGEST_DATABASE_URL": worker_database_url or database_url,
        "DIGEST_BROKER_URL": os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "DIGEST_TASK_QUEUE": queue, "DIGEST_BATCH_SIZE": "100",
        "DIGEST_RECORD_EVERY_MESSAGES": "20", "DIGEST_RELEASE_EVERY_SECONDS": "0.5",
        "DIGEST_JOURNAL_DIR": str(tmp_path / "journal"),
        "DIGEST_SMTP_HELO": f"{tag}.localhost", "DIGEST_LOG_FORMAT": "text",
    }
    engine = make_engine(database_url)  # pre-pings: its pooled connections survive a server restart
    factory = sessionmaker(engine, expire_on_commit=False)
    logs = REPO / "test-artifacts" / f"{tag}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    processes = []
    try:
        upgrade(engine)
        seed_stories(factory)
        addresses = seed_readers(factory, READERS)
        processes.append(launch_beat(env, tmp_path / "beat", log=logs / "beat.log", append=True, own_session=True))
        processes.append(launch_worker(env, logs / "worker.log", queue=queue, name=f"{tag}-{uuid.uuid4().hex[:4]}@%h",
                                       concurrency=2, append=True, own_session=True))
        edition_id = due_edition(factory, f"{tag.capitalize()} edition")
        deadline = started + time_limit_seconds
        strikes = []
        recovered_from = 0.0
        for fraction, name, disrupt in disruptions:
            while len(handler.received) < READERS * fraction:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{tag}: {len(handler.received)} of {READERS} received, never reached "
                                         f"{fraction:.0%} for {name!r}; see {logs}")
                time.sleep(0.01)
            at, received = time.monotonic(), len(handler.received)
            disrupt()
            strikes.append((name, received, round(at - started, 1), round(time.monotonic() - at, 2)))
            recovered_from = recovered_from or time.monotonic()  # the end of the first disruption
        status = None
        while time.monotonic() < deadline:
            try:
                with factory() as session:
                    status = session.get_one(Edition, edition_id, populate_existing=True).status
            except DBAPIError:  # the database is not back yet: ask again
                status = None
            if status == EditionStatus.SENT:
                break
            time.sleep(0.5)
        time.sleep(1)
        copies = Counter(rcpt for rcpt, _, _ in handler.received)
        with factory() as session:
            deliveries = Counter(s for (s,) in session.execute(select(Delivery.status).where(Delivery.edition_id == edition_id)))
        figures = {"readers": READERS, "received": len(copies), "duplicates": sum(n - 1 for n in copies.values()),
                   "deliveries": {str(k): v for k, v in deliveries.items()}, "status": str(status),
                   "strikes": strikes, "seconds": round(time.monotonic() - started, 1),
                   "longest_stall": round(longest_gap([t for _, t, _ in handler.received], recovered_from), 1)}
        print(f"\n{tag.upper()}", figures)
        assert status == EditionStatus.SENT, figures
        bouncing = [a for a in addresses if hard_bounces(a)]  # the handler's 1 % of 550s
        assert sorted(copies) == sorted(set(addresses) - set(bouncing)), figures
        assert figures["duplicates"] == 0, figures
        assert figures["longest_stall"] <= RECOVERY_SECONDS, figures
        assert deliveries == Counter({"sent": READERS - len(bouncing), "bounced": len(bouncing)}), figures
        return figures
    finally:
        for proc in processes:
            kill_group(proc)
        smtp.stop()
        engine.dispose()
