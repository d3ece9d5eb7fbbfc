"""A story posted to the API gets exactly the checks a feed's JSON item gets (one
function, digest.stories.story_from_fields): what one refuses the other refuses with the
same words, and what one cleans the other cleans."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from digest.stories import ParseError, parse_json
from tests.support.asgi import api_token, app_for_test, request

GOOD = {"url": "https://news.example.com/a", "title": "A headline", "published_at": "2026-11-30T08:00:00Z"}
REFUSED = [
    ({"image_url": "javascript:alert(document.cookie)"}, "image_url: not an http(s) URL"),
    ({"image_url": "data:image/svg+xml,<svg onload=alert(1)>"}, "image_url: not an http(s) URL"),
    ({"url": "https://news.example.com/a\r\nBcc: everyone@example.org"}, "url: not an http(s) URL"),
    ({"url": "https://news.example.com/a\nUnsubscribe: https://evil.example"}, "url: not an http(s) URL"),
    ({"url": "https://news.example.com/a b"}, "url: not an http(s) URL"),
    ({"url": "javascript:alert(1)//https://news.example.com"}, "url: not an http(s) URL"),
    ({"title": "   "}, "title: missing"),
    ({"published_at": "the other day"}, "published_at: not a date"),
]


@pytest.mark.parametrize(("change", "error"), REFUSED)
def test_the_api_refuses_what_a_feed_item_is_refused_for(tmp_path: Path, change: dict[str, Any], error: str) -> None:
    item = {**GOOD, **change}
    with pytest.raises(ParseError, match=f"^item 1: {re.escape(error)}"):
        parse_json(json.dumps([item]).encode())
    app = app_for_test(tmp_path)
    response = request(app, "POST", "/api/v1/stories", headers=api_token(app), json=item)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(error)


def test_the_api_cleans_what_a_feed_item_gets_cleaned(tmp_path: Path) -> None:
    item = {**GOOD, "author": "Jane Doe\r\nBcc: everyone@example.org", "title": "Two\r\nlines",
            "topics": ["Politics", "<b>bold</b>", "world", "x\r\ny"], "summary": "One\r\n\r\nTwo"}
    [from_feed] = parse_json(json.dumps([item]).encode())
    app = app_for_test(tmp_path)
    token = api_token(app)
    added = request(app, "POST", "/api/v1/stories", headers=token, json=item)
    assert added.status_code == 201, added.text
    [stored] = request(app, "GET", "/api/v1/stories", headers=token).json()["stories"]
    assert stored["author"] == from_feed.author == "Jane Doe Bcc: everyone@example.org"
    assert stored["title"] == from_feed.title == "Two lines"
    assert stored["summary"] == from_feed.summary == "One Two"
    assert stored["topics"] == from_feed.topics == ["politics", "world", "x-y"]  # markup dropped, lines joined
