"""PostgreSQL goes away in the middle of a send: every connection the workers hold is cut
and new ones are refused for two seconds (a TCP proxy in front of the server, so the
test does not restart the machine's PostgreSQL under other users). Afterwards every
reader has exactly one copy and every delivery is final."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import Delivery, Edition, EditionStatus
from tests.chaos.test_chaos import PG_ADMIN_URL, REPO, ChaosHandler, hard_bounces, kill_group, start
from tests.integration.helpers import due_edition, seed_readers, seed_stories
from tests.integration.smtp_sink import free_port

pytestmark = pytest.mark.chaos
READERS = 1500


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


def test_database_outage_mid_send(tmp_path: Path) -> None:
    admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"digest_outage_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    direct_url = admin.url.set(database=name)
    proxy = CuttableProxy(direct_url.port or 5432)
    proxied_url = direct_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    handler = ChaosHandler()
    handler.rng.random = lambda: 1.0  # type: ignore[method-assign]  # no refusals: only the database fails
    from aiosmtpd.controller import Controller

    smtp = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    smtp.start()
    queue = f"digest-outage-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": "outage-secret-0123456789",
        "DIGEST_DATABASE_URL": proxied_url, "DIGEST_BROKER_URL": os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "DIGEST_TASK_QUEUE": queue, "DIGEST_BATCH_SIZE": "100",
        "DIGEST_RECORD_EVERY_MESSAGES": "20", "DIGEST_LEASE_SECONDS": "10", "DIGEST_RELEASE_EVERY_SECONDS": "0.5",
        "DIGEST_SWEEP_EVERY_SECONDS": "1", "DIGEST_JOURNAL_DIR": str(tmp_path / "journal"),
        "DIGEST_SMTP_HELO": "outage.localhost", "DIGEST_LOG_FORMAT": "text",
    }
    engine = make_engine(direct_url.render_as_string(hide_password=False))
    factory = sessionmaker(engine, expire_on_commit=False)
    logs = REPO / "test-artifacts" / "outage-logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        upgrade(engine)
        seed_stories(factory)
        addresses = seed_readers(factory, READERS)
        processes.append(start(["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'beat'}"], env, logs / "beat.log"))
        processes.append(start(["worker", "--pool=prefork", "--concurrency=2", "-Q", queue, "-n", f"outage-{uuid.uuid4().hex[:4]}@%h",
                                "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                               env, logs / "worker.log"))
        edition_id = due_edition(factory, "Outage edition")
        deadline = time.monotonic() + 120
        while len(handler.received) < READERS * 0.3 and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.outage(2.0)
        status = None
        while time.monotonic() < deadline:
            with factory() as session:
                status = session.get_one(Edition, edition_id, populate_existing=True).status
            if status == EditionStatus.SENT:
                break
            time.sleep(0.5)
        time.sleep(1)
        copies = Counter(rcpt for rcpt, _, _ in handler.received)
        with factory() as session:
            deliveries = Counter(s for (s,) in session.execute(select(Delivery.status).where(Delivery.edition_id == edition_id)))
        figures = {"readers": READERS, "received": len(copies), "duplicates": sum(n - 1 for n in copies.values()),
                   "deliveries": dict(deliveries), "status": str(status)}
        print("\nOUTAGE", figures)
        assert status == EditionStatus.SENT, figures
        bouncing = [a for a in addresses if hard_bounces(a)]  # the handler's 1 % of 550s
        assert sorted(copies) == sorted(set(addresses) - set(bouncing)), figures
        assert figures["duplicates"] == 0, figures
        assert deliveries == Counter({"sent": READERS - len(bouncing), "bounced": len(bouncing)}), figures
    finally:
        for proc in processes:
            kill_group(proc)
        smtp.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
