"""The edition page's test form over real HTTP: a refused test comes back as the page with
the addresses as typed and the reason at the field (400 for bad input, 502 when the mail
server refuses it), the form posting to #test so the browser lands there; a sent test
lands at #test with its addresses kept. (In the browser, in view: test_feedback_browser.)"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from digest.store.models import Edition, EditionStatus

from tests.support.factories import due_edition, make_user, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR, csrf_token, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
def editor(live: Stack, client: httpx.Client) -> httpx.Client:
    make_user(live, EDITOR, "editor")
    assert sign_in(client, EDITOR).status_code == 303
    return client


def draft(live: Stack) -> str:
    seed_stories(live.factory)
    edition_id = due_edition(live.factory, "Weekend reads")
    with live.factory.begin() as session:  # a draft: editable, never released under the test
        session.execute(update(Edition).where(Edition.id == edition_id).values(status=EditionStatus.DRAFT))
    return f"/editor/editions/{edition_id}"


def post(editor: httpx.Client, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    return editor.post(f"{page}/{action}", data={"csrf_token": csrf_token(editor.get(page).text), **data})


def field_value(html: str, field_id: str) -> str:
    found = re.search(rf'<input id="{field_id}"[^>]*value="([^"]*)"', html)
    assert found, field_id
    return unescape(found.group(1))


def error_at(html: str, field_id: str) -> str:
    found = re.search(rf'id="{field_id}-error"[^>]*>([^<]*)<', html)
    assert found, f"no error at {field_id}"
    return unescape(found.group(1))


def test_a_sent_test_lands_at_the_form_with_its_addresses(live: Stack, editor: httpx.Client) -> None:
    page = draft(live)
    sent = post(editor, page, "test", {"email": "desk@example.org", "as_email": "ann@example.org"})
    assert sent.status_code == 303
    location = urlsplit(sent.headers["location"])
    assert location.fragment == "test"
    assert parse_qs(location.query) == {"done": ["test-sent"], "test_to": ["desk@example.org"],
                                        "test_as": ["ann@example.org"]}
    landed = editor.get(sent.headers["location"]).text
    assert re.search(r'<section aria-labelledby="test-h" id="test">.*?<p class="ok" role="status">Test sent.</p>',
                     landed, re.DOTALL)
    assert field_value(landed, "test-email") == "desk@example.org"
    assert field_value(landed, "test-as") == "ann@example.org"
    assert landed.count('class="ok" role="status"') == 1
    assert f'action="{page}/test#test"' in landed and f'action="{page}/note#note"' in landed


@pytest.mark.parametrize(("data", "status", "field", "message"), [
    ({"email": "desk@localhost"}, 400, "test-email", "The part after the @-sign is not valid"),
    ({"email": ""}, 400, "test-email", "Give an address to send the test to"),
    ({"email": "desk@example.org", "as_email": "ann@"}, 400, "test-as", "invalid email address"),
    ({"email": "reject-desk@example.org"}, 502, "test-email", "The test was not sent: the mail server did not take it"),
])
def test_a_refused_test_comes_back_with_the_addresses_and_the_reason_at_the_field(
        live: Stack, editor: httpx.Client, data: dict[str, str], status: int, field: str, message: str) -> None:
    page = draft(live)
    refused = post(editor, page, "test", data)
    assert refused.status_code == status
    assert message in error_at(refused.text, field)
    assert field_value(refused.text, "test-email") == data["email"]
    assert 'aria-invalid="true"' in refused.text and "autofocus" in refused.text
    if "as_email" in data:
        assert field_value(refused.text, "test-as") == data["as_email"]
    assert "desk@localhost" not in live.smtp.by_recipient()
