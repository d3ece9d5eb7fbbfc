"""One path per action: every change made on someone's behalf, driven through each entry point
that offers it (the editor pages, the ops pages, the JSON API, the command line), leaves
the same effect and the same audit row; only who did it and `via` differ.

Each case starts from the same state on a clean database, presses the button (or calls the
endpoint, or runs the command) once, then checks the effect and the one audit row written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from digest import staff
from digest.editions import DEFAULT_SUBJECT, create_newsletter
from digest.readers import new_token
from digest.store import (
    ApiToken,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ErrorCode,
    Newsletter,
    Role,
    Story,
    Subscriber,
    SubscriberStatus,
    User,
    utcnow,
)
from digest.web.deps import SESSION_COOKIE
from tests.support.processes import REPO
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, PASSWORD, csrf_token

# What is compared here is the entry points, not the databases (the send path's tests run
# on both): PostgreSQL only, which keeps this file to about a minute.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

ADMIN = "admin@example.org"  # the API's caller: admins may ask for every action
CLI_TIMEOUT_SECONDS = 60


@dataclass
class Entry:
    """The four ways in, signed in where they need to be."""

    live: Stack
    editor: httpx.Client
    ops: httpx.Client
    api: httpx.Client

    def page_post(self, client: httpx.Client, page: str, action: str, data: dict[str, Any] | None = None) -> None:
        token = csrf_token(client.get(page).text)
        response = client.post(action, data={"csrf_token": token, **(data or {})})
        assert response.status_code in (200, 303), (action, response.status_code, response.text[-500:])

    def cli(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "digest.cli", *args], cwd=REPO, env=self.live.env(),
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False)
        assert done.returncode == 0, done.stderr

    def call(self, method: str, path: str, **kwargs: Any) -> None:
        response = self.api.request(method, f"/api/v1{path}", **kwargs)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)


@pytest.fixture(scope="module")
def password_hash() -> str:
    """Made once: each case's staff accounts share it (argon2 costs ~0.1 s a hash)."""
    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def entry(live: Stack, web: str, password_hash: str) -> Iterator[Entry]:
    """An editor and an ops person signed in (sessions made as /login makes them: the sign-in
    form itself is tested in tests/integration/web), and an admin's API token."""
    clients = [httpx.Client(base_url=web, timeout=20) for _ in range(2)]
    with live.factory.begin() as session:
        users = {email: User(email=email, role=Role(role), password_hash=password_hash)
                 for email, role in ((EDITOR, "editor"), (OPS, "ops"), (ADMIN, "admin"))}
        session.add_all(users.values())
        session.flush()
        for client, email in zip(clients, (EDITOR, OPS), strict=True):
            client.cookies.set(SESSION_COOKIE, staff.start_session(session, users[email]))
        _, api_token = staff.create_api_token(session, users[ADMIN], "one path")
    api = httpx.Client(base_url=web, timeout=20, headers={"Authorization": f"Bearer {api_token}"})
    try:
        yield Entry(live, clients[0], clients[1], api)
    finally:
        for client in (*clients, api):
            client.close()


# ------------------------------------------------------------------ starting states


def edition_in(live: Stack, status: EditionStatus, *, failed: int = 0, cut_short: int = 0) -> int:
    """An edition in `status` with `failed` failed deliveries and `cut_short` deliveries
    skipped because it was cancelled."""
    with live.factory.begin() as session:
        edition = Edition(subject=f"A {status.value} edition", send_at=utcnow() + timedelta(days=1), status=status,
                          max_stories=5, window_hours=48)
        session.add(edition)
        session.flush()
        for index in range(failed + cut_short):
            address = f"reader{index}@example.org"
            reader = Subscriber(email=address, email_key=address, status=SubscriberStatus.ACTIVE, token=new_token())
            session.add(reader)
            session.flush()
            if index < failed:
                row = Delivery(edition_id=edition.id, subscriber_id=reader.id, status=DeliveryStatus.FAILED,
                               attempts=5, last_error="451 try later", error_code=ErrorCode.TRANSIENT)
            else:
                row = Delivery(edition_id=edition.id, subscriber_id=reader.id, status=DeliveryStatus.SKIPPED,
                               last_error="edition cancelled", error_code=ErrorCode.EDITION_CANCELLED)
            session.add(row)
        return edition.id


EDIT_FROM = datetime(2031, 1, 1, 7, 0, tzinfo=UTC)


def a_draft(live: Stack) -> int:
    """A draft due at EDIT_FROM (the edit's audit row names the time it replaced)."""
    with live.factory.begin() as session:
        edition = Edition(subject="A draft edition", send_at=EDIT_FROM, status=EditionStatus.DRAFT, max_stories=5,
                          window_hours=48)
        session.add(edition)
        session.flush()
        return edition.id


def edited(live: Stack, edition_id: int) -> bool:
    with live.factory() as session:
        edition = session.get_one(Edition, edition_id)
        return (edition.subject, edition.send_at.isoformat(), edition.max_stories, edition.window_hours,
                edition.status) == ("Edited", "2031-06-01T06:30:00+00:00", 3, 48, EditionStatus.DRAFT)


def a_story(live: Stack) -> int:
    with live.factory.begin() as session:
        story = Story(url="https://news.example.com/one-path", title="One path", published_at=utcnow())
        session.add(story)
        session.flush()
        return story.id


def a_token(live: Stack, email: str) -> int:
    with live.factory.begin() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        token, _ = staff.create_api_token(session, user, "to revoke")
        return token.id


def a_reader(live: Stack) -> int:
    with live.factory.begin() as session:
        reader = Subscriber(email="leaving@example.org", email_key="leaving@example.org",
                            status=SubscriberStatus.ACTIVE, token=new_token())
        session.add(reader)
        session.flush()
        return reader.id


def status_of(live: Stack, edition_id: int) -> str:
    with live.factory() as session:
        return session.get_one(Edition, edition_id).status.value


def read(live: Stack, query: Any) -> Any:
    with live.factory() as session:
        return session.scalar(query)


# ------------------------------------------------------------------ the actions


@dataclass(frozen=True)
class Case:
    """An action: how to set it up, how each entry point presses it, what must follow, and
    the audit row it must write (its target with the id written as {id})."""

    setup: Callable[[Stack], int]
    entries: dict[str, Callable[[Entry, int], None]]
    effect: Callable[[Stack, int], bool]
    action: str
    target: str
    detail: dict[str, Any] | None | Callable[[dict[str, Any] | None], bool]


def a_newsletter(live: Stack) -> int:
    with live.factory.begin() as session:
        return create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="Europe/Kyiv",
                                 allowed_topics=TOPICS).id


def edition_page(entry: Entry, edition_id: int, action: str) -> None:
    page = f"/editor/editions/{edition_id}"
    # The page asks before scheduling an edition that goes to nobody (these have no reader).
    entry.page_post(entry.editor, page, f"{page}/status", {"action": action, "anyway": "yes", "confirm": "yes"})


def ops_press(entry: Entry, edition_id: int, action: str) -> None:
    # The audit page carries the same CSRF token as the dashboard's buttons, and always has a form.
    entry.page_post(entry.ops, "/ops/audit", f"/ops/editions/{edition_id}/{action}", {"confirm": "yes"})


def state_case(action: str, start: EditionStatus, end: tuple[str, ...], entries: tuple[str, ...],
               **setup: int) -> Case:
    presses: dict[str, Callable[[Entry, int], None]] = {
        "web": lambda e, i: edition_page(e, i, action),
        "ops": lambda e, i: ops_press(e, i, action),
        "api": lambda e, i: e.call("POST", f"/editions/{i}/{action}"),
        "cli": lambda e, i: e.cli("editions", action, str(i)),
    }
    count = setup.get("failed") or setup.get("cut_short")

    def effect(live: Stack, edition_id: int) -> bool:
        # Retrying or sending to the missing leaves no failed or cancelled-skipped row behind
        # (what the worker then makes of them, it may already have done: the edition carries
        # no stories, so its readers are skipped as having nothing new).
        left = read(live, select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition_id,
            (Delivery.status == DeliveryStatus.FAILED) | (Delivery.error_code == ErrorCode.EDITION_CANCELLED)))
        return status_of(live, edition_id) in end and left == 0

    return Case(lambda live: edition_in(live, start, **setup), {name: presses[name] for name in entries},
                effect, f"edition.{action}", "edition:{id}", {"changed": count if count else True})


CASES: dict[str, Case] = {
    "schedule": state_case("schedule", EditionStatus.DRAFT, ("scheduled",), ("web", "api", "cli")),
    "unschedule": state_case("unschedule", EditionStatus.SCHEDULED, ("draft",), ("web", "cli")),
    "cancel": state_case("cancel", EditionStatus.SCHEDULED, ("cancelled",), ("web", "ops", "api", "cli")),
    "pause": state_case("pause", EditionStatus.SENDING, ("paused",), ("ops", "api", "cli")),
    # Nothing left queued: resuming finishes the edition at once.
    "resume": state_case("resume", EditionStatus.PAUSED, ("sent",), ("ops", "api", "cli")),
    "retry-failed": state_case("retry-failed", EditionStatus.SENT, ("sending", "sent"), ("ops", "api", "cli"),
                               failed=2),
    "send-missing": state_case("send-missing", EditionStatus.CANCELLED, ("sending", "sent"), ("ops", "api", "cli"),
                               cut_short=2),
    "edition edit": Case(
        a_draft,
        {"web": lambda e, i: e.page_post(e.editor, f"/editor/editions/{i}/edit", f"/editor/editions/{i}/edit", {
            "subject": "Edited", "send_at": "2031-06-01T09:30", "timezone": "Europe/Kyiv", "max_stories": "3",
            "window_hours": "48"}),
         "api": lambda e, i: e.call("PATCH", f"/editions/{i}", json={
             "subject": "Edited", "send_at": "2031-06-01T09:30", "tz": "Europe/Kyiv", "max_stories": 3}),
         "cli": lambda e, i: e.cli("editions", "edit", str(i), "--subject", "Edited", "--at", "2031-06-01T09:30",
                                   "--tz", "Europe/Kyiv", "--max-stories", "3")},
        edited, "edition.edit", "edition:{id}",
        {"changed": ["subject", "send_at", "max_stories"], "subject": "Edited", "subject_was": "A draft edition",
         "send_at": "2031-06-01T06:30:00+00:00", "send_at_was": EDIT_FROM.isoformat(), "max_stories": 3,
         "max_stories_was": 5}),
    "story flags": Case(
        a_story,
        {"web": lambda e, i: e.page_post(e.editor, "/editor/stories", f"/editor/stories/{i}/flags",
                                         {"featured": "1", "back": "/editor/stories"}),
         "api": lambda e, i: e.call("PATCH", f"/stories/{i}", json={"featured": True}),
         "cli": lambda e, i: e.cli("stories", "update", str(i), "--featured")},
        lambda live, i: read(live, select(Story.featured).where(Story.id == i)), "story.update", "story:{id}",
        {"featured": True}),
    "newsletter": Case(
        lambda live: 0,
        {"web": lambda e, _: e.page_post(e.editor, "/editor/newsletters/new", "/editor/newsletters/new", {
            "slug": "morning", "name": "Morning", "cron": "0 7 * * *", "timezone": "Europe/Kyiv",
            "max_stories": "5", "min_stories": "1", "subject_template": "{{ newsletter }}: {{ date }}"}),
         "api": lambda e, _: e.call("POST", "/newsletters", json={
             "slug": "morning", "name": "Morning", "cron": "0 7 * * *", "timezone": "Europe/Kyiv"}),
         "cli": lambda e, _: e.cli("newsletters", "add", "morning", "--name", "Morning", "--cron", "0 7 * * *",
                                   "--tz", "Europe/Kyiv")},
        lambda live, _: read(live, select(Newsletter.timezone).where(Newsletter.slug == "morning")) == "Europe/Kyiv",
        "newsletter.add", "newsletter:{id}", {"slug": "morning"}),
    "newsletter edit": Case(
        lambda live: a_newsletter(live),
        {"web": lambda e, i: e.page_post(e.editor, f"/editor/newsletters/{i}", f"/editor/newsletters/{i}", {
            "name": "Morning", "cron": "30 6 * * *", "timezone": "Europe/Kyiv", "max_stories": "3",
            "min_stories": "1", "window_hours": "48", "subject_template": DEFAULT_SUBJECT,
            "new_editions": "scheduled"}),
         "api": lambda e, i: e.call("PATCH", f"/newsletters/{i}", json={"cron": "30 6 * * *", "max_stories": 3}),
         "cli": lambda e, i: e.cli("newsletters", "edit", str(i), "--cron", "30 6 * * *", "--max-stories", "3")},
        lambda live, i: read(live, select(Newsletter.cron).where(Newsletter.id == i)) == "30 6 * * *",
        "newsletter.edit", "newsletter:{id}",
        {"changed": ["cron", "max_stories"], "cron": "30 6 * * *", "cron_was": "0 7 * * *", "max_stories": 3,
         "max_stories_was": 5}),
    "newsletter pause": Case(
        lambda live: a_newsletter(live),
        {"web": lambda e, i: e.page_post(e.editor, f"/editor/newsletters/{i}", f"/editor/newsletters/{i}/pause"),
         "api": lambda e, i: e.call("POST", f"/newsletters/{i}/pause"),
         "cli": lambda e, i: e.cli("newsletters", "pause", str(i))},
        lambda live, i: read(live, select(Newsletter.active).where(Newsletter.id == i)) is False,
        "newsletter.pause", "newsletter:{id}", {"changed": True, "editions": 0}),
    "token create": Case(
        lambda live: 0,
        {"web": lambda e, _: e.page_post(e.editor, "/editor/tokens", "/editor/tokens", {"name": "sync"}),
         "api": lambda e, _: e.call("POST", "/tokens", json={"name": "sync"}),
         "cli": lambda e, _: e.cli("users", "token", EDITOR, "--name", "sync")},
        lambda live, _: read(live, select(func.count()).where(ApiToken.name == "sync")) == 1,
        "token.create", "token:{id}", {"name": "sync"}),
    "token revoke": Case(
        lambda live: a_token(live, EDITOR),
        {"web": lambda e, i: e.page_post(e.editor, "/editor/tokens", f"/editor/tokens/{i}/revoke"),
         "api": lambda e, i: e.call("DELETE", f"/tokens/{i}"),
         "cli": lambda e, i: e.cli("users", "revoke-token", str(i))},
        lambda live, i: read(live, select(ApiToken.revoked_at).where(ApiToken.id == i)) is not None,
        "token.revoke", "token:{id}",
        None),
    "reader unsubscribe": Case(
        a_reader,
        {"web": lambda e, i: e.page_post(e.editor, f"/editor/readers/{i}/unsubscribe",
                                         f"/editor/readers/{i}/unsubscribe", {"confirm": "yes"}),
         "api": lambda e, i: e.call("POST", f"/readers/{i}/unsubscribe")},
        lambda live, i: read(live, select(Subscriber.unsubscribe_channel).where(Subscriber.id == i)) == "admin",
        "reader.unsubscribe", "reader:{id}", {"changed": True}),
}


def a_cancelled_draft_with_a_note(live: Stack) -> int:
    edition_id = edition_in(live, EditionStatus.CANCELLED)
    with live.factory.begin() as session:
        session.get_one(Edition, edition_id).note = "Read this first."
    return edition_id


def duplicated(live: Stack, edition_id: int) -> bool:
    with live.factory() as session:
        copies = session.scalars(select(Edition).where(Edition.id != edition_id)).all()
        return [(c.subject, c.status, c.note) for c in copies] == [
            ("A cancelled edition", EditionStatus.DRAFT, "Read this first.")]


def names_the_copy(detail: dict[str, Any] | None) -> bool:
    return isinstance(detail, dict) and set(detail) == {"copy_id"} and isinstance(detail["copy_id"], int)


CASES["duplicate"] = Case(
    a_cancelled_draft_with_a_note,
    {"web": lambda e, i: e.page_post(e.editor, f"/editor/editions/{i}", f"/editor/editions/{i}/duplicate"),
     "api": lambda e, i: e.call("POST", f"/editions/{i}/duplicate"),
     "cli": lambda e, i: e.cli("editions", "duplicate", str(i))},
    duplicated, "edition.duplicate", "edition:{id}", names_the_copy)
ACTORS = {"web": EDITOR, "ops": OPS, "api": ADMIN, "cli": "cli"}


@pytest.mark.parametrize(("name", "via"), [(name, via) for name, case in CASES.items() for via in case.entries])
def test_each_entry_point_takes_the_one_path(entry: Entry, name: str, via: str) -> None:
    case = CASES[name]
    subject = case.setup(entry.live)
    with entry.live.factory() as session:
        before = session.scalar(select(func.max(AuditEntry.id))) or 0
    case.entries[via](entry, subject)

    assert case.effect(entry.live, subject), f"{name} through {via}: no effect"
    with entry.live.factory() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id > before, AuditEntry.action != "login")).all()
    assert len(rows) == 1, [(r.action, r.target) for r in rows]
    row = rows[0]
    detail = case.detail(row.detail) if callable(case.detail) else case.detail
    expected = row.detail if detail is True else case.detail
    assert (row.action, re.sub(r":\d+$", ":{id}", row.target), row.detail) == (case.action, case.target, expected)
    assert (row.via, row.actor) == (via, ACTORS[via])
    if "{id}" in case.target and subject:
        assert row.target == case.target.format(id=subject)
