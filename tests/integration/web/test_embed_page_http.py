"""/editor/embed over real HTTP: the snippet `digest embed` prints, per newsletter, with the
topics and the in-place script as choices, an inert preview, and the origins that may
carry it; editors only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from digest.editions import create_newsletter
from tests.support.factories import make_user
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, sign_in

# PostgreSQL only: the library underneath runs on SQLite in its unit tests, and CI keeps
# its half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with httpx.Client(base_url=web, timeout=30, follow_redirects=False) as client:
        assert sign_in(client, EDITOR).status_code == 303
        yield client


def snippet(page: str) -> str:
    [text] = re.findall(r'<textarea id="embed-snippet"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    return unescape(text)


def test_the_snippet_for_a_newsletter_with_topics_and_script(live: Stack, editor: httpx.Client) -> None:
    with live.factory.begin() as session:
        create_newsletter(session, slug="morning", name="Morning Briefing", cron="0 7 * * *", timezone="UTC",
                          allowed_topics=TOPICS)

    plain = editor.get("/editor/embed")
    chosen = editor.get("/editor/embed", params={"newsletter": "morning", "topics": ["world", "science", "nope"],
                                                 "variant": "script"})
    framed = editor.get("/editor/embed", params={"newsletter": "morning", "variant": "iframe"})

    assert plain.status_code == chosen.status_code == 200
    assert 'aria-current="page">Sign-up box' in plain.text and "Morning Briefing</option>" in plain.text
    base = plain.text.count(f'action="{live.base_url}/subscribe"')
    assert base == 0  # escaped in the text area, never live markup on the editor's page
    form = snippet(chosen.text)
    assert f'action="{live.base_url}/subscribe"' in form and 'name="website"' in form
    assert 'value="world"' in form and 'value="science"' in form and "nope" not in form
    assert "Morning Briefing" in form and f'src="{live.base_url}/embed.js"' in form
    assert "embed.js" not in snippet(plain.text)
    assert f'<iframe src="{live.base_url}/embed/frame?newsletter=morning"' in snippet(framed.text)
    assert 'value="iframe" checked' in framed.text
    # Its preview is the form the frame holds, not a frame this page could not show.
    assert "digest-signup" in framed.text.split('class="embed-preview"')[1]
    # The preview is an inert frame: sandboxed with nothing allowed (no script, no form post).
    assert re.search(r'<iframe class="embed-preview" title="[^"]+" sandbox srcdoc="', chosen.text)
    assert "No site may carry it yet" in plain.text  # DIGEST_EMBED_ORIGINS unset on this stack


def test_ops_cannot_open_it(live: Stack, web: str) -> None:
    make_user(live, OPS, "ops")
    with httpx.Client(base_url=web, timeout=30, follow_redirects=False) as client:
        assert sign_in(client, OPS).status_code == 303
        assert client.get("/editor/embed").status_code == 403
