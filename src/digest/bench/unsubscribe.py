"""5. One-click unsubscribe latency against `digest serve`, under an open-loop load from a
second process (spawned: its target, `_unsubscribe_load`, must stay importable from here)."""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text

from digest.bench.options import BenchError, BenchOptions
from digest.bench.seed import seed_readers_offset
from digest.bench.services import _tail, service_env, web_server
from digest.bench.stats import _percentile
from digest.store import make_engine

UNSUBSCRIBE_RATE_PER_SECOND = 200
UNSUBSCRIBE_THREADS = 8


def _unsubscribe_load(port: int, tokens: list[str], rate: float, threads: int, results: Any) -> None:
    """Open loop: request i is due at start + i/rate whatever happened before it, so a slow
    answer shows up as latency (measured from the due time), not as a lower offered rate."""
    body = b"List-Unsubscribe=One-Click"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    samples: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for index in range(offset, len(tokens), threads):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                connection.request("POST", f"/unsubscribe/{tokens[index]}", body=body, headers=headers)
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
            samples.extend(mine)  # type: ignore[arg-type]

    pool = [threading.Thread(target=worker, args=(offset,)) for offset in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(samples)


def measure_unsubscribe(options: BenchOptions, database_url: str, smtp_port: int, workdir: Path) -> dict[str, Any]:

    rate = UNSUBSCRIBE_RATE_PER_SECOND
    needed = int(rate * options.unsubscribe_seconds)
    warmup = 20
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            active = conn.execute(text("SELECT count(*) FROM subscribers WHERE status = 'active'")).scalar_one()
            if active < needed + warmup:
                seed_readers_offset(engine, needed + warmup - active)
            tokens = list(conn.execute(text("SELECT token FROM subscribers WHERE status = 'active' "
                                            "ORDER BY random() LIMIT :n"), {"n": needed + warmup}).scalars())
        env = service_env(database_url, options.redis_url, f"digest-bench-{uuid.uuid4().hex[:10]}", smtp_port,
                          DIGEST_LOG_FORMAT="json")
        with web_server(env, workdir / "web.log") as port:
            context = multiprocessing.get_context("spawn")
            for phase_tokens, phase_rate in ((tokens[:warmup], 50.0), (tokens[warmup:], float(rate))):
                queue = context.Queue()
                load = context.Process(target=_unsubscribe_load,
                                       args=(port, phase_tokens, phase_rate, UNSUBSCRIBE_THREADS, queue), daemon=True)
                load.start()
                try:
                    samples = queue.get(timeout=len(phase_tokens) / phase_rate + 60)
                except Exception:  # noqa: BLE001 - queue.Empty: the load process is stuck
                    raise BenchError(f"the unsubscribe load did not finish; server log ends:\n"
                                     f"{_tail(workdir / 'web.log')}") from None
                finally:
                    load.join(timeout=10)
                    if load.is_alive():
                        load.kill()
        with engine.connect() as conn:
            unsubscribed = conn.execute(text("SELECT count(*) FROM subscribers WHERE status = 'unsubscribed' "
                                             "AND unsubscribe_channel = 'one-click'")).scalar_one()
    finally:
        engine.dispose()
    ok = [s for s in samples if s[2] == 200]
    if not ok:
        raise BenchError(f"no unsubscribe request succeeded; statuses {Counter(s[2] for s in samples)}")
    latencies_ms = [s[0] * 1000 for s in samples]
    service_ms = [s[1] * 1000 for s in samples]
    last_done = max(s[3] for s in samples)
    return {
        "offered_per_second": rate, "seconds": options.unsubscribe_seconds, "requests": len(samples),
        "ok": len(ok), "errors": dict(Counter(s[2] for s in samples if s[2] != 200)),
        "achieved_per_second": len(ok) / last_done,
        "p50_ms": _percentile(latencies_ms, 0.50), "p99_ms": _percentile(latencies_ms, 0.99),
        "max_ms": max(latencies_ms), "service_p50_ms": _percentile(service_ms, 0.50),
        "service_p99_ms": _percentile(service_ms, 0.99), "unsubscribed_in_database": int(unsubscribed),
        "threads": UNSUBSCRIBE_THREADS,
    }
