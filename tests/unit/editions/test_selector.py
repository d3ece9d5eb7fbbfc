"""select_stories: pinned, then featured, then most recent; a table of cases, then the
database half (load_candidates, stories_already_sent) against a real schema."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from digest.editions.selector import Candidate, select_for_edition, select_stories
from digest.store.models import Edition, EditionStatus, EditionStory, Story, StoryStatus

SEND_AT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def story(id: int, hours_ago: float, *, featured: bool = False, pinned: bool = False,
          topics: tuple[str, ...] = (), retracted: bool = False) -> Candidate:
    return Candidate(id=id, published_at=SEND_AT - timedelta(hours=hours_ago), topics=topics,
                     featured=featured, pinned=pinned, retracted=retracted)


# Each case: candidates, keyword arguments for select_stories, the ids expected in order.
CASES: dict[str, tuple[list[Candidate], dict[str, Any], list[int]]] = {
    "pinned before featured before recent": (
        [story(1, 1), story(2, 30, featured=True), story(3, 40, pinned=True), story(4, 2)],
        {}, [3, 2, 1, 4]),
    "newest first within a tier": (
        [story(1, 10, featured=True), story(2, 5, featured=True), story(3, 20, featured=True)],
        {}, [2, 1, 3]),
    "pinned and featured counts as pinned": (
        [story(1, 1, featured=True), story(2, 2, featured=True, pinned=True)], {}, [2, 1]),
    "default window is 48 hours": (
        [story(1, 47.9), story(2, 48), story(3, 48.1), story(4, 24 * 30, featured=True)],
        {}, [1, 2]),
    "a wider window reaches older stories": (
        [story(1, 47), story(2, 72, featured=True)], {"window_hours": 73}, [2, 1]),
    "a narrower window drops them": (
        [story(1, 5), story(2, 7, featured=True)], {"window_hours": 6}, [1]),
    "pinned ignores the window": (
        [story(1, 1), story(2, 24 * 400, pinned=True)], {}, [2, 1]),
    "topic filter keeps stories sharing a topic": (
        [story(1, 1, topics=("politics",)), story(2, 2, topics=("sports",)),
         story(3, 3, topics=("world", "politics")), story(4, 4)],
        {"topics": ["politics", "culture"]}, [1, 3]),
    "topic filter applies to pinned stories too": (
        [story(1, 1, topics=("sports",), pinned=True), story(2, 2, topics=("world",))],
        {"topics": ["world"]}, [2]),
    "no topics means every story": (
        [story(1, 1, topics=("sports",)), story(2, 2)], {"topics": []}, [1, 2]),
    "retracted never, even pinned": (
        [story(1, 1, retracted=True), story(2, 2, retracted=True, pinned=True), story(3, 3)],
        {}, [3]),
    "already sent never, even pinned": (
        [story(1, 1, pinned=True), story(2, 2, featured=True), story(3, 3)],
        {"already_sent": frozenset({1, 2})}, [3]),
    "published after send_at never, even pinned": (
        [story(1, -0.01), story(2, -5, pinned=True), story(3, 0)], {}, [3]),
    "at most max_stories": (
        [story(i, i) for i in range(1, 11)], {"max_stories": 3}, [1, 2, 3]),
    "max_stories keeps the best, not the first given": (
        [story(1, 1), story(2, 2), story(3, 3, featured=True), story(4, 4, pinned=True)],
        {"max_stories": 2}, [4, 3]),
    "default max is 5": (
        [story(i, i) for i in range(1, 9)], {}, [1, 2, 3, 4, 5]),
    "nothing qualifies": (
        [story(1, 100), story(2, 1, retracted=True)], {}, []),
    "equal times break on id": (
        [story(5, 3), story(2, 3), story(9, 3), story(7, 3, featured=True), story(4, 3, featured=True)],
        {}, [7, 4, 9, 5, 2]),
}


@pytest.mark.parametrize(("candidates", "options", "expected"), CASES.values(), ids=CASES.keys())
def test_select_stories(candidates: list[Candidate], options: dict[str, Any], expected: list[int]) -> None:
    assert select_stories(candidates, send_at=SEND_AT, **options) == expected


@pytest.mark.parametrize(("candidates", "options", "expected"), CASES.values(), ids=CASES.keys())
def test_select_stories_ignores_input_order(candidates: list[Candidate], options: dict[str, Any],
                                            expected: list[int]) -> None:
    rng = random.Random(len(candidates))
    for _ in range(20):
        shuffled = rng.sample(candidates, len(candidates))
        assert select_stories(shuffled, send_at=SEND_AT, **options) == expected


def test_many_ties_are_deterministic() -> None:
    # 40 stories, four timestamps, two tiers: only the id can order each group.
    candidates = [story(i, i % 4, featured=i % 3 == 0, topics=("world",)) for i in range(1, 41)]
    expected = select_stories(candidates, send_at=SEND_AT, max_stories=40)
    rng = random.Random(1)

    for _ in range(50):
        shuffled = rng.sample(candidates, len(candidates))
        assert select_stories(iter(shuffled), send_at=SEND_AT, max_stories=40) == expected
    assert len(expected) == 40
    featured = [c.id for c in candidates if c.featured]
    assert set(expected[: len(featured)]) == set(featured)


def test_candidates_can_be_a_one_shot_iterator() -> None:
    assert select_stories(iter([story(1, 1), story(2, 2)]), send_at=SEND_AT) == [1, 2]


# ------------------------------------------------------------------ against the store


def add_story(session: Session, key: str, hours_ago: float, **fields: Any) -> int:
    row = Story(url=f"https://news.example.com/{key}", title=key, published_at=SEND_AT - timedelta(hours=hours_ago),
                topics=fields.pop("topics", []), **fields)
    session.add(row)
    session.flush()
    return row.id


def add_edition(session: Session, status: EditionStatus, story_ids: tuple[int, ...] = ()) -> Edition:
    edition = Edition(subject="s", send_at=SEND_AT, status=status, max_stories=5, window_hours=48)
    session.add(edition)
    session.flush()
    session.add_all(EditionStory(edition_id=edition.id, story_id=sid, position=i) for i, sid in enumerate(story_ids))
    session.flush()
    return edition


def test_select_for_edition_reads_the_store(session: Session) -> None:
    recent = add_story(session, "recent", 1)
    featured = add_story(session, "featured", 10, featured=True)
    old_pinned = add_story(session, "old-pinned", 24 * 200, pinned=True)
    add_story(session, "old", 24 * 5, featured=True)
    add_story(session, "retracted", 2, status=StoryStatus.RETRACTED, pinned=True)
    add_story(session, "future", -1, featured=True)
    sports = add_story(session, "sports", 3, topics=["sports"])
    edition = add_edition(session, EditionStatus.SCHEDULED)

    assert select_for_edition(session, edition) == [old_pinned, featured, recent, sports]


@pytest.mark.parametrize(
    ("earlier_status", "excluded"),
    [(EditionStatus.SENT, True), (EditionStatus.SENDING, True), (EditionStatus.PAUSED, True),
     (EditionStatus.CANCELLED, False), (EditionStatus.DRAFT, False), (EditionStatus.SCHEDULED, False)],
)
def test_stories_sent_in_an_earlier_edition_are_not_repeated(session: Session, earlier_status: EditionStatus,
                                                             excluded: bool) -> None:
    sent = add_story(session, "sent", 1, featured=True)
    fresh = add_story(session, "fresh", 2)
    add_edition(session, earlier_status, (sent,))
    edition = add_edition(session, EditionStatus.SCHEDULED)

    expected = [fresh] if excluded else [sent, fresh]
    assert select_for_edition(session, edition) == expected


def test_an_editions_own_frozen_stories_do_not_count_as_sent(session: Session) -> None:
    lead = add_story(session, "lead", 1, featured=True)
    edition = add_edition(session, EditionStatus.SENDING, (lead,))

    assert select_for_edition(session, edition) == [lead]
