"""6. SQL statements send_batch issues for a batch of 500 and one of 5000: the count should
not grow with the batch."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import sessionmaker

from digest.bench.options import BATCH_SIZE, BENCH_SECRET, BenchError, BenchOptions
from digest.bench.seed import due_edition, seed_readers, seed_stories
from digest.bench.services import scratch_database
from digest.config import Settings
from digest.delivery import release_edition, send_batch
from digest.mail import RecordingTransport
from digest.store import make_engine, utcnow

ROUND_TRIP_BATCHES = (500, 5_000)


def measure_round_trips(options: BenchOptions) -> dict[str, Any]:
    """send_batch in this process with a RecordingTransport, counting what reaches the
    driver: statements (an executemany counts once), transactions, pool checkouts."""

    total = sum(ROUND_TRIP_BATCHES)
    with scratch_database(options.pg_url) as url:
        engine = make_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        try:
            seed_stories(factory)
            seed_readers(engine, total)
            edition_id = due_edition(factory)
            with factory.begin() as session:
                release_edition(session, edition_id, utcnow())
            with engine.connect() as conn:
                ids = list(conn.execute(text("SELECT id FROM deliveries WHERE edition_id = :e ORDER BY id"),
                                        {"e": edition_id}).scalars())
            settings = Settings(env="test", secret_key=BENCH_SECRET, database_url=url,
                                batch_size=BATCH_SIZE)
            counts: Counter[str] = Counter()

            def on_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
                counts["statements"] += 1
                counts["parameter_sets"] += len(parameters) if executemany else 1

            listeners: list[tuple[Any, str, Callable[..., None]]] = [
                (engine, "before_cursor_execute", on_statement),
                (engine, "begin", lambda conn: counts.update(["transactions"])),
                (engine, "commit", lambda conn: counts.update(["commits"])),
                (engine, "rollback", lambda conn: counts.update(["rollbacks"])),
                (engine.pool, "checkout", lambda *args: counts.update(["checkouts"])),
            ]
            for target, name, listener in listeners:
                event.listen(target, name, listener)
            by_size: dict[str, dict[str, Any]] = {}
            offset = 0
            for size in ROUND_TRIP_BATCHES:
                counts.clear()
                transport = RecordingTransport()
                started = time.perf_counter()
                outcome = send_batch(factory, edition_id, ids[offset], ids[offset + size - 1], transport, settings)
                seconds = time.perf_counter() - started
                if len(transport.sent) != size:
                    raise BenchError(f"send_batch of {size} sent {len(transport.sent)}: {outcome.counts}")
                by_size[str(size)] = {**counts, "seconds": seconds,
                                      "record_every_messages": settings.record_every_messages}
                offset += size
            for target, name, listener in listeners:
                event.remove(target, name, listener)
            return by_size
        finally:
            engine.dispose()
