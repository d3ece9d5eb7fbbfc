"""The pure rules of polling: backoff, Retry-After, and what an item becomes under a feed's
mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.feeds import BACKOFF_CAP, Mapping, apply_mapping, next_poll, retry_after
from digest.stories import StoryIn

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("every", "failures", "wait"), [
    (15, 0, timedelta(minutes=15)),
    (15, 1, timedelta(minutes=30)),
    (15, 3, timedelta(minutes=120)),
    (15, 6, BACKOFF_CAP),          # 960 min capped at 6 h
    (15, 400, BACKOFF_CAP),        # no overflow however long it failed
    (1, 2, timedelta(minutes=4)),
    (1440, 1, timedelta(days=1)),  # a daily feed is never polled more often for failing
])
def test_failures_back_off_exponentially_up_to_a_cap(every: int, failures: int, wait: timedelta) -> None:
    assert next_poll(NOW, every, failures) == NOW + wait


@pytest.mark.parametrize(("header", "wait"), [
    ("120", timedelta(seconds=120)),
    (" 0 ", timedelta(0)),
    ("Tue, 01 Dec 2026 12:30:00 GMT", timedelta(minutes=30)),
    ("Mon, 30 Nov 2026 12:00:00 GMT", timedelta(0)),      # a date in the past: no wait
    ("99999999999", timedelta(hours=24)),                 # capped at a day
    ("soon", None), ("", None), (None, None), ("-5", None),
])
def test_retry_after_reads_seconds_or_a_date(header: str | None, wait: timedelta | None) -> None:
    assert retry_after(header, NOW) == wait


def story(**fields: object) -> StoryIn:
    base: dict[str, object] = {"url": "https://news.example.com/a", "title": "A", "published_at": NOW,
                               "topics": ["local-news", "politics"], "categories": ["Local News", "Politics"]}
    return StoryIn(**{**base, **fields})  # type: ignore[arg-type]


def test_without_a_map_the_feeds_own_topics_stay_and_default_topics_are_added() -> None:
    filed = apply_mapping(story(), Mapping(topics=("world",)))
    assert filed.topics == ["local-news", "politics", "world"] and filed.featured is None


def test_a_category_map_files_categories_under_topics_and_drops_the_unmapped() -> None:
    filed = apply_mapping(story(), Mapping(category_topics={"politics": "world"}))
    assert filed.topics == ["world"]


def test_a_featured_feed_or_category_marks_the_story_featured() -> None:
    assert apply_mapping(story(), Mapping(featured=True)).featured is True
    assert apply_mapping(story(), Mapping(featured_categories=("local news",))).featured is True
    assert apply_mapping(story(), Mapping(featured_categories=("sport",))).featured is None


def test_a_subscription_is_asked_for_when_there_is_a_hub_and_no_live_lease() -> None:
    from digest.feeds import needs_subscription

    assert not needs_subscription(None, None, None, None, NOW)
    assert needs_subscription("https://hub.example/", None, None, None, NOW)
    assert not needs_subscription("https://hub.example/", "requested", None, NOW - timedelta(minutes=59), NOW)
    assert needs_subscription("https://hub.example/", "failed", None, NOW - timedelta(minutes=61), NOW)
    assert not needs_subscription("https://hub.example/", "verified", NOW + timedelta(days=2), NOW, NOW)
    assert needs_subscription("https://hub.example/", "verified", NOW + timedelta(hours=23), NOW, NOW)


@pytest.mark.parametrize(("header", "ok"), [
    ("sha256=4e2a0d3fdc8ab1d9d12d9e03d8ef9c5e61ab6b0dd0a6e5b6f0c0bd03b1be4b7c", False),  # another body's
    (None, False), ("", False), ("sha256", False), ("md5=abc", False),
])
def test_a_push_signature_must_be_the_bodys_hmac(header: str | None, ok: bool) -> None:
    import hashlib
    import hmac

    from digest.feeds import signature_matches

    body = b"<rss/>"
    for method in ("sha1", "sha256", "sha384", "sha512"):
        good = f"{method}={hmac.new(b'secret', body, getattr(hashlib, method)).hexdigest()}"
        assert signature_matches("secret", body, good)
        assert signature_matches("secret", body, good.upper().replace(method.upper(), method))
        assert not signature_matches("other", body, good)
        assert not signature_matches(None, body, good)
    assert signature_matches("secret", body, header) is ok
