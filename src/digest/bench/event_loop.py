"""7. The web layer keeps the event loop free: `GET /archive` latency against `digest serve`
(one uvicorn worker, as by default) alone, then while four staff sign-ins (an argon2 check
each) run back to back from a second process (spawned: its target, `_signin_load`, must
stay importable from here), then alone again.

The sign-ins go through the real form: the login page's CSRF cookie and hidden token, the
per-IP limiter in Redis. Each client names itself by `X-Forwarded-For` (trusted here from
127.0.0.1 by DIGEST_FORWARDED_ALLOW_IPS, as behind a proxy) and moves to a fresh address before the
limiter's 30 attempts, so no sign-in is refused with 429; every status is counted and the
sign-ins completed during the measured window are reported next to the latencies."""

from __future__ import annotations

import http.client
import multiprocessing
import random
import re
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest import staff
from digest.bench.options import BenchError, BenchOptions
from digest.bench.seed import seed_stories
from digest.bench.services import _tail, service_env, web_server
from digest.bench.stats import _percentile
from digest.store import Edition, EditionStatus, EditionStory, Story, User, make_engine, utcnow

SIGNIN_CLIENTS = 4
ARCHIVE_EDITIONS = 20  # sent editions on the page (it lists up to 50)
ARCHIVE_INTERVAL_SECONDS = 0.02  # one GET every 20 ms (or straight after a slower answer)
ARCHIVE_WARMUP = 20
PHASE_STRETCH = 2.5  # a phase stops at 2.5× its planned time: slow answers mean fewer samples, not a long run
BENCH_EDITOR = "bench-editor@example.org"
BENCH_PASSWORD = "bench-password-0123456789"
ATTEMPTS_PER_ADDRESS = 20  # below the limiter's LOGIN_ATTEMPTS_PER_IP (30 per 15 minutes)
CSRF_INPUT = re.compile(rb'name="csrf_token" value="([^"]+)"')


def seed_archive(factory: sessionmaker[Session]) -> dict[str, int]:
    """A staff editor with a known password, and sent editions (five stories each) up to
    ARCHIVE_EDITIONS, so that /archive lists rows and /login has someone to sign in."""
    with factory.begin() as session:
        if session.scalar(select(User.id).where(User.email == BENCH_EDITOR)) is None:
            staff.create_user(session, BENCH_EDITOR, "editor", BENCH_PASSWORD)
    with factory() as session:
        has_stories = session.scalar(select(func.count()).select_from(Story)) or 0
    if not has_stories:
        seed_stories(factory)
    with factory.begin() as session:
        sent = session.scalar(select(func.count()).select_from(Edition)
                              .where(Edition.status == EditionStatus.SENT)) or 0
        story_ids = list(session.scalars(select(Story.id).order_by(Story.published_at.desc()).limit(5)))
        now = utcnow()
        for day in range(max(0, ARCHIVE_EDITIONS - sent)):
            send_at = now - timedelta(days=day + 1)
            edition = Edition(subject=f"The featured stories, day {day + 1}", send_at=send_at,
                              status=EditionStatus.SENT, max_stories=5, window_hours=48, started_at=send_at,
                              finished_at=send_at + timedelta(minutes=3))
            session.add(edition)
            session.flush()
            session.add_all(EditionStory(edition_id=edition.id, story_id=story_id, position=position)
                            for position, story_id in enumerate(story_ids))
        listed = sent + max(0, ARCHIVE_EDITIONS - sent)
    return {"sent_editions": listed, "stories_per_edition": len(story_ids)}


def _address(base: int) -> str:
    return f"10.{(base >> 16) & 255}.{(base >> 8) & 255}.{base & 255}"


def _signin_load(port: int, email: str, password: str, clients: int, ready: Any, stop: Any, results: Any) -> None:
    """`clients` threads, each signing in back to back (closed loop) until `stop` is set;
    `ready` once every one of them has completed a sign-in. Puts [(sent, done, status)]
    on `results`, in time.monotonic() seconds (the same clock in every process)."""
    samples: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    first_done = threading.Semaphore(0)
    run_base = random.randrange(1 << 22)  # a fresh block of addresses per run, for a shared Redis

    def login_form(connection: http.client.HTTPConnection) -> tuple[str, str]:
        connection.request("GET", "/login")
        response = connection.getresponse()
        page = response.read()
        cookie = SimpleCookie()
        for header in response.msg.get_all("Set-Cookie") or []:
            cookie.load(header)
        found = CSRF_INPUT.search(page)
        if response.status != 200 or found is None or "digest_csrf" not in cookie:
            raise BenchError(f"GET /login answered {response.status} without a CSRF cookie and token")
        return f"digest_csrf={cookie['digest_csrf'].value}", found.group(1).decode()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[tuple[float, float, int]] = []
        attempts, signalled = 0, False
        try:
            cookie, token = login_form(connection)
            while not stop.is_set():
                address = _address((run_base + number * 10_000 + attempts // ATTEMPTS_PER_ADDRESS) % (1 << 24))
                body = urlencode({"csrf_token": token, "next": "/editor", "email": email, "password": password})
                headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
                           "X-Forwarded-For": address}
                sent = time.monotonic()
                try:
                    connection.request("POST", "/login", body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    status = 0
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                mine.append((sent, time.monotonic(), status))
                attempts += 1
                if status == 429:  # the limiter saw this address too often: take the next block
                    attempts += ATTEMPTS_PER_ADDRESS - attempts % ATTEMPTS_PER_ADDRESS
                elif status == 403:  # the CSRF token was refused: fetch a fresh pair
                    cookie, token = login_form(connection)
                if not signalled:
                    signalled = True
                    first_done.release()
        finally:
            connection.close()
            if not signalled:
                first_done.release()  # failed before its first sign-in: do not keep the others waiting
            with lock:
                samples.extend(mine)

    pool = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(clients)]
    for thread in pool:
        thread.start()
    for _ in pool:
        first_done.acquire()
    ready.set()
    for thread in pool:
        thread.join()
    results.put(samples)


def _archive_gets(port: int, count: int) -> tuple[list[float], list[int], float, float]:
    """Up to `count` sequential GET /archive on one keep-alive connection, one every
    ARCHIVE_INTERVAL_SECONDS (straight away after a slower answer), for at most PHASE_STRETCH
    times the planned duration: (latencies in ms of the ones answered 200 with the archive's
    rows, other statuses, window start, window end in time.monotonic())."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, failures = [], []
    start = time.monotonic()
    deadline = start + count * ARCHIVE_INTERVAL_SECONDS * PHASE_STRETCH
    try:
        for index in range(count):
            if time.monotonic() > deadline:
                break
            pause = start + index * ARCHIVE_INTERVAL_SECONDS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                connection.request("GET", "/archive")
                response = connection.getresponse()
                page = response.read()
                status = response.status if b'href="/archive/' in page or response.status != 200 else -1
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if status == 200:
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                failures.append(status)  # -1: a 200 without the archive's rows
    finally:
        connection.close()
    return latencies, failures, start, time.monotonic()


def measure_event_loop(options: BenchOptions, database_url: str, smtp_port: int, workdir: Path) -> dict[str, Any]:
    """GET /archive p50/p99 alone (half before, half after) and while SIGNIN_CLIENTS sign-ins
    run back to back; the sign-ins completed per second during the loaded window."""
    engine = make_engine(database_url)
    try:
        seeded = seed_archive(sessionmaker(engine, expire_on_commit=False))
    finally:
        engine.dispose()
    count = options.archive_requests
    env = service_env(database_url, options.redis_url, f"digest-bench-{uuid.uuid4().hex[:10]}", smtp_port,
                      DIGEST_LOG_FORMAT="json", DIGEST_FORWARDED_ALLOW_IPS="127.0.0.1")
    log_path = workdir / "web-event-loop.log"
    with web_server(env, log_path) as port:
        _archive_gets(port, ARCHIVE_WARMUP)
        idle_before, failed_before, _, _ = _archive_gets(port, count // 2)
        context = multiprocessing.get_context("spawn")
        ready, stop, queue = context.Event(), context.Event(), context.Queue()
        load = context.Process(target=_signin_load, args=(port, BENCH_EDITOR, BENCH_PASSWORD, SIGNIN_CLIENTS,
                                                          ready, stop, queue), daemon=True)
        load.start()
        try:
            deadline = time.monotonic() + 60
            while not ready.wait(timeout=0.2):
                if not load.is_alive() or time.monotonic() > deadline:
                    raise BenchError(f"the sign-in load did not get going; server log ends:\n{_tail(log_path)}")
            loaded, failed_loaded, window_start, window_end = _archive_gets(port, count)
            stop.set()
            try:
                samples = queue.get(timeout=60)
            except Exception:  # noqa: BLE001 - queue.Empty: the load process is stuck
                raise BenchError(f"the sign-in load did not finish; server log ends:\n{_tail(log_path)}") from None
        finally:
            stop.set()
            load.join(timeout=10)
            if load.is_alive():
                load.kill()
        idle_after, failed_after, _, _ = _archive_gets(port, count - count // 2)
    idle = idle_before + idle_after
    if not idle or not loaded:
        raise BenchError(f"GET /archive failed: statuses {Counter(failed_before + failed_loaded + failed_after)}")
    statuses = Counter(status for _, _, status in samples)
    window = window_end - window_start
    signed_in = [(sent, done) for sent, done, status in samples if status == 303]
    in_window = [done for _, done in signed_in if window_start <= done <= window_end]
    if not signed_in:
        raise BenchError(f"no sign-in succeeded; statuses {dict(statuses)}; server log ends:\n{_tail(log_path)}")
    signin_ms = [(done - sent) * 1000 for sent, done in signed_in]
    idle_p99, loaded_p99 = _percentile(idle, 0.99), _percentile(loaded, 0.99)
    return {
        **seeded, "requests_planned_per_phase": count, "interval_ms": ARCHIVE_INTERVAL_SECONDS * 1000,
        "requests": {"alone": len(idle), "during_signins": len(loaded)},
        "signin_clients": SIGNIN_CLIENTS,
        "idle_p50_ms": _percentile(idle, 0.50), "idle_p99_ms": idle_p99, "idle_max_ms": max(idle),
        "idle_before_p99_ms": _percentile(idle_before, 0.99) if idle_before else None,
        "idle_after_p99_ms": _percentile(idle_after, 0.99) if idle_after else None,
        "signins_p50_ms": _percentile(loaded, 0.50), "signins_p99_ms": loaded_p99, "signins_max_ms": max(loaded),
        "ratio": loaded_p99 / idle_p99,
        "archive_errors": dict(Counter(failed_before + failed_loaded + failed_after)),
        "window_seconds": window, "signins_in_window": len(in_window),
        "signins_per_second": len(in_window) / window,
        "signin_statuses": {str(status): n for status, n in sorted(statuses.items())},
        "signins_refused": statuses[429],  # the limiter's: a lighter load than the figure claims
        "signin_p50_ms": _percentile(signin_ms, 0.50), "signin_p99_ms": _percentile(signin_ms, 0.99),
    }
