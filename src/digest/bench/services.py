"""The services a run starts on loopback, each as a context manager that stops or drops it
again (smtp-sink, a private redis-server, a scratch database, `digest serve`, a Celery
worker), and the environment they are started with."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import text

from digest.bench.options import (
    BATCH_SIZE,
    BENCH_SECRET,
    WORKER_CONCURRENCY,
    BenchError,
)
from digest.config import get_settings
from digest.store import make_engine, upgrade
from digest.worker import publisher

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SINK_BACKLOG = 1024
SERVICE_READY_SECONDS = 60


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

def celery_client(broker_url: str, queue: str) -> Any:
    """A bare Celery client that publishes what `send_batch.delay` publishes, on `queue`."""
    return publisher(broker_url, queue)


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


def _tail(path: Path, chars: int = 2_000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def celery_worker(env: dict[str, str], queue: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The production worker command (prefork, concurrency 2) on a private queue."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "digest.worker", "worker", "--pool=prefork",
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
