"""The readers' pages over real HTTP (`digest serve` under uvicorn, the real database, Redis,
the session's Celery worker and SMTP server): the list with its search, filters and pages,
each reader's history, what staff do on a reader's behalf, the CSV import (plain and
streamed) and export.

Each action is done as a browser would (open the page for its CSRF token, post the form)
and checked in what the page says, in the reader's row, in their consent events (channel
`admin`) and in the audit row (the staff member, `via` web).
"""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

import httpx
import pytest
from sqlalchemy import func, select

from digest.store.models import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Notice,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)
from tests.support.factories import make_user, seed_readers
from tests.support.mail import text_part, wait_for_mail
from tests.support.queries import count, reader_by_email
from tests.support.readers import (
    BOUNCE_ERROR,
    SOFT_ERROR,
    Roster,
    audit_rows,
    big_csv,
    consent_events,
    reader_status,
    seed_roster,
)
from tests.support.stack import Stack, settle
from tests.support.web import EDITOR, OPS, csrf_token, sign_in

pytestmark = pytest.mark.integration

ADMIN = "admin@example.org"


# ------------------------------------------------------------------ helpers


def submit(client: httpx.Client, page_path: str, action: str, data: dict[str, object] | None = None,
           **kwargs: object) -> httpx.Response:
    """Open `page_path` (for its CSRF token) and post `data` to `action`, as the page's form would."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    return client.post(action, data={"csrf_token": csrf_token(page.text), **(data or {})}, **kwargs)  # type: ignore[arg-type]


def upload(client: httpx.Client, text: str | bytes, **fields: str) -> httpx.Response:
    """The import form, posted with a file."""
    token = csrf_token(client.get("/editor/readers/import").text)
    body = text.encode() if isinstance(text, str) else text
    return client.post("/editor/readers/import", data={"csrf_token": token, **fields},
                       files={"file": ("readers.csv", body, "text/csv")})


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def heading(html: str) -> str:
    found = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.DOTALL)
    assert len(found) == 1, found
    return unescape(found[0]).strip()


def notice(html: str) -> str:
    found = re.search(r'<p class="ok" role="status">(.*?)</p>', html, re.DOTALL)
    return unescape(found.group(1)) if found else ""


def error(html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.DOTALL)
    return unescape(found.group(1)) if found else ""


def listed(html: str) -> list[str]:
    """The addresses the list shows, in order."""
    return [unescape(a) for a in re.findall(r'<a class="addr" href="/editor/readers/\d+">([^<]+)</a>', html)]


def after_redirect(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code == 303, (response.status_code, response.text[-800:])
    return client.get(response.headers["location"]).text


# ------------------------------------------------------------------ fixtures



@pytest.fixture
def roster(live: Stack) -> Roster:
    return seed_roster(live.factory)


@pytest.fixture
def editor(live: Stack, client: httpx.Client) -> httpx.Client:
    make_user(live, EDITOR, "editor")
    assert sign_in(client, EDITOR).status_code == 303
    return client


# ------------------------------------------------------------------ who may do what


def test_ops_look_read_only_and_strangers_are_sent_to_sign_in(live: Stack, client: httpx.Client,
                                                              roster: Roster) -> None:
    ann = roster.ann
    pages = ["/editor/readers", f"/editor/readers/{ann}"]
    editor_only = ["/editor/readers/import", "/editor/readers/export.csv", f"/editor/readers/{ann}/unsubscribe",
                   f"/editor/readers/{ann}/erase"]
    for path in pages + editor_only:
        response = client.get(path)
        assert (response.status_code, response.headers.get("location")) == (303, f"/login?next={path}"), path

    make_user(live, OPS, "ops")
    assert sign_in(client, OPS, next_path="/ops").status_code == 303
    listing = client.get("/editor/readers")
    assert listing.status_code == 200 and 'href="/editor/readers"' in listing.text  # in the nav
    assert "Import a CSV" not in listing.text and "export.csv" not in listing.text
    profile = client.get(f"/editor/readers/{ann}")
    assert profile.status_code == 200 and heading(profile.text) == "ann.lee@example.com"
    assert "Unsubscribe…" not in profile.text and "Save topics" not in profile.text
    assert "Monday briefing" in profile.text  # the history is there to read
    for path in editor_only:
        response = client.get(path)
        assert response.status_code == 403 and "cannot open this page" in response.text, path
    token = csrf_token(profile.text)
    for action, data in ((f"/editor/readers/{ann}/unsubscribe", {"confirm": "yes"}),
                         (f"/editor/readers/{ann}/erase", {"confirm": "yes"}),
                         (f"/editor/readers/{ann}/topics", {"topics": "world"}),
                         (f"/editor/readers/{ann}/newsletters", {"newsletters": str(roster.evening)}),
                         (f"/editor/readers/{roster.cara}/confirm", {})):
        assert client.post(action, data={"csrf_token": token, **data}).status_code == 403, action
    refused = client.post("/editor/readers/import", data={"csrf_token": token},
                          files={"file": ("r.csv", b"email\nnew@example.com\n", "text/csv")})
    assert refused.status_code == 403
    assert reader_status(live, ann) == "active" and reader_by_email(live, "new@example.com") is None
    assert audit_rows(live, "reader") == [] and count(live, Notice) == 1

    make_user(live, ADMIN, "admin")
    client.cookies.clear()
    assert sign_in(client, ADMIN).status_code == 303
    for path in pages + editor_only:
        assert client.get(path).status_code == 200, path


def test_a_form_without_its_csrf_token_changes_nothing(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    for action, data in ((f"/editor/readers/{roster.ann}/unsubscribe", {"confirm": "yes"}),
                         (f"/editor/readers/{roster.ann}/erase", {"confirm": "yes"}),
                         (f"/editor/readers/{roster.ann}/topics", {"topics": "world"}),
                         (f"/editor/readers/{roster.cara}/confirm", {})):
        assert editor.post(action, data=data).status_code == 403, action
        assert editor.post(action, data={**data, "csrf_token": "forged"}).status_code == 403, action
    refused = editor.post("/editor/readers/import", files={"file": ("r.csv", b"email\nnew@example.com\n", "text/csv")})
    assert refused.status_code == 403 and "expired or was not sent from our page" in refused.text
    assert reader_status(live, roster.ann) == "active" and reader_by_email(live, "new@example.com") is None
    assert audit_rows(live, "reader") == []


# ------------------------------------------------------------------ the list


def test_the_list_searches_filters_and_pages(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    seed_readers(live.factory, 55, prefix="bulk")  # newer than the roster: the first page is theirs

    first = editor.get("/editor/readers")
    assert first.status_code == 200 and heading(first.text) == "Readers"
    assert "60 readers" in first.text and "Readers 1 to 50 of 60, newest first" in first.text
    assert len(listed(first.text)) == 50 and listed(first.text)[0] == "bulk54@example.org"
    second = editor.get("/editor/readers?page=2")
    assert listed(second.text) == ["bulk4@example.org", "bulk3@example.org", "bulk2@example.org", "bulk1@example.org",
                                   "bulk0@example.org", "eve@example.com", "dan@example.net", "cara@example.com",
                                   "bob@example.org", "ann.lee@example.com"]
    assert 'href="/editor/readers"' in second.text and "Newer" in second.text and "Older" not in second.text

    def shown(query: str) -> list[str]:
        response = editor.get(f"/editor/readers?{query}")
        assert response.status_code == 200, (query, response.text[-500:])
        return listed(response.text)

    assert shown("q=ANN") == ["ann.lee@example.com"]
    assert shown("q=stone") == ["bob@example.org"]  # by name
    assert shown("q=example.com&status=active") == ["ann.lee@example.com"]
    assert shown("status=pending") == ["cara@example.com"]
    assert shown("status=complained") == ["eve@example.com"]
    assert shown(f"newsletter={roster.morning}&status=active") == ["ann.lee@example.com"]
    assert shown(f"newsletter={roster.evening}&status=bounced") == ["bob@example.org"]
    assert shown("topic=sports") == ["bob@example.org"]
    assert shown("topic=business&q=dan") == ["dan@example.net"]
    assert shown("q=nobody") == []
    filtered = editor.get(f"/editor/readers?status=active&newsletter={roster.morning}")
    assert f'href="/editor/readers/export.csv?status=active&amp;newsletter={roster.morning}"' in filtered.text
    assert 'selected>Morning Briefing</option>' in filtered.text

    for query in ("status=sleeping", "newsletter=abc", "newsletter=-1", "page=abc", "page=1e3"):
        response = editor.get(f"/editor/readers?{query}")
        assert response.status_code == 400, query
    assert editor.get(f"/editor/readers?page={10**30}").status_code == 200  # past the end: an empty page


# ------------------------------------------------------------------ one reader


def test_a_readers_page_shows_their_whole_history(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    ann = editor.get(f"/editor/readers/{roster.ann}")
    assert ann.status_code == 200 and heading(ann.text) == "ann.lee@example.com"
    words = text_of(ann.text)
    for expected in ("Ann Lee", "Came from form", "every digest", "not paused", "Soft bounces 0",
                     "Monday briefing", "Tuesday briefing", "Wednesday briefing", "Deliveries (3)", SOFT_ERROR,
                     "soft bounce", "subscribe form", "Unsubscribe…", "Erase…"):
        assert expected in words, expected
    assert re.search(rf'value="{roster.morning}" checked> Morning Briefing', ann.text)
    assert re.search(r'value="politics" checked> politics', ann.text)
    assert "Send a fresh confirmation" not in ann.text  # only for a pending reader

    bob = text_of(editor.get(f"/editor/readers/{roster.bob}").text)
    assert "hard bounce" in bob and BOUNCE_ERROR in bob and "bounced" in bob
    eve = text_of(editor.get(f"/editor/readers/{roster.eve}").text)
    assert "complaint through arf abuse" in eve
    cara = editor.get(f"/editor/readers/{roster.cara}").text
    assert "Send a fresh confirmation" in cara and "Nothing has been sent to this reader." in cara
    assert re.search(r"<td>confirm</td>\s*<td><span class=\"badge sent\">sent</span>", cara)
    dan = text_of(editor.get(f"/editor/readers/{roster.dan}").text)
    assert "(one-click)" in dan and "They left: only they can come back" in dan and "reader_left" in dan
    assert "Unsubscribe…" not in dan

    missing = editor.get(f"/editor/readers/{roster.eve + 1000}")
    assert missing.status_code == 404 and heading(missing.text) == "No such reader"
    assert 'href="/editor/readers">Back to the readers' in missing.text
    for bad in (str(2**63), "abc", "-"):
        assert editor.get(f"/editor/readers/{bad}").status_code in (400, 404), bad
    assert editor.post(f"/editor/readers/{roster.eve + 1000}/topics",
                       data={"csrf_token": csrf_token(ann.text)}).status_code == 404


def test_deliveries_are_paged_newest_first(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    with live.factory.begin() as session:
        editions = [Edition(subject=f"Daily {i:02d}", send_at=utcnow(), status=EditionStatus.SENT) for i in range(55)]
        session.add_all(editions)
        session.flush()
        session.add_all(Delivery(edition_id=e.id, subscriber_id=roster.ann, status=DeliveryStatus.SENT,
                                 sent_at=e.send_at) for e in editions)

    def subjects(html: str) -> list[str]:
        return re.findall(r'<a href="/editor/editions/\d+">([^<]+)</a>', html)

    first = editor.get(f"/editor/readers/{roster.ann}")
    assert "Deliveries <span class=\"hint\">(58)</span>" in first.text
    assert subjects(first.text) == [f"Daily {i:02d}" for i in range(54, 4, -1)]
    assert f'href="/editor/readers/{roster.ann}?page=2#deliveries">Older' in first.text
    second = editor.get(f"/editor/readers/{roster.ann}?page=2")
    assert subjects(second.text) == ["Daily 04", "Daily 03", "Daily 02", "Daily 01", "Daily 00",
                                     "Wednesday briefing", "Tuesday briefing", "Monday briefing"]
    assert "← Newer" in second.text and "Older →" not in second.text


# ------------------------------------------------------------------ on their behalf


def test_unsubscribing_a_reader_takes_a_confirmation_and_is_recorded(live: Stack, editor: httpx.Client,
                                                                    roster: Roster) -> None:
    ann = roster.ann
    confirm = editor.get(f"/editor/readers/{ann}/unsubscribe")
    assert confirm.status_code == 200 and heading(confirm.text) == "Unsubscribe ann.lee@example.com?"

    unconfirmed = editor.post(f"/editor/readers/{ann}/unsubscribe", data={"csrf_token": csrf_token(confirm.text)})
    assert unconfirmed.status_code == 400 and error(unconfirmed.text).startswith("Confirm on the page")
    assert reader_status(live, ann) == "active"

    done = submit(editor, f"/editor/readers/{ann}/unsubscribe", f"/editor/readers/{ann}/unsubscribe",
                  {"confirm": "yes"})
    assert done.headers["location"] == f"/editor/readers/{ann}?done=unsubscribed"
    page = after_redirect(editor, done)
    assert notice(page).startswith("Unsubscribed") and '<span class="badge unsubscribed">' in page
    with live.factory() as session:
        reader = session.get_one(Subscriber, ann)
        assert (reader.status, reader.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "admin")
    assert consent_events(live, ann)[-1] == ("unsubscribe", "admin", None)

    again = submit(editor, f"/editor/readers/{ann}/unsubscribe", f"/editor/readers/{ann}/unsubscribe",
                   {"confirm": "yes"})
    assert again.headers["location"] == f"/editor/readers/{ann}?done=already-left"
    assert [e for e in consent_events(live, ann) if e[0] == "unsubscribe"] == [("unsubscribe", "admin", None)]
    assert audit_rows(live) == [("reader.unsubscribe", f"reader:{ann}", "web", EDITOR, {"changed": True}),
                                ("reader.unsubscribe", f"reader:{ann}", "web", EDITOR, {"changed": False})]


def test_newsletters_and_topics_change_but_never_the_status(live: Stack, editor: httpx.Client,
                                                            roster: Roster) -> None:
    dan = roster.dan
    page = f"/editor/readers/{dan}"
    saved = submit(editor, page, f"{page}/newsletters", {"newsletters": [str(roster.morning)]})
    assert notice(after_redirect(editor, saved)) == "Newsletters saved."
    topics = submit(editor, page, f"{page}/topics", {"topics": ["world", "science"]})
    assert notice(after_redirect(editor, topics)) == "Topics saved."
    same = submit(editor, page, f"{page}/topics", {"topics": ["science", "world"]})
    assert notice(after_redirect(editor, same)) == "Nothing to change: it was already so."

    assert reader_status(live, dan) == "unsubscribed"  # choosing for a leaver does not bring them back
    with live.factory() as session:
        assert session.get_one(Subscriber, dan).topics == ["science", "world"]
    events = consent_events(live, dan)
    assert events[-2:] == [
        ("preferences", "admin", {"newsletters": [roster.morning],
                                  "newsletters_were": sorted([roster.morning, roster.evening])}),
        ("preferences", "admin", {"topics": ["science", "world"], "topics_were": ["business"]})]

    for action, data, message in ((f"{page}/topics", {"topics": ["astrology"]}, "unknown topic(s) astrology"),
                                  (f"{page}/newsletters", {"newsletters": ["999999"]}, "unknown newsletter"),
                                  (f"{page}/newsletters", {"newsletters": ["1; DROP"]}, "unknown newsletter")):
        refused = submit(editor, page, action, data)
        assert refused.status_code == 400 and error(refused.text).startswith(message), refused.text[-600:]
        assert 'Back to the reader' in refused.text
    assert audit_rows(live) == [
        ("reader.newsletters", f"reader:{dan}", "web", EDITOR, {"newsletters": [roster.morning], "changed": True}),
        ("reader.topics", f"reader:{dan}", "web", EDITOR, {"topics": ["science", "world"], "changed": True}),
        ("reader.topics", f"reader:{dan}", "web", EDITOR, {"topics": ["science", "world"], "changed": False})]


def test_a_pending_reader_is_mailed_a_fresh_confirmation_once_a_minute(live: Stack, editor: httpx.Client,
                                                                      roster: Roster) -> None:
    cara = roster.cara
    page = f"/editor/readers/{cara}"
    sent = submit(editor, page, f"{page}/confirm")
    assert notice(after_redirect(editor, sent)) == "A fresh confirmation email is on its way."
    [message] = wait_for_mail(live, "cara@example.com", subject="Confirm your subscription")
    assert f"{live.base_url}/confirm/" in text_part(message.message)

    again = submit(editor, page, f"{page}/confirm")
    assert notice(after_redirect(editor, again)).startswith("A confirmation was sent less than a minute ago")
    settle(live)
    assert len(live.smtp.by_recipient()["cara@example.com"]) == 1

    refused = submit(editor, f"/editor/readers/{roster.ann}", f"/editor/readers/{roster.ann}/confirm")
    assert refused.status_code == 409
    assert error(refused.text) == "ann.lee@example.com is active: only a pending reader can be sent a confirmation"
    assert reader_status(live, cara) == "pending"  # only the reader's own click activates them
    with live.factory() as session:
        notice_id = session.scalar(select(func.max(Notice.id)).where(Notice.subscriber_id == cara))
    assert audit_rows(live) == [
        ("reader.confirm", f"reader:{cara}", "web", EDITOR, {"changed": True, "notice_id": notice_id}),
        ("reader.confirm", f"reader:{cara}", "web", EDITOR, {"changed": False})]


def test_erasing_a_reader_takes_a_confirmation_and_keeps_them_out(live: Stack, editor: httpx.Client,
                                                                  roster: Roster) -> None:
    bob = roster.bob
    confirm = editor.get(f"/editor/readers/{bob}/erase")
    assert heading(confirm.text) == "Erase bob@example.org?" and "cannot be undone" in confirm.text
    unconfirmed = editor.post(f"/editor/readers/{bob}/erase", data={"csrf_token": csrf_token(confirm.text)})
    assert unconfirmed.status_code == 400 and reader_by_email(live, "bob@example.org") is not None

    done = submit(editor, f"/editor/readers/{bob}/erase", f"/editor/readers/{bob}/erase", {"confirm": "yes"})
    page = after_redirect(editor, done)
    assert notice(page).startswith("Erased") and heading(page) == f"Erased reader {bob}"
    assert "Bob Stone" not in page and f"<dd>erased-{bob}@erased.invalid</dd>" in page
    assert reader_by_email(live, "bob@example.org") is None and count(live, Suppression) == 1
    assert consent_events(live, bob)[-1] == ("erase", "admin", None)

    later = submit(editor, f"/editor/readers/{bob}/erase", f"/editor/readers/{bob}/erase", {"confirm": "yes"})
    assert later.headers["location"].endswith("done=already-erased")
    changed = submit(editor, f"/editor/readers/{bob}", f"/editor/readers/{bob}/topics", {"topics": ["world"]})
    assert changed.status_code == 409 and "was erased" in error(changed.text)
    report = upload(editor, "email\nbob@example.org\n")
    assert "bob@example.org is on the suppression list; not imported" in text_of(report.text)
    assert audit_rows(live, "reader.") == [("reader.erase", f"reader:{bob}", "web", EDITOR, {"changed": True}),
                                           ("reader.erase", f"reader:{bob}", "web", EDITOR, {"changed": False})]


# ------------------------------------------------------------------ import and export


def test_an_import_reports_every_refused_row_by_line(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    text = ("email,name,topics\n"
            "new.one@example.com,New One,world\n"
            "not-an-address,Bad,\n"
            "dan@example.net,Dan Back,\n"
            "new.two@example.com,\"Two, Dr.\",astrology\n"
            "NEW.ONE@example.com,Again,\n"
            "new.three@example.com,,science;health\n")
    response = upload(editor, text)
    assert response.status_code == 200 and heading(response.text) == "Import readers"
    words = text_of(response.text)
    assert "2 imported, of 6 rows read" in words and "2 already on the list" in words
    assert "2 refused as not valid" in words and "0 refused as suppressed" in words
    refused = re.findall(r'<td data-label="Line">(\d+)</td><td>([^<]+)</td>', response.text)
    assert [(int(line), unescape(why)) for line, why in refused] == [
        (3, "invalid email address 'not-an-address': An email address must have an @-sign."),
        (5, "unknown topic(s) astrology; known: politics, world, business, technology, science, health, sports, culture"),
        (4, "dan@example.net is on the list already; left as it is"),
        (6, "NEW.ONE@example.com is earlier in this file; left as it is")]

    new = reader_by_email(live, "new.three@example.com")
    assert new is not None and (new.status, new.topics) == (SubscriberStatus.PENDING, ["health", "science"])
    assert reader_status(live, roster.dan) == "unsubscribed"  # a reader who left stays left
    assert consent_events(live, new.id) == [("subscribe", "import", {"confirmed": False, "line": 7,
                                                                     "file": "readers.csv"})]  # the file's name
    assert audit_rows(live, "readers.") == [("readers.import", "csv", "web", EDITOR, {
        "rows": 6, "imported": 2, "duplicates": 2, "suppressed": 0, "rejected": 2})]

    active = upload(editor, "email\nactive@example.com\n", confirmed="yes")
    assert active.status_code == 200 and reader_status(live, reader_by_email(live, "active@example.com").id) == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"name,topics\nAnn,world\n", 400, "the CSV needs a header line with an 'email' column"),
    ("email\nann@example.com\n".encode("utf-16"), 400, "The file is not UTF-8 text"),
    (b"email,name\nann@example.com,\"" + b"x" * 200_000 + b"\"\n", 400, "the CSV cannot be read at line 2"),
    (b"", 400, "Choose a file to upload."),
])
def test_a_file_that_cannot_be_imported_changes_nothing(live: Stack, editor: httpx.Client, body: bytes, status: int,
                                                        message: str) -> None:
    response = upload(editor, body)
    assert response.status_code == status
    assert message in text_of(response.text)
    assert count(live, Subscriber) == 0 and audit_rows(live, "readers.") == []


def test_a_file_past_the_limit_is_refused(live: Stack, editor: httpx.Client) -> None:
    response = upload(editor, "email\n" + "a" * (10 * 1024 * 1024) + "@example.com\n")
    assert response.status_code == 413 and count(live, Subscriber) == 0


def test_a_streamed_import_tells_its_progress_as_it_goes(live: Stack, editor: httpx.Client) -> None:
    text = big_csv(2600, bad={5: "broken,,", 2100: "also broken,,"})
    token = csrf_token(editor.get("/editor/readers/import").text)
    lines = []
    with editor.stream("POST", "/editor/readers/import", data={"csrf_token": token, "stream": "1"},
                       files={"file": ("big.csv", text.encode(), "text/csv")}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["cache-control"] == "no-store"
        lines = [json.loads(line) for line in response.iter_lines() if line]

    *progress, last = lines
    assert progress[0] == {"read": 0, "total": 2602}
    reads = [p["read"] for p in progress]
    assert reads == sorted(reads) and len(reads) >= 3 and reads[-1] == 2602  # chunk by chunk, to the end
    assert {p["total"] for p in progress} == {2602}
    assert {k: last[k] for k in ("done", "rows", "imported", "duplicates", "suppressed", "rejected")} == {
        "done": True, "rows": 2602, "imported": 2600, "duplicates": 0, "suppressed": 0, "rejected": 2}
    refused = re.findall(r'<td data-label="Line">(\d+)</td>', last["html"])
    assert refused == ["5", "2100"] and "Refused rows, by line in the file" in last["html"]
    assert count(live, Subscriber) == 2600
    assert audit_rows(live, "readers.")[0][:4] == ("readers.import", "csv", "web", EDITOR)


def test_the_export_is_the_filter_as_csv_and_is_audited(live: Stack, editor: httpx.Client, roster: Roster) -> None:
    response = editor.get(f"/editor/readers/export.csv?newsletter={roster.morning}&q=example")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="readers-\d{8}-\d{4}\.csv"', response.headers["content-disposition"])
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["email", "name", "status", "topics", "newsletters", "created_at"]
    assert [(r["email"], r["status"], r["topics"], r["newsletters"]) for r in rows] == [
        ("ann.lee@example.com", "active", "politics", "morning"),
        ("cara@example.com", "pending", "", "morning;evening"),
        ("dan@example.net", "unsubscribed", "business", "morning;evening"),
        ("eve@example.com", "complained", "", "morning;evening")]
    assert audit_rows(live, "readers.") == [("readers.export", "csv", "web", EDITOR,
                                             {"count": 4, "q": "example", "newsletter_id": roster.morning})]
    assert editor.get("/editor/readers/export.csv?status=nope").status_code == 400
    with live.factory() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 7  # reading changed nothing
