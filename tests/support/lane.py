"""The *ops lane*, and the helpers the four ops test files (test_ops_http,
test_ops_concurrency, test_ops_browser, test_metrics) share.

How a send is kept "in progress" long enough to look at it (the ops lane, which those
files get through tests/integration/conftest.py's `ops_lane` and `lane` fixtures): the session's worker, web
server and SMTP sink are left alone and a lane is started next to them, once per backend,
on the same database:

- an aiosmtpd server with a PacedHandler, which can be slowed (a sleep per message) and
  held (after a budget of messages, DATA waits until released). A held worker process sits
  inside one SMTP transaction, so the ledger stands still and can be compared exactly;
- a Celery worker subprocess (2 prefork processes, like the session's) consuming only the
  lane's own queue and sending to that server;
- two `digest serve` subprocesses whose DIGEST_TASK_QUEUE is that queue, so what resume,
  retry-failed and send-missing enqueue reaches the lane's worker only (two, so that two
  presses at once really run in two processes).

Why a queue of its own rather than a second worker on the session's queue: the session
worker (fast, on the shared sink) would take half the batches, and the `web` fixture's
server enqueues there too, so a "slow" send would be half fast and its copies split over
two SMTP servers.

Nothing is stopped or patched: the session worker never sees the lane's queue. After each
test the lane releases its hold, cancels what is still going and waits for its queue to
drain, so no task outlives the test that made it (SQLite reuses ids after a DELETE).
"""

from __future__ import annotations

import html
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
from aiosmtpd.controller import Controller
from celery import Celery
from sqlalchemy import select, text

from digest.delivery.pipeline import release_due
from digest.store.models import AuditEntry, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.processes import (
    REPO,
    drain_queue,
    free_port,
    launch_web,
    launch_worker,
    reap,
    web_ready,
    worker_ready,
)
from tests.support.smtp import PacedHandler, RecordingHandler
from tests.support.stack import Stack
from tests.support.web import clear_rate_limits, csrf_token

LANE_BATCH_SIZE = 20
LANE_RECORD_EVERY_MESSAGES = 10
LANE_CONCURRENCY = 2
READY_SECONDS = 60
SETTLE_SECONDS = 30
SEND_TIMEOUT_SECONDS = 40
COUNTS = ("planned", "sent", "failed", "bounced", "skipped", "pending")


# ------------------------------------------------------------------ the lane


@dataclass
class Lane:
    """A worker, web servers and an SMTP server of the tests' own (see the module docstring)."""

    stack: Stack
    name: str
    smtp: PacedHandler
    controller: Controller
    queue: str
    web_ports: list[int]
    client: Celery
    settings_env: dict[str, str]
    worker_proc: subprocess.Popen[bytes] | None = None
    web_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports]

    @property
    def web_url(self) -> str:
        return self.web_urls[0]

    def env(self, **extra: str) -> dict[str, str]:
        return self.stack.env(
            DIGEST_SMTP_URL=f"smtp://127.0.0.1:{self.controller.port}", DIGEST_TASK_QUEUE=self.queue,
            DIGEST_BASE_URL=self.web_url, DIGEST_BATCH_SIZE=str(LANE_BATCH_SIZE),
            DIGEST_RECORD_EVERY_MESSAGES=str(LANE_RECORD_EVERY_MESSAGES), **{**self.settings_env, **extra})

    def _log(self, kind: str) -> Path:
        path = REPO / "test-artifacts" / f"{kind}-ops-{self.name}-{self.stack.backend}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.logs[kind] = path
        return path

    def log_tail(self) -> str:
        return "\n".join(f"--- {kind}:\n{path.read_text(errors='replace')[-2500:]}"
                         for kind, path in self.logs.items() if path.exists())

    def launch_worker(self) -> None:
        self.worker_proc = launch_worker(self.env(), self._log("worker"), queue=self.queue,
                                         name=f"ops-{self.name}-{uuid.uuid4().hex[:6]}@%h",
                                         concurrency=LANE_CONCURRENCY)

    def launch_web(self) -> None:
        for index, port in enumerate(self.web_ports):
            self.web_procs.append(launch_web(self.env(), port, self._log(f"web{index}")))

    def _procs(self) -> list[subprocess.Popen[bytes]]:
        return [*self.web_procs, *([self.worker_proc] if self.worker_proc else [])]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        worker_up = self.worker_proc is None
        waiting_for = set(self.web_urls) if self.web_procs else set()
        while time.monotonic() < deadline and not (worker_up and not waiting_for):
            if any(proc.poll() is not None for proc in self._procs()):
                raise RuntimeError(f"lane process exited:\n{self.log_tail()}")
            if not worker_up:
                worker_up = worker_ready(self.logs["worker"])
            for url in list(waiting_for):
                if web_ready(url):
                    waiting_for.discard(url)
            time.sleep(0.1)
        if not worker_up or waiting_for:
            raise RuntimeError(f"lane not ready after {READY_SECONDS}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the lane's processes (the worker cold: by now it has nothing to finish)."""
        self.smtp.release()
        for proc in self.web_procs:
            if proc.poll() is None:
                proc.terminate()
        if self.worker_proc is not None and self.worker_proc.poll() is None:
            self.worker_proc.send_signal(signal.SIGQUIT)
        for proc in self._procs():
            reap(proc, timeout=20)
        self.worker_proc, self.web_procs = None, []
        self.controller.stop()
        broker = redis.Redis.from_url(self.stack.broker_url)
        broker.delete(self.queue)
        broker.close()

    # -------------------------------------------------------------- sending

    def enqueue(self, edition_id: int, first_id: int, last_id: int) -> None:
        self.client.send_task("digest.send_batch", args=[edition_id, first_id, last_id])

    def release_due(self) -> list[int]:
        """Release due editions (as beat would) with their batches on the lane's queue."""
        return release_due(self.stack.factory, utcnow(), LANE_BATCH_SIZE, self.enqueue)

    def wait_for(self, edition_id: int, *statuses: str, timeout: float = SEND_TIMEOUT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = edition_status(self.stack, edition_id)[0]
            if status in statuses:
                return status
            time.sleep(0.05)
        raise AssertionError(f"edition {edition_id} still {status!r} after {timeout}s "
                             f"(SMTP got {self.smtp.count()}):\n{self.log_tail()}")

    def wait_held(self, processes: int = LANE_CONCURRENCY, timeout: float = 20) -> None:
        """Until `processes` worker processes wait inside DATA: the ledger is still then."""
        deadline = time.monotonic() + timeout
        while self.smtp.waiting < processes:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.smtp.waiting} of {processes} worker processes held after {timeout}s "
                                     f"(SMTP got {self.smtp.count()}):\n{self.log_tail()}")
            time.sleep(0.02)

    def settle(self) -> None:
        """After a test: nothing held, nothing sending, nothing left in the lane's queue."""
        with self.smtp.lock:
            self.smtp.budget, self.smtp.delay, self.smtp.tempfail_always = None, 0.0, False
        with self.stack.engine.begin() as conn:
            conn.execute(text("UPDATE editions SET status = 'cancelled' WHERE status IN ('sending', 'paused')"))
        drain_queue(self.stack.broker_url, self.queue, SETTLE_SECONDS,
                    lambda: f"the lane's queue did not drain:\n{self.log_tail()}", busy=lambda: bool(self.smtp.waiting))


def start_lane(stack: Stack, name: str, *, worker: bool = True, web_servers: int = 1, **settings: str) -> Lane:
    """Start a lane's SMTP server, then its worker and web servers side by side."""
    handler = PacedHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    queue = f"ops-{name}-{uuid.uuid4().hex[:10]}"
    client = Celery(f"ops-tests-{name}", broker=stack.broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=queue)
    lane = Lane(stack=stack, name=name, smtp=handler, controller=controller, queue=queue,
                web_ports=[free_port() for _ in range(web_servers)], client=client, settings_env=dict(settings))
    try:
        if worker:
            lane.launch_worker()
        lane.launch_web()
        lane.wait_ready()
    except BaseException:
        lane.stop()
        raise
    return lane


# ------------------------------------------------------------------ database and HTTP helpers


def edition_status(stack: Stack, edition_id: int) -> tuple[str, str | None]:
    """The edition's status and status reason, as the database has them now."""
    with stack.engine.connect() as conn:
        status, reason = conn.execute(text("SELECT status, status_reason FROM editions WHERE id = :e"),
                                      {"e": edition_id}).one()
    return status, reason


def ledger(stack: Stack, edition_id: int) -> dict[str, int]:
    """The edition's numbers as the deliveries table has them, named as the ops view names them."""
    with stack.engine.connect() as conn:
        by_status = Counter({status: n for status, n in conn.execute(
            text("SELECT status, COUNT(*) FROM deliveries WHERE edition_id = :e GROUP BY status"), {"e": edition_id})})
    return {"planned": sum(by_status.values()), "sent": by_status["sent"], "failed": by_status["failed"],
            "bounced": by_status["bounced"], "skipped": by_status["skipped"], "pending": by_status["queued"]}


def unsent(stack: Stack, edition_id: int) -> list[tuple[str, str, str | None]]:
    """Who did not get the edition, and why: for assertion messages."""
    with stack.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(  # type: ignore[misc]
            "SELECT s.email, d.status, d.last_error FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "WHERE d.edition_id = :e AND d.status <> 'sent' ORDER BY d.id LIMIT 20"), {"e": edition_id})]


def copies(handler: RecordingHandler) -> Counter[str]:
    """How many messages each recipient got."""
    return Counter({address: len(got) for address, got in handler.by_recipient().items()})


def audit_rows(stack: Stack) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """The audit log's edition actions, oldest first: (actor, action, target, detail)."""
    with stack.factory() as session:
        return [(a.actor, a.action, a.target, a.detail) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("edition.%")).order_by(AuditEntry.id))]


def page_token(client: httpx.Client) -> str:
    """The CSRF token the dashboard's forms carry. It belongs to the visitor's CSRF cookie,
    so it is read from the audit page, which is cheaper to render than /ops (whose worker
    list waits up to a second for Celery's inspect)."""
    return csrf_token(client.get("/ops/audit").text)


def done_message(response: httpx.Response, client: httpx.Client) -> str:
    """The banner /ops shows after the redirect an action answers with."""
    assert response.status_code == 303, (response.status_code, response.text[:500])
    location = urlsplit(response.headers["location"])
    assert location.path == "/ops"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    [banner] = re.findall(r'<p class="ok" role="status">(.*?)</p>', page.text)
    return html.unescape(banner)


def press(client: httpx.Client, edition_id: int, action: str) -> str:
    """Open /ops for its CSRF token and press `action`, as the button's form does (cancel
    as the question page's "Yes" does: it is asked first)."""
    token = page_token(client)
    return done_message(client.post(f"/ops/editions/{edition_id}/{action}",
                                    data={"csrf_token": token, "confirm": "yes"}), client)


def status_json(client: httpx.Client, edition_id: int) -> dict[str, Any]:
    """The edition's entry in /ops/status.json."""
    response = client.get("/ops/status.json")
    assert response.status_code == 200
    [found] = [e for e in response.json()["editions"] if e["id"] == edition_id]
    return found  # type: ignore[no-any-return]


def mixed_readers(stack: Stack, groups: int, per_group: int, *odd: str) -> list[str]:
    """Readers in `groups` runs of `per_group`, each run followed by one address per `odd`
    local part (reject, tempfail…), so refusals are spread over the batches."""
    addresses: list[str] = []
    for group in range(groups):
        addresses += seed_readers(stack.factory, per_group, prefix=f"g{group}-reader",
                                  extra=[f"{local}-{group}@example.org" for local in odd])
    return addresses


def wait_no_leases(stack: Stack, edition_id: int, timeout: float = 20) -> None:
    """Until no delivery of the edition is leased: every batch has recorded and let go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.engine.connect() as conn:
            leased = conn.execute(text("SELECT COUNT(*) FROM deliveries WHERE edition_id = :e AND status = 'queued' "
                                       "AND lease_until IS NOT NULL"), {"e": edition_id}).scalar_one()
        if not leased:
            return
        time.sleep(0.05)
    raise AssertionError(f"deliveries of edition {edition_id} still leased after {timeout}s")


def quiet_release(stack: Stack) -> int:
    """A due edition released (sending, every delivery queued) with no batch enqueued."""
    edition_id = due_edition(stack.factory)
    assert release_due(stack.factory, utcnow(), LANE_BATCH_SIZE, lambda *batch: None) == [edition_id]
    return edition_id


# ------------------------------------------------------------------ fixture bodies (see integration/conftest.py)


def shared_lane(stack: Stack) -> Iterator[Lane]:
    """The body of tests/integration/conftest.py's session-scoped `ops_lane` fixture: one lane per stack (per
    backend) for every ops test module, stopped when pytest is done with that stack."""
    # One attempt per delivery (4xx -> failed, for retry-failed), auto-pause over 20
    # attempts, two web servers so that two presses can really meet.
    lane = start_lane(stack, "shared", web_servers=2, DIGEST_MAX_ATTEMPTS="1", DIGEST_AUTOPAUSE_WINDOW="20")
    yield lane
    lane.stop()


def lane_for_a_test(live: Stack, lane: Lane) -> Iterator[Lane]:
    """The body of tests/integration/conftest.py's `lane` fixture: a clean database with the sample stories,
    a plain SMTP server, no sign-in limits; afterwards nothing left running."""
    clear_rate_limits(live)
    lane.smtp.reset()
    seed_stories(live.factory)
    yield lane
    lane.settle()

