"""10. The click redirect: GET /c/… against one `digest serve` process at CLICK_RATE_PER_SECOND,
open loop from a second process (spawned: its target, `_click_load`, must stay importable
from here), on the end-to-end run's edition; then the flush, and the clicks it counted."""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from digest.bench.options import BENCH_SECRET, BenchError, BenchOptions
from digest.bench.services import _tail, service_env, web_server
from digest.bench.stats import _percentile
from digest.clicks import flush_clicks
from digest.mail import click_key, click_prefix
from digest.store import make_engine

CLICK_RATE_PER_SECOND = 500
CLICK_THREADS = 16
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1"


def _click_load(port: int, paths: list[str], rate: float, threads: int, results: Any) -> None:
    """Open loop, as the unsubscribe step's: request i is due at start + i/rate; latency is
    measured from the due time. Each request from its own forwarded address (readers are
    many), so the flood limit does not turn the load into machine clicks."""
    samples: list[tuple[float, float, int, float]] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for index in range(offset, len(paths), threads):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            address = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
            headers = {"User-Agent": BROWSER, "X-Forwarded-For": address}
            try:
                connection.request("GET", paths[index], headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            done = time.perf_counter()
            mine.append((done - due, done - sent, status, done - start))
        connection.close()
        with lock:
            samples.extend(mine)

    pool = [threading.Thread(target=worker, args=(offset,)) for offset in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(samples)


def measure_clicks(options: BenchOptions, database_url: str, smtp_port: int, workdir: Path) -> dict[str, Any]:
    rate = CLICK_RATE_PER_SECOND
    needed = int(rate * options.unsubscribe_seconds)
    warmup = 100
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            edition_id = conn.execute(text("SELECT max(edition_id) FROM edition_stories")).scalar_one()
            stories = list(conn.execute(text("SELECT story_id FROM edition_stories WHERE edition_id = :e"),
                                        {"e": edition_id}).scalars())
        if edition_id is None or not stories:
            raise BenchError("no sent edition with stories to click")
        key = click_key(BENCH_SECRET)
        prefixes = [click_prefix("", key, edition_id, story, 0) for story in stories]
        sent_at = int(time.time()) - 3600  # copies sent an hour ago: past the scanners' window
        paths = [f"{prefixes[i % len(prefixes)]}{sent_at:08x}{uuid.uuid4().hex[:8]}{i:x}"
                 for i in range(needed + warmup)]
        env = service_env(database_url, options.redis_url, f"digest-bench-{uuid.uuid4().hex[:10]}", smtp_port,
                          DIGEST_LOG_FORMAT="json", DIGEST_FORWARDED_ALLOW_IPS="127.0.0.1")
        redis_url = env.get("DIGEST_REDIS_URL") or options.redis_url
        with web_server(env, workdir / "web-clicks.log") as port:
            context = multiprocessing.get_context("spawn")
            for phase_paths, phase_rate in ((paths[:warmup], 100.0), (paths[warmup:], float(rate))):
                queue = context.Queue()
                load = context.Process(target=_click_load,
                                       args=(port, phase_paths, phase_rate, CLICK_THREADS, queue), daemon=True)
                load.start()
                try:
                    samples = queue.get(timeout=len(phase_paths) / phase_rate + 60)
                except Exception:  # noqa: BLE001 - queue.Empty: the load process is stuck
                    raise BenchError(f"the click load did not finish; server log ends:\n"
                                     f"{_tail(workdir / 'web-clicks.log')}") from None
                finally:
                    load.join(timeout=10)
                    if load.is_alive():
                        load.kill()
        client = redis.Redis.from_url(redis_url)
        try:
            flushed = flush_clicks(sessionmaker(engine), client)
        finally:
            client.close()
        with engine.connect() as conn:
            human, machine = conn.execute(text("SELECT coalesce(sum(clicks), 0), coalesce(sum(machine_clicks), 0) "
                                               "FROM click_counts WHERE edition_id = :e"), {"e": edition_id}).one()
    finally:
        engine.dispose()
    ok = [s for s in samples if s[2] == 302]
    if not ok:
        raise BenchError(f"no click was redirected; statuses {Counter(s[2] for s in samples)}")
    latencies_ms = [s[0] * 1000 for s in samples]
    service_ms = [s[1] * 1000 for s in samples]
    return {
        "offered_per_second": rate, "seconds": options.unsubscribe_seconds, "requests": len(samples),
        "redirected": len(ok), "errors": dict(Counter(s[2] for s in samples if s[2] != 302)),
        "achieved_per_second": len(ok) / max(s[3] for s in samples),
        "p50_ms": _percentile(latencies_ms, 0.50), "p99_ms": _percentile(latencies_ms, 0.99),
        "max_ms": max(latencies_ms), "service_p50_ms": _percentile(service_ms, 0.50),
        "service_p99_ms": _percentile(service_ms, 0.99), "threads": CLICK_THREADS,
        # When in the run the slowest answers came (s from its start): a stall, or all along.
        "slowest_at_s": sorted(round(s[3], 2) for s in sorted(samples, key=lambda s: s[0])[-10:]),
        "flushed": flushed, "clicks_in_database": int(human), "machine_clicks_in_database": int(machine),
    }
