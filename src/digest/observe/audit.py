"""The audit log as a person reads it: rows filtered by who, what, which kind of thing and
when, a page at a time, newest first; each row's target and the ids in its detail named
(edition subject, story title, newsletter name, reader address, staff member) with the
editor or ops page that shows them; the detail as "field: value" lines.

Names are looked up in bulk: one query per kind of thing for a whole page (or a CSV
chunk), never one per row. The log itself is written by digest.staff.audit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from digest.errors import Invalid
from digest.store import ApiToken, AuditEntry, Edition, Feed, Newsletter, Story, Subscriber, User

AUDIT_PAGE_SIZE = 50
AUDIT_CSV_CHUNK_ROWS = 1000
AUDIT_ACTOR_MAX_CHARS = 320  # the column: an address
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# What the "what" filter offers: a group of actions, by the prefix their names start with.
ACTION_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "edition": ("Editions", ("edition",)),
    "story": ("Stories", ("story", "stories")),
    "newsletter": ("Newsletters", ("newsletter",)),
    "reader": ("Readers", ("reader", "readers")),
    "feed": ("Feeds", ("feed",)),
    "user": ("Staff accounts and sign-ins", ("user", "login")),
    "token": ("API tokens", ("token",)),
    "audit": ("The audit log", ("audit",)),
}
# What a target names, "kind:id", and the page that shows it.
TARGET_KINDS = ("edition", "story", "newsletter", "reader", "user", "feed", "token")
KIND_LABELS = {"edition": "Edition", "story": "Story", "newsletter": "Newsletter", "reader": "Reader",
               "user": "Staff member", "feed": "Feed", "token": "API token"}
# Detail fields that hold ids, and what of.
DETAIL_REFS = {"story_id": "story", "story_ids": "story", "newsletter_id": "newsletter",
               "newsletter_id_was": "newsletter", "copy_id": "edition"}
DETAIL_LABELS = {"story_id": "story", "story_ids": "stories", "newsletter_id": "newsletter",
                 "newsletter_id_was": "newsletter was", "copy_id": "copy", "to": "sent to", "as": "as reader",
                 "one_time": "one-time password", "was_one_time": "had a one-time password"}
_ACTION = re.compile(r"^[a-z][a-z-]*(\.[a-z][a-z-]*)?$")
_TARGET = re.compile(r"^([a-z]+):(\d{1,18})$")


class AuditFilterError(Invalid):
    """A filter value the log cannot use; `field` names the query parameter."""

    default_code = "bad_audit_filter"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class AuditQuery:
    """Which rows: by `actor` (as the log spells them: a staff address, "cli", "system"), by
    `action` (one action, or every action of a group of ACTION_GROUPS), by `kind` of target,
    and from `start` to `end` (whole UTC days, both included)."""

    actor: str = ""
    action: str = ""
    group: str = ""
    kind: str = ""
    start: date | None = None
    end: date | None = None

    def params(self) -> dict[str, str]:
        """The query string that asks for these rows again (the page's links, the CSV)."""
        what = f"{self.group}.*" if self.group else self.action
        found = {"who": self.actor, "what": what, "kind": self.kind,
                 "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in found.items() if v}

    def url(self, path: str, **extra: Any) -> str:
        params = {**self.params(), **{k: str(v) for k, v in extra.items()}}
        return f"{path}?{urlencode(params)}" if params else path


def _day(raw: str, name: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise AuditFilterError(name, f"{label} must be a date such as 2026-05-01.") from None


def parse_audit_query(params: Mapping[str, str]) -> AuditQuery:
    """The filters from a page's query string (who, what, kind, from, to); AuditFilterError
    for a value that is not one (an unknown kind, a date that is not one, from after to)."""
    actor = params.get("who", "").strip()
    if len(actor) > AUDIT_ACTOR_MAX_CHARS:
        raise AuditFilterError("who", "That is not a staff member's address.")
    what, action, group = params.get("what", "").strip(), "", ""
    if what.endswith(".*") and what[:-2] in ACTION_GROUPS:
        group = what[:-2]
    elif what and _ACTION.match(what) and len(what) <= 64:
        action = what
    elif what:
        raise AuditFilterError("what", "Choose an action from the list.")
    kind = params.get("kind", "").strip()
    if kind and kind not in TARGET_KINDS:
        raise AuditFilterError("kind", f"The kind of thing must be one of {', '.join(TARGET_KINDS)}.")
    start, end = _day(params.get("from", "").strip(), "from", "From"), _day(params.get("to", "").strip(), "to", "To")
    if start and end and start > end:
        raise AuditFilterError("from", "From must not be after To.")
    return AuditQuery(actor=actor, action=action, group=group, kind=kind, start=start, end=end)


def _matches_prefix(prefix: str) -> ColumnElement[bool]:
    return or_(AuditEntry.action == prefix, AuditEntry.action.like(f"{prefix}.%"))


def _filtered(query: AuditQuery) -> Select[tuple[AuditEntry]]:
    statement = select(AuditEntry)
    if query.actor:
        statement = statement.where(AuditEntry.actor == query.actor)
    if query.action:
        statement = statement.where(AuditEntry.action == query.action)
    if query.group:
        statement = statement.where(or_(*(_matches_prefix(p) for p in ACTION_GROUPS[query.group][1])))
    if query.kind:
        by_kind = AuditEntry.target.like(f"{query.kind}:%")
        # A story added by hand names its URL, not its id (the id is made by the action).
        statement = statement.where(or_(by_kind, AuditEntry.action == "story.add") if query.kind == "story"
                                    else by_kind)
    if query.start:
        statement = statement.where(AuditEntry.at >= datetime.combine(query.start, time.min, UTC))
    if query.end:
        statement = statement.where(AuditEntry.at < datetime.combine(query.end + timedelta(days=1), time.min, UTC))
    return statement


# ------------------------------------------------------------------ naming


@dataclass(frozen=True)
class Ref:
    """A thing the log mentions: what it is called now and the page that shows it (None: no page)."""

    kind: str
    id: int | None
    name: str
    href: str | None = None


@dataclass(frozen=True)
class DetailLine:
    """One "field: value" of a row's detail; `refs` when the value names things."""

    label: str
    text: str = ""
    refs: tuple[Ref, ...] = ()

    def plain(self) -> str:
        value = ", ".join(r.name for r in self.refs) if self.refs else self.text
        return f"{self.label}: {value}"


@dataclass(frozen=True)
class AuditLine:
    """One row as a person reads it."""

    id: int
    at: datetime
    actor: Ref
    via: str
    action: str
    group: str
    target: Ref
    detail: tuple[DetailLine, ...] = field(default=())

    def detail_text(self) -> str:
        return "; ".join(line.plain() for line in self.detail)


def action_group(action: str) -> str:
    """The group of ACTION_GROUPS an action belongs to ("" if none)."""
    head = action.split(".", 1)[0]
    return next((key for key, (_, prefixes) in ACTION_GROUPS.items() if head in prefixes), "")


def _target_of(entry: AuditEntry) -> tuple[str, int] | None:
    found = _TARGET.match(entry.target)
    return (found.group(1), int(found.group(2))) if found and found.group(1) in TARGET_KINDS else None


def _ids(value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


class _Names:
    """Names for the ids a batch of rows mentions: one query per kind."""

    def __init__(self, session: Session, entries: list[AuditEntry]) -> None:
        wanted: dict[str, set[int]] = {kind: set() for kind in TARGET_KINDS}
        urls: set[str] = set()
        for entry in entries:
            if target := _target_of(entry):
                wanted[target[0]].add(target[1])
            elif entry.action == "story.add":
                urls.add(entry.target)
            if entry.user_id is not None:
                wanted["user"].add(entry.user_id)
            for key, value in (entry.detail or {}).items():
                if kind := DETAIL_REFS.get(key):
                    wanted[kind].update(_ids(value))
                elif key == "newsletters" and entry.action.startswith("reader"):
                    wanted["newsletter"].update(_ids(value))
        self.names: dict[tuple[str, int], Ref] = {}
        self.by_url: dict[str, Ref] = {}
        if ids := wanted["edition"]:
            for e_id, subject in session.execute(select(Edition.id, Edition.subject).where(Edition.id.in_(ids))):
                self._add("edition", e_id, subject, f"/editor/editions/{e_id}")
        story_rows: list[Any] = []
        if ids := wanted["story"]:
            story_rows += session.execute(select(Story.id, Story.title, Story.url).where(Story.id.in_(ids))).all()
        if urls:
            story_rows += session.execute(select(Story.id, Story.title, Story.url).where(Story.url.in_(urls))).all()
        for s_id, title, url in story_rows:
            self.by_url[url] = self._add("story", s_id, title, "/editor/stories?" + urlencode({"q": title[:200]}))
        if ids := wanted["newsletter"]:
            for n_id, name in session.execute(select(Newsletter.id, Newsletter.name).where(Newsletter.id.in_(ids))):
                self._add("newsletter", n_id, name, f"/editor/newsletters/{n_id}")
        if ids := wanted["reader"]:
            for r_id, email, erased in session.execute(
                    select(Subscriber.id, Subscriber.email, Subscriber.erased_at).where(Subscriber.id.in_(ids))):
                self._add("reader", r_id, f"reader #{r_id} (erased)" if erased else email, f"/editor/readers/{r_id}")
        if ids := wanted["user"]:
            for u_id, email in session.execute(select(User.id, User.email).where(User.id.in_(ids))):
                self._add("user", u_id, email, "/editor/users")
        if ids := wanted["feed"]:
            for f_id, url in session.execute(select(Feed.id, Feed.url).where(Feed.id.in_(ids))):
                self._add("feed", f_id, url, f"/editor/feeds/{f_id}")
        if ids := wanted["token"]:
            for t_id, name in session.execute(select(ApiToken.id, ApiToken.name).where(ApiToken.id.in_(ids))):
                self._add("token", t_id, f"token “{name}”", "/editor/tokens")

    def _add(self, kind: str, id_: int, name: str, href: str) -> Ref:
        ref = Ref(kind, id_, name, href)
        self.names[(kind, id_)] = ref
        return ref

    def ref(self, kind: str, id_: int) -> Ref:
        """The thing by kind and id; one that is gone keeps its id, unlinked."""
        if (kind, id_) not in self.names:
            self.names[(kind, id_)] = Ref(kind, id_, f"{KIND_LABELS[kind].lower()} #{id_} (deleted)")
        return self.names[(kind, id_)]

    def target(self, entry: AuditEntry) -> Ref:
        if target := _target_of(entry):
            return self.ref(*target)
        if entry.action == "story.add" and entry.target in self.by_url:
            return self.by_url[entry.target]
        return Ref("", None, entry.target)

    def actor(self, entry: AuditEntry) -> Ref:
        if entry.user_id is not None and ("user", entry.user_id) in self.names:
            return self.names[("user", entry.user_id)]
        return Ref("user" if entry.user_id is not None else "", entry.user_id, entry.actor)

    def detail(self, entry: AuditEntry) -> tuple[DetailLine, ...]:
        lines = []
        for key, value in (entry.detail or {}).items():
            label = DETAIL_LABELS.get(key) or key.replace("_", " ")
            kind = DETAIL_REFS.get(key) or ("newsletter" if key == "newsletters" and entry.action.startswith("reader")
                                            else None)
            if kind and _ids(value) and len(_ids(value)) == len(value if isinstance(value, list) else [value]):
                lines.append(DetailLine(label, refs=tuple(self.ref(kind, i) for i in _ids(value))))
            else:
                lines.append(DetailLine(label, _readable(value)))
        return tuple(lines)


def _readable(value: Any) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_readable(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_readable(v)}" for k, v in value.items())
    return str(value)


def name_entries(session: Session, entries: list[AuditEntry]) -> list[AuditLine]:
    """The rows as people read them, every id named: one query per kind of thing mentioned."""
    names = _Names(session, entries)
    return [AuditLine(id=e.id, at=e.at, actor=names.actor(e), via=e.via or "", action=e.action,
                      group=action_group(e.action), target=names.target(e), detail=names.detail(e))
            for e in entries]


# ------------------------------------------------------------------ pages and the CSV


@dataclass(frozen=True)
class AuditPage:
    lines: list[AuditLine]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class AuditChoices:
    """What the filters offer: who has acted, and the actions in the log, by group."""

    actors: list[str]
    actions: dict[str, list[str]]


# Who acts without a staff account: the command line, and digest itself.
NON_STAFF_ACTORS = ("cli", "system")


def audit_choices(session: Session) -> AuditChoices:
    """Every staff member (from the users table: a scan of the log for its authors would
    grow with the log), then the command line and digest itself; the actions the log holds."""
    actors = sorted(session.scalars(select(User.email)), key=str.lower) + list(NON_STAFF_ACTORS)
    by_group: dict[str, list[str]] = {key: [] for key in ACTION_GROUPS}
    for action in sorted(session.scalars(select(AuditEntry.action).distinct())):
        by_group.setdefault(action_group(action) or "other", []).append(action)
    return AuditChoices(actors, {k: v for k, v in by_group.items() if v})


def audit_page(session: Session, query: AuditQuery, page: int, size: int = AUDIT_PAGE_SIZE) -> AuditPage:
    """Page `page` (from 1; past the last: the last) of the rows `query` picks, newest first."""
    statement = _filtered(query)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    entries = list(session.scalars(statement.order_by(AuditEntry.id.desc()).limit(size).offset((page - 1) * size)))
    return AuditPage(name_entries(session, entries), total, page, pages)


AUDIT_CSV_COLUMNS = ("at", "who", "via", "action", "target_kind", "target_id", "target", "detail")


def no_formula(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_cells(line: AuditLine) -> list[str]:
    cells = [line.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), line.actor.name, line.via, line.action,
             line.target.kind, str(line.target.id) if line.target.id is not None else "", line.target.name,
             line.detail_text()]
    return [no_formula(cell) for cell in cells]


def count_audit_rows(session: Session, query: AuditQuery) -> tuple[int, int]:
    """How many rows `query` picks, and the newest row's id now (0: none), so that an export
    can hold exactly the rows it counted."""
    statement = _filtered(query).subquery()
    total, newest = session.execute(select(func.count(), func.max(statement.c.id))).one()
    return total or 0, newest or 0


def bulk_audit_lines(session: Session, query: AuditQuery, upto: int | None = None,
                     chunk: int = AUDIT_CSV_CHUNK_ROWS) -> Iterator[list[AuditLine]]:
    """Every row `query` picks, newest first, named a chunk at a time (the CSV export):
    each chunk reads the rows below the last one's id, so rows added meanwhile are not
    repeated and none is skipped; with `upto`, none newer than that id. The session is
    emptied after each chunk (expunge_all), so memory stays flat however long the log."""
    before: int | None = upto + 1 if upto is not None else None
    while True:
        statement = _filtered(query)
        if before is not None:
            statement = statement.where(AuditEntry.id < before)
        entries = list(session.scalars(statement.order_by(AuditEntry.id.desc()).limit(chunk)))
        if not entries:
            return
        before = entries[-1].id
        lines = name_entries(session, entries)
        session.expunge_all()
        yield lines
