"""What readers clicked, as charts for the editor pages (digest.clicks counts; this reads).

An edition's clicks per story and per hour since sending are drawn from its stats (the
page has them already); a newsletter's click rate per edition and the week's best stories
are one bounded read each: the last CLICK_RATE_EDITIONS editions, the editions sent in the
last BEST_STORIES_DAYS days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.observe.charts import Chart
from digest.observe.health import delivery_counts
from digest.store import ANY, ClickCount, ClickUnique, Edition, EditionStatus, Newsletter, Story

CLICK_RATE_EDITIONS = 20
CLICK_HOURS_SHOWN = 14 * 24  # past two weeks of hours, the last bar holds the rest
BEST_STORIES_DAYS = 7
BEST_STORIES_SHOWN = 10
TITLE_CHARS = 60
SENT_STATUSES = (EditionStatus.SENDING, EditionStatus.SENT, EditionStatus.PAUSED)


def _short(title: str) -> str:
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"


def story_clicks_chart(stories: Sequence[tuple[str, int]]) -> Chart:
    """People's clicks per story of an edition, in the edition's order, as bars."""
    return Chart("People's clicks per story", "story", [], {"clicks": [clicks for _, clicks in stories]},
                 x_labels=[f"{i} · {_short(title)}" for i, (title, _) in enumerate(stories, start=1)], bars=True)


def hour_clicks_chart(hours: Sequence[tuple[datetime, int, int]], sent_at: datetime | None) -> Chart:
    """An edition's clicks (people and machines) per hour since it started sending, every
    hour from the first to the last with a click; `hours`: (hour start, people, machines)."""
    chart = Chart("Clicks per hour since sending", "hour", [], {"people": [], "machines": []}, x_labels=[], bars=True)
    if not hours:
        return chart
    first = min(at for at, _, _ in hours)
    start = (sent_at or first).replace(minute=0, second=0, microsecond=0)
    start = min(start, first)
    span = min(CLICK_HOURS_SHOWN, int((max(at for at, _, _ in hours) - start).total_seconds() // 3600) + 1)
    people, machines = [0] * span, [0] * span
    for at, human, machine in hours:
        i = min(span - 1, int((at - start).total_seconds() // 3600))
        people[i] += human
        machines[i] += machine
    chart.lines = {"people": people, "machines": machines}
    chart.x_labels = [f"{i} h · {start + timedelta(hours=i):%-d %b %H:00} UTC" for i in range(span)]
    if span == CLICK_HOURS_SHOWN:
        chart.x_labels[-1] = f"{span - 1}+ h · later"
    return chart


def click_rates(session: Session, newsletter_id: int, limit: int = CLICK_RATE_EDITIONS) -> Chart:
    """A newsletter's last `limit` sent editions, oldest first: unique clicking copies by
    people over copies sent, in %. Sent counts from the editions' tallies."""
    editions = list(session.execute(
        select(Edition.id, Edition.subject, Edition.send_at)
        .where(Edition.newsletter_id == newsletter_id, Edition.status.in_(SENT_STATUSES))
        .order_by(Edition.send_at.desc(), Edition.id.desc()).limit(limit)))[::-1]
    ids = [e.id for e in editions]
    counts = delivery_counts(session, ids)
    clicks = {edition_id: int(n or 0) for edition_id, n in session.execute(
        select(ClickCount.edition_id, func.sum(ClickCount.clicks))
        .where(ClickCount.edition_id.in_(ids)).group_by(ClickCount.edition_id))}
    uniques = {edition_id: n for edition_id, n in session.execute(
        select(ClickUnique.edition_id, ClickUnique.unique_clicks).where(
            ClickUnique.edition_id.in_(ids), ClickUnique.story_id == ANY, ClickUnique.variant == ANY))}

    def rate(edition_id: int) -> float:
        sent = counts[edition_id]["sent"]
        unique = min(uniques.get(edition_id, 0), clicks.get(edition_id, 0))  # as the stats show it
        return round(100 * unique / sent, 2) if sent else 0.0

    return Chart("Click rate per edition (%)", "edition", [e.send_at for e in editions],
                 {"click rate %": [rate(i) for i in ids]},
                 x_labels=[f"{e.send_at:%-d %b} · {e.subject}" for e in editions])


@dataclass(frozen=True)
class BestStory:
    story_id: int
    title: str
    newsletter: str | None
    edition_id: int
    subject: str
    clicks: int


def best_stories(session: Session, now: datetime, days: int = BEST_STORIES_DAYS,
                 limit: int = BEST_STORIES_SHOWN) -> list[BestStory]:
    """The stories people clicked most in the editions sent in the last `days`, across
    newsletters: one grouped query over those editions' counts."""
    clicks = func.sum(ClickCount.clicks).label("clicks")
    rows = session.execute(
        select(ClickCount.story_id, ClickCount.edition_id, clicks, Story.title, Edition.subject,
               Newsletter.name.label("newsletter"))
        .join(Edition, Edition.id == ClickCount.edition_id)
        .join(Story, Story.id == ClickCount.story_id)
        .outerjoin(Newsletter, Newsletter.id == Edition.newsletter_id)
        .where(Edition.send_at >= now - timedelta(days=days), Edition.send_at <= now,
               Edition.status.in_(SENT_STATUSES))
        .group_by(ClickCount.story_id, ClickCount.edition_id, Story.title, Edition.subject, Newsletter.name)
        .having(func.sum(ClickCount.clicks) > 0)
        .order_by(clicks.desc(), ClickCount.edition_id.desc(), ClickCount.story_id).limit(limit))
    return [BestStory(story_id=row.story_id, title=row.title, newsletter=row.newsletter, edition_id=row.edition_id,
                      subject=row.subject, clicks=int(row.clicks)) for row in rows]


def best_stories_chart(best: Sequence[BestStory]) -> Chart:
    return Chart(f"Most clicked stories, last {BEST_STORIES_DAYS} days", "story", [],
                 {"clicks": [b.clicks for b in best]},
                 x_labels=[f"{i} · {_short(b.title)}" for i, b in enumerate(best, start=1)], bars=True)
