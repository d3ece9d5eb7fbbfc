"""The feeds page's words: the category map an editor types, and how far a time is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import Invalid
from digest.web.pages.editor.feeds import parse_mapping, relative

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_map_is_read_line_by_line_skipping_blanks_and_comments() -> None:
    text = "World News = world\n\n  # sport later\nPolitics=politics\r\n  Tech & Science  =  technology  "
    assert parse_mapping(text) == {"World News": "world", "Politics": "politics", "Tech & Science": "technology"}
    assert parse_mapping("") == {}


@pytest.mark.parametrize(("text", "line"), [
    ("World News = world\nSport", "Line 2 (“Sport”)"),
    ("= world", "Line 1 (“= world”)"),
    ("World =  ", "Line 1 (“World =”)"),
    ("a = b = c", "Line 1 (“a = b = c”)"),
])
def test_a_line_that_is_not_category_equals_topic_is_named(text: str, line: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_mapping(text)
    assert caught.value.message == f"{line} is not “Category = topic”."


@pytest.mark.parametrize(("offset", "words"), [
    (timedelta(seconds=-20), "just now"),
    (timedelta(seconds=20), "within a minute"),
    (timedelta(minutes=-1), "1 minute ago"),
    (timedelta(minutes=14, seconds=59), "in 15 minutes"),
    (timedelta(hours=-3), "3 hours ago"),
    (timedelta(days=2), "in 2 days"),
])
def test_relative_times_read_as_words(offset: timedelta, words: str) -> None:
    assert relative(NOW + offset, NOW) == words
    assert relative(None, NOW) == "—"
