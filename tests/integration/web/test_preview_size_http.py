"""The edition page's preview warns before Gmail clips: over 90 KB of HTML (Gmail hides
everything past 102 KB, the unsubscribe link with it), and says nothing below; the API's
preview carries the size and the same warning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from digest import staff
from digest.editions import create_edition
from digest.store import Story, utcnow
from tests.support.factories import make_user
from tests.support.stack import Stack
from tests.support.web import EDITOR, PASSWORD, signed_in

pytestmark = pytest.mark.integration


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


def edition_with(live: Stack, summary_chars: int, topic: str = "world") -> int:
    """A draft of five fresh stories on `topic` whose summaries are `summary_chars` long each."""
    now = utcnow()
    with live.factory.begin() as session:
        session.add_all(Story(url=f"https://news.example.com/long/{summary_chars}/{n}", title=f"Long story {n}",
                              summary=("Words of a long summary. " * (summary_chars // 25 + 1))[:summary_chars],
                              published_at=now - timedelta(minutes=n), topics=[topic], featured=True)
                        for n in range(5))
    with live.factory.begin() as session:
        return create_edition(session, subject="Long one", send_at=now + timedelta(hours=1), topics=topic,
                              allowed_topics=["world", "politics"], max_stories=5, window_hours=48, draft=True).id


def test_a_preview_over_90_kb_warns_that_gmail_clips(live: Stack, editor: httpx.Client) -> None:
    heavy = editor.get(f"/editor/editions/{edition_with(live, 19_000)}")

    assert heavy.status_code == 200
    assert "data-clip-warning" in heavy.text and "Gmail clips messages over 102 KB" in heavy.text


def test_an_ordinary_preview_says_nothing_of_size(live: Stack, editor: httpx.Client) -> None:
    light = editor.get(f"/editor/editions/{edition_with(live, 300)}")

    assert light.status_code == 200 and "data-clip-warning" not in light.text


def test_the_apis_preview_carries_the_size_and_the_warning(live: Stack, web: str) -> None:
    heavy, light = edition_with(live, 19_000), edition_with(live, 300, topic="politics")
    with live.factory.begin() as session:
        user = staff.create_user(session, "script@example.org", "ops", PASSWORD)
        _, token = staff.create_api_token(session, user, "preview")

    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20) as api:
        big, small = api.get(f"/editions/{heavy}/preview").json(), api.get(f"/editions/{light}/preview").json()
    assert big["html_bytes"] == len(big["html"].encode()) > 90 * 1024
    assert big["clip_warning"].startswith(f"This edition's HTML is {big['html_bytes'] / 1024:.0f} KB")
    assert small["html_bytes"] < 90 * 1024 and small["clip_warning"] is None
