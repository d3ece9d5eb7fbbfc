"""Prometheus metrics (prometheus-client), safe across Celery's prefork processes.

Two kinds:
- events counted where they happen (messages sent/failed/bounced by newsletter, send
  latency, unsubscribes by channel). With PROMETHEUS_MULTIPROC_DIR set, every process
  writes its own files there and /metrics adds them up (prometheus-client's multiprocess
  mode); without it they live in the process that serves /metrics.
- state read at scrape time from the ledger and the broker (deliveries by newsletter and
  status, pending deliveries, editions by status, queue depth), so what /metrics says is
  what the database says.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import MESSAGES, SEND_SECONDS
from digest.readers import UNSUBSCRIBES
from digest.store import Delivery, Edition, EditionStatus, EditionTally, Newsletter


class LedgerCollector(Collector):
    """Gauges computed from the database and Redis at every scrape."""

    def __init__(self, factory: sessionmaker[Session], redis_client: Any, queue: str) -> None:
        self.factory = factory
        self.redis = redis_client
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        deliveries = GaugeMetricFamily("digest_deliveries", "Delivery rows by newsletter and status",
                                       labels=["newsletter", "status"])
        editions = GaugeMetricFamily("digest_editions", "Editions by status", labels=["status"])
        pending = GaugeMetricFamily("digest_deliveries_pending", "Deliveries still queued")
        depth = GaugeMetricFamily("digest_queue_depth", "Tasks waiting in the Celery queue", labels=["queue"])
        with self.factory() as session:
            names = dict(session.execute(select(Newsletter.id, Newsletter.slug)).all())
            total_pending = 0
            by_newsletter: Counter[tuple[str, str]] = Counter()
            # Sent editions from their tallies (counted when they finished); the rows of the
            # others (sending, paused, cancelled, reopened) counted now.
            for row in session.execute(select(Edition.newsletter_id, func.sum(EditionTally.sent),
                                              func.sum(EditionTally.failed), func.sum(EditionTally.bounced),
                                              func.sum(EditionTally.skipped), func.sum(EditionTally.queued))
                                       .join(Edition, Edition.id == EditionTally.edition_id)
                                       .group_by(Edition.newsletter_id)):
                for status, count in zip(("sent", "failed", "bounced", "skipped", "queued"), row[1:], strict=True):
                    by_newsletter[(names.get(row[0], "none"), status)] += int(count or 0)
            for newsletter_id, status, count in session.execute(
                    select(Edition.newsletter_id, Delivery.status, func.count())
                    .join(Edition, Edition.id == Delivery.edition_id)
                    .where(~select(EditionTally.edition_id).where(EditionTally.edition_id == Edition.id).exists())
                    .group_by(Edition.newsletter_id, Delivery.status)):
                by_newsletter[(names.get(newsletter_id, "none"), getattr(status, "value", status))] += count
            for (name, status_value), count in sorted(by_newsletter.items()):
                if count:  # as a GROUP BY would have it: no series for a status with no row
                    deliveries.add_metric([name, status_value], count)
                if status_value == "queued":
                    total_pending += count
            by_status = dict(session.execute(select(Edition.status, func.count()).group_by(Edition.status)).all())
        for status in EditionStatus:
            editions.add_metric([status.value], by_status.get(status, 0))
        pending.add_metric([], total_pending)
        yield deliveries
        yield editions
        yield pending
        try:
            depth.add_metric([self.queue], int(self.redis.llen(self.queue)))
            yield depth
        except Exception:  # noqa: BLE001 - an unreachable broker shows as a missing series
            pass


def render(factory: sessionmaker[Session], redis_client: Any, queue: str) -> bytes:
    """The /metrics body: this process's or all processes' events, plus the ledger."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (MESSAGES, SEND_SECONDS, UNSUBSCRIBES):
            registry.register(collector)
    registry.register(LedgerCollector(factory, redis_client, queue))
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
