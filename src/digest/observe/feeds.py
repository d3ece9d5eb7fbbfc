"""The ops view of the feeds: how many are polled and well, failing, or paused, and the
ones that need a look, with the reason in words. Read from the feeds' own rows (the poll
writes how each went), so /ops, /ops/status.json and the feeds page agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.feeds import feed_state
from digest.store import Feed


@dataclass(frozen=True)
class FeedAlert:
    """A feed that needs a look: `state` stopped (it paused itself), failing, or paused (by staff)."""

    id: int
    url: str
    state: str
    reason: str
    failures: int
    last_fetched_at: datetime | None


@dataclass
class FeedHealth:
    """Counts by state (each feed in one: `active` polled and well, `failing` polled but its
    last poll failed, `paused` by staff or by itself) and the feeds not well, stopped and
    failing first."""

    active: int = 0
    failing: int = 0
    paused: int = 0
    alerts: list[FeedAlert] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"active": self.active, "failing": self.failing, "paused": self.paused}

    def as_json(self) -> dict[str, Any]:
        return {**self.counts(), "alerts": [
            {"id": a.id, "url": a.url, "state": a.state, "reason": a.reason, "failures": a.failures,
             "last_fetched_at": a.last_fetched_at.isoformat() if a.last_fetched_at else None}
            for a in self.alerts]}


def feed_health(session: Session) -> FeedHealth:
    """One query, no story counts: /ops asks every 2 s."""
    health = FeedHealth()
    for feed in session.scalars(select(Feed).order_by(Feed.url)):
        state = feed_state(feed)
        if state == "active":
            health.active += 1
            continue
        if state == "failing":
            health.failing += 1
            polls = "poll" if feed.failures == 1 else "polls"
            reason = f"{feed.failures} failed {polls} in a row: {feed.last_error or feed.last_status}"
        else:
            health.paused += 1
            reason = feed.paused_reason or "paused by staff"
        health.alerts.append(FeedAlert(feed.id, feed.url, state, reason, feed.failures, feed.last_fetched_at))
    order = {"stopped": 0, "failing": 1, "paused": 2}
    health.alerts.sort(key=lambda a: order[a.state])
    return health
