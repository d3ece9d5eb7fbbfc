"""The audit log (/ops/audit and /ops/audit.csv) over real HTTP (`digest serve`, the real
database): rows written by digest.actions as the pages, the API and the command line
write them; each row names its edition, story, newsletter, reader and staff member with a
link to its page, the detail as "field: value"; filters by who, what (one action or a
group), kind of thing and day; 50 rows a page with links that keep the filters; the CSV
holds the filtered rows with formula cells defused; bad filters are a 400 at the field.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from digest import actions
from digest.config import Settings
from digest.observe import AUDIT_PAGE_SIZE, audit_page, parse_audit_query
from digest.store.models import AuditEntry, Story, User, utcnow
from tests.support.factories import add_active_reader, make_user, seed_stories
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, sign_in

pytestmark = pytest.mark.integration

NEWSLETTER = "Morning Briefing"
SUBJECT = "Tuesday's picks"
READER = "=1+2@example.org"  # a valid address, and a formula to a spreadsheet
ADMIN = "admin@example.org"


def _no_notice(notice_id: int) -> None:
    pass


def _no_release() -> None:
    pass


def deps(live: Stack) -> actions.Deps:
    return actions.Deps(live.factory, Settings(), lambda *a, **k: None, _no_notice, _no_release)


def as_staff(live: Stack, email: str, via: str = "web") -> actions.Actor:
    with live.factory() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
    return actions.Actor(user, via)


def story_by_title(live: Stack, fragment: str) -> Story:
    with live.factory() as session:
        found = session.scalars(select(Story).where(Story.title.contains(fragment))).first()
    assert found is not None
    return found


def seed_log(live: Stack) -> dict[str, Any]:
    """A morning's work through digest.actions: a newsletter, an edition with a pinned story
    and a note, a reader added and moved to the newsletter, an ops pause from the command line."""
    seed_stories(live.factory)
    make_user(live, EDITOR, "editor")
    make_user(live, OPS, "ops")
    editor, ops = as_staff(live, EDITOR), as_staff(live, OPS, "ops")
    d = deps(live)
    newsletter = actions.newsletters.add_newsletter(d, editor, slug="morning", name=NEWSLETTER, cron="0 7 * * *",
                                                    timezone="UTC")
    edition = actions.editions.create_edition(d, editor, subject=SUBJECT, send_at=utcnow() + timedelta(days=1),
                                              topics=None, max_stories=5, window_hours=48, draft=True,
                                              newsletter=newsletter["id"])
    water = story_by_title(live, "Water Utility")
    actions.editions.pick(d, editor, edition["id"], water.id, "pin")
    actions.editions.note(d, editor, edition["id"], "Hello")
    reader = add_active_reader(live, READER)
    actions.readers.set_newsletters(d, ops, reader.id, [newsletter["id"]])
    actions.editions.act(d, actions.Actor.command_line(), edition["id"], "cancel")
    return {"newsletter": newsletter["id"], "edition": edition["id"], "story": water, "reader": reader.id}


def signed_in_ops(client: httpx.Client) -> httpx.Client:
    assert sign_in(client, OPS, next_path="/ops/audit").status_code == 303
    return client


def rows(html: str) -> list[str]:
    """Each table row's text, tags removed, spaces collapsed."""
    found = re.findall(r'<tr data-audit="\d+">(.*?)</tr>', html, re.DOTALL)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in found]


def actions_shown(html: str) -> list[str]:
    return re.findall(r'<tr data-audit="\d+">.*?<code>([^<]+)</code>', html, re.DOTALL)


def links(html: str) -> dict[str, str]:
    """Link text -> href, for every link in the table's rows."""
    body = "".join(re.findall(r'<tr data-audit="\d+">(.*?)</tr>', html, re.DOTALL))
    return {unescape(text): unescape(href) for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', body)}


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="{name}-error"[^>]*>([^<]*)<', html)
    assert found, f"no error at {name}"
    return unescape(found.group(1))


def test_rows_name_what_they_touched_with_links_and_readable_detail(live: Stack, client: httpx.Client) -> None:
    seeded = seed_log(live)
    make_user(live, ADMIN, "admin")
    assert sign_in(client, ADMIN, next_path="/ops/audit").status_code == 303
    page = client.get("/ops/audit")
    assert page.status_code == 200
    shown = rows(page.text)
    assert len(shown) == 7
    login, cancel, newsletters, note, pin, add, newsletter = shown  # newest first
    assert f"login Staff member {ADMIN} ip: 127.0.0.1" in login
    assert "edition.cancel" in cancel and f"Edition {SUBJECT}" in cancel and "cli" in cancel
    assert f"Reader {READER}" in newsletters and f"newsletters: {NEWSLETTER}" in newsletters and OPS in newsletters
    assert "edition.note" in note and EDITOR in note and "via web" in note
    assert f"story: {seeded['story'].title}" in pin
    assert f"newsletter: {NEWSLETTER}" in add and "draft: yes" in add
    assert f"Newsletter {NEWSLETTER}" in newsletter and "slug: morning" in newsletter
    # No raw JSON and no bare ids.
    assert "{" not in page.text.split("<tbody>")[1] and "edition:" not in " ".join(shown)
    assert "story_id" not in page.text

    found = links(page.text)
    assert found[SUBJECT] == f"/editor/editions/{seeded['edition']}"
    assert found[NEWSLETTER] == f"/editor/newsletters/{seeded['newsletter']}"
    assert found[READER] == f"/editor/readers/{seeded['reader']}"
    assert found[EDITOR] == found[OPS] == found[ADMIN] == "/editor/users"
    assert found[seeded["story"].title].startswith("/editor/stories?q=")
    # Ops see the same names, linked only where their role may follow: the reader.
    with httpx.Client(base_url=str(client.base_url), timeout=30) as ops:
        signed_in_ops(ops)
        as_ops = ops.get("/ops/audit").text
        assert rows(as_ops)[1:] == shown
        assert links(as_ops) == {READER: f"/editor/readers/{seeded['reader']}"}
        assert ops.get(found[READER]).status_code == 200
    # The links lead to pages that show those things (an editor's session: they are editor pages).
    with httpx.Client(base_url=str(client.base_url), timeout=30) as editor:
        assert sign_in(editor, EDITOR).status_code == 303
        assert SUBJECT in unescape(editor.get(found[SUBJECT]).text)
        assert seeded["story"].title in unescape(editor.get(found[seeded["story"].title]).text)

    # A thing deleted since keeps its id, unlinked; an erased reader is not named.
    actions.readers.erase_reader(deps(live), as_staff(live, OPS, "ops"), seeded["reader"])
    with live.factory.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.action == "edition.add")
                        .values(detail={"draft": True, "newsletter_id": 999999}))
    page = client.get("/ops/audit")
    text = " ".join(rows(page.text))
    assert READER not in page.text and f"reader #{seeded['reader']} (erased)" in text
    assert "newsletter: newsletter #999999 (deleted)" in text


def test_filters_by_who_what_kind_and_day_and_pages_keep_them(live: Stack, client: httpx.Client) -> None:
    seeded = seed_log(live)
    signed_in_ops(client)

    def shown(**params: str) -> list[str]:
        response = client.get("/ops/audit", params=params)
        assert response.status_code == 200, response.text
        return actions_shown(response.text)

    assert shown(who=EDITOR) == ["edition.note", "edition.pin", "edition.add", "newsletter.add"]
    assert shown(who="cli") == ["edition.cancel"]
    assert shown(what="edition.*") == ["edition.cancel", "edition.note", "edition.pin", "edition.add"]
    assert shown(what="edition.pin") == ["edition.pin"]
    assert shown(what="reader.*") == ["reader.newsletters"]
    assert shown(kind="reader") == ["reader.newsletters"]
    assert shown(kind="newsletter") == ["newsletter.add"]
    assert shown(kind="user") == shown(what="user.*") == ["login"]
    assert shown(who=EDITOR, what="edition.*", kind="edition") == ["edition.note", "edition.pin", "edition.add"]
    # By day (UTC): move two rows back a week.
    week_ago = datetime.now(UTC) - timedelta(days=7)
    with live.factory.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.action.in_(["newsletter.add", "edition.add"]))
                        .values(at=week_ago))
    today, then = datetime.now(UTC).date().isoformat(), week_ago.date().isoformat()
    assert shown(**{"from": today}) == ["login", "edition.cancel", "reader.newsletters", "edition.note", "edition.pin"]
    assert shown(to=then) == ["edition.add", "newsletter.add"]
    assert shown(**{"from": then, "to": then}) == ["edition.add", "newsletter.add"]
    assert shown(who="nobody@example.org") == []
    # The form shows the filters as chosen.
    page = client.get("/ops/audit", params={"who": EDITOR, "what": "edition.*", "kind": "edition", "from": then})
    assert f'<option value="{EDITOR}" selected>' in page.text and '<option value="edition.*" selected>' in page.text
    assert '<option value="edition" selected>' in page.text and f'value="{then}"' in page.text

    # Paging: 50 a page, newest first; the links keep the filters.
    with live.factory.begin() as session:
        session.add_all(AuditEntry(actor=OPS, via="ops", action="edition.pause", target=f"edition:{seeded['edition']}",
                                   detail={"changed": i}) for i in range(AUDIT_PAGE_SIZE + 5))
    first = client.get("/ops/audit", params={"who": OPS, "what": "edition.pause"})
    assert len(rows(first.text)) == AUDIT_PAGE_SIZE and "page 1 of 2" in first.text
    assert rows(first.text)[0].endswith(f"changed: {AUDIT_PAGE_SIZE + 4}")
    older = unescape(re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1))  # type: ignore[union-attr]
    assert older == f"/ops/audit?who={OPS.replace('@', '%40')}&what=edition.pause&page=2"
    second = client.get(older)
    assert [r.split("changed: ")[1] for r in rows(second.text)] == ["4", "3", "2", "1", "0"]
    newer = unescape(re.search(r'<a href="([^"]+)" rel="prev">', second.text).group(1))  # type: ignore[union-attr]
    assert client.get(newer).text.count("data-audit=") == AUDIT_PAGE_SIZE
    assert 'rel="next"' not in second.text
    assert client.get("/ops/audit", params={"page": "999"}).status_code == 200  # past the end: the last page


def test_the_csv_holds_every_filtered_row_with_formulas_defused(live: Stack, client: httpx.Client) -> None:
    seeded = seed_log(live)
    signed_in_ops(client)
    with live.factory.begin() as session:  # more than a page, to see the CSV is not one
        session.add_all(AuditEntry(actor=OPS, via="ops", action="edition.pause", target=f"edition:{seeded['edition']}",
                                   detail={"changed": 0}) for _ in range(AUDIT_PAGE_SIZE + 5))
        session.add(AuditEntry(actor="@evil", via="cli", action="stories.ingest", target="-2+3",
                               detail={"source": "+SUM(A1)"}))
    response = client.get("/ops/audit.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="audit-')
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["at", "who", "via", "action", "target_kind", "target_id", "target", "detail"]
    assert len(table) == 1 + 7 + AUDIT_PAGE_SIZE + 5 + 1  # the heading, the morning, the sign-in, the pauses
    ingest = table[1]
    assert ingest[1:] == ["'@evil", "cli", "stories.ingest", "", "", "'-2+3", "source: +SUM(A1)"]
    by_action = {row[3]: row for row in table[1:]}
    assert by_action["edition.add"][4:] == ["edition", str(seeded["edition"]), SUBJECT,
                                            f"draft: yes; newsletter: {NEWSLETTER}"]
    assert by_action["reader.newsletters"][6] == "'" + READER  # a formula, defused
    assert by_action["edition.cancel"][1:3] == ["cli", "cli"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ingest[0])
    # No cell a spreadsheet would run.
    assert not [cell for row in table for cell in row if cell[:1] in ("=", "+", "-", "@")]

    # Taking the log out is itself recorded (who, how many), outside the file it made.
    with live.factory() as session:
        [export] = session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.export")).all()
    assert (export.actor, export.via, export.target, export.detail) == (OPS, "ops", "csv", {"count": len(table) - 1})

    # The page's filters, the same rows.
    filtered = list(csv.reader(io.StringIO(client.get("/ops/audit.csv", params={"who": EDITOR}).text)))
    assert [row[3] for row in filtered[1:]] == ["edition.note", "edition.pin", "edition.add", "newsletter.add"]
    with live.factory() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (last.action, last.detail) == ("audit.export", {"count": 4, "who": EDITOR})
    assert client.get("/ops/audit.csv").text.count("audit.export") == 2  # the earlier exports, in the next
    page = client.get("/ops/audit", params={"who": EDITOR})
    assert f'href="/ops/audit.csv?who={EDITOR.replace("@", "%40")}"' in page.text


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"from": "yesterday"}, "from", "From must be a date such as 2026-05-01."),
    ({"to": "2026-13-01"}, "to", "To must be a date such as 2026-05-01."),
    ({"from": "2026-05-02", "to": "2026-05-01"}, "from", "From must not be after To."),
    ({"kind": "planet"}, "kind", "The kind of thing must be one of"),
    ({"what": "<script>"}, "what", "Choose an action from the list."),
    ({"who": "x" * 400}, "who", "That is not a staff member's address."),
])
def test_bad_filters_are_a_400_at_the_field_never_a_500(live: Stack, client: httpx.Client, params: dict[str, str],
                                                        field: str, message: str) -> None:
    seed_log(live)
    signed_in_ops(client)
    page = client.get("/ops/audit", params=params)
    assert page.status_code == 400
    assert field_error(page.text, field).startswith(message)
    assert rows(page.text) == []
    for name, value in params.items():  # what was typed stays in the form
        if name in ("from", "to"):
            assert f'value="{value}"' in page.text
    refused = client.get("/ops/audit.csv", params=params)
    assert refused.status_code == 400 and message in unescape(refused.text)
    assert 'href="/ops/audit">Back to the audit log' in refused.text  # a staff page, not the sign-up link
    assert "sign-up" not in refused.text
    assert client.get("/ops/audit", params={"page": "-3"}).status_code == 200
    assert client.get("/ops/audit", params={"page": "x"}).status_code == 200


def test_the_names_are_looked_up_in_bulk(live: Stack) -> None:
    """One query per kind of thing for a page, however many rows: never one per row."""
    seed_log(live)
    with live.factory.begin() as session:  # rows about many different stories and editions
        story_ids = list(session.scalars(select(Story.id)))
        session.add_all(AuditEntry(actor=EDITOR, via="web", action="edition.pin", target=f"edition:{1000 + i}",
                                   detail={"story_id": story_ids[i % len(story_ids)]}) for i in range(60))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with live.factory() as session:
        event.listen(live.engine, "before_cursor_execute", count)
        try:
            page = audit_page(session, parse_audit_query({}), 1)
        finally:
            event.remove(live.engine, "before_cursor_execute", count)
    assert len(page.lines) == AUDIT_PAGE_SIZE
    # count, rows, then one each: editions, stories, newsletters, readers, users.
    assert len(statements) <= 7, statements


def test_staff_error_pages_lead_back_to_the_staff_pages(live: Stack, client: httpx.Client) -> None:
    nowhere = client.get("/editor/no-such-page")  # no route, so nobody is signed in for it yet
    assert nowhere.status_code == 404
    assert '<a class="button" href="/editor">Go to the staff dashboard</a>' in nowhere.text
    assert "sign-up" not in nowhere.text
    make_user(live, OPS, "ops")
    signed_in_ops(client)
    missing = client.get("/ops/editions/999999/cancel")
    assert missing.status_code == 404
    assert '<a href="/ops">Back to the send queue</a>' in missing.text and "sign-up" not in missing.text
    assert 'aria-label="Editor"' in missing.text  # the staff page frame, with its navigation


def test_the_log_and_its_csv_want_ops_or_admin(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor")
    for path in ("/ops/audit", "/ops/audit.csv"):
        assert client.get(path).headers["location"] == f"/login?next={path}"
    assert sign_in(client, EDITOR).status_code == 303
    for path in ("/ops/audit", "/ops/audit.csv"):
        refused = client.get(path)
        assert refused.status_code == 403 and "Your role (editor) cannot open this page." in unescape(refused.text)
