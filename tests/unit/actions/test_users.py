"""The staff-account actions: each change and its audit row commit together, a refusal
changes nothing and leaves no row, and no password ever reaches the audit log."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from digest import actions, staff
from digest.config import get_settings
from digest.errors import Invalid
from digest.store import AuditEntry, Role, User
from digest.store.engine import session_factory

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a password of my own"


@pytest.fixture
def deps(engine: Engine) -> actions.Deps:
    # Staff actions enqueue nothing: every queue refuses, so a stray enqueue would show.
    return actions.Deps(session_factory(engine), get_settings(), refuse, refuse, refuse)


def refuse(*args: object) -> None:
    raise AssertionError(f"a staff account action enqueued {args}")


def add(deps: actions.Deps, email: str, role: str, *, one_time: bool = False) -> User:
    actions.users.add_user(deps, actions.Actor.command_line(), email, role, PASSWORD, one_time=one_time)
    with deps.factory() as session:
        return session.scalars(select(User).where(User.email == email)).one()


def audit_rows(factory: sessionmaker[Session]) -> list[tuple[str, str, str | None, object]]:
    with factory() as session:
        return [(row.action, row.target, row.via, row.detail)
                for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_one_time_password_is_replaced_by_the_users_own(deps: actions.Deps) -> None:
    ann = add(deps, "ann@example.org", "editor", one_time=True)
    with deps.factory.begin() as session:
        here, elsewhere = (staff.start_session(session, session.get_one(User, ann.id)) for _ in range(2))

    actions.users.change_password(deps, actions.Actor(ann, "web"), PASSWORD, NEW_PASSWORD, NEW_PASSWORD,
                                  keep_session=here)

    with deps.factory() as session:
        assert session.get_one(User, ann.id).must_change_password is False
        assert staff.user_for_session(session, here) is not None
        assert staff.user_for_session(session, elsewhere) is None
    assert staff.authenticate(deps.factory, "ann@example.org", NEW_PASSWORD) is not None
    assert audit_rows(deps.factory)[-1] == ("user.password", f"user:{ann.id}", "web", {"was_one_time": True})


@pytest.mark.parametrize(("current", "new", "repeat", "field", "code"), [
    ("not my password", NEW_PASSWORD, NEW_PASSWORD, "current", "wrong_password"),
    (PASSWORD, "too short", "too short", "new", "password_too_short"),
    (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "repeat", "password_mismatch"),
    (PASSWORD, PASSWORD, PASSWORD, "new", "password_unchanged"),
])
def test_a_refused_password_names_its_field_and_changes_nothing(deps: actions.Deps, current: str, new: str,
                                                                repeat: str, field: str, code: str) -> None:
    ann = add(deps, "ann@example.org", "editor", one_time=True)
    before = audit_rows(deps.factory)
    with pytest.raises(staff.PasswordError) as refused:
        actions.users.change_password(deps, actions.Actor(ann, "web"), current, new, repeat)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert audit_rows(deps.factory) == before
    with deps.factory() as session:
        assert session.get_one(User, ann.id).must_change_password
    assert staff.authenticate(deps.factory, "ann@example.org", PASSWORD) is not None


def test_the_command_line_has_no_password_of_its_own(deps: actions.Deps) -> None:
    with pytest.raises(Invalid, match="users reset"):
        actions.users.change_password(deps, actions.Actor.command_line(), PASSWORD, NEW_PASSWORD, NEW_PASSWORD)


def test_admin_actions_are_audited_without_any_password(deps: actions.Deps) -> None:
    admin = add(deps, "admin@example.org", "admin")
    ann = add(deps, "ann@example.org", "editor")
    by_admin = actions.Actor(admin, "web")

    issued = actions.users.reset(deps, by_admin, ann.id)
    assert issued["email"] == "ann@example.org" and len(issued["password"]) >= staff.PASSWORD_MIN_CHARS
    assert actions.users.change_role(deps, by_admin, ann.id, "ops").changed
    assert actions.users.disable(deps, by_admin, ann.id).changed
    assert not actions.users.disable(deps, by_admin, ann.id).changed
    assert actions.users.enable(deps, actions.Actor.command_line(), "ann@example.org").changed

    rows = audit_rows(deps.factory)
    target = f"user:{ann.id}"
    assert rows[1][:3] == ("user.add", target, "cli") and rows[1][3] == {"role": "editor", "one_time": False}
    assert rows[2:] == [
        ("user.reset", target, "web", None),
        ("user.role", target, "web", {"role": "ops", "was": "editor"}),
        ("user.disable", target, "web", {"changed": True}),
        ("user.disable", target, "web", {"changed": False}),
        ("user.enable", target, "cli", {"changed": True}),
    ]
    everything = json.dumps(rows)
    assert issued["password"] not in everything and PASSWORD not in everything


def test_refusals_leave_no_audit_row(deps: actions.Deps) -> None:
    admin = add(deps, "admin@example.org", "admin")
    before = audit_rows(deps.factory)
    for refused, error in (
        (lambda: actions.users.disable(deps, actions.Actor.command_line(), "admin@example.org"), staff.LastAdmin),
        (lambda: actions.users.change_role(deps, actions.Actor(admin, "web"), admin.id, "ops"), staff.OwnAccount),
        (lambda: actions.users.reset(deps, actions.Actor(admin, "web"), admin.id), staff.OwnAccount),
        (lambda: actions.users.reset(deps, actions.Actor.command_line(), "nobody@example.org"), staff.UserNotFound),
        (lambda: actions.users.change_role(deps, actions.Actor.command_line(), admin.id, "owner"), staff.AccountError),
    ):
        with pytest.raises(error):
            refused()
    assert audit_rows(deps.factory) == before
    with deps.factory() as session:
        assert session.get_one(User, admin.id).role == Role.ADMIN
