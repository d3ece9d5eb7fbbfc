"""A feed's settings are checked all at once, address included: every bad field named."""

from __future__ import annotations

import pytest

from digest.feeds import FeedError, FeedSettings, check_feed

TOPICS = ["politics", "world"]


def test_every_bad_field_is_named_at_once_with_the_address() -> None:
    settings = FeedSettings(every_minutes=0, topics=["astrology"], category_topics={"World": "mars"})
    with pytest.raises(FeedError) as caught:
        check_feed("ftp://news.example.com/rss", settings, TOPICS)

    assert set(caught.value.fields) == {"url", "every_minutes", "topics", "category_topics"}
    assert caught.value.message.startswith("url: not an http(s) URL: 'ftp://news.example.com/rss'; every_minutes:")


def test_good_settings_come_back_checked() -> None:
    values = check_feed(" https://news.example.com/rss ", FeedSettings(every_minutes=30, topics="World, politics",
                                                                       category_topics={" Sport ": "World"}), TOPICS)
    assert values == {"url": "https://news.example.com/rss", "every_minutes": 30, "topics": ["world", "politics"],
                      "category_topics": {"sport": "world"}}
    assert check_feed(None, FeedSettings(), TOPICS) == {}
