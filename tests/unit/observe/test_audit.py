"""The audit log as people read it (digest.observe.audit): filters from a query string,
names for what rows touched (a gone thing keeps its id, unlinked), detail as "field: value",
CSV cells a spreadsheet will not run."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from digest.observe import AuditFilterError, AuditQuery, csv_cells, name_entries, no_formula, parse_audit_query
from digest.observe.audit import action_group
from digest.store import AuditEntry, Newsletter, User


def test_filters_read_from_the_query_string() -> None:
    query = parse_audit_query({"who": " ed@example.org ", "what": "edition.*", "kind": "story",
                               "from": "2026-05-01", "to": "2026-05-01"})
    assert query == AuditQuery(actor="ed@example.org", group="edition", kind="story", start=date(2026, 5, 1),
                               end=date(2026, 5, 1))
    assert query.params() == {"who": "ed@example.org", "what": "edition.*", "kind": "story", "from": "2026-05-01",
                              "to": "2026-05-01"}
    assert parse_audit_query({"what": "edition.send-missing"}).action == "edition.send-missing"
    assert parse_audit_query({"what": "login"}).action == "login"
    assert parse_audit_query({}).url("/ops/audit", page=2) == "/ops/audit?page=2"
    assert AuditQuery(actor="a@b.org").url("/ops/audit.csv") == "/ops/audit.csv?who=a%40b.org"


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "May 1"}, "from"), ({"to": "2026-02-30"}, "to"), ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
    ({"kind": "edition:1"}, "kind"), ({"what": "planet.*"}, "what"), ({"what": "DROP TABLE"}, "what"),
    ({"what": "x" * 65}, "what"), ({"who": "x" * 321}, "who"),
])
def test_bad_filters_name_their_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(AuditFilterError) as raised:
        parse_audit_query(params)
    assert raised.value.field == field and raised.value.code == "bad_audit_filter"


def test_actions_fall_in_groups() -> None:
    assert [action_group(a) for a in ("edition.pause", "stories.ingest", "story.update", "readers.import",
                                      "login", "user.role", "token.revoke", "something")] == [
        "edition", "story", "story", "reader", "user", "user", "token", ""]


def test_no_cell_starts_a_formula() -> None:
    assert [no_formula(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", "")] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", ""]


def test_rows_are_named_and_gone_things_keep_their_id(session: Session) -> None:
    user = User(email="ed@example.org", role="editor", password_hash="x")
    newsletter = Newsletter(slug="m", name="Morning", timezone="UTC", subject_template="{date}")
    session.add_all([user, newsletter])
    session.flush()
    at = datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
    entries = [
        AuditEntry(id=1, at=at, user_id=user.id, actor=user.email, via="web", action="edition.edit",
                   target="edition:77", detail={"newsletter_id": newsletter.id, "newsletter_id_was": None,
                                                "max_stories": 4, "max_stories_was": 5, "changed": ["max_stories"],
                                                "draft": False}),
        AuditEntry(id=2, at=at, user_id=None, actor="cli", via="cli", action="stories.ingest",
                   target="=cmd|' /C calc'!A0", detail={"added": 3}),
    ]
    edit, ingest = name_entries(session, entries)
    assert edit.actor.name == "ed@example.org" and edit.actor.href == "/editor/users"
    assert (edit.target.kind, edit.target.name, edit.target.href) == ("edition", "edition #77 (deleted)", None)
    assert edit.detail_text() == ("newsletter: Morning; newsletter was: —; max stories: 4; max stories was: 5; "
                                  "changed: max_stories; draft: no")
    assert edit.detail[0].refs[0].href == f"/editor/newsletters/{newsletter.id}"
    assert ingest.target.kind == "" and ingest.actor.href is None
    assert csv_cells(ingest) == ["2026-05-01T07:00:00Z", "cli", "cli", "stories.ingest", "", "",
                                 "'=cmd|' /C calc'!A0", "added: 3"]
