"""Actions on staff accounts: add one (there is no sign-up page), change one's own password,
and an admin's (or the command line's) disable, enable, change role and reset.

A password never reaches the audit row. Argon2 runs before each transaction opens (see
digest.staff.passwords), so no database connection waits on it. Who may ask is checked at
the entry point (admins only on /editor/users); the rules that hold for everyone (at least
one active admin, nobody changes their own standing) are digest.staff's.
"""

from __future__ import annotations

from typing import Any

from digest.actions.base import Actor, Deps, Outcome, audited
from digest.errors import Invalid
from digest.staff import (
    PasswordError,
    check_new_password,
    create_user,
    hash_password,
    one_time_password,
    reset_password,
    set_disabled,
    set_password,
    set_role,
    verify_password,
)
from digest.store import User


def add_user(deps: Deps, actor: Actor, email: str, role: str, password: str, *,
             one_time: bool = False) -> tuple[str, str]:
    """An editor, ops or admin account; returns (its address, its role). `one_time`: the
    password was made for the person and is shown once, so their first sign-in replaces it."""
    with audited(deps, actor, "user.add") as (session, row):
        user = create_user(session, email, role, password, one_time=one_time)
        row.target = f"user:{user.id}"
        row.update(role=user.role.value, one_time=one_time)
        return user.email, user.role.value


def change_password(deps: Deps, actor: Actor, current: str, new: str, repeat: str, *,
                    keep_session: str | None = None) -> None:
    """The acting user's own password, given the current one (a one-time password included).
    Every other browser signed in as them is signed out; `keep_session` (the one asking)
    stays. PasswordError names the field at fault."""
    if actor.user is None:
        raise Invalid("the command line has no password of its own; use `digest users reset EMAIL`")
    user_id = actor.user.id
    check_new_password(new, repeat)
    expected = verify_password(deps.factory, user_id, current)
    if expected is None:
        raise PasswordError("the current password is not right", field="current", code="wrong_password")
    if new == current:
        raise PasswordError("choose a new password, not the one you have", field="new", code="password_unchanged")
    new_hash = hash_password(new)
    with audited(deps, actor, "user.password", f"user:{user_id}") as (session, row):
        row.update(was_one_time=session.get_one(User, user_id).must_change_password)
        set_password(session, user_id, new_hash, one_time=False, expected_hash=expected, keep_session=keep_session)


def reset(deps: Deps, actor: Actor, who: int | str) -> dict[str, Any]:
    """A new one-time password for someone else's account: {id, email, password}, the
    password shown this once. Their old password stops working, they are signed out
    everywhere, and their next sign-in must choose a new one."""
    password, password_hash = one_time_password()
    with audited(deps, actor, "user.reset") as (session, row):
        user = reset_password(session, who, password_hash, by=actor.user)
        row.target = f"user:{user.id}"
        return {"id": user.id, "email": user.email, "password": password}


def disable(deps: Deps, actor: Actor, who: int | str) -> Outcome:
    """Nobody signs in as this account any more: its sessions end, its API tokens stop."""
    return _set_disabled(deps, actor, who, True)


def enable(deps: Deps, actor: Actor, who: int | str) -> Outcome:
    """A disabled account may sign in again (with the password it had; reset it if need be)."""
    return _set_disabled(deps, actor, who, False)


def _set_disabled(deps: Deps, actor: Actor, who: int | str, disabled: bool) -> Outcome:
    with audited(deps, actor, "user.disable" if disabled else "user.enable") as (session, row):
        user, changed = set_disabled(session, who, disabled, by=actor.user)
        row.target = f"user:{user.id}"
        row.update(changed=changed)
        return Outcome(changed, data={"id": user.id, "email": user.email})


def change_role(deps: Deps, actor: Actor, who: int | str, role: str) -> Outcome:
    with audited(deps, actor, "user.role") as (session, row):
        user, was, changed = set_role(session, who, role, by=actor.user)
        row.target = f"user:{user.id}"
        row.update(role=user.role.value, was=was.value)
        return Outcome(changed, data={"id": user.id, "email": user.email, "role": user.role.value})
