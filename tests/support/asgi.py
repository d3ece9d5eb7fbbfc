"""The real app in this process, on a migrated SQLite file and the local Redis, spoken to
through httpx's ASGI transport (or a uvicorn thread, for what a connection sees): for what the web layer does to any request (limits,
headers, error answers) without starting uvicorn."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import redis
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker

from digest import staff
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


def api_token(app: FastAPI, role: str = "editor") -> dict[str, str]:
    """The Authorization header of a new staff member's API token."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    with app.state.services.factory.begin() as session:
        user = staff.create_user(session, email, role, "correct horse battery staple")
        _, raw = staff.create_api_token(session, user, "tests")
    return {"Authorization": f"Bearer {raw}"}


def sign_in_from(app: FastAPI, address: str, email: str, password: str,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    """Open /login and post the form, as a browser at `address` would; the answer unchecked."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://digest.test") as client:
            page = await client.get("/login")
            [token] = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
            return await client.post("/login", headers=headers, data={
                "csrf_token": token, "email": email, "password": password, "next": "/editor"})

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


@contextmanager
def served(app: FastAPI, **options: Any) -> Iterator[int]:
    """`app` under a real uvicorn server in a thread (keep-alive and all), with uvicorn
    `options` (proxy_headers… as `digest serve` passes them); yields its port."""
    options.setdefault("proxy_headers", False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def ask_twice(port: int, first: str, second: str) -> tuple[bytes, bytes]:
    """GET `first`, then `second` on the same keep-alive connection: both raw answers
    (the second b"" if the server closed or reset the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        answers = []
        for path in (first, second):
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: digest.test\r\n\r\n".encode())
                answers.append(_one_answer(sock))
            except (ConnectionResetError, BrokenPipeError):
                answers.append(b"")
        return answers[0], answers[1]


def _one_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), b"0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
