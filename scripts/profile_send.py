"""Where the send path's time goes: cProfile over (1) the per-message fast path and (2) what
one worker process does for a batch, send_batch against PostgreSQL and smtp-sink.

    .venv/bin/python scripts/profile_send.py [--messages 20000] [--readers 5000] [--top 25]

Prints, for each, the CPU time by component (own time of the functions in each group of
modules) and the top functions by own time. The profiler's clock is process CPU time, so
waiting for smtp-sink or PostgreSQL does not count. Uses digest.bench's set-up: a scratch
database dropped at the end, smtp-sink on a free loopback port, and a prometheus
multiprocess folder as a prefork worker has (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections import defaultdict

# Before anything imports prometheus_client: metrics as a prefork worker writes them.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="digest-profile-metrics-"))

from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from digest import bench

GROUPS = (  # first match wins: (label, substring of the code file's path)
    ("smtplib + socket", "smtplib"), ("smtplib + socket", "socket"), ("smtplib + socket", "ssl"),
    ("psycopg", "psycopg"), ("SQLAlchemy", "sqlalchemy"), ("logging", "logging"), ("logging", "digest/logs"),
    ("prometheus_client", "prometheus_client"), ("digest: message", "digest/mailer"),
    ("digest: message", "digest/render"), ("digest: send loop", "digest/sender"),
    ("digest: other", "digest/"), ("email / hmac / hashlib", "email/"), ("email / hmac / hashlib", "hmac"),
    ("premailer / cssutils / lxml", "premailer"), ("premailer / cssutils / lxml", "cssutils"),
    ("json", "json"), ("datetime / zoneinfo", "datetime"),
)


def by_group(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{name}"
        label = next((label for label, part in GROUPS if part in where), "builtins / other")
        totals[label] += tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def report(title: str, profile: cProfile.Profile, count: int, unit: str, top: int) -> None:
    stats = pstats.Stats(profile)
    total = sum(value for _, value in by_group(stats))
    print(f"\n== {title}: {total:.2f} s CPU profiled, {total / count * 1e6:,.1f} µs per {unit} (under cProfile)")
    for label, seconds in by_group(stats):
        print(f"  {label:<30} {seconds:7.3f} s  {seconds / total:6.1%}")
    buffer = io.StringIO()
    pstats.Stats(profile, stream=buffer).sort_stats("tottime").print_stats(top)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    print("\n".join(lines[lines.index(next(x for x in lines if x.lstrip().startswith("ncalls"))):]))


def profile_fast_path(messages: int, top: int) -> None:
    from digest.config import Settings
    from digest.mail.render import render_edition
    from digest.delivery.sender import _send_one, shared_headers
    from digest.store.models import utcnow

    settings = Settings(env="test", secret_key=bench.BENCH_SECRET)
    view = bench.sample_edition_view()
    rendered = render_edition(view)
    shared = shared_headers(view, rendered.subject, settings)
    shared_bytes = shared.encoded_shared
    readers = bench.sample_readers(messages)
    connection = bench._NullConnection()
    envelope_from, domain = settings.sender_address, settings.sender_domain  # once, as _send_loop does
    rows = [bench._Row(reader.id, reader.id, 0) for reader in readers]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for row, reader in zip(rows, readers, strict=True):
        _send_one(connection, view.id, shared, shared_bytes, rendered, row, reader, envelope_from, domain,
                  settings, utcnow)
    profile.disable()
    report("fast path (sender._send_one, no socket)", profile, messages, "message", top)


def profile_send_batch(readers: int, top: int) -> None:
    from digest.config import Settings
    from digest.mail.transport import transport_for
    from digest.delivery.planner import batch_ranges, release_edition
    from digest.delivery.sender import send_batch
    from digest.store.engine import make_engine
    from digest.store.models import utcnow

    options = bench.BenchOptions()
    with bench.smtp_sink() as sink, bench.scratch_database(options.pg_url) as url:
        port = sink.port
        engine = make_engine(url)
        factory = sessionmaker(engine, expire_on_commit=False)
        try:
            bench.seed_stories(factory)
            bench.seed_readers(engine, readers)
            edition_id = bench.due_edition(factory)
            with factory.begin() as session:
                release_edition(session, edition_id, utcnow())
            with factory() as session:
                ranges = batch_ranges(session, edition_id, bench.BATCH_SIZE)
            settings = Settings(env="test", secret_key=bench.BENCH_SECRET, database_url=url,
                                smtp_url=f"smtp://127.0.0.1:{port}", smtp_helo="bench.localhost")
            transport = transport_for(settings.smtp, settings.smtp_timeout_seconds, settings.smtp_helo)
            profile = cProfile.Profile(time.process_time)
            started, cpu_started = time.perf_counter(), time.process_time()
            profile.enable()
            for first_id, last_id in ranges:
                send_batch(factory, edition_id, first_id, last_id, transport, settings)
            profile.disable()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with engine.connect() as conn:
                sent = conn.execute(text("SELECT count(*) FROM deliveries WHERE edition_id = :e AND status = 'sent'"),
                                    {"e": edition_id}).scalar_one()
        finally:
            engine.dispose()
    print(f"\nsend_batch × {len(ranges)}: {sent} sent in {elapsed:.2f} s, {cpu:.2f} s CPU, under cProfile "
          f"({sent / elapsed:,.0f} msg/s, one process, one connection)")
    report("one worker process: send_batch to smtp-sink", profile, sent, "message", top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--readers", type=int, default=5_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    profile_fast_path(args.messages, args.top)
    profile_send_batch(args.readers, args.top)


if __name__ == "__main__":
    main()
