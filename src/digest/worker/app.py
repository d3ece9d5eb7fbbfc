"""The Celery application: Redis broker, JSON only, late acks, a beat schedule.

Imported by worker.py (the `celery -A worker` entry point) and by the tasks module. This
package is the only code that knows Celery: the rest of digest takes an enqueue function.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery, signals
from celery.worker.control import inspect_command

from digest.config import get_settings
from digest.delivery import journal_dir, replay_orphans
from digest.observe import configure, mark_process_dead
from digest.store import session_factory

# Redis redelivers an unacked task after this; every countdown we use stays far below it.
VISIBILITY_TIMEOUT_SECONDS = 3600
log = logging.getLogger(__name__)


def configuration() -> dict[str, object]:
    """Celery's settings, from digest's (read when Celery first needs them, so importing this
    module never reads the environment: a bad DIGEST_ variable is reported by whoever
    enqueues, as one line)."""
    settings = get_settings()
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_acks_late": True,
        # A SIGKILLed worker's task is acked anyway (acks_late does not cover a lost worker,
        # and reject_on_worker_lost can loop): leases in the database and the sweeper recover
        # its work instead of a redelivery loop.
        "task_reject_on_worker_lost": False,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        "task_default_queue": settings.task_queue,
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "schedule-editions": {"task": "digest.schedule_editions", "schedule": settings.release_every_seconds},
            "release-due-editions": {"task": "digest.release_due_editions",
                                     "schedule": settings.release_every_seconds},
            "sweep": {"task": "digest.sweep", "schedule": settings.sweep_every_seconds},
            "flush-clicks": {"task": "digest.flush_clicks", "schedule": settings.click_flush_every_seconds},
            "decide-ab-tests": {"task": "digest.decide_ab_tests", "schedule": settings.sweep_every_seconds},
            # Hourly: the work is a month at a time, and the partitions ahead need a run a month.
            "compact-deliveries": {"task": "digest.compact_deliveries", "schedule": 3600.0},
            "poll-unsubscribe-maildir": {"task": "digest.poll_unsubscribe_maildir", "schedule": 60.0},
            "poll-bounce-maildir": {"task": "digest.poll_bounce_maildir", "schedule": 60.0},
            "poll-feeds": {"task": "digest.poll_feeds", "schedule": settings.feeds_check_every_seconds},
        },
    }


def make_app() -> Celery:
    app = Celery("digest", include=["digest.worker.tasks"])
    app.add_defaults(configuration)  # a promise: evaluated on first use of app.conf
    return app


app = make_app()


def limits_in_force() -> dict[str, object]:
    """What this process sends under: the figures /ops shows are the workers' own, read
    from their settings, never the web process's (which may differ, or not be set)."""
    settings = get_settings()
    return {"global": settings.rate_limit_per_second, "domains": settings.domain_limits,
            "smtp": [t.url.split("@")[-1] for t in settings.smtp_targets], "batch_size": settings.batch_size,
            "metrics_port": int(os.environ["DIGEST_WORKER_METRICS_PORT"])
            if os.environ.get("DIGEST_WORKER_METRICS_PORT", "").isdigit() else None}


@inspect_command()
def digest_limits(state: object) -> dict[str, object]:
    """`celery inspect digest_limits`: this worker's sending limits, its pool size and its
    metrics port (asked by /ops through a broadcast, answered by each worker)."""
    pool = getattr(getattr(state, "consumer", None), "pool", None)
    return {**limits_in_force(), "concurrency": getattr(pool, "num_processes", None)}


@signals.setup_logging.connect
def _structured_logs(**_: object) -> None:
    # Replaces Celery's own logging set-up: our JSON lines, task ids included.
    configure(get_settings().log_format, get_settings().log_level)


@signals.worker_init.connect
def _serve_worker_metrics(**_: object) -> None:
    """With DIGEST_WORKER_METRICS_PORT, the worker's main process serves its (and its
    prefork children's, via PROMETHEUS_MULTIPROC_DIR) event metrics for Prometheus."""
    port = os.environ.get("DIGEST_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry  # noqa: N811
    start_http_server(int(port), registry=registry)


@signals.worker_process_shutdown.connect
def _forget_metrics_of_dead_child(pid: int | None = None, **_: object) -> None:
    # prometheus-client multiprocess mode: a prefork child's gauges go with it.
    mark_process_dead(pid or os.getpid())


@signals.worker_process_init.connect
def _replay_orphaned_journals(**_: object) -> None:
    """Each prefork child, as it starts, records what dead batches on this host sent.

    A child starts with its worker and whenever the pool replaces one that was killed, so a
    killed batch's sends reach the database within seconds, not only when this host's next
    batch begins: after its lease a batch's rows may be claimed on another host, which
    cannot read this host's journal. In a thread, because a child must report ready within
    seconds whatever the database is doing; the next batch replays again anyway."""
    threading.Thread(target=_replay_now, name="digest-journal-replay", daemon=True).start()


def _replay_now() -> None:
    settings = get_settings()
    try:
        replay_orphans(session_factory(), journal_dir(settings.database_url, settings.journal_dir))
    except Exception as exc:  # noqa: BLE001 - a database outage: the next batch replays instead
        log.warning("journal replay at process start failed; the next batch retries it: %s", exc)
