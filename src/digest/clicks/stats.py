"""An edition's results, one function for the command line, the API, the CSV and the
editor's page: what was sent, what people clicked (machines apart) and the unique count.

`clicks` and `machine_clicks` cover every link of the edition (the masthead too), and so
do `hours` (per hour of the click, oldest first, the hours with clicks);
`stories` lists the edition's stories, in order, then any other story clicked (a spare a
reader got instead); `click_rate` is unique clicking copies over copies sent. `opens` and
`unique_opens` come from the open pixel, only for a newsletter that turned it on (else
None): unreliable (Apple Mail loads every image; many clients none), never a rate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.errors import NotFound
from digest.editions import ab
from digest.store import (ANY, AbTest, ClickCount, ClickHour, ClickUnique, Delivery, DeliveryStatus, Edition, EditionStory,
                          OpenCount, Story)


class EditionNotFound(NotFound):
    default_code = "edition_not_found"


@dataclass
class StoryStats:
    id: int
    title: str
    url: str
    clicks: int = 0
    unique_clicks: int = 0


@dataclass
class VariantStats:
    subject: str
    sent: int
    clicks: int = 0
    unique_clicks: int = 0


@dataclass
class HourStats:
    hour: str  # the hour's start, ISO 8601 UTC
    clicks: int
    machine_clicks: int


@dataclass
class AbStats:
    """A subject test: what was asked, and the decision with the numbers it saw (`test`:
    per subject, the copies sent, human clicks and unique clicking copies at the decision)."""

    subject: str
    alternative: str
    share: int
    wait_minutes: int
    test_size: int
    decide_at: str | None
    decided_at: str | None
    winner_variant: int | None
    reason_code: str | None
    reason: str | None
    test: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EditionStats:
    id: int
    sent: int
    clicks: int
    unique_clicks: int
    click_rate: float
    machine_clicks: int
    stories: list[StoryStats] = field(default_factory=list)
    variants: list[VariantStats] = field(default_factory=list)
    hours: list[HourStats] = field(default_factory=list)
    ab: AbStats | None = None
    # The open pixel's counts (None: the newsletter does not count opens).
    opens: int | None = None
    unique_opens: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def edition_stats(session: Session, edition_id: int) -> EditionStats:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise EditionNotFound(f"no edition with id {edition_id}")
    sent = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT)) or 0
    counts = list(session.execute(select(ClickCount.story_id, ClickCount.variant, ClickCount.clicks,
                                         ClickCount.machine_clicks).where(ClickCount.edition_id == edition_id)))
    uniques = {(row.story_id, row.variant): row.unique_clicks for row in session.execute(
        select(ClickUnique.story_id, ClickUnique.variant, ClickUnique.unique_clicks)
        .where(ClickUnique.edition_id == edition_id))}
    story_clicks: dict[int, int] = {}
    variant_clicks: dict[int, int] = {}
    for row in counts:
        story_clicks[row.story_id] = story_clicks.get(row.story_id, 0) + row.clicks
        variant_clicks[row.variant] = variant_clicks.get(row.variant, 0) + row.clicks
    listed = [story_id for story_id, in session.execute(
        select(EditionStory.story_id).where(EditionStory.edition_id == edition_id)
        .order_by(EditionStory.position))]
    listed += sorted(set(story_clicks) - set(listed) - {0})
    found = {story.id: story for story in session.scalars(select(Story).where(Story.id.in_(listed)))} if listed else {}
    stories = [StoryStats(id=sid, title=found[sid].title, url=found[sid].url, clicks=story_clicks.get(sid, 0),
                          unique_clicks=_capped(uniques.get((sid, ANY), 0), story_clicks.get(sid, 0)))
               for sid in listed if sid in found]
    clicks = sum(row.clicks for row in counts)
    unique = _capped(uniques.get((ANY, ANY), 0), clicks)
    # Subject variants: the edition's subject (variant 0); with a test, its two subjects (1
    # and 2: the rest carry the winner's number, so each line holds every copy of its subject).
    test = ab.get_ab(session, edition_id)
    numbers = (0,) if test is None else (ab.FIRST, ab.ALTERNATIVE)
    sent_by = sent_by_variant(session, edition_id) if test is not None else {0: sent}
    variants = [VariantStats(subject=ab.subject_of(edition, test, number), sent=sent_by.get(number, 0),
                             clicks=variant_clicks.get(number, 0),
                             unique_clicks=_capped(uniques.get((ANY, number), 0), variant_clicks.get(number, 0)))
                for number in numbers]
    stats = EditionStats(id=edition_id, sent=sent, clicks=clicks, unique_clicks=unique,
                         click_rate=round(unique / sent, 4) if sent else 0.0,
                         machine_clicks=sum(row.machine_clicks for row in counts),
                         stories=stories, variants=variants, hours=edition_hours(session, edition_id),
                         ab=_ab_stats(edition, test))
    _add_opens(session, edition, stats)
    return stats


def edition_hours(session: Session, edition_id: int) -> list[HourStats]:
    return [HourStats(hour=row.hour.isoformat(), clicks=row.clicks, machine_clicks=row.machine_clicks)
            for row in session.execute(select(ClickHour.hour, ClickHour.clicks, ClickHour.machine_clicks)
                                       .where(ClickHour.edition_id == edition_id).order_by(ClickHour.hour))]



def _ab_stats(edition: Edition, test: AbTest | None) -> AbStats | None:
    if test is None:
        return None
    arms = ((ab.FIRST, edition.subject, test.sent_1, test.clicks_1, test.unique_1),
            (ab.ALTERNATIVE, test.alternative, test.sent_2, test.clicks_2, test.unique_2))
    return AbStats(
        subject=edition.subject, alternative=test.alternative, share=test.share, wait_minutes=test.wait_minutes,
        test_size=test.test_size, decide_at=test.decide_at.isoformat() if test.decide_at else None,
        decided_at=test.decided_at.isoformat() if test.decided_at else None, winner_variant=test.winner_variant,
        reason_code=test.reason_code, reason=test.reason,
        test=[{"variant": number, "subject": subject, "sent": sent, "clicks": clicks, "unique_clicks": unique,
               "click_rate": round(unique / sent, 4) if sent else 0.0}
              for number, subject, sent, clicks, unique in arms] if test.decided_at else [])


def sent_by_variant(session: Session, edition_id: int) -> dict[int, int]:
    """Copies sent, by the subject they carried."""
    return {row.variant: row.sent for row in session.execute(
        select(Delivery.variant, func.count().label("sent")).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT).group_by(Delivery.variant))
        if row.variant is not None}


def subject_arms(session: Session, edition_id: int) -> tuple[ab.Arm, ab.Arm]:
    """A subject test's numbers now, from the ledger and the click tables (people only:
    machine clicks are kept apart there and never read here)."""
    sent_by = sent_by_variant(session, edition_id)
    clicks = {row.variant: row.clicks or 0 for row in session.execute(
        select(ClickCount.variant, func.sum(ClickCount.clicks).label("clicks"))
        .where(ClickCount.edition_id == edition_id).group_by(ClickCount.variant))}
    uniques = {row.variant: row.unique_clicks for row in session.execute(
        select(ClickUnique.variant, ClickUnique.unique_clicks)
        .where(ClickUnique.edition_id == edition_id, ClickUnique.story_id == ANY))}
    return tuple(ab.Arm(sent=sent_by.get(number, 0), clicks=int(clicks.get(number, 0)),  # type: ignore[return-value]
                        unique_clicks=_capped(uniques.get(number, 0), int(clicks.get(number, 0))))
                 for number in (ab.FIRST, ab.ALTERNATIVE))


def _add_opens(session: Session, edition: Edition, stats: EditionStats) -> None:
    opened = list(session.execute(select(OpenCount.opens, OpenCount.unique_opens)
                                  .where(OpenCount.edition_id == edition.id)))
    if opened or (edition.newsletter is not None and edition.newsletter.open_pixel):
        stats.opens = sum(row.opens for row in opened)
        stats.unique_opens = sum(row.unique_opens for row in opened)


def _capped(estimate: int, clicks: int) -> int:
    """An estimate of clicking copies is never shown above the clicks themselves (the
    estimate is read at each flush, the counts added; they can be a flush apart)."""
    return min(estimate, clicks)


def stats_csv(stats: EditionStats) -> str:
    """One row per story, then one for the whole edition (story_id empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["edition_id", "story_id", "title", "url", "sent", "clicks", "unique_clicks", "click_rate",
                     "machine_clicks"])
    for story in stats.stories:
        rate = round(story.unique_clicks / stats.sent, 4) if stats.sent else 0.0
        writer.writerow([stats.id, story.id, story.title, story.url, stats.sent, story.clicks, story.unique_clicks,
                         rate, ""])
    writer.writerow([stats.id, "", "", "", stats.sent, stats.clicks, stats.unique_clicks, stats.click_rate,
                     stats.machine_clicks])
    return out.getvalue()
