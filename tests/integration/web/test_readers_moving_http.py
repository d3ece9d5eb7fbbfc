"""Moving in and out in the browser: the import page takes other services' exports (the
service detected or chosen) and reports per status; the readers page offers the moving-out
export as CSV with consent times and as JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest

from sqlalchemy import select

from digest.store.models import ConsentEvent, Subscriber, Suppression
from tests.support.factories import make_api_token, make_user
from tests.support.queries import count
from tests.support.readers import audit_rows
from tests.support.stack import Stack
from tests.support.web import EDITOR, clear_rate_limits, csrf_token, sign_in

# PostgreSQL only: the import itself runs on SQLite in tests/unit/readers/test_moving.py.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"
BEEHIIV = FIXTURES / "beehiiv/subscribers_export_2026-11-30.csv"


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    clear_rate_limits(live)
    make_user(live, EDITOR, "editor")
    with httpx.Client(base_url=web, timeout=30, follow_redirects=False) as client:
        assert sign_in(client, EDITOR).status_code == 303
        yield client


def upload(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    token = csrf_token(client.get("/editor/readers/import").text)
    return client.post("/editor/readers/import", data={"csrf_token": token, **fields},
                       files={"file": (path.name, path.read_bytes(), "text/csv")})


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_import_page_detects_the_service_and_reports_per_status(live: Stack, editor: httpx.Client) -> None:
    form = editor.get("/editor/readers/import").text
    assert '<option value="" selected>detect from the header line</option>' in form
    assert '<option value="mailchimp">Mailchimp</option>' in form

    response = upload(editor, BEEHIIV)

    assert response.status_code == 200
    text = words(response.text)
    assert "Read as a beehiiv export." in text
    for part in ("35 imported, of 36 rows read", "15 subscribed", "12 pending",
                 "4 unsubscribed (suppressed: never mailed)", "4 cleaned (suppressed: never mailed)"):
        assert part in text
    assert re.findall(r'<td data-label="Line">(\d+)</td>', response.text) == ["19"]
    assert count(live, Subscriber) == 35 and count(live, Suppression) == 8
    assert audit_rows(live, "readers.")[0][4]["statuses"] == {  # type: ignore[index]
        "subscribed": 15, "pending": 12, "unsubscribed": 4, "cleaned": 4}

    again = words(upload(editor, BEEHIIV, **{"from": "beehiiv"}).text)
    assert "0 imported, of 36 rows read" in again and "35 already on the list" in again


def test_a_chosen_service_must_match_the_file(live: Stack, editor: httpx.Client) -> None:
    response = upload(editor, BEEHIIV, **{"from": "mailchimp"})
    assert response.status_code == 400 and "'Email Address' column" in words(response.text)
    assert upload(editor, BEEHIIV, **{"from": "hotmail"}).status_code == 400
    assert count(live, Subscriber) == 0


def test_the_moving_out_exports_carry_consent_and_are_audited(live: Stack, editor: httpx.Client) -> None:
    upload(editor, BEEHIIV)
    page = editor.get("/editor/readers?status=pending").text
    assert 'href="/editor/readers/export.csv?status=pending&amp;consent=1"' in page
    assert 'href="/editor/readers/export.json?status=pending"' in page

    as_csv = editor.get("/editor/readers/export.csv?status=pending&consent=1")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"pending"}
    assert list(rows[0])[-4:] == ["confirmed_at", "unsubscribed_at", "opt_in_ip", "consent_source"]

    as_json = editor.get("/editor/readers/export.json")
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert re.fullmatch(r'attachment; filename="readers-\d{8}-\d{4}\.json"', as_json.headers["content-disposition"])
    readers = json.loads(as_json.text)
    assert len(readers) == 35 and {r["status"] for r in readers} == {"active", "pending", "unsubscribed", "bounced"}
    assert [row[:2] for row in audit_rows(live, "readers.export")] == [("readers.export", "csv"),
                                                                       ("readers.export", "json")]


def test_a_browser_import_keeps_the_files_name_in_each_readers_consent(live: Stack, editor: httpx.Client) -> None:
    upload(editor, BEEHIIV)

    with live.factory() as session:
        details = session.scalars(select(ConsentEvent.detail).where(ConsentEvent.kind == "subscribe")).all()
    assert len(details) == 35
    assert {d["file"] for d in details} == {BEEHIIV.name}  # type: ignore[index]
    assert {d["service"] for d in details} == {"beehiiv"}  # type: ignore[index]


def test_the_api_import_takes_another_services_export_by_name(live: Stack, web: str) -> None:
    clear_rate_limits(live)
    token = make_api_token(live, EDITOR, "editor")
    text = (FIXTURES / "mailchimp/unsubscribed_members_export_7f3a9c.csv").read_text(encoding="utf-8")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        wrong = api.post("/readers/import", json={"csv": text, "from": "beehiiv"})
        assert wrong.status_code == 400 and "column" in wrong.json()["error"]
        assert api.post("/readers/import", json={"csv": text, "from": "hotmail"}).status_code == 422

        response = api.post("/readers/import", json={"csv": text, "from": "mailchimp",
                                                     "file_name": "members_export.csv"})

    assert response.status_code == 200, response.text
    body = response.json()
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1
    assert body["rows"] == rows and body["imported"] == rows and body["errors"] == []
    assert count(live, Subscriber) == rows and count(live, Suppression) == rows  # unsubscribed: never mailed
    with live.factory() as session:
        details = session.scalars(select(ConsentEvent.detail).where(ConsentEvent.kind == "subscribe")).all()
    assert {(d["service"], d["status"], d["file"]) for d in details} == {  # type: ignore[index]
        ("mailchimp", "unsubscribed", "members_export.csv")}
    assert audit_rows(live, "readers.")[0][4]["service"] == "mailchimp"  # type: ignore[index]
