"""One run: the services started once and shared, each measurement in turn, a line of
progress per step, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from digest.bench.clicks import CLICK_RATE_PER_SECOND, measure_clicks
from digest.bench.end_to_end import measure_end_to_end
from digest.bench.event_loop import SIGNIN_CLIENTS, measure_event_loop
from digest.bench.feeds import feed_count, measure_feeds
from digest.bench.moving_in import import_rows, measure_moving_in
from digest.bench.options import WORKER_CONCURRENCY, BenchOptions
from digest.bench.planning import measure_planning
from digest.bench.prep import measure_message_prep
from digest.bench.report import Results, _figures, _history_figures
from digest.bench.round_trips import ROUND_TRIP_BATCHES, measure_round_trips
from digest.bench.services import (
    private_redis,
    process_env,
    scratch_database,
    smtp_sink,
)
from digest.bench.smtp import measure_smtp_ceiling
from digest.bench.unsubscribe import UNSUBSCRIBE_RATE_PER_SECOND, measure_unsubscribe


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(memory_gb, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def run_bench(options: BenchOptions, progress: Console) -> Results:
    results = Results()
    results.details["machine"] = machine()
    results.details["options"] = {**asdict(options), "pg_url": _hide_password(options.pg_url)}
    results.details["load_average_at_start"] = os.getloadavg()
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        progress.print(f"[yellow]warning: load average {os.getloadavg()[0]:.1f} before the run: other work on "
                       "this machine will lower the figures[/yellow]", highlight=False)
    started = time.perf_counter()
    connections = WORKER_CONCURRENCY  # one worker, prefork: one SMTP connection per child

    def step(title: str) -> None:
        progress.print(f"[dim]{time.perf_counter() - started:6.1f} s[/dim]  {title}", highlight=False)

    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    failed = True
    try:
        with ExitStack() as stack:
            side_redis = stack.enter_context(private_redis())
            results.details["side_redis"] = "private redis-server" if side_redis else "shared (redis-server missing)"
            stack.enter_context(process_env(DIGEST_REDIS_URL=side_redis))
            step(f"message preparation ({options.fast_iterations} messages)")
            prep = results.details["message_prep"] = measure_message_prep(options)
            sink = stack.enter_context(smtp_sink())
            port = sink.port
            step(f"raw SMTP ceiling ({connections} connections, {options.smtp_seconds:.0f} s)")
            ceiling = results.details["smtp_ceiling"] = measure_smtp_ceiling(port, connections, options.smtp_seconds)
            step(f"pipelined SMTP ceiling ({connections} connections, {options.smtp_seconds:.0f} s)")
            pipelined = results.details["smtp_ceiling_pipelined"] = measure_smtp_ceiling(
                port, connections, options.smtp_seconds, pipelined=True)
            step(f"end to end ({options.readers} readers)")
            database_url = stack.enter_context(scratch_database(options.pg_url))
            e2e = results.details["end_to_end"] = measure_end_to_end(options, database_url, sink, workdir)
            # Again right after, so the two bracket the end-to-end run on a machine whose
            # other load changes: the ceiling is their mean.
            step("raw SMTP ceiling again")
            after = measure_smtp_ceiling(port, connections, options.smtp_seconds)
            ceiling["before_and_after"] = [ceiling["messages_per_second"], after["messages_per_second"]]
            ceiling["messages_per_second"] = statistics.mean(ceiling["before_and_after"])
            ceiling["client_cpu_us_per_message"] = statistics.mean(
                [ceiling["client_cpu_us_per_message"], after["client_cpu_us_per_message"]])
            histories = results.details["history"] = []
            for days in options.history_days:
                step(f"end to end again with {days} days of daily editions to the same {options.readers} readers")
                with scratch_database(options.pg_url) as history_url:
                    histories.append(measure_end_to_end(options, history_url, sink, workdir, history_days=days))
                if options.history_plain:
                    step(f"the same on one plain deliveries table (no monthly partitions), {days} days")
                    with scratch_database(options.pg_url) as history_url:
                        histories.append(measure_end_to_end(options, history_url, sink, workdir, history_days=days,
                                                            layout="plain"))
            step(f"one-click unsubscribe ({UNSUBSCRIBE_RATE_PER_SECOND}/s for {options.unsubscribe_seconds:.0f} s)")
            unsub = results.details["unsubscribe"] = measure_unsubscribe(options, database_url, port, workdir)
            step(f"click redirect ({CLICK_RATE_PER_SECOND}/s for {options.unsubscribe_seconds:.0f} s)")
            clicks = results.details["clicks"] = measure_clicks(options, database_url, port, workdir)
            step(f"GET /archive alone and during {SIGNIN_CLIENTS} sign-ins ({options.archive_requests} requests each)")
            loop = results.details["event_loop"] = measure_event_loop(options, database_url, port, workdir)
            step(f"feed polls ({feed_count(options)} feeds: full answers, then 304s)")
            feeds = results.details["feeds"] = measure_feeds(options, database_url)
            step(f"moving in: a Mailchimp export of {import_rows(options):,} readers imported, and a tenth of it")
            moving = results.details["moving_in"] = measure_moving_in(options, workdir)
            step(f"SQL statements per send_batch {ROUND_TRIP_BATCHES}")
            trips = results.details["round_trips"] = measure_round_trips(options)
            plans = results.details["planning"] = []
            for size in options.plan_sizes:
                step(f"planning {size} readers")
                plans.append(measure_planning(options, size))
        failed = False
    finally:
        if failed:
            progress.print(f"logs kept in {workdir}", highlight=False)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results.details["seconds"] = time.perf_counter() - started
    results.details["load_average_at_end"] = os.getloadavg()
    step("done")
    _figures(results, prep, ceiling, e2e, plans, unsub, trips, connections, pipelined, loop, feeds, moving, clicks)
    _history_figures(results.figures, e2e, histories)
    return results

def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
