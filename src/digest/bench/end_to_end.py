"""3. End to end: an edition released to N readers on PostgreSQL and sent by a prefork
Celery worker to smtp-sink; messages/s, and the CPU each party spent per message, which
other load on the machine disturbs far less than wall-clock rates."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from digest.bench.options import (
    BATCH_SIZE,
    WORKER_CONCURRENCY,
    BenchError,
    BenchOptions,
)
from digest.bench.history import measure_dashboards, measure_retention, seed_history, use_layout
from digest.bench.seed import due_edition, seed_readers, seed_stories
from digest.bench.services import (
    Sink,
    _tail,
    celery_client,
    celery_worker,
    forget_queue,
    service_env,
)
from digest.bench.stats import cpu_seconds, process_tree
from digest.delivery import release_due
from digest.store import make_engine, utcnow


def _delivery_counts(factory: sessionmaker[Session], edition_id: int) -> dict[str, int]:
    with factory() as session:
        rows = session.execute(text("SELECT status, count(*) FROM deliveries WHERE edition_id = :e GROUP BY status"),
                               {"e": edition_id}).all()
    return {status: int(count) for status, count in rows}


def _postgres_backends(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        # This session's own backend included: it is the one release_due ran on.
        return list(session.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
                    .scalars())


def measure_end_to_end(options: BenchOptions, database_url: str, sink: Sink, workdir: Path,
                       history_days: int = 0, layout: str = "partitioned") -> dict[str, Any]:
    """Release to sent, wall clock; and the CPU each party spent per message meanwhile
    (the worker's processes, PostgreSQL's backends for this database, smtp-sink), which
    stays meaningful when other work shares the machine. With `history_days`, on a
    database that already holds that many days of daily editions to the same readers, and
    then the retention job's removal of its oldest month. `layout`: deliveries partitioned by
    month (as migrated) or one plain table (the baseline)."""

    engine = make_engine(database_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    try:
        seed_stories(factory)
        seeded = time.perf_counter()
        seed_readers(engine, options.readers)
        seed_seconds = time.perf_counter() - seeded
        use_layout(engine, layout)
        history = seed_history(engine, history_days) if history_days else None
        dashboards = measure_dashboards(database_url, options.redis_url)
        edition_id = due_edition(factory)
        queue = f"digest-bench-{uuid.uuid4().hex[:10]}"
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir(exist_ok=True)
        env = service_env(database_url, options.redis_url, queue, sink.port,
                          PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))  # as docker-compose runs it
        log_path = workdir / "worker.log"
        client = celery_client(options.redis_url, queue)
        try:
            with celery_worker(env, queue, log_path) as worker:
                def enqueue(edition: int, first_id: int, last_id: int) -> None:
                    client.send_task("digest.send_batch", args=(edition, first_id, last_id), queue=queue)

                workers = process_tree(worker.pid)
                cpu_before = {pid: cpu_seconds(pid) for pid in [*workers, *_postgres_backends(factory), sink.pid]}
                started = time.perf_counter()
                released = release_due(factory, utcnow(), BATCH_SIZE, enqueue)
                release_seconds = time.perf_counter() - started
                if released != [edition_id]:
                    raise BenchError(f"release_due released {released}, expected [{edition_id}]")
                deadline = started + 60 + options.readers / 200
                while True:
                    with factory() as session:
                        status = session.execute(text("SELECT status, status_reason FROM editions WHERE id = :e"),
                                                 {"e": edition_id}).one()
                    if status[0] == "sent":
                        break
                    if status[0] != "sending" or time.perf_counter() > deadline:
                        raise BenchError(f"edition {status[0]} ({status[1] or 'no reason'}) after "
                                         f"{time.perf_counter() - started:.0f} s; counts "
                                         f"{_delivery_counts(factory, edition_id)}; worker log ends:\n"
                                         f"{_tail(log_path)}")
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started

                def spent(pids: list[int]) -> float:
                    return sum(cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in pids) / options.readers * 1e6

                cpu_us = {"worker": spent(process_tree(worker.pid)), "postgres": spent(_postgres_backends(factory)),
                          "smtp_sink": spent([sink.pid])}
        finally:
            client.close()
            forget_queue(options.redis_url, queue)
        counts = _delivery_counts(factory, edition_id)
        if counts.get("sent", 0) != options.readers:
            raise BenchError(f"only {counts.get('sent', 0)} of {options.readers} deliveries sent: {counts}")
        retention = measure_retention(engine) if history_days >= 62 else None  # a whole month past the retention
        return {
            "readers": options.readers, "seconds": elapsed, "release_seconds": release_seconds,
            "messages_per_second": options.readers / elapsed, "counts": counts,
            "batch_size": BATCH_SIZE, "worker_concurrency": WORKER_CONCURRENCY,
            "seed_seconds": seed_seconds, "edition_id": edition_id,
            "cpu_us_per_message": cpu_us, "cpu_cores_busy": sum(cpu_us.values()) * options.readers / 1e6 / elapsed,
            "history": history, "dashboards_ms": dashboards, "layout": layout, "retention": retention,
        }
    finally:
        engine.dispose()
