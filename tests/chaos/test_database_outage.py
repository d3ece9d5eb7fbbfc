"""PostgreSQL goes away in the middle of a send: every connection the workers hold is cut
and new ones are refused for two seconds (a TCP proxy in front of the server, so the
test does not restart the machine's PostgreSQL under other users). Afterwards every
reader has exactly one copy and every delivery is final.

`send_through` is the send itself (real beat, real prefork worker, aiosmtpd) with the
disruptions a test asks for at given points; test_database_restart.py uses it too."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import Delivery, Edition, EditionStatus
from tests.chaos.test_chaos import ChaosHandler, hard_bounces
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import REPO, free_port, kill_group, launch_beat, launch_worker
from tests.support.stack import PG_ADMIN_URL

pytestmark = pytest.mark.chaos
READERS = 1500

# (fraction of the readers received at the SMTP server, what to call it, what to do then)
Disruption = tuple[float, str, Callable[[], None]]


class CuttableProxy:
    """Forwards 127.0.0.1:port to the real server until told to cut everything."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        self.refusing = False
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(timeout=5)

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, upstream_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def outage(self, seconds: float) -> None:
        def cut() -> None:
            self.refusing = True
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(cut)
        time.sleep(seconds)
        self.refusing = False


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


def test_database_outage_mid_send(tmp_path: Path) -> None:
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"digest_outage_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    direct_url = admin.url.set(database=name)
    proxy = CuttableProxy(direct_url.port or 5432)
    proxied_url = direct_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        send_through("outage", direct_url.render_as_string(hide_password=False), tmp_path,
                     [(0.3, "connections cut, refused for 2 s", lambda: proxy.outage(2.0))],
                     worker_database_url=proxied_url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
