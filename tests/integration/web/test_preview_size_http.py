"""The edition page's preview warns before Gmail clips: over 90 KB of HTML (Gmail hides
everything past 102 KB, the unsubscribe link with it), and says nothing below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from digest.editions import create_edition
from digest.store import Story, utcnow
from tests.support.factories import make_user
from tests.support.stack import Stack
from tests.support.web import EDITOR, signed_in

pytestmark = pytest.mark.integration


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


def edition_with(live: Stack, summary_chars: int) -> int:
    """A draft of five fresh stories whose summaries are `summary_chars` long each."""
    now = utcnow()
    with live.factory.begin() as session:
        session.add_all(Story(url=f"https://news.example.com/long/{n}", title=f"Long story {n}",
                              summary=("Words of a long summary. " * (summary_chars // 25 + 1))[:summary_chars],
                              published_at=now - timedelta(minutes=n), topics=["world"], featured=True)
                        for n in range(5))
    with live.factory.begin() as session:
        return create_edition(session, subject="Long one", send_at=now + timedelta(hours=1), topics=None,
                              allowed_topics=["world"], max_stories=5, window_hours=48, draft=True).id


def test_a_preview_over_90_kb_warns_that_gmail_clips(live: Stack, editor: httpx.Client) -> None:
    heavy = editor.get(f"/editor/editions/{edition_with(live, 19_000)}")

    assert heavy.status_code == 200
    assert "data-clip-warning" in heavy.text and "Gmail clips messages over 102 KB" in heavy.text


def test_an_ordinary_preview_says_nothing_of_size(live: Stack, editor: httpx.Client) -> None:
    light = editor.get(f"/editor/editions/{edition_with(live, 300)}")

    assert light.status_code == 200 and "data-clip-warning" not in light.text
