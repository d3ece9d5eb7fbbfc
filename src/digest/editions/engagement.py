"""Engagement-aware order (a newsletter's `engagement_order`, off by default): the stories no
editor pinned or ordered go by how readers of this newsletter have lately followed stories of
their topic, instead of newest first.

A topic's click-through is its stories' human clicks over the copies that carried them, in
the newsletter's last RECENT_EDITIONS sent editions. A copy carried an edition's first
`max_stories` stories (spares, given only to readers who already had one, are left out,
clicks and copies alike); the copies are the edition's sent count from its tally. A story of
several topics counts for each; a story is ranked by its best topic.

The rate is shrunk toward the newsletter's mean by additive smoothing (a beta prior centred
on the mean): (clicks + w·mean) / (copies + w), with w worth PRIOR_SENDS story sends of the
newsletter's average size. Why not a full empirical-Bayes fit of w from the spread between
topics: with a handful of topics and 14 editions that estimate swings from zero to infinity
from one edition to the next, and the noise it would measure is not the copies' (thousands
of copies make the binomial noise tiny) but the stories' (one strong headline lifts its
topic for an edition). So the prior counts sends, not copies: a topic sent once moves a
quarter of the way from the mean toward its own rate, one sent nine times most of the way.

`engagement_order` is pure (same history, same answer); `recent_appearances` is the
bounded read that feeds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.editions import tallies
from digest.store import ClickCount, Delivery, DeliveryStatus, Edition, EditionStatus, EditionStory, Story

RECENT_EDITIONS = 14
PRIOR_SENDS = 3.0  # the prior's weight, in story sends of the newsletter's average size
EXPLAINED_TOPICS = 6  # the explanation names at most this many, best first


@dataclass(frozen=True)
class Appearance:
    """One story in one sent edition: its topics, people's clicks on it, copies that carried it."""

    topics: tuple[str, ...]
    clicks: int
    copies: int


@dataclass(frozen=True)
class TopicRate:
    topic: str
    clicks: int
    copies: int
    sends: int
    rate: float  # shrunk toward the newsletter's mean


@dataclass(frozen=True)
class EngagementOrder:
    ids: list[int]  # the stories given, best topic first (ties keep the order given)
    topics: list[TopicRate]  # every topic with a history, best first (what the order follows)
    mean: float  # the newsletter's click-through over the editions read
    editions: int  # how many editions the history covers

    def explanation(self) -> str:
        """In words, for the edition page and the preview."""
        if not self.editions:
            return "No sent edition of this newsletter yet: newest first until readers have clicked."
        source = "the last edition" if self.editions == 1 else f"the last {self.editions} editions"
        if not self.topics:
            return f"No story with a topic was sent in {source}: newest first."
        rates = ", ".join(f"{t.topic} {t.rate * 100:.1f} %" for t in self.topics[:EXPLAINED_TOPICS])
        rates += ", …" if len(self.topics) > EXPLAINED_TOPICS else ""
        return f"{rates}, from {source} (people's clicks per copy, shrunk toward the mean {self.mean * 100:.1f} %)."


def topic_rates(history: Iterable[Appearance], prior_sends: float = PRIOR_SENDS) -> tuple[float, dict[str, TopicRate]]:
    """The newsletter's mean click-through and each topic's, shrunk toward that mean."""
    appearances = [a for a in history if a.copies > 0]
    copies = sum(a.copies for a in appearances)
    mean = sum(a.clicks for a in appearances) / copies if copies else 0.0
    weight = prior_sends * copies / len(appearances) if appearances else 0.0
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for appearance in appearances:
        for topic in set(appearance.topics):
            total = totals[topic]
            total[0] += appearance.clicks
            total[1] += appearance.copies
            total[2] += 1
    return mean, {topic: TopicRate(topic, clicks, seen, sends, (clicks + weight * mean) / (seen + weight))
                  for topic, (clicks, seen, sends) in totals.items()}


def engagement_order(stories: Sequence[tuple[int, Sequence[str]]], history: Iterable[Appearance],
                     editions: int, prior_sends: float = PRIOR_SENDS) -> EngagementOrder:
    """`stories` (id, topics), in the order they would otherwise go, ordered by their best
    topic's shrunk click-through; a story whose topics have no history counts at the mean."""
    mean, rates = topic_rates(history, prior_sends)

    def score(topics: Sequence[str]) -> float:
        return max((rates[t].rate for t in topics if t in rates), default=mean)

    ranked = sorted(range(len(stories)), key=lambda i: (-score(stories[i][1]), i))
    return EngagementOrder(ids=[stories[i][0] for i in ranked],
                           topics=sorted(rates.values(), key=lambda r: (-r.rate, r.topic)),
                           mean=mean, editions=editions)


def recent_appearances(session: Session, newsletter_id: int, except_edition_id: int | None = None,
                       limit: int = RECENT_EDITIONS) -> tuple[list[Appearance], int]:
    """The stories of the newsletter's last `limit` sent editions with their people's clicks
    and copies, and how many editions that is. Four small reads, bounded by `limit`: the
    editions, their tallies (deliveries counted only for one without a tally), their stories,
    and their clicks summed per story in one grouped query."""
    query = (select(Edition.id, Edition.max_stories)
             .where(Edition.newsletter_id == newsletter_id, Edition.status == EditionStatus.SENT)
             .order_by(Edition.send_at.desc(), Edition.id.desc()).limit(limit))
    if except_edition_id is not None:
        query = query.where(Edition.id != except_edition_id)
    editions = {row.id: row.max_stories for row in session.execute(query)}
    if not editions:
        return [], 0
    ids = list(editions)
    sent = {edition_id: counts["sent"] for edition_id, counts in tallies.read(session, ids).items()}
    untallied = [i for i in ids if i not in sent]
    if untallied:
        sent.update({edition_id: count for edition_id, count in session.execute(
            select(Delivery.edition_id, func.count()).where(Delivery.edition_id.in_(untallied),
                                                            Delivery.status == DeliveryStatus.SENT)
            .group_by(Delivery.edition_id))})
    clicks = {(row.edition_id, row.story_id): int(row.clicks) for row in session.execute(
        select(ClickCount.edition_id, ClickCount.story_id, func.sum(ClickCount.clicks).label("clicks"))
        .where(ClickCount.edition_id.in_(ids)).group_by(ClickCount.edition_id, ClickCount.story_id))}
    appearances = [
        Appearance(topics=tuple(row.topics or ()), clicks=clicks.get((row.edition_id, row.story_id), 0),
                   copies=sent.get(row.edition_id, 0))
        for row in session.execute(
            select(EditionStory.edition_id, EditionStory.story_id, EditionStory.position, Story.topics)
            .join(Story, Story.id == EditionStory.story_id)
            .where(EditionStory.edition_id.in_(ids), EditionStory.pulled_at.is_(None)))
        if row.position < editions[row.edition_id]]
    return appearances, len(ids)
