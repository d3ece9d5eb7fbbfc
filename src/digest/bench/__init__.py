"""`digest bench`: the send path measured in one run, against real services on loopback.

Each figure stands next to a baseline or ceiling measured in the same run on the same
machine, so that its ratio still means something on a slower or noisier host:

1. message preparation, the send loop's hot path (`delivery.send_one`, socket left out),
   against the standard library's build and against render + premailer per reader;
2. the raw SMTP ceiling: a plain smtplib loop over C connections to Postfix's smtp-sink;
3. end to end: an edition released to N readers on PostgreSQL, sent by a prefork Celery
   worker on Redis to the same smtp-sink; messages/s against (2) with the same C, and the
   CPU each party spent per message (worker, PostgreSQL, smtp-sink), which other load on
   the machine disturbs far less than wall-clock rates;
4. planning: release + batch ranges + enqueue in a child process for growing reader
   counts, its seconds and peak RSS;
5. one-click unsubscribe latency under an open-loop load from a second process;
6. SQL statements send_batch issues for a batch of 500 and one of 5000;
7. `GET /archive` p99 while four staff sign-ins (argon2) run, against its p99 alone: the
   web layer keeps database, Redis and argon2 work off the event loop;
8. (and 9.) feed polls, and moving in a large export;
10. the click redirect's latency at 500 requests a second against one `digest serve`, then
    the flush, with every click counted.

Every database is a fresh `digest_bench_<random>` and every Celery queue a fresh name, both
removed at the end; pub/sub (departure announcements) goes to a private redis-server;
every wait has a deadline; load stays on 127.0.0.1.

One module per job: options, services (what a run starts), seed (what a scratch database
holds), one per measurement (prep, smtp, end_to_end, planning, unsubscribe, clicks,
round_trips, event_loop), report (figures and table) and run. The names callers use (the CLI,
scripts/profile_send.py) are imported here, so that `digest.bench.X` works as it did when
this was one module.
"""

from __future__ import annotations

from digest.bench.end_to_end import measure_end_to_end
from digest.bench.event_loop import measure_event_loop
from digest.bench.options import (
    BATCH_SIZE,
    BENCH_SECRET,
    DEFAULT_PG_URL,
    DEFAULT_PLAN_SIZES,
    DEFAULT_READERS,
    DEFAULT_REDIS_URL,
    QUICK_PLAN_SIZES,
    QUICK_READERS,
    WORKER_CONCURRENCY,
    BenchError,
    BenchOptions,
)
from digest.bench.planning import measure_planning, plan_child
from digest.bench.prep import (
    _NullConnection,
    _Row,
    measure_message_prep,
    sample_edition_view,
    sample_readers,
)
from digest.bench.report import Figure, Results, markdown_table, table
from digest.bench.round_trips import measure_round_trips
from digest.bench.run import run_bench
from digest.bench.seed import (
    due_edition,
    seed_readers,
    seed_readers_offset,
    seed_stories,
)
from digest.bench.services import (
    Sink,
    celery_client,
    celery_worker,
    forget_queue,
    private_redis,
    process_env,
    scratch_database,
    service_env,
    smtp_sink,
    web_server,
)
from digest.bench.smtp import measure_smtp_ceiling
from digest.bench.unsubscribe import measure_unsubscribe

__all__ = [
    "BATCH_SIZE", "BENCH_SECRET", "DEFAULT_PG_URL", "DEFAULT_PLAN_SIZES", "DEFAULT_READERS",
    "DEFAULT_REDIS_URL", "QUICK_PLAN_SIZES", "QUICK_READERS", "WORKER_CONCURRENCY", "BenchError",
    "BenchOptions", "Figure", "Results", "Sink", "_NullConnection", "_Row", "celery_client", "celery_worker",
    "due_edition", "forget_queue", "markdown_table", "measure_end_to_end", "measure_event_loop",
    "measure_message_prep", "measure_planning", "measure_round_trips", "measure_smtp_ceiling", "measure_unsubscribe",
    "plan_child", "private_redis", "process_env", "run_bench", "sample_edition_view", "sample_readers",
    "scratch_database", "seed_readers", "seed_readers_offset", "seed_stories", "service_env", "smtp_sink", "table",
    "web_server",
]
