"""The real app in this process, on a migrated SQLite file and the local Redis, spoken to
through httpx's ASGI transport: for what the web layer does to any request (limits,
headers, error answers) without starting uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import redis
from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker

from digest.config import Settings
from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.web.app import Services, create_app

SECRET = "asgi-test-secret-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/0"


def app_for_test(tmp_path: Path, **settings: Any) -> FastAPI:
    """create_app on a fresh database; `settings` override the Settings fields."""
    settings.setdefault("env", "test")
    settings.setdefault("secret_key", SECRET)
    settings.setdefault("database_url", f"sqlite:///{tmp_path / 'web.db'}")
    config = Settings(**settings)
    engine = make_engine(config.database_url)
    upgrade(engine)
    services = Services(settings=config, factory=sessionmaker(engine, expire_on_commit=False),
                        redis=redis.Redis.from_url(REDIS_URL), enqueue_notice=lambda _: None,
                        enqueue_inbound=lambda _: None)
    return create_app(services)


def request(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to `app`, answered in full (kwargs as httpx takes them)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://digest.test") as client:
            return await client.request(method, path, **kwargs)

    return anyio.run(send)


class Counted:
    """A request body of `total` bytes in 64 KB chunks, counting how many were taken."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        while self.taken < self.total:
            self.taken += len(chunk)
            yield chunk
