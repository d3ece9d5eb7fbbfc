"""Pins over an edition's limit are kept, shown apart, and never turned into something else
by moving the stories above them."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from digest.store import Edition, EditionCuration, EditionStatus, utcnow
from tests.support.factories import make_user, seed_stories
from tests.support.queries import story_ids
from tests.support.stack import Stack
from tests.support.web import EDITOR, csrf_token, signed_in

pytestmark = pytest.mark.integration


@pytest.fixture
def editor(live: Stack, web: str) -> httpx.Client:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client  # type: ignore[misc]


def press(client: httpx.Client, page: str, action: str) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_token(client.get(page).text)})


def test_a_pin_over_the_limit_is_kept_shown_apart_and_survives_a_move(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    with live.factory.begin() as session:
        edition = Edition(subject="Two at most", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=2,
                          window_hours=24 * 365 * 10)
        session.add(edition)
    page = f"/editor/editions/{edition.id}"
    first, second, third = sorted(story_ids(live).values())[:3]
    for story in (first, second, third):
        assert press(editor, page, f"{page}/stories/{story}/pin").status_code == 303
    shown = editor.get(page).text
    assert "Pinned, but over the limit of 2" in shown
    overflow = shown.split('id="overflow"')[1].split("</ol>")[0]
    title = {v: k for k, v in story_ids(live).items()}[third]
    assert title in overflow and title not in shown.split('id="overflow"')[0].split('class="story-list"')[1]

    assert press(editor, page, f"{page}/stories/{second}/up").status_code == 303
    with live.factory() as session:
        pins = session.scalars(select(EditionCuration).where(EditionCuration.edition_id == edition.id,
                                                             EditionCuration.action == "pin")
                               .order_by(EditionCuration.position)).all()
    assert [p.story_id for p in pins] == [second, first, third]
