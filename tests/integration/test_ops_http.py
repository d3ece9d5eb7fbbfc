"""The ops dashboard and its actions over real HTTP, while a real worker is sending.

How a send is kept "in progress" long enough to look at it (the *ops lane*, shared by all
four ops test files): the session's worker, web server and SMTP sink are left alone and a
lane is started next to them, once per backend, on the same database:

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

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller
from celery import Celery
from sqlalchemy import select, text

from digest import accounts
from digest.pipeline import release_due
from digest.store.models import AuditEntry, utcnow
from tests.integration.conftest import REPO, Stack
from tests.integration.helpers import due_edition, seed_readers, seed_stories
from tests.integration.smtp_sink import RecordingHandler, free_port

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
OPS = "ops@example.org"
LANE_BATCH_SIZE = 20
LANE_RECORD_EVERY_MESSAGES = 10
LANE_CONCURRENCY = 2
READY_SECONDS = 60
SETTLE_SECONDS = 30
SEND_TIMEOUT_SECONDS = 40
COUNTS = ("planned", "sent", "failed", "bounced", "skipped", "pending")


# ------------------------------------------------------------------ the lane


class PacedHandler(RecordingHandler):
    """The session sink's behaviour (reject…, tempfail…, drop… addresses), plus:

    - `delay`: seconds spent in every DATA, so a send takes a while;
    - `hold(after)`: accept `after` more messages, then keep every DATA waiting until
      `release()`. `waiting` is how many connections are held now; with every worker
      process held the ledger cannot change;
    - `tempfail_always`: `tempfail…` addresses get 451 at every try, not only the first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0
        self.budget: int | None = None
        self.waiting = 0
        self.tempfail_always = False

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self.delay, self.budget, self.tempfail_always = 0.0, None, False

    def hold(self, after: int = 0) -> None:
        with self.lock:
            self.budget = after

    def release(self) -> None:
        with self.lock:
            self.budget = None

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.tempfail_always and address.split("@", 1)[0].lower().startswith("tempfail"):
            with self.lock:
                self.seen_rcpt[address] = self.seen_rcpt.get(address, 0) + 1
            return "451 4.7.1 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        held = False
        while True:
            with self.lock:
                if self.budget is None or self.budget > 0:
                    if self.budget is not None:
                        self.budget -= 1
                    if held:
                        self.waiting -= 1
                    break
                if not held:
                    self.waiting += 1
                    held = True
            await asyncio.sleep(0.005)
        return await super().handle_DATA(server, session, envelope)


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
        with self._log("worker").open("wb") as log:
            self.worker_proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool=prefork",
                 f"--concurrency={LANE_CONCURRENCY}", "--without-heartbeat", "--without-gossip",
                 "--without-mingle", "-Q", self.queue, "-n", f"ops-{self.name}-{uuid.uuid4().hex[:6]}@%h",
                 "--loglevel=INFO"],
                cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT)

    def launch_web(self) -> None:
        for index, port in enumerate(self.web_ports):
            with self._log(f"web{index}").open("wb") as log:
                self.web_procs.append(subprocess.Popen(
                    [sys.executable, "-m", "digest.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT))

    def _procs(self) -> list[subprocess.Popen[bytes]]:
        return [*self.web_procs, *([self.worker_proc] if self.worker_proc else [])]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        worker_ready = self.worker_proc is None
        waiting_for = set(self.web_urls) if self.web_procs else set()
        while time.monotonic() < deadline and not (worker_ready and not waiting_for):
            if any(proc.poll() is not None for proc in self._procs()):
                raise RuntimeError(f"lane process exited:\n{self.log_tail()}")
            if not worker_ready:
                worker_ready = b" ready." in self.logs["worker"].read_bytes()
            for url in list(waiting_for):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        waiting_for.discard(url)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        if not worker_ready or waiting_for:
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
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
        broker = redis.Redis.from_url(self.stack.broker_url)
        try:
            deadline = time.monotonic() + SETTLE_SECONDS
            quiet = 0
            while quiet < 3:
                unacked = [v for v in broker.hvals("unacked") if self.queue.encode() in v]
                quiet = quiet + 1 if broker.llen(self.queue) == 0 and not unacked and not self.smtp.waiting else 0
                if time.monotonic() > deadline:
                    raise AssertionError(f"the lane's queue did not drain:\n{self.log_tail()}")
                time.sleep(0.05)
        finally:
            broker.close()


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
    with stack.factory() as session:
        return [(a.actor, a.action, a.target, a.detail) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("edition.%")).order_by(AuditEntry.id))]


def make_user(stack: Stack, email: str, role: str) -> None:
    with stack.factory.begin() as session:
        accounts.create_user(session, email, role, PASSWORD)


def clear_rate_limits(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.broker_url)
    keys = list(client.scan_iter("digest:rl:*"))
    if keys:
        client.delete(*keys)
    client.close()


def csrf_token(html: str) -> str:
    found = re.findall(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found[0]


def page_token(client: httpx.Client) -> str:
    """The CSRF token the dashboard's forms carry. It belongs to the visitor's CSRF cookie,
    so it is read from the audit page, which is cheaper to render than /ops (whose worker
    list waits up to a second for Celery's inspect)."""
    return csrf_token(client.get("/ops/audit").text)


@contextmanager
def signed_in(base_url: str, email: str) -> Iterator[httpx.Client]:
    """An httpx client with a staff session, signed in through the /login form."""
    with httpx.Client(base_url=base_url, timeout=20, follow_redirects=False) as client:
        page = client.get("/login")
        response = client.post("/login", data={"csrf_token": csrf_token(page.text), "email": email,
                                               "password": PASSWORD, "next": "/ops"})
        assert response.status_code == 303 and response.headers["location"] == "/ops", response.text
        yield client


def done_message(response: httpx.Response) -> str:
    """The message an action redirects back to /ops with."""
    assert response.status_code == 303, (response.status_code, response.text[:500])
    location = urlsplit(response.headers["location"])
    assert location.path == "/ops"
    return parse_qs(location.query)["done"][0]


def press(client: httpx.Client, edition_id: int, action: str) -> str:
    """Open /ops for its CSRF token and press `action`, as the button's form does."""
    token = page_token(client)
    return done_message(client.post(f"/ops/editions/{edition_id}/{action}", data={"csrf_token": token}))


def row_numbers(html: str, edition_id: int) -> dict[str, int]:
    """The data-col numbers of an edition's row on the dashboard."""
    row = re.search(rf'<tr data-edition="{edition_id}">(.*?)</tr>', html, re.DOTALL)
    assert row, f"no row for edition {edition_id}"
    return {col: int(value) for col, value in
            re.findall(r'data-col="(\w+)">\s*(\d+)\s*<', row.group(1)) if col in COUNTS}


def status_json(client: httpx.Client, edition_id: int) -> dict[str, Any]:
    response = client.get("/ops/status.json")
    assert response.status_code == 200
    [found] = [e for e in response.json()["editions"] if e["id"] == edition_id]
    return found  # type: ignore[no-any-return]


def cli_status(lane: Lane, edition_id: int) -> dict[str, Any]:
    """`digest status --json ID`, as an operator runs it against the same database."""
    done = subprocess.run([sys.executable, "-m", "digest.cli", "status", "--json", str(edition_id)],
                          cwd=REPO, env=lane.env(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def numbers(health: dict[str, Any]) -> dict[str, int]:
    return {key: health[key] for key in COUNTS}


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


# ------------------------------------------------------------------ fixtures

_LANES: dict[int, Lane] = {}


def shared_lane(stack: Stack) -> Iterator[Lane]:
    """The body of each ops module's session-scoped `ops_lane` fixture: one lane per stack
    (per backend) for all of them, stopped by whichever module's fixture finishes first,
    which pytest does only when it is done with that stack."""
    lane = _LANES.get(id(stack))
    if lane is None:
        # One attempt per delivery (4xx -> failed, for retry-failed), auto-pause over 20
        # attempts, two web servers so that two presses can really meet.
        lane = _LANES[id(stack)] = start_lane(stack, "shared", web_servers=2, DIGEST_MAX_ATTEMPTS="1",
                                              DIGEST_AUTOPAUSE_WINDOW="20")
    yield lane
    if _LANES.pop(id(stack), None) is lane:
        lane.stop()


def lane_for_a_test(live: Stack, lane: Lane) -> Iterator[Lane]:
    """The body of each module's `lane` fixture: a clean database with the sample stories,
    a plain SMTP server, no sign-in limits; afterwards nothing left running."""
    clear_rate_limits(live)
    lane.smtp.reset()
    seed_stories(live.factory)
    yield lane
    lane.settle()


@pytest.fixture(scope="session")
def ops_lane(stack: Stack) -> Iterator[Lane]:
    yield from shared_lane(stack)


@pytest.fixture
def lane(live: Stack, ops_lane: Lane) -> Iterator[Lane]:
    yield from lane_for_a_test(live, ops_lane)


@pytest.fixture
def ops(live: Stack, lane: Lane) -> Iterator[httpx.Client]:
    make_user(live, OPS, "ops")
    with signed_in(lane.web_url, OPS) as client:
        yield client


# ------------------------------------------------------------------ who may look


def test_the_ops_pages_want_ops_or_admin(live: Stack, lane: Lane) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    pages = ["/ops", "/ops/panel", "/ops/status.json", "/ops/audit"]
    with httpx.Client(base_url=lane.web_url, timeout=20) as anonymous:
        for path in pages:
            response = anonymous.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, f"/login?next={path}")
        response = anonymous.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": "x"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    for email, role in [("editor@example.org", "editor"), ("admin@example.org", "admin"), (OPS, "ops")]:
        make_user(live, email, role)
    with signed_in(lane.web_url, "editor@example.org") as editor:
        for path in pages:
            response = editor.get(path)
            assert response.status_code == 403, path
            assert "Your role (editor) cannot open this page." in unescape(response.text)
        token = csrf_token(editor.get("/login").text)  # a valid token: the role is what refuses
        refused = editor.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": token})
        assert refused.status_code == 403 and "Your role (editor)" in unescape(refused.text)
    assert edition_status(live, edition_id)[0] == "sending"

    for email in ("admin@example.org", OPS):
        with signed_in(lane.web_url, email) as staff:
            for path in pages:
                assert staff.get(path).status_code == 200, (email, path)
            assert status_json(staff, edition_id)["status"] == "sending"
    assert audit_rows(live) == []


# ------------------------------------------------------------------ the numbers


def test_status_json_the_dashboard_and_the_cli_agree_with_the_ledger_mid_send(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    # One reader in five refuses: under the lane's auto-pause ratio, spread over the batches.
    addresses = mixed_readers(live, 6, 8, "reject", "tempfail")
    edition_id = due_edition(live.factory)
    lane.smtp.hold(after=17)
    assert lane.release_due() == [edition_id]
    lane.wait_held()  # both worker processes inside a message: the ledger is still

    mid = ledger(live, edition_id)
    assert mid["planned"] == len(addresses) == 60
    assert 0 < mid["sent"] <= 17 and mid["pending"] > 0, mid  # under way, not done
    health = status_json(ops, edition_id)
    assert health["status"] == "sending" and numbers(health) == mid
    assert health["rate_per_minute"] == mid["sent"]
    assert numbers(cli_status(lane, edition_id)) == mid
    assert row_numbers(ops.get("/ops").text, edition_id) == mid
    assert row_numbers(ops.get("/ops/panel").text, edition_id) == mid

    # The errors, grouped: as many as the ledger has refusals on record.
    errors = [g for g in ops.get("/ops/status.json").json()["errors"] if g["edition_id"] == edition_id]
    by_reason = {g["reason"][:3]: g["count"] for g in errors}
    # Which refusals are on record yet depends on which chunks were written before the hold.
    assert by_reason == {code: n for code, n in (("550", mid["bounced"]), ("451", mid["failed"])) if n}
    assert {g["domain"] for g in errors} <= {"example.org"}

    lane.smtp.release()
    lane.wait_for(edition_id, "sent")
    end = ledger(live, edition_id)
    assert end == {"planned": 60, "sent": 48, "failed": 6, "bounced": 6, "skipped": 0, "pending": 0}
    health = status_json(ops, edition_id)
    assert health["status"] == "sent" and numbers(health) == end and health["eta_seconds"] == 0
    assert numbers(cli_status(lane, edition_id)) == end
    assert row_numbers(ops.get("/ops").text, edition_id) == end
    received = copies(lane.smtp)
    assert set(received) == {a for a in addresses if not a.startswith(("reject", "tempfail"))}
    assert set(received.values()) == {1}


# ------------------------------------------------------------------ the actions


def test_pause_and_resume_change_the_edition_once_each_and_are_audited(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 45)
    edition_id = quiet_release(live)

    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause done"
    assert edition_status(live, edition_id) == ("paused", f"pause by {OPS}")
    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause had nothing (more) to do"
    assert edition_status(live, edition_id) == ("paused", f"pause by {OPS}")
    page = ops.get(f"/ops?done=edition {edition_id}: pause had nothing (more) to do").text
    assert f'<p class="ok" role="status">edition {edition_id}: pause had nothing (more) to do</p>' in page
    assert f"pause by {OPS}" in page  # the paused list says why

    lane.smtp.hold()  # the resumed batches start, then wait: the edition stays sending
    assert press(ops, edition_id, "resume") == f"edition {edition_id}: resume done"
    assert edition_status(live, edition_id) == ("sending", None)
    lane.wait_held()
    assert press(ops, edition_id, "resume") == f"edition {edition_id}: resume had nothing (more) to do"
    assert edition_status(live, edition_id) == ("sending", None)
    lane.smtp.release()
    lane.wait_for(edition_id, "sent")

    received = copies(lane.smtp)
    assert set(received) == set(addresses) and set(received.values()) == {1}
    assert ledger(live, edition_id)["sent"] == 45
    target = f"edition:{edition_id}"
    assert audit_rows(live) == [(OPS, "edition.pause", target, {"changed": 1}),
                                (OPS, "edition.pause", target, {"changed": 0}),
                                (OPS, "edition.resume", target, {"changed": 1}),
                                (OPS, "edition.resume", target, {"changed": 0})]
    audit_page = unescape(ops.get("/ops/audit").text)
    assert audit_page.count("edition.resume") == 2 and OPS in audit_page

    # Resuming what has been sent is refused, and says why.
    token = page_token(ops)
    refused = ops.post(f"/ops/editions/{edition_id}/resume", data={"csrf_token": token})
    assert refused.status_code == 409 and "cannot resume an edition that is sent" in unescape(refused.text)


def test_cancel_then_send_missing_reaches_only_those_not_yet_sent(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 60)
    edition_id = due_edition(live.factory)
    lane.smtp.hold(after=20)
    lane.release_due()
    lane.wait_held()
    # Cancel from paused, once the batches under way have stopped and recorded what they
    # sent (a cancel while messages are in flight: see test_ops_concurrency).
    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause done"
    lane.smtp.release()
    wait_no_leases(live, edition_id)
    before = ledger(live, edition_id)
    first_round = copies(lane.smtp)
    assert before["sent"] == sum(first_round.values()) and 20 <= before["sent"] < 60

    assert press(ops, edition_id, "cancel") == f"edition {edition_id}: cancel done"
    assert edition_status(live, edition_id) == ("cancelled", f"cancel by {OPS}")
    after_cancel = ledger(live, edition_id)
    assert after_cancel == {**before, "skipped": before["pending"], "pending": 0}
    assert press(ops, edition_id, "cancel") == f"edition {edition_id}: cancel had nothing (more) to do"
    assert ledger(live, edition_id) == after_cancel

    lane.smtp.hold()
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing done ({before['pending']})"
    assert edition_status(live, edition_id) == ("sending", "sending to the missing")
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing had nothing (more) to do"
    lane.smtp.release()
    lane.wait_for(edition_id, "sent")

    received = copies(lane.smtp)
    assert set(received) == set(addresses) and set(received.values()) == {1}
    assert ledger(live, edition_id) == {"planned": 60, "sent": 60, "failed": 0, "bounced": 0, "skipped": 0,
                                        "pending": 0}
    target = f"edition:{edition_id}"
    assert [(a, t, d) for _, a, t, d in audit_rows(live)] == [
        ("edition.pause", target, {"changed": 1}),
        ("edition.cancel", target, {"changed": 1}), ("edition.cancel", target, {"changed": 0}),
        ("edition.send-missing", target, {"changed": before["pending"]}),
        ("edition.send-missing", target, {"changed": 0})]


def test_send_missing_on_an_edition_with_nothing_missing_changes_nothing(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 5)
    edition_id = due_edition(live.factory)
    lane.release_due()
    lane.wait_for(edition_id, "sent")
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing had nothing (more) to do"
    assert edition_status(live, edition_id)[0] == "sent"


def test_retry_failed_resends_only_the_failed_once(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = mixed_readers(live, 4, 8, "tempfail")
    edition_id = due_edition(live.factory)
    lane.smtp.tempfail_always = True
    lane.release_due()
    lane.wait_for(edition_id, "sent")  # finished, with the refused left failed (one attempt allowed)
    assert ledger(live, edition_id) == {"planned": 36, "sent": 32, "failed": 4, "bounced": 0, "skipped": 0,
                                        "pending": 0}
    lane.smtp.tempfail_always = False
    lane.smtp.hold()
    assert press(ops, edition_id, "retry-failed") == f"edition {edition_id}: retry-failed done (4)"
    assert edition_status(live, edition_id) == ("sending", "retrying failed deliveries")
    lane.wait_held(1)
    assert press(ops, edition_id, "retry-failed") == f"edition {edition_id}: retry-failed had nothing (more) to do"
    lane.smtp.release()
    lane.wait_for(edition_id, "sent")

    received = copies(lane.smtp)
    assert set(received) == set(addresses) and set(received.values()) == {1}
    assert ledger(live, edition_id) == {"planned": 36, "sent": 36, "failed": 0, "bounced": 0, "skipped": 0,
                                        "pending": 0}
    assert [(a, d) for _, a, _, d in audit_rows(live)] == [
        ("edition.retry-failed", {"changed": 4}), ("edition.retry-failed", {"changed": 0})]
    assert {actor for actor, *_ in audit_rows(live)} == {OPS}


# ------------------------------------------------------------------ refusals


def test_an_unknown_action_is_a_404_page(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    token = page_token(ops)
    response = ops.post(f"/ops/editions/{edition_id}/explode", data={"csrf_token": token})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no action 'explode'." in unescape(response.text)
    assert edition_status(live, edition_id)[0] == "sending"
    assert audit_rows(live) == []


def test_an_action_without_its_csrf_token_changes_nothing(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    for data in ({}, {"csrf_token": "forged"}):
        response = ops.post(f"/ops/editions/{edition_id}/pause", data=data)
        assert response.status_code == 403
        assert "This form has expired or was not sent from our page." in unescape(response.text)
    # A token from the page, sent with the session but without the CSRF cookie it belongs to
    # (what another site's form posting to us would look like).
    token = page_token(ops)
    session_only = {"digest_session": ops.cookies["digest_session"]}
    with httpx.Client(base_url=lane.web_url, timeout=20, cookies=session_only) as stray:
        assert stray.get("/ops").status_code == 200  # signed in all the same
        assert stray.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": token}).status_code == 403
    assert edition_status(live, edition_id)[0] == "sending"
    assert audit_rows(live) == []

