"""4. Planning: release + batch ranges + enqueue for growing reader counts, each in a child
process of its own (`python -c` importing `plan_child` from this module) so that its peak
RSS is the planning's alone."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from digest.bench.options import BATCH_SIZE, BENCH_SECRET, BenchError, BenchOptions
from digest.bench.seed import due_edition, seed_readers, seed_stories
from digest.bench.services import celery_client, forget_queue, scratch_database
from digest.delivery import release_due
from digest.store import make_engine, utcnow

PLAN_CHILD_TIMEOUT_SECONDS = 600


def plan_child(spec_json: str) -> None:
    """Runs in a child process: release one due edition (claim, freeze stories, INSERT …
    SELECT the deliveries), cut it into batch ranges and publish every batch, as
    pipeline.release_due does. Prints timings and this process's peak RSS as JSON."""
    spec = json.loads(spec_json)

    engine = make_engine(spec["url"])
    factory = sessionmaker(engine, expire_on_commit=False)
    client = celery_client(spec["broker_url"], spec["queue"])
    marks: dict[str, float] = {}
    published = 0

    def enqueue(edition: int, first_id: int, last_id: int) -> None:
        nonlocal published
        marks.setdefault("first_enqueue", time.perf_counter())
        client.send_task("digest.send_batch", args=(edition, first_id, last_id), queue=spec["queue"])
        published += 1

    started = time.perf_counter()
    released = release_due(factory, utcnow(), BATCH_SIZE, enqueue)
    finished = time.perf_counter()
    client.close()
    with engine.connect() as conn:
        planned = conn.execute(text("SELECT planned_count FROM editions WHERE id = :e"),
                               {"e": spec["edition_id"]}).scalar_one()
    engine.dispose()
    status = Path("/proc/self/status").read_text()
    vmhwm_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    print(json.dumps({
        "released": released, "planned": planned, "batches": published, "seconds": finished - started,
        "release_and_ranges_seconds": marks.get("first_enqueue", finished) - started,
        "enqueue_seconds": finished - marks.get("first_enqueue", finished), "vmhwm_kb": vmhwm_kb,
    }))


def _run_plan_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The child's JSON line. Its peak RSS is its own VmHWM: wait4's ru_maxrss is no good
    here, since Linux carries the forking parent's high-water mark across the exec."""
    try:
        done = subprocess.run([sys.executable, "-c", "import sys, digest.bench.planning as p; p.plan_child(sys.argv[1])",
                               json.dumps(spec)], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PLAN_CHILD_TIMEOUT_SECONDS, check=False,
                              env={**os.environ, "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": BENCH_SECRET})
    except subprocess.TimeoutExpired:
        raise BenchError(f"planning {spec} took over {PLAN_CHILD_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        raise BenchError(f"planning child failed ({done.returncode}): {done.stderr.decode(errors='replace')[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = result.pop("vmhwm_kb") / 1024
    return result


def measure_planning(options: BenchOptions, size: int) -> dict[str, Any]:

    with scratch_database(options.pg_url) as url:
        engine = make_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        try:
            seed_stories(factory)
            seeded = time.perf_counter()
            seed_readers(engine, size)
            seed_seconds = time.perf_counter() - seeded
            edition_id = due_edition(factory)
        finally:
            engine.dispose()
        queue = f"digest-bench-plan-{uuid.uuid4().hex[:10]}"
        try:
            result = _run_plan_child({"url": url, "edition_id": edition_id, "broker_url": options.redis_url,
                                      "queue": queue})
        finally:
            queued = forget_queue(options.redis_url, queue)
    expected_batches = math.ceil(size / BATCH_SIZE)
    if result["planned"] != size or result["batches"] != expected_batches or queued != expected_batches:
        raise BenchError(f"planning {size} readers: planned {result['planned']}, published {result['batches']}, "
                         f"queue held {queued}; expected {size} and {expected_batches} batches")
    return {"readers": size, "seed_seconds": seed_seconds, "queued_in_redis": queued, **result}
