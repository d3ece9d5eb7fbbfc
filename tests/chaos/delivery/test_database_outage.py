"""PostgreSQL goes away in the middle of a send: every connection the workers hold is cut
and new ones are refused for two seconds (a TCP proxy in front of the server, so the
test does not restart the machine's PostgreSQL under other users). Afterwards every
reader has exactly one copy and every delivery is final.

The send itself is tests/support/chaos.py's `send_through`, which test_database_restart.py
uses too."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.store.engine import make_engine
from tests.support.chaos import send_through
from tests.support.processes import free_port
from tests.support.stack import PG_ADMIN_URL

pytestmark = pytest.mark.chaos


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
    try:
        send_through("outage", direct_url.render_as_string(hide_password=False), tmp_path,
                     [(0.3, "connections cut, refused for 2 s", lambda: proxy.outage(2.0))],
                     worker_database_url=proxied_url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
