"""Passwords: choosing a new one, checking the current one, storing it, one-time passwords.

A one-time password (printed by `digest users add`, or made by an admin's reset) is stored
like any other, with `users.must_change_password` set; the web sends its holder to the
change-password page until they have chosen their own. Argon2 runs before the transaction
that stores its result (`hash_password`, `verify_password`, `one_time_password`), through
accounts' bounded one-lane hasher, so no database connection waits on it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.staff.accounts import (
    PASSWORD_MIN_CHARS,
    AccountError,
    _hash,
    _verify,
    end_user_sessions,
    generate_password,
)
from digest.store import User


class PasswordError(AccountError):
    """A password that cannot be used; `field` names the form input it is about: `current`,
    `new` or `repeat`."""

    def __init__(self, message: str, *, field: str, code: str = "invalid_password") -> None:
        super().__init__(message, code=code)
        self.field = field


def check_new_password(new: str, repeat: str | None = None) -> None:
    """Long enough, and typed the same twice (when `repeat` is given)."""
    if len(new) < PASSWORD_MIN_CHARS:
        raise PasswordError(f"the new password must be at least {PASSWORD_MIN_CHARS} characters", field="new",
                            code="password_too_short")
    if repeat is not None and repeat != new:
        raise PasswordError("the two new passwords are not the same", field="repeat", code="password_mismatch")


def hash_password(password: str) -> str:
    """A checked new password's argon2 hash, for `set_password`."""
    check_new_password(password)
    return _hash(password)


def one_time_password() -> tuple[str, str]:
    """(a new random password, its hash): the password is shown to a person once."""
    password = generate_password()
    return password, _hash(password)


def verify_password(factory: sessionmaker[Session], user_id: int, password: str) -> str | None:
    """The stored hash if `password` is the active user's current one (hand it to
    `set_password` as `expected_hash`), else None. Holds no connection while argon2 runs."""
    with factory() as session:
        stored = session.scalar(select(User.password_hash).where(User.id == user_id, User.disabled_at.is_(None)))
    if stored is None or not _verify(stored, password):
        return None
    return stored


def set_password(session: Session, user_id: int, password_hash: str, *, one_time: bool,
                 expected_hash: str | None = None, keep_session: str | None = None) -> int:
    """Store a hash from `hash_password` or `one_time_password`; `one_time` makes the next
    sign-in choose a new one. Whoever is signed in with the old password is signed out: every
    browser session of the user ends but `keep_session` (the one that changed it). With
    `expected_hash`, only while the password is still the one checked (PasswordError on
    `current` if it changed meanwhile). The user must exist. Returns how many sessions ended."""
    query = update(User).where(User.id == user_id)
    if expected_hash is not None:
        query = query.where(User.password_hash == expected_hash)
    done = session.execute(query.values(password_hash=password_hash, must_change_password=one_time)
                           .execution_options(synchronize_session=False))
    if expected_hash is not None and done.rowcount != 1:
        raise PasswordError("the current password is not right", field="current", code="wrong_password")
    return end_user_sessions(session, user_id, keep=keep_session)
