"""Who may sign in, and as what: finding and listing staff accounts, disabling and enabling
them, changing their role, issuing a new one-time password; and the rules over all of it.

- At least one active admin remains: disabling or demoting the last one is refused
  (`LastAdmin`), whoever asks, the command line included; add another admin first.
- Nobody changes their own standing: an admin cannot disable, demote or reset their own
  account (`OwnAccount`; another admin can), so no slip of the mouse locks anyone out.
  Their own password they change on the account page.

A disabled account's browser sessions end; its API tokens stop working while it is disabled
(`user_for_session` and `user_for_api_token` refuse it) and work again once it is enabled.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from digest.errors import Conflict, NotFound
from digest.staff.accounts import end_user_sessions, parse_role
from digest.staff.passwords import set_password
from digest.store import Role, User, utcnow


class UserNotFound(NotFound):
    default_code = "user_not_found"


class LastAdmin(Conflict):
    """The change would leave nobody able to manage accounts."""

    default_code = "last_admin"


class OwnAccount(Conflict):
    """An admin's own account is changed by another admin."""

    default_code = "own_account"


def find_user(session: Session, who: int | str) -> User:
    """A user by id, or by address (as the command line names them)."""
    if isinstance(who, int):
        user = session.get(User, who)
        if user is None:
            raise UserNotFound(f"no user with id {who}")
        return user
    user = session.scalar(select(User).where(User.email == who.strip().lower()))
    if user is None:
        raise UserNotFound(f"no user {who.strip()}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def account_status(user: User) -> str:
    return "disabled" if user.disabled_at is not None else "active"


def _lock_active_admins(session: Session) -> None:
    # Two admins demoting each other at once must not both find "another admin is left".
    # PostgreSQL: the active admins' rows stay locked until commit, so the second change
    # waits and then sees the first. SQLite has no FOR UPDATE (SQLAlchemy leaves it out) and
    # needs none: it runs one writer at a time, and the guard is inside each UPDATE.
    session.execute(select(User.id).where(User.role == Role.ADMIN, User.disabled_at.is_(None)).with_for_update())


def _another_active_admin(user_id: int) -> ColumnElement[bool]:
    other = aliased(User)
    return exists().where(other.role == Role.ADMIN, other.disabled_at.is_(None), other.id != user_id)


def _not_own(user: User, by: User | None, what: str) -> None:
    if by is not None and by.id == user.id:
        raise OwnAccount(f"you cannot {what} your own account; another admin can")


def set_disabled(session: Session, who: int | str, disabled: bool, *, by: User | None = None,
                 now: datetime | None = None) -> tuple[User, bool]:
    """Disable or enable an account: (the user, whether this call changed it). Disabling ends
    its browser sessions. `by`: the admin asking (None: the command line)."""
    _lock_active_admins(session)
    user = find_user(session, who)
    _not_own(user, by, "disable" if disabled else "enable")
    if disabled:
        query = (update(User).where(User.id == user.id, User.disabled_at.is_(None),
                                    or_(User.role != Role.ADMIN, _another_active_admin(user.id)))
                 .values(disabled_at=now or utcnow()))
    else:
        query = update(User).where(User.id == user.id, User.disabled_at.is_not(None)).values(disabled_at=None)
    changed = session.execute(query.execution_options(synchronize_session=False)).rowcount == 1
    session.refresh(user)
    if disabled and not changed and user.disabled_at is None:
        raise LastAdmin(f"{user.email} is the last active admin; make another admin first")
    if disabled and changed:
        end_user_sessions(session, user.id)
    return user, changed


def set_role(session: Session, who: int | str, role: str, *, by: User | None = None) -> tuple[User, Role, bool]:
    """Change an account's role: (the user, the role it had, whether this call changed it)."""
    chosen = parse_role(role)
    _lock_active_admins(session)
    user = find_user(session, who)
    _not_own(user, by, "change the role of")
    was = user.role
    if was == chosen:
        return user, was, False
    query = update(User).where(User.id == user.id, User.role == was)
    if was == Role.ADMIN:
        query = query.where(or_(User.disabled_at.is_not(None), _another_active_admin(user.id)))
    changed = session.execute(query.values(role=chosen).execution_options(synchronize_session=False)).rowcount == 1
    session.refresh(user)
    if not changed and user.role == was:
        raise LastAdmin(f"{user.email} is the last active admin; make another admin first")
    return user, was, changed


def reset_password(session: Session, who: int | str, password_hash: str, *, by: User | None = None) -> User:
    """Give an account a new one-time password (its hash from `one_time_password`): the old
    one stops working, every browser session ends, and the next sign-in must choose a new
    password. API tokens are left alone (revoke them on their own if they leaked too)."""
    user = find_user(session, who)
    _not_own(user, by, "reset the password of")
    set_password(session, user.id, password_hash, one_time=True)
    session.refresh(user)
    return user
