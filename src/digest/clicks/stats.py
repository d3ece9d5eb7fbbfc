"""An edition's results, one function for the command line, the API, the CSV and the
editor's page: what was sent, what people clicked (machines apart) and the unique count.

`clicks` and `machine_clicks` cover every link of the edition (the masthead too);
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
from digest.store import ANY, ClickCount, ClickUnique, Delivery, DeliveryStatus, Edition, EditionStory, OpenCount, Story


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
class EditionStats:
    id: int
    sent: int
    clicks: int
    unique_clicks: int
    click_rate: float
    machine_clicks: int
    stories: list[StoryStats] = field(default_factory=list)
    variants: list[VariantStats] = field(default_factory=list)
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
    # Subject variants: one (the edition's subject) until subject tests exist.
    variants = [VariantStats(subject=edition.subject, sent=sent, clicks=variant_clicks.get(0, 0),
                             unique_clicks=_capped(uniques.get((ANY, 0), 0), variant_clicks.get(0, 0)))]
    stats = EditionStats(id=edition_id, sent=sent, clicks=clicks, unique_clicks=unique,
                         click_rate=round(unique / sent, 4) if sent else 0.0,
                         machine_clicks=sum(row.machine_clicks for row in counts),
                         stories=stories, variants=variants)
    _add_opens(session, edition, stats)
    return stats


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
