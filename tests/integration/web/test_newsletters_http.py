"""Newsletters over real HTTP (`digest serve`, the real database and worker): the list with
readers, the schedule in words, next send and state; the edit page (every bad field at once,
at its field; a new schedule re-timing the editions beat already made; the live preview of
the next sends); pause, resume, archive (asked twice) and restore; and the same through
`GET`/`PATCH /api/v1/newsletters/{id}` and the state endpoints."""

from __future__ import annotations

import re
from datetime import timedelta
from collections.abc import Iterator
from html import unescape
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.editions import create_newsletter, occurrences, schedule_editions
from digest.editions.schedules import SCHEDULE_AHEAD_HOURS
from digest.store import Edition, EditionStatus, Newsletter, StatusCode, utcnow
from tests.support.factories import add_active_reader, make_user
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, PASSWORD, csrf_token, h1, signed_in

pytestmark = pytest.mark.integration
KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


def api_client(live: Stack, web: str, email: str, role: str) -> httpx.Client:
    with live.factory.begin() as session:
        user = staff.create_user(session, email, role, PASSWORD)
        _, token = staff.create_api_token(session, user, "newsletters")
    return httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20)


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[httpx.Client]:
    with api_client(live, web, "script@example.org", "editor") as client:
        yield client


def morning(live: Stack, readers: int = 0) -> int:
    """A daily 07:00 Kyiv newsletter with `readers` subscribed, and the editions beat makes."""
    with live.factory.begin() as session:
        newsletter = create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *",
                                       timezone="Europe/Kyiv", allowed_topics=TOPICS)
        newsletter_id = newsletter.id
    for n in range(readers):  # a new reader takes every active newsletter
        add_active_reader(live, f"reader{n}@example.org", topics=["politics"])
    with live.factory.begin() as session:
        schedule_editions(session, utcnow())
    return newsletter_id


def editions(live: Stack, newsletter_id: int) -> list[Edition]:
    with live.factory() as session:
        return list(session.scalars(select(Edition).where(Edition.newsletter_id == newsletter_id)
                                    .order_by(Edition.occurrence_at)))


def post(client: httpx.Client, page: str, action: str, data: dict[str, object] | None = None) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_token(client.get(page).text), **(data or {})})


def form_of(newsletter_id: int, **changes: str) -> dict[str, object]:
    return {"name": "Morning", "cron": "0 7 * * *", "timezone": "Europe/Kyiv", "max_stories": "5",
            "min_stories": "1", "window_hours": "48", "subject_template": "{{ newsletter }}: {{ weekday }} {{ date }}",
            "new_editions": "scheduled", **changes}


# ------------------------------------------------------------------ pages


def test_the_list_shows_readers_schedule_in_words_next_send_and_state(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live, readers=2)
    with live.factory.begin() as session:
        create_newsletter(session, slug="old", name="Old News", cron="0 9 * * 1", timezone="UTC",
                          allowed_topics=TOPICS).archived_at = utcnow()
    page = editor.get("/editor/newsletters")
    assert page.status_code == 200 and h1(page.text) == "Newsletters"
    row = re.search(rf'<tr>\s*<td><a href="/editor/newsletters/{newsletter_id}">Morning</a>.*?</tr>', page.text, re.S)
    assert row, page.text
    first = editions(live, newsletter_id)[0]
    assert 'data-label="Readers">2</td>' in row.group(0)
    assert "At 07:00, every day, Kyiv time" in row.group(0)
    assert f'href="/editor/editions/{first.id}"' in row.group(0)  # the next send, linked
    assert re.search(r"0?7:00 EET", row.group(0))  # in the newsletter's own zone
    assert ">active</span>" in row.group(0)
    assert page.text.index(">Morning<") < page.text.index(">Old News<")  # archived ones last
    # The nav leads here; the list leads to the form.
    assert 'href="/editor/newsletters" aria-current="page">Newsletters</a>' in page.text
    assert 'href="/editor/newsletters/new">New newsletter</a>' in page.text


def test_a_new_schedule_retimes_what_beat_made_and_the_page_shows_the_next_sends(
        live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = editor.get(f"/editor/newsletters/{newsletter_id}")
    assert page.status_code == 200 and "At 07:00, every day, Kyiv time" in page.text
    assert len(re.findall(r"<li>[A-Z][a-z]{2} \d+ [A-Z][a-z]{2} \d{4}, 07:00 EET</li>", page.text)) == 5

    response = post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
                    form_of(newsletter_id, cron="30 8 * * *", subject_template="{{ weekday }} at {{ newsletter }}"))
    assert response.status_code == 303
    assert response.headers["location"] == f"/editor/newsletters/{newsletter_id}?done=edited"
    assert "Newsletter saved." in editor.get(response.headers["location"]).text
    live_editions = [e for e in editions(live, newsletter_id) if e.status == EditionStatus.SCHEDULED]
    assert live_editions and {f"{e.send_at.astimezone(KYIV):%H:%M}" for e in live_editions} == {"08:30"}
    # Every 08:30 of the next two days has its edition, whatever the time of day now (the
    # old schedule's horizon does not hold the new one back).
    now = utcnow()
    assert [e.occurrence_at for e in live_editions] == occurrences("30 8 * * *", "Europe/Kyiv", now,
                                                                    now + timedelta(hours=SCHEDULE_AHEAD_HOURS))
    assert all(e.subject.endswith(" at Morning") for e in live_editions)
    gone = [e for e in editions(live, newsletter_id) if e.status == EditionStatus.CANCELLED]
    assert gone and {e.status_code for e in gone} == {StatusCode.SCHEDULE_CHANGED}


def test_the_click_history_and_the_open_pixel_are_offered_on_the_newsletters_page_and_off_by_default(
        live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = editor.get(f"/editor/newsletters/{newsletter_id}").text
    for name in ("click_history", "open_pixel"):
        assert re.search(rf'name="{name}" value="yes" aria-describedby', page), name  # there, unticked
    assert "Apple Mail loads every image" in page  # the pixel's caveat, beside its box
    response = post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
                    form_of(newsletter_id, click_history="yes", open_pixel="yes"))
    assert response.status_code == 303
    with live.factory() as session:
        saved = session.get_one(Newsletter, newsletter_id)
        assert (saved.click_history, saved.open_pixel) == (True, True)
    page = editor.get(f"/editor/newsletters/{newsletter_id}").text
    assert 'name="click_history" value="yes" checked' in page and 'name="open_pixel" value="yes" checked' in page
    post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
         form_of(newsletter_id, open_pixel="yes"))  # an unticked box is a no
    with live.factory() as session:
        saved = session.get_one(Newsletter, newsletter_id)
        assert (saved.click_history, saved.open_pixel) == (False, True)


def test_every_bad_field_shows_at_once_at_its_field_and_nothing_changes(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    response = post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
                    form_of(newsletter_id, cron="0 7 * *", timezone="Mars/Olympus", min_stories="lots",
                            subject_template="{{ missing }}", name="  "))
    assert response.status_code == 400
    for field in ("cron", "timezone", "min_stories", "subject_template", "name"):
        at_field = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', response.text)
        assert at_field, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', response.text), field
    assert 'value="Mars/Olympus"' in response.text  # what was typed stays to be corrected
    with live.factory() as session:
        assert session.get_one(Newsletter, newsletter_id).cron == "0 7 * * *"


def test_a_newsletter_sent_by_its_stories_from_the_form_each_bad_trigger_field_at_its_field(
        live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = editor.get(f"/editor/newsletters/{newsletter_id}")
    assert "<legend>Send when stories arrive</legend>" in page.text and 'id="trigger_stories"' in page.text
    edit_page, action = f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}"
    bad = post(editor, edit_page, action, form_of(newsletter_id, trigger_stories="many", trigger_every_minutes="0",
                                                  trigger_hold_minutes="-1"))
    assert bad.status_code == 400
    for field in ("trigger_stories", "trigger_every_minutes", "trigger_hold_minutes"):
        assert re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', bad.text), field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', bad.text), field
    neither = post(editor, edit_page, action, form_of(newsletter_id, cron="", trigger_stories=""))
    assert neither.status_code == 400
    assert re.search(r'<p class="field-error" id="cron-error">[^<]*story trigger[^<]*</p>', neither.text)

    saved = post(editor, edit_page, action, form_of(newsletter_id, cron="", trigger_stories="3",
                                                    trigger_every_minutes="20", trigger_hold_minutes="5"))
    assert saved.status_code == 303, saved.text
    words = "When 3 new stories have arrived, at most every 20 minutes, held 5 minutes for editors"
    assert words in editor.get("/editor/newsletters").text
    assert words in editor.get("/editor").text  # the dashboard, with no next cron occurrence
    again = editor.get(f"/editor/newsletters/{newsletter_id}").text
    assert 'id="trigger_stories" name="trigger_stories" type="number" min="0" max="1000" value="3"' in again
    assert "its next edition is made when 3 new stories have arrived" in again
    assert {e.status for e in editions(live, newsletter_id)} == {EditionStatus.CANCELLED}  # its cron editions
    with live.factory() as session:
        stored = session.get_one(Newsletter, newsletter_id)
        assert (stored.cron, stored.trigger_stories, stored.trigger_every_minutes,
                stored.trigger_hold_minutes) == (None, 3, 20, 5)


def test_the_live_preview_says_what_a_schedule_and_subject_mean(live: Stack, editor: httpx.Client) -> None:
    good = editor.get("/editor/newsletters/schedule", params={
        "cron": "0 7 * * 1-5", "timezone": "Europe/Kyiv", "subject_template": "{{ newsletter }}, {{ weekday }}",
        "name": "Morning"}).json()
    assert good["words"] == "At 07:00, Monday through Friday, Kyiv time" and good["errors"] == {}
    assert len(good["next"]) == 5 and all(t.endswith("07:00 EET") for t in good["next"])
    assert re.fullmatch(r"Morning, (Monday|Tuesday|Wednesday|Thursday|Friday)", good["subject"])
    bad = editor.get("/editor/newsletters/schedule", params={
        "cron": "99 * * * *", "timezone": "Nowhere", "subject_template": "{{ x"}).json()
    assert set(bad["errors"]) == {"cron", "timezone", "subject_template"}
    assert bad["next"] == []


def test_pause_resume_archive_asked_twice_and_restore(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = f"/editor/newsletters/{newsletter_id}"
    made = len(editions(live, newsletter_id))
    assert made >= 1

    paused = post(editor, page, f"{page}/pause")
    assert paused.headers["location"] == f"{page}?done=pause"
    assert "its upcoming ones wait as drafts" in editor.get(paused.headers["location"]).text
    assert {e.status for e in editions(live, newsletter_id)} == {EditionStatus.DRAFT}
    assert post(editor, page, f"{page}/pause").headers["location"] == f"{page}?done=already"

    post(editor, page, f"{page}/resume")
    assert {e.status for e in editions(live, newsletter_id)} == {EditionStatus.SCHEDULED}

    confirm = editor.get(f"{page}/archive")
    assert confirm.status_code == 200 and h1(confirm.text) == "Archive Morning?"
    assert f"{made} edition" in unescape(confirm.text) and "cancelled" in confirm.text
    archived = post(editor, f"{page}/archive", f"{page}/archive")
    assert archived.headers["location"] == f"{page}?done=archive"
    shown = editor.get(page).text
    assert ">archived</span>" in shown and f'action="{page}/restore"' in shown and 'id="newsletter-form"' not in shown
    assert {e.status for e in editions(live, newsletter_id)} == {EditionStatus.CANCELLED}
    # Editing an archived newsletter (from a page opened before) changes nothing.
    assert post(editor, page, page, form_of(newsletter_id, name="Renamed")).status_code == 303
    with live.factory() as session:
        assert session.get_one(Newsletter, newsletter_id).name == "Morning"

    post(editor, page, f"{page}/restore")
    assert ">paused</span>" in editor.get(page).text


def test_ops_cannot_change_newsletters(live: Stack, web: str) -> None:
    newsletter_id = morning(live)
    make_user(live, OPS, "ops")
    with signed_in(web, OPS, next_path="/ops") as ops:
        assert ops.get(f"/editor/newsletters/{newsletter_id}").status_code == 403


# ------------------------------------------------------------------ API


def test_api_reads_and_changes_a_newsletter(live: Stack, api: httpx.Client) -> None:
    newsletter_id = morning(live, readers=1)
    one = api.get(f"/newsletters/{newsletter_id}")
    assert one.status_code == 200
    assert (one.json()["subscribers"], one.json()["active"], one.json()["state"]) == (1, True, "active")
    assert one.json()["schedule"] == "At 07:00, every day, Kyiv time"

    changed = api.patch(f"/newsletters/{newsletter_id}", json={"cron": "0 6 * * 1-5", "topics": ["politics"],
                                                               "new_editions": "draft", "sender_name": "The Desk"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cron"], body["topics"], body["new_editions"], body["sender_name"]) == (
        "0 6 * * 1-5", ["politics"], "draft", "The Desk")
    assert body["subscribers"] == 1 and body["schedule"] == "At 06:00, Monday through Friday, Kyiv time"
    assert api.patch(f"/newsletters/{newsletter_id}", json={"sender_name": None}).json()["sender_name"] is None

    bad = api.patch(f"/newsletters/{newsletter_id}", json={"cron": "nope", "timezone": "Mars/X", "max_stories": 0})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"cron", "timezone", "max_stories"}

    paused = api.post(f"/newsletters/{newsletter_id}/pause")
    assert paused.status_code == 200 and (paused.json()["state"], paused.json()["changed"]) == ("paused", True)
    assert api.post(f"/newsletters/{newsletter_id}/pause").json()["changed"] is False
    assert api.post(f"/newsletters/{newsletter_id}/archive").json()["state"] == "archived"
    assert api.patch(f"/newsletters/{newsletter_id}", json={"name": "X"}).status_code == 409
    assert api.post(f"/newsletters/{newsletter_id}/resume").status_code == 409
    assert api.post(f"/newsletters/{newsletter_id}/restore").json()["state"] == "paused"
    assert api.post(f"/newsletters/{newsletter_id}/explode").status_code == 422
    assert api.get("/newsletters/999999").status_code == 404
    assert api.patch("/newsletters/999999", json={"name": "X"}).status_code == 404


def test_api_makes_and_changes_a_newsletter_sent_by_its_stories(live: Stack, api: httpx.Client) -> None:
    neither = api.post("/newsletters", json={"slug": "never", "name": "Never"})
    assert neither.status_code == 400 and set(neither.json()["fields"]) == {"cron"}
    made = api.post("/newsletters", json={"slug": "alerts", "name": "Alerts", "trigger_stories": 2,
                                          "trigger_hold_minutes": 10})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["cron"], body["trigger_stories"], body["trigger_every_minutes"], body["trigger_hold_minutes"]) == (
        None, 2, 60, 10)
    assert body["schedule"] == "When 2 new stories have arrived, at most every 60 minutes, held 10 minutes for editors"
    bad = api.patch(f"/newsletters/{body['id']}", json={"trigger_stories": None, "trigger_every_minutes": 0})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"cron", "trigger_every_minutes"}
    both = api.patch(f"/newsletters/{body['id']}", json={"cron": "0 7 * * *"})
    assert both.status_code == 200 and both.json()["trigger_stories"] == 2 and both.json()["cron"] == "0 7 * * *"
    cron_only = api.patch(f"/newsletters/{body['id']}", json={"trigger_stories": None})
    assert cron_only.status_code == 200 and cron_only.json()["trigger_stories"] is None
    assert api.patch(f"/newsletters/{body['id']}", json={"cron": None}).status_code == 400


def test_api_ops_token_reads_but_cannot_change(live: Stack, web: str) -> None:
    newsletter_id = morning(live)
    with api_client(live, web, "ops-script@example.org", "ops") as ops:
        assert ops.get(f"/newsletters/{newsletter_id}").status_code == 200
        assert ops.patch(f"/newsletters/{newsletter_id}", json={"name": "X"}).status_code == 403
        assert ops.post(f"/newsletters/{newsletter_id}/pause").status_code == 403


def test_the_form_turns_engagement_order_on_and_the_edition_page_says_why(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = editor.get(f"/editor/newsletters/{newsletter_id}").text
    assert 'name="engagement_order" value="yes" aria-describedby="engagement-hint">' in page  # off by default
    saved = post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
                 form_of(newsletter_id, engagement_order="yes"))
    assert saved.status_code == 303
    assert 'name="engagement_order" value="yes" checked' in editor.get(f"/editor/newsletters/{newsletter_id}").text
    with live.factory() as session:
        assert session.get_one(Newsletter, newsletter_id).engagement_order is True
        draft = session.scalars(select(Edition.id).where(Edition.newsletter_id == newsletter_id,
                                                          Edition.status == EditionStatus.SCHEDULED)).first()
    assert draft is not None
    edition_page = editor.get(f"/editor/editions/{draft}").text
    assert edition_page.count("data-order-note") == 2  # above the stories and in the preview
    assert "No sent edition of this newsletter yet" in edition_page
    # Unticked, it is off again, and the edition page says nothing of it.
    assert post(editor, f"/editor/newsletters/{newsletter_id}", f"/editor/newsletters/{newsletter_id}",
                form_of(newsletter_id)).status_code == 303
    with live.factory() as session:
        assert session.get_one(Newsletter, newsletter_id).engagement_order is False
    assert "data-order-note" not in editor.get(f"/editor/editions/{draft}").text
