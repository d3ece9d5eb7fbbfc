"""The featured-story selector: which stories an edition carries, and in what order.

`select_stories` is pure and deterministic (same candidates, same answer); `load_candidates`
is the one query that feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from digest.editions.engagement import engagement_order, recent_appearances
from digest.editions.variants import SPARE_STORIES
from digest.store import Edition, EditionCuration, EditionStatus, EditionStory, Story, StoryStatus

DEFAULT_WINDOW_HOURS = 48
DEFAULT_MAX_STORIES = 5
# Editions whose stories count as "already sent" for later editions.
SENT_EDITION_STATUSES = (EditionStatus.SENDING, EditionStatus.SENT, EditionStatus.PAUSED)


@dataclass(frozen=True)
class Candidate:
    id: int
    published_at: datetime
    topics: tuple[str, ...] = ()
    featured: bool = False
    pinned: bool = False
    retracted: bool = False


def select_stories(
    candidates: Iterable[Candidate],
    *,
    send_at: datetime,
    topics: Sequence[str] | None = None,
    max_stories: int = DEFAULT_MAX_STORIES,
    window_hours: int = DEFAULT_WINDOW_HOURS,
    already_sent: frozenset[int] = frozenset(),
    pinned: Sequence[int] = (),
    excluded: frozenset[int] = frozenset(),
    reorder: Callable[[list[Candidate]], list[int]] | None = None,
) -> list[int]:
    """Story ids for an edition: pinned, then featured, then most recent; at most max_stories.

    Every story must be published by send_at, not retracted, not sent in an earlier edition
    and, when the edition has topics, share one of them. Stories an editor pinned to this
    edition (`pinned`, in the editor's order) lead, then stories pinned site-wide; pinned
    stories ignore the recency window; the others must fall within `window_hours` before
    send_at. `excluded` stories never appear. Ties break on id, so the answer never depends
    on the order candidates arrive in. `reorder` (engagement order) re-orders the featured
    stories among themselves and the rest among themselves, given each group in the order
    above; pins and the editor's order stay as they are.
    """
    window_start = send_at - timedelta(hours=window_hours)
    wanted = set(topics) if topics else None

    order = {story_id: index for index, story_id in enumerate(pinned)}

    def eligible(story: Candidate) -> bool:
        if story.retracted or story.id in already_sent or story.id in excluded:
            return False
        if story.published_at > send_at:
            return False
        if wanted is not None and wanted.isdisjoint(story.topics) and story.id not in order:
            return False
        return story.id in order or story.pinned or story.published_at >= window_start

    def rank(story: Candidate) -> tuple[int, int, float, int]:
        if story.id in order:
            return (0, order[story.id], 0.0, 0)
        tier = 1 if story.pinned else 2 if story.featured else 3
        return (tier, 0, -story.published_at.timestamp(), -story.id)

    chosen = sorted(filter(eligible, candidates), key=rank)
    if reorder is not None:
        tiers: dict[int, list[Candidate]] = {}
        for story in chosen:
            tiers.setdefault(rank(story)[0], []).append(story)
        by_id = {story.id: story for story in chosen}
        chosen = [story for tier, group in sorted(tiers.items())
                  for story in (group if tier < 2 else [by_id[i] for i in reorder(group)])]
    return [story.id for story in chosen[: max(0, max_stories)]]


def load_candidates(session: Session, send_at: datetime, window_hours: int,
                    also: Sequence[int] = ()) -> list[Candidate]:
    """Published stories that could qualify: pinned ones, `also` (an edition's own pins),
    and any within the window."""
    window_start = send_at - timedelta(hours=window_hours)
    rows = session.execute(
        select(
            Story.id, Story.published_at, Story.topics, Story.featured, Story.pinned, Story.status
        ).where(
            Story.status == StoryStatus.PUBLISHED,
            Story.published_at <= send_at,
            or_(Story.pinned.is_(True), Story.published_at >= window_start, Story.id.in_(list(also))),
        )
    )
    return [
        Candidate(
            id=row.id,
            published_at=row.published_at,
            topics=tuple(row.topics or ()),
            featured=row.featured,
            pinned=row.pinned,
            retracted=row.status == StoryStatus.RETRACTED,
        )
        for row in rows
    ]


def stories_already_sent(session: Session, except_edition_id: int | None = None,
                         newsletter_id: int | None = None) -> frozenset[int]:
    """Stories carried by earlier editions of the same newsletter (or of one-off editions,
    for a one-off). Across newsletters, repeats are stopped per reader at send time."""
    query = (
        select(EditionStory.story_id)
        .join(Edition, Edition.id == EditionStory.edition_id)
        .where(Edition.status.in_(SENT_EDITION_STATUSES))
    )
    query = query.where(Edition.newsletter_id.is_(None) if newsletter_id is None
                        else Edition.newsletter_id == newsletter_id)
    if except_edition_id is not None:
        query = query.where(Edition.id != except_edition_id)
    return frozenset(session.scalars(query))


def edition_picks(session: Session, edition_id: int) -> tuple[list[int], frozenset[int]]:
    """(pinned story ids in the editor's order, excluded story ids) for an edition."""
    rows = list(session.scalars(select(EditionCuration).where(EditionCuration.edition_id == edition_id)))
    pins = sorted((r for r in rows if r.action == "pin"), key=lambda r: (r.position or 0, r.story_id))
    return [r.story_id for r in pins], frozenset(r.story_id for r in rows if r.action == "exclude")


def engagement_reorder(session: Session, edition: Edition) -> Callable[[list[Candidate]], list[int]] | None:
    """The engagement order for an edition whose newsletter has it on (else None), from the
    newsletter's recent editions (digest.editions.engagement)."""
    if edition.newsletter is None or not edition.newsletter.engagement_order:
        return None
    history, editions = recent_appearances(session, edition.newsletter.id, except_edition_id=edition.id)
    return lambda group: engagement_order([(c.id, c.topics) for c in group], history, editions).ids


def explain_order(session: Session, edition: Edition) -> str | None:
    """Why the edition's stories not pinned come in their order, in words (the topics' rates
    the order follows), when its newsletter orders by engagement; None when it does not."""
    if edition.newsletter is None or not edition.newsletter.engagement_order:
        return None
    history, editions = recent_appearances(session, edition.newsletter.id, except_edition_id=edition.id)
    return engagement_order([], history, editions).explanation()


def select_for_edition(session: Session, edition: Edition, spare: int = 0) -> list[int]:
    """The edition's stories; with `spare`, that many more after them as fill-ins."""
    pinned, excluded = edition_picks(session, edition.id)
    return select_stories(
        load_candidates(session, edition.send_at, edition.window_hours, also=pinned),
        pinned=pinned,
        excluded=excluded,
        send_at=edition.send_at,
        topics=edition.topics,
        max_stories=edition.max_stories + spare,
        window_hours=edition.window_hours,
        already_sent=stories_already_sent(session, except_edition_id=edition.id,
                                          newsletter_id=edition.newsletter_id),
        reorder=engagement_reorder(session, edition),
    )


def freeze_stories(session: Session, edition: Edition) -> list[int]:
    """Choose the edition's stories now, plus spares for readers who already had some
    (digest.editions.variants), and keep that list."""
    story_ids = select_for_edition(session, edition, spare=SPARE_STORIES)
    session.add_all(
        EditionStory(edition_id=edition.id, story_id=story_id, position=position)
        for position, story_id in enumerate(story_ids)
    )
    return story_ids
