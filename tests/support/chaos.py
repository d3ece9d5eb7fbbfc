"""A send under disruption, for the database chaos tests (tests/chaos/): `send_through` is
the send itself (real beat, real prefork worker, aiosmtpd) with the disruptions a test asks
for at given points."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import Delivery, Edition, EditionStatus
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import REPO, free_port, kill_group, launch_beat, launch_worker
from tests.support.smtp import ChaosHandler, hard_bounces

READERS = 1500

# (fraction of the readers received at the SMTP server, what to call it, what to do then)
Disruption = tuple[float, str, Callable[[], None]]


def send_through(tag: str, database_url: str, tmp_path: Path, disruptions: list[Disruption], *,
                 worker_database_url: str | None = None, time_limit_seconds: float = 120) -> dict[str, object]:
    """Send an edition to READERS readers (an empty database at `database_url`) with a real
    beat and prefork worker, which reach it at `worker_database_url` (default: the same).
    Each disruption runs once that share of the readers has a copy. Asserts that every
    eligible reader got exactly one copy, every delivery is final and the edition is sent;
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
        "DIGEST_RECORD_EVERY_MESSAGES": "20", "DIGEST_LEASE_SECONDS": "10", "DIGEST_RELEASE_EVERY_SECONDS": "0.5",
        "DIGEST_SWEEP_EVERY_SECONDS": "1", "DIGEST_JOURNAL_DIR": str(tmp_path / "journal"),
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
        for fraction, name, disrupt in disruptions:
            while len(handler.received) < READERS * fraction:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{tag}: {len(handler.received)} of {READERS} received, never reached "
                                         f"{fraction:.0%} for {name!r}; see {logs}")
                time.sleep(0.01)
            at, received = time.monotonic(), len(handler.received)
            disrupt()
            strikes.append((name, received, round(at - started, 1), round(time.monotonic() - at, 2)))
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
                   "strikes": strikes, "seconds": round(time.monotonic() - started, 1)}
        print(f"\n{tag.upper()}", figures)
        assert status == EditionStatus.SENT, figures
        bouncing = [a for a in addresses if hard_bounces(a)]  # the handler's 1 % of 550s
        assert sorted(copies) == sorted(set(addresses) - set(bouncing)), figures
        assert figures["duplicates"] == 0, figures
        assert deliveries == Counter({"sent": READERS - len(bouncing), "bounced": len(bouncing)}), figures
        return figures
    finally:
        for proc in processes:
            kill_group(proc)
        smtp.stop()
        engine.dispose()
