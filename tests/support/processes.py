"""The processes the tests start, one launcher each: the Celery worker, Celery beat and
`digest serve`; how they are stopped; and the queue drain.

Every process runs in REPO (where worker.py is) with the environment it is given; the
integration stack (tests/integration/conftest.py), the ops lane (lane.py) and the chaos
tests (chaos.py, tests/chaos/) all start theirs here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[2]
WORKER_READY_SECONDS = 60
WEB_READY_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(command: list[str], env: dict[str, str], log: Path | None, *, append: bool = False,
           own_session: bool = False) -> subprocess.Popen[bytes]:
    """`command` in REPO, its output to `log` (appended to if `append`; None: thrown away), in
    a process group of its own if `own_session` (so that kill_group reaches its children)."""
    if log is None:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=own_session)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=own_session)


# ------------------------------------------------------------------ the Celery worker


def launch_worker(env: dict[str, str], log: Path, *, queue: str, name: str, concurrency: int = 2,
                  append: bool = False, own_session: bool = False) -> subprocess.Popen[bytes]:
    """A Celery prefork worker (worker.py) consuming only `queue`, as node `name`; returns at
    once (worker_ready says when it takes tasks)."""
    return launch(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", "--without-heartbeat", "--without-gossip",
         "--without-mingle", "-Q", queue, "-n", name, "--loglevel=INFO"],
        env, log, append=append, own_session=own_session)


def worker_ready(log: Path) -> bool:
    """Whether the worker writing `log` has said it is ready."""
    return b" ready." in log.read_bytes()


def start_worker(env: dict[str, str], log: Path, *, queue: str, name: str,
                 concurrency: int = 2) -> subprocess.Popen[bytes]:
    """launch_worker, then wait until the worker is ready (RuntimeError with its log if it
    exits or is not ready within WORKER_READY_SECONDS)."""
    proc = launch_worker(env, log, queue=queue, name=name, concurrency=concurrency)
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text(errors='replace')[-3000:]}")
        if worker_ready(log):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"worker not ready: {log.read_text(errors='replace')[-3000:]}")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """A warm shutdown (SIGTERM: the worker finishes what it holds), killed after 20 s."""
    proc.send_signal(signal.SIGTERM)
    reap(proc, timeout=20)


# ------------------------------------------------------------------ Celery beat


def launch_beat(env: dict[str, str], schedule: Path, *, log: Path | None = None, append: bool = False,
                own_session: bool = False) -> subprocess.Popen[bytes]:
    """Celery beat (worker.py's schedule), its schedule file at `schedule`."""
    return launch([sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel=INFO",
                   f"--schedule={schedule}"], env, log, append=append, own_session=own_session)


# ------------------------------------------------------------------ `digest serve`


def launch_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`digest serve` (uvicorn) on 127.0.0.1:`port`; returns at once (web_ready says when it answers)."""
    return launch([sys.executable, "-m", "digest.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                  env, log)


def web_ready(base_url: str) -> bool:
    """Whether the server at `base_url` answers /healthz with a 200."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """launch_web, then wait until /healthz answers (RuntimeError with its log if the server
    exits or does not answer within WEB_READY_SECONDS)."""
    proc = launch_web(env, port, log)
    deadline = time.monotonic() + WEB_READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited: {log.read_text(errors='replace')[-3000:]}")
        if web_ready(f"http://127.0.0.1:{port}"):
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"web server not ready: {log.read_text(errors='replace')[-3000:]}")


def stop_web(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, killed after 15 s."""
    proc.terminate()
    reap(proc, timeout=15)


# ------------------------------------------------------------------ stopping


def reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a process already told to stop; kill it if it takes longer than `timeout`."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process group of a process launched with `own_session` (a prefork
    worker and its children at once)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


# ------------------------------------------------------------------ the queue drain


def drain_queue(broker_url: str, queue: str, timeout: float, failure: Callable[[], str], *,
                busy: Callable[[], bool] = lambda: False) -> None:
    """Wait until `queue` holds no waiting or unacknowledged task and nothing is `busy`
    (three looks in a row); AssertionError(failure()) after `timeout` seconds."""
    broker = redis.Redis.from_url(broker_url)
    try:
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            unacked = [v for v in broker.hvals("unacked") if queue.encode() in v]
            quiet = quiet + 1 if broker.llen(queue) == 0 and not unacked and not busy() else 0
            if quiet >= 3:
                return
            time.sleep(0.05)
        raise AssertionError(failure())
    finally:
        broker.close()
