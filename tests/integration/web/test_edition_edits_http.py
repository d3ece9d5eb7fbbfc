"""Changing an edition before it goes, over real HTTP (`digest serve` under uvicorn, the real
database, Redis and the session's Celery worker): its subject, send time and limits on the
edit page and through `PATCH /api/v1/editions/{id}`, bad input shown at its field (a 4xx,
nothing changed, no audit row), a frozen edition refused with a 409, a scheduled edition
moved to a time that has passed sent at once, and times shown in one named zone with UTC
on hover.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.editions import create_newsletter
from digest.store.models import AuditEntry, Edition, EditionStatus, utcnow
from tests.support.factories import make_user, seed_readers, seed_stories
from tests.support.mail import wait_for_mail
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, PASSWORD, csrf_token, h1, signed_in

pytestmark = pytest.mark.integration

SEND_TIMEOUT_SECONDS = 15  # no beat runs here: only the action's own release can send it
DRAFT_AT = datetime(2031, 1, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[httpx.Client]:
    with live.factory.begin() as session:
        user = staff.create_user(session, "script@example.org", "editor", PASSWORD)
        _, token = staff.create_api_token(session, user, "edits")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20) as client:
        yield client


def an_edition(live: Stack, status: EditionStatus = EditionStatus.DRAFT, send_at: datetime = DRAFT_AT,
               **columns: object) -> int:
    with live.factory.begin() as session:
        edition = Edition(subject="Morning", send_at=send_at, status=status, max_stories=5, window_hours=48,
                          **columns)
        session.add(edition)
        session.flush()
        return edition.id


def row(live: Stack, edition_id: int) -> Edition:
    with live.factory() as session:
        return session.get_one(Edition, edition_id)


def audit(live: Stack) -> list[tuple[str, object]]:
    with live.factory() as session:
        return [(r.action, r.detail) for r in session.scalars(
            select(AuditEntry).where(AuditEntry.action != "login").order_by(AuditEntry.id))]


def form_values(html: str) -> dict[str, str]:
    """What the edit form would post as it stands: its inputs' values and the chosen newsletter."""
    values = dict(re.findall(r'<input id="\w+" name="(\w+)"[^>]*? value="([^"]*)"', html))
    chosen = re.search(r'<option value="(\d*)" selected>', html)
    values["newsletter_id"] = chosen.group(1) if chosen else ""
    return {name: unescape(value) for name, value in values.items()}


def field_errors(html: str) -> dict[str, str]:
    return {name: unescape(text) for name, text in re.findall(r'<p class="field-error" id="(\w+)-error">([^<]*)<',
                                                               html)}


def save(client: httpx.Client, edition_id: int, **changes: str) -> httpx.Response:
    """Open the edit page and post its form with `changes` typed over what it shows."""
    page = client.get(f"/editor/editions/{edition_id}/edit")
    assert page.status_code == 200, page.text
    return client.post(f"/editor/editions/{edition_id}/edit",
                       data={**form_values(page.text), **changes, "csrf_token": csrf_token(page.text)})


# ------------------------------------------------------------------ the edit page


def test_an_editor_changes_subject_time_and_limits(live: Stack, editor: httpx.Client) -> None:
    edition_id = an_edition(live)
    page = editor.get(f"/editor/editions/{edition_id}")
    assert f'href="/editor/editions/{edition_id}/edit"' in page.text

    form = editor.get(f"/editor/editions/{edition_id}/edit")
    assert form.status_code == 200 and h1(form.text) == "Edit “Morning”"
    assert form_values(form.text) == {"subject": "Morning", "send_at": "2031-01-01T07:00", "timezone": "UTC",
                                      "max_stories": "5", "window_hours": "48", "newsletter_id": "",
                                      "ab_subject": "", "ab_share": "20", "ab_wait": "60"}  # no subject test yet
    assert "Times on this page are in UTC" in form.text

    response = save(editor, edition_id, subject="Evening  briefing", send_at="2031-06-01T09:30",
                    timezone="Europe/Kyiv", max_stories="3", window_hours="72")
    assert response.status_code == 303
    assert response.headers["location"] == f"/editor/editions/{edition_id}?done=edited"
    edited = row(live, edition_id)
    assert (edited.subject, edited.send_at.isoformat(), edited.max_stories, edited.window_hours) == (
        "Evening briefing", "2031-06-01T06:30:00+00:00", 3, 72)
    assert edited.status == EditionStatus.DRAFT
    assert audit(live) == [("edition.edit", {
        "changed": ["subject", "send_at", "max_stories", "window_hours"],
        "subject": "Evening briefing", "subject_was": "Morning",
        "send_at": "2031-06-01T06:30:00+00:00", "send_at_was": "2031-01-01T07:00:00+00:00",
        "max_stories": 3, "max_stories_was": 5, "window_hours": 72, "window_hours_was": 48})]
    page = editor.get(f"/editor/editions/{edition_id}?done=edited")
    assert "Edition saved." in page.text and h1(page.text) == "Evening briefing"

    # Posted again as shown (in UTC, to the minute), the form changes nothing.
    again = save(editor, edition_id)
    assert again.headers["location"] == f"/editor/editions/{edition_id}?done=unchanged"
    assert row(live, edition_id).send_at == edited.send_at
    assert audit(live)[-1] == ("edition.edit", {"changed": []})


BAD_FIELDS = [
    ({"subject": "Hello\r\nBcc: everyone@example.org"}, "subject", "single line", 400),
    ({"subject": "   "}, "subject", "subject must not be empty", 400),
    ({"send_at": "next tuesday"}, "send_at", "not an ISO 8601 date-time", 400),
    ({"send_at": ""}, "send_at", "Give a send time", 400),
    ({"timezone": "Europe/Atlantis"}, "timezone", "unknown time zone", 400),
    ({"send_at": "2031-06-01T09:30+02:00"}, "timezone", "not both", 400),
    ({"max_stories": "0"}, "max_stories", "max stories must be between 1 and 50", 400),
    ({"max_stories": "lots"}, "max_stories", "Most stories must be a whole number", 400),
    ({"window_hours": "0"}, "window_hours", "at least one hour", 400),
    ({"newsletter_id": "morning"}, "newsletter_id", "Choose a newsletter from the list", 400),
    ({"newsletter_id": "999999"}, "newsletter_id", "no newsletter 999999", 404),
]


def test_bad_input_comes_back_at_its_field_and_changes_nothing(live: Stack, editor: httpx.Client) -> None:
    edition_id = an_edition(live)
    for typed, field, message, status in BAD_FIELDS:
        response = save(editor, edition_id, **typed)
        assert response.status_code == status, (typed, response.status_code)
        errors = field_errors(response.text)
        assert list(errors) == [field] and message in errors[field], (typed, errors)
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', response.text), field
        for name, value in typed.items():  # what was typed is kept
            if name != "newsletter_id":
                assert f'value="{value}"' in unescape(response.text), (name, value)
    # Several at once: each at its own field.
    both = save(editor, edition_id, subject="  ", max_stories="99")
    assert both.status_code == 400 and set(field_errors(both.text)) == {"subject", "max_stories"}
    unchanged = row(live, edition_id)
    assert (unchanged.subject, unchanged.send_at, unchanged.max_stories) == ("Morning", DRAFT_AT, 5)
    assert audit(live) == []


@pytest.mark.parametrize("status", [EditionStatus.SENDING, EditionStatus.SENT])
def test_an_edition_that_has_started_sending_cannot_be_edited(live: Stack, editor: httpx.Client,
                                                              api: httpx.Client, status: EditionStatus) -> None:
    edition_id = an_edition(live, status, utcnow())
    page = editor.get(f"/editor/editions/{edition_id}")
    assert f"/editor/editions/{edition_id}/edit" not in page.text
    form = editor.get(f"/editor/editions/{edition_id}/edit")
    assert form.status_code == 409 and h1(form.text) == "This edition is frozen"
    assert f"Edition {edition_id} is {status.value}: it can no longer be changed." in form.text
    token = csrf_token(page.text)
    posted = editor.post(f"/editor/editions/{edition_id}/edit", data={
        "csrf_token": token, "subject": "Too late", "send_at": "2031-06-01T09:30", "timezone": "UTC",
        "max_stories": "5", "window_hours": "48"})
    assert posted.status_code == 409 and h1(posted.text) == "This edition is frozen"
    patched = api.patch(f"/editions/{edition_id}", json={"subject": "Too late"})
    assert patched.status_code == 409 and patched.json()["code"] == "conflict"
    assert row(live, edition_id).subject == "Morning"
    assert audit(live) == []


def test_a_scheduled_edition_moved_to_a_time_that_has_passed_goes_out_at_once(live: Stack,
                                                                            editor: httpx.Client) -> None:
    seed_stories(live.factory)
    [reader] = seed_readers(live.factory, 1, prefix="moved-up")
    edition_id = an_edition(live, EditionStatus.SCHEDULED, utcnow() + timedelta(days=1))
    with live.factory.begin() as session:
        session.get_one(Edition, edition_id).window_hours = SAMPLE_WINDOW_HOURS
    page = editor.get(f"/editor/editions/{edition_id}/edit")
    assert "a send time that has passed sends it straight away" in page.text

    response = save(editor, edition_id, send_at="2020-01-01T07:00")

    assert response.headers["location"] == f"/editor/editions/{edition_id}?done=edited-now"
    assert live.wait_for_edition(edition_id, timeout=SEND_TIMEOUT_SECONDS) == "sent"
    [received] = wait_for_mail(live, reader, subject="Morning")
    assert str(received.message["Subject"]) == "Morning"
    sent = row(live, edition_id)
    # Stored as the moment of the edit, not 2020 (which the release would skip as missed).
    assert sent.send_at > utcnow() - timedelta(minutes=1)
    [(action, detail)] = audit(live)
    assert action == "edition.edit" and detail["changed"] == ["send_at"]  # type: ignore[index]


def test_times_show_in_the_editions_zone_named_with_utc_on_hover(live: Stack, editor: httpx.Client) -> None:
    with live.factory.begin() as session:
        kyiv = create_newsletter(session, slug="kyiv-morning", name="Kyiv Morning", cron="0 7 * * *",
                                 timezone="Europe/Kyiv", allowed_topics=TOPICS).id
    own = an_edition(live, newsletter_id=kyiv)
    one_off = an_edition(live)

    page = editor.get(f"/editor/editions/{own}").text
    assert ('<time datetime="2031-01-01T07:00:00Z" title="Wed 1 Jan 2031, 07:00 UTC">'
            "Wed 1 Jan 2031, 09:00 EET</time>") in page
    assert "Times on this page are in Europe/Kyiv" in page
    assert form_values(editor.get(f"/editor/editions/{own}/edit").text)["send_at"] == "2031-01-01T09:00"
    page = editor.get(f"/editor/editions/{one_off}").text
    assert ('<time datetime="2031-01-01T07:00:00Z" title="Wed 1 Jan 2031, 07:00 UTC">'
            "Wed 1 Jan 2031, 07:00 UTC</time>") in page


# ------------------------------------------------------------------ the API


def test_the_api_patches_subject_time_and_limits(live: Stack, api: httpx.Client) -> None:
    edition_id = an_edition(live)

    patched = api.patch(f"/editions/{edition_id}", json={
        "subject": "Evening", "send_at": "2031-06-01T09:30", "tz": "Europe/Kyiv", "max_stories": 3})

    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["subject"], body["send_at"], body["max_stories"], body["status"]) == (
        "Evening", "2031-06-01T06:30:00+00:00", 3, "draft")
    one = api.get(f"/editions/{edition_id}").json()
    assert one["subject"] == "Evening" and one["status"] == "draft" and "audience" in one
    # The note alone is the note, as before; with other fields it changes with them.
    assert api.patch(f"/editions/{edition_id}", json={"note": "Read this."}).json()["note"] == "Read this."
    both = api.patch(f"/editions/{edition_id}", json={"subject": "Night", "note": None}).json()
    assert (both["subject"], both["note"]) == ("Night", None)
    assert [(action, (detail or {}).get("changed")) for action, detail in audit(live)] == [  # type: ignore[attr-defined]
        ("edition.edit", ["subject", "send_at", "max_stories"]), ("edition.note", None),
        ("edition.edit", ["subject", "note"])]


BAD_PATCHES = [
    ({"max_stories": 0}, 400, "invalid"),
    ({"window_hours": 2**40}, 400, "invalid"),
    ({"subject": "Hi\r\nBcc: x@example.org"}, 400, "invalid"),
    ({"send_at": "soon"}, 400, "invalid"),
    ({"send_at": "2031-06-01T09:30", "tz": "Mars/Olympus_Mons"}, 400, "invalid"),
    ({"tz": "Europe/Kyiv"}, 400, "invalid"),
    ({"newsletter_id": 999999}, 404, "newsletter_not_found"),
    ({"subject": "s" * 301}, 422, None),
    ({"send_at": "2031-06-01T09:30\u0000"}, 422, None),
]


def test_bad_patches_are_a_4xx_and_change_nothing(live: Stack, api: httpx.Client) -> None:
    edition_id = an_edition(live)
    for body, status, code in BAD_PATCHES:
        response = api.patch(f"/editions/{edition_id}", json=body)
        assert response.status_code == status, (body, response.status_code, response.text)
        if code:
            assert response.json()["code"] == code, body
    assert api.patch("/editions/999999", json={"subject": "Nobody's"}).status_code == 404
    unchanged = row(live, edition_id)
    assert (unchanged.subject, unchanged.send_at, unchanged.max_stories) == ("Morning", DRAFT_AT, 5)
    assert audit(live) == []
