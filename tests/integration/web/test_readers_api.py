"""/api/v1/readers over real HTTP: search with every filter and paging, one reader's history,
unsubscribing on a reader's behalf, importing a CSV; tokens and roles; errors as JSON with
the status chosen by class; audit rows with `via` api."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from digest import staff
from digest.readers import add_subscriber
from digest.store import Edition, EditionStatus, utcnow
from tests.support.factories import seed_readers, seed_stories
from tests.support.queries import reader_by_email
from tests.support.readers import BOUNCE_ERROR, Roster, audit_rows, consent_events, reader_status, seed_roster
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

EDITOR = "api-editor@example.org"
OPS = "api-ops@example.org"
PASSWORD = "correct horse battery staple"
SUBSCRIBER_KEYS = {"id", "email", "name", "status", "topics", "created_at", "confirmed_at"}  # actions.subscriber_json


@dataclass
class Clients:
    editor: httpx.Client
    ops: httpx.Client
    anonymous: httpx.Client


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[Clients]:
    with live.factory.begin() as session:
        tokens = [staff.create_api_token(session, staff.create_user(session, email, role, PASSWORD), "t")[1]
                  for email, role in ((EDITOR, "editor"), (OPS, "ops"))]
    clients = [httpx.Client(base_url=f"{web}/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"})
               for token in tokens]
    anonymous = httpx.Client(base_url=f"{web}/api/v1", timeout=30)
    yield Clients(clients[0], clients[1], anonymous)
    for client in (*clients, anonymous):
        client.close()


@pytest.fixture
def roster(live: Stack) -> Roster:
    return seed_roster(live.factory)


def emails(response: httpx.Response) -> tuple[int, list[str]]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["total"], [r["email"] for r in body["readers"]]


def test_search_filters_and_pages_with_any_staff_token(live: Stack, api: Clients, roster: Roster) -> None:
    seed_readers(live.factory, 3, prefix="bulk")
    everyone = api.ops.get("/readers")
    total, found = emails(everyone)
    assert total == 8 and found[:3] == ["bulk2@example.org", "bulk1@example.org", "bulk0@example.org"]
    first = everyone.json()["readers"][3]
    assert SUBSCRIBER_KEYS <= set(first) and first["email"] == "eve@example.com"
    assert (first["status"], first["newsletters"], first["erased_at"]) == (
        "complained", [roster.morning, roster.evening], None)

    assert emails(api.editor.get("/readers", params={"q": "ANN"})) == (1, ["ann.lee@example.com"])
    assert emails(api.editor.get("/readers", params={"q": "stone"})) == (1, ["bob@example.org"])
    assert emails(api.editor.get("/readers", params={"status": "pending"})) == (1, ["cara@example.com"])
    assert emails(api.editor.get("/readers", params={"newsletter_id": roster.evening, "status": "bounced"})) == (
        1, ["bob@example.org"])
    assert emails(api.editor.get("/readers", params={"topic": "business"})) == (1, ["dan@example.net"])
    assert emails(api.editor.get("/readers", params={"limit": 2, "offset": 6})) == (
        8, ["bob@example.org", "ann.lee@example.com"])
    assert emails(api.editor.get("/readers", params={"offset": 100})) == (8, [])
    ann = api.editor.get("/readers", params={"q": "ann.lee"}).json()["readers"][0]
    assert (ann["topics"], ann["newsletters"], ann["frequency"], ann["consent_source"]) == (
        ["politics"], [roster.morning], "every", "form")

    bad = api.editor.get("/readers", params={"status": "sleeping"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"newsletter_id": "x"}, {"q": "a\u0000b"}):
        assert api.editor.get("/readers", params=params).status_code == 422, params
    assert api.anonymous.get("/readers").status_code == 401


def test_one_reader_with_deliveries_consent_and_feedback(api: Clients, roster: Roster) -> None:
    response = api.ops.get(f"/readers/{roster.bob}")
    assert response.status_code == 200
    bob = response.json()
    assert SUBSCRIBER_KEYS <= set(bob) and (bob["email"], bob["status"]) == ("bob@example.org", "bounced")
    [delivery] = bob["deliveries"]
    assert (delivery["edition_id"], delivery["subject"], delivery["status"], delivery["error_code"],
            delivery["error"]) == (roster.editions[1], "Tuesday briefing", "bounced", "hard_bounce", BOUNCE_ERROR)
    assert delivery["at"] is not None
    assert [(c["kind"], c["channel"]) for c in bob["consent"]] == [("subscribe", "form")]
    assert [(f["kind"], f["detail"]) for f in bob["feedback"]] == [("hard bounce", BOUNCE_ERROR)]

    ann = api.editor.get(f"/readers/{roster.ann}").json()
    assert [d["subject"] for d in ann["deliveries"]] == ["Wednesday briefing", "Tuesday briefing", "Monday briefing"]
    eve = api.editor.get(f"/readers/{roster.eve}").json()
    assert [(c["kind"], c["channel"], c["detail"]) for c in eve["consent"]][-1] == (
        "complaint", "arf", {"feedback_type": "abuse"})
    cara = api.editor.get(f"/readers/{roster.cara}").json()
    assert [(n["kind"], n["status"]) for n in cara["notices"]] == [("confirm", "sent")] and cara["deliveries"] == []

    missing = api.editor.get(f"/readers/{roster.eve + 1000}")
    assert missing.status_code == 404 and missing.json() == {"error": f"no reader with id {roster.eve + 1000}",
                                                             "code": "reader_not_found"}
    assert api.editor.get(f"/readers/{2**63}").status_code == 422
    assert api.anonymous.get(f"/readers/{roster.ann}").status_code == 401


def test_unsubscribe_answers_the_reader_and_is_audited(live: Stack, api: Clients, roster: Roster) -> None:
    forbidden = api.ops.post(f"/readers/{roster.ann}/unsubscribe")
    assert forbidden.status_code == 403 and reader_status(live, roster.ann) == "active"

    response = api.editor.post(f"/readers/{roster.ann}/unsubscribe")
    assert response.status_code == 200
    body = response.json()
    assert SUBSCRIBER_KEYS <= set(body)
    assert (body["id"], body["status"], body["unsubscribe_channel"], body["changed"]) == (
        roster.ann, "unsubscribed", "admin", True)
    again = api.editor.post(f"/readers/{roster.ann}/unsubscribe").json()
    assert (again["status"], again["changed"]) == ("unsubscribed", False)
    # A reader who bounced stays bounced: the unsubscribe changes only readers still on the list.
    bounced = api.editor.post(f"/readers/{roster.bob}/unsubscribe").json()
    assert (bounced["status"], bounced["changed"]) == ("bounced", False)

    assert consent_events(live, roster.ann)[-1] == ("unsubscribe", "admin", None)
    assert audit_rows(live) == [
        ("reader.unsubscribe", f"reader:{roster.ann}", "api", EDITOR, {"changed": True}),
        ("reader.unsubscribe", f"reader:{roster.ann}", "api", EDITOR, {"changed": False}),
        ("reader.unsubscribe", f"reader:{roster.bob}", "api", EDITOR, {"changed": False})]
    missing = api.editor.post(f"/readers/{roster.eve + 1000}/unsubscribe")
    assert missing.status_code == 404 and missing.json()["code"] == "reader_not_found"
    assert api.anonymous.post(f"/readers/{roster.cara}/unsubscribe").status_code == 401


def test_import_takes_the_clis_rules_and_reports_by_line(live: Stack, api: Clients, roster: Roster) -> None:
    text = ("\ufeffemail,name,topics\n"
            "new@example.com,New,world\n"
            "broken,,\n"
            "dan@example.net,Dan Again,\n"
            "other@example.com,,astrology\n")
    forbidden = api.ops.post("/readers/import", json={"csv": text})
    assert forbidden.status_code == 403 and reader_by_email(live, "new@example.com") is None

    response = api.editor.post("/readers/import", json={"csv": text, "confirmed": True})
    assert response.status_code == 200
    assert response.json() == {
        "rows": 4, "imported": 1, "duplicates": 1, "suppressed": 0, "rejected": 2,
        "errors": [{"line": 3, "error": "invalid email address 'broken': An email address must have an @-sign."},
                   {"line": 5, "error": "unknown topic(s) astrology; known: politics, world, business, technology, "
                                        "science, health, sports, culture"}],
        "skipped": [{"line": 4, "reason": "dan@example.net is on the list already; left as it is"}]}
    assert reader_status(live, reader_by_email(live, "new@example.com").id) == "active"  # type: ignore[union-attr]
    assert reader_status(live, roster.dan) == "unsubscribed"
    assert audit_rows(live, "readers.") == [("readers.import", "csv", "api", EDITOR, {
        "rows": 4, "imported": 1, "duplicates": 1, "suppressed": 0, "rejected": 2})]

    no_header = api.editor.post("/readers/import", json={"csv": "name\nAnn\n"})
    assert no_header.status_code == 400 and "'email' column" in no_header.json()["error"]
    for body in ({}, {"csv": "email\na\u0000@example.com\n"}, {"csv": 5}, {"csv": "email\n", "confirmed": "perhaps"}):
        assert api.editor.post("/readers/import", json=body).status_code == 422, body
    assert len(audit_rows(live, "readers.")) == 1


def test_the_openapi_document_names_the_readers_routes(api: Clients) -> None:
    paths = api.anonymous.get("/openapi.json").json()["paths"]
    assert set(paths["/readers"]) == {"get"} and set(paths["/readers/{reader_id}"]) == {"get"}
    assert set(paths["/readers/{reader_id}/unsubscribe"]) == {"post"} and set(paths["/readers/import"]) == {"post"}
    parameters = {p["name"] for p in paths["/readers"]["get"]["parameters"]}
    assert parameters == {"q", "status", "newsletter_id", "topic", "limit", "offset"}



def test_a_preview_as_an_unknown_address_answers_as_for_a_reader(live: Stack, api: Clients) -> None:
    """Staff previews never carry a reader's token, and an address no reader holds answers
    exactly as one a reader holds (a 404 there would tell staff who is subscribed)."""
    seed_stories(live.factory)
    with live.factory.begin() as session:
        reader = add_subscriber(session, "known@example.org", allowed_topics=[], confirmed=True)
        edition = Edition(subject="Preview", send_at=utcnow(), status=EditionStatus.DRAFT, max_stories=5,
                          window_hours=24 * 365 * 10)
        session.add(edition)
        session.flush()
        token, edition_id = reader.token, edition.id

    known = api.ops.get(f"/editions/{edition_id}/preview", params={"email": "known@example.org"})
    unknown = api.ops.get(f"/editions/{edition_id}/preview", params={"email": "nobody@example.org"})

    assert known.status_code == unknown.status_code == 200
    # Every text the same but for the address; the size follows the text (html_bytes).
    as_known = {key: value.replace("known@example.org", "nobody@example.org") if isinstance(value, str) else value
                for key, value in known.json().items() if key != "html_bytes"}
    assert {key: value for key, value in unknown.json().items() if key != "html_bytes"} == as_known
    assert unknown.json()["html_bytes"] == len(unknown.json()["html"].encode())
    assert token not in known.text and "preview-token" in known.text
    assert api.ops.get(f"/editions/{edition_id}/preview", params={"email": "not an address"}).status_code == 400
