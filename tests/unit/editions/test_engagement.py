"""engagement_order: topics' click-through shrunk toward the newsletter's mean, the order it
gives, its words; and select_stories with it: pins, the editor's order and exclusions win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.editions.engagement import Appearance, engagement_order, topic_rates
from digest.editions.selector import Candidate, select_stories

SEND_AT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def sends(topic: str, times: int, clicks: int, copies: int = 1000) -> list[Appearance]:
    return [Appearance(topics=(topic,), clicks=clicks, copies=copies)] * times


def test_rates_are_clicks_per_copy_shrunk_toward_the_mean_by_three_average_sends() -> None:
    history = sends("politics", 6, 60) + sends("world", 6, 20)
    mean, rates = topic_rates(history)
    assert mean == pytest.approx(0.04)
    # weight: 3 sends of 1000 copies at the mean (120 clicks in 3000 copies)
    assert rates["politics"].rate == pytest.approx((360 + 120) / (6000 + 3000))
    assert rates["world"].rate == pytest.approx((120 + 120) / (6000 + 3000))
    assert (rates["politics"].sends, rates["politics"].clicks, rates["politics"].copies) == (6, 360, 6000)


def test_a_topic_sent_once_is_not_trusted_over_one_sent_often() -> None:
    # Science: one send at 9 %, a lucky headline; politics: twelve sends at 6 %; world 2 %.
    history = sends("science", 1, 90) + sends("politics", 12, 60) + sends("world", 12, 20)
    mean, rates = topic_rates(history)
    assert mean == pytest.approx(1050 / 25000)
    # One send of average size moves a quarter of the way from the mean toward its own rate.
    assert rates["science"].rate == pytest.approx(mean + (0.09 - mean) / 4)
    assert rates["politics"].rate == pytest.approx((720 + 3000 * mean) / (12000 + 3000))
    # Without shrinkage science would lead; with it, politics' long record does.
    order = engagement_order([(1, ("science",)), (2, ("politics",)), (3, ("world",))], history, editions=14)
    assert order.ids == [2, 1, 3]
    unshrunk = engagement_order([(1, ("science",)), (2, ("politics",)), (3, ("world",))], history,
                                editions=14, prior_sends=0)
    assert unshrunk.ids == [1, 2, 3]


def test_a_topic_never_sent_counts_at_the_mean_and_ties_keep_the_given_order() -> None:
    history = sends("politics", 5, 50) + sends("world", 5, 10)  # mean 3 %
    order = engagement_order([(1, ("world",)), (2, ("sport",)), (3, ()), (4, ("politics",)), (5, ("sport",))],
                             history, editions=10)
    assert order.ids == [4, 2, 3, 5, 1]


def test_a_story_goes_by_its_best_topic() -> None:
    history = sends("politics", 5, 50) + sends("world", 5, 10)
    order = engagement_order([(1, ("world",)), (2, ("world", "politics"))], history, editions=10)
    assert order.ids == [2, 1]


def test_the_explanation_names_the_topics_their_rates_and_the_editions() -> None:
    history = sends("politics", 14, 41) + sends("world", 14, 23)
    order = engagement_order([(1, ("world",)), (3, ("sport",))], history, editions=14)
    words = order.explanation()  # every topic with a history, those of stories not shown too
    # mean 896 / 28000 = 3.2 %; politics (574 + 96) / 17000, world (322 + 96) / 17000
    assert words.startswith("politics 3.9 %, world 2.5 %, from the last 14 editions")
    assert "sport" not in words and "3.2 %" in words
    assert "the last edition " in engagement_order([(1, ("world",))], sends("world", 1, 5), editions=1).explanation()
    assert "No sent edition" in engagement_order([(1, ("world",))], [], editions=0).explanation()
    many = [a for i in range(8) for a in sends(f"topic{i}", 1, 10 * i)]  # mean 3.5 %: a quarter of the way
    assert engagement_order([], many, editions=8).explanation().startswith(
        "topic7 4.4 %, topic6 4.1 %, topic5 3.9 %, topic4 3.6 %, topic3 3.4 %, topic2 3.1 %, …, from the last 8")
    assert engagement_order([(1, ("world",))], [], editions=0).ids == [1]


def test_no_copies_no_rates() -> None:
    mean, rates = topic_rates([Appearance(topics=("world",), clicks=3, copies=0)])
    assert (mean, rates) == (0.0, {})


def story(id: int, hours_ago: float, topics: tuple[str, ...], *, featured: bool = False,
          pinned: bool = False) -> Candidate:
    return Candidate(id=id, published_at=SEND_AT - timedelta(hours=hours_ago), topics=topics, featured=featured,
                     pinned=pinned)


HISTORY = sends("politics", 6, 60) + sends("world", 6, 20) + sends("sport", 6, 5)


def by_clicks(group: list[Candidate]) -> list[int]:
    return engagement_order([(c.id, c.topics) for c in group], HISTORY, editions=6).ids


def test_select_stories_orders_the_rest_by_clicks_after_pins_and_within_featured() -> None:
    candidates = [story(1, 1, ("sport",)), story(2, 2, ("world",)), story(3, 3, ("politics",)),
                  story(4, 4, ("sport",), featured=True), story(5, 5, ("politics",), featured=True),
                  story(6, 6, ("sport",), pinned=True), story(7, 7, ("sport",)), story(8, 8, ("politics",))]
    plain = select_stories(candidates, send_at=SEND_AT, max_stories=10)
    assert plain == [6, 4, 5, 1, 2, 3, 7, 8]
    ordered = select_stories(candidates, send_at=SEND_AT, max_stories=10, reorder=by_clicks)
    # Site-wide pin first; featured among themselves; the rest: politics, world, sport (newest first in each).
    assert ordered == [6, 5, 4, 3, 8, 2, 1, 7]
    # The editor's order leads as given, exclusions never appear, the limit applies after the order.
    curated = select_stories(candidates, send_at=SEND_AT, max_stories=5, reorder=by_clicks,
                             pinned=[7, 1], excluded=frozenset({3}))
    assert curated == [7, 1, 6, 5, 4]
    assert select_stories(candidates, send_at=SEND_AT, max_stories=6, reorder=by_clicks,
                          excluded=frozenset({3, 5})) == [6, 4, 8, 2, 1, 7][:6]
