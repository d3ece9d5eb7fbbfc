"""Staff accounts' rules, on a SQLite file: one-time passwords, setting a password, disabling
and enabling (sessions and API tokens stop), roles, and the two rules over all of it: at
least one active admin remains, and nobody changes their own account's standing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from digest import staff
from digest.errors import Conflict, Invalid, NotFound
from digest.store import Role, User, WebSession, utcnow
from digest.store.engine import session_factory

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    """Made once: argon2 costs ~0.2 s a hash, and most tests only need an account to exist."""
    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def add(factory: sessionmaker[Session], password_hash: str, email: str, role: Role = Role.EDITOR,
        disabled: bool = False) -> int:
    with factory.begin() as session:
        user = User(email=email, role=role, password_hash=password_hash)
        if disabled:
            user.disabled_at = utcnow()
        session.add(user)
        session.flush()
        return user.id


def sessions_of(factory: sessionmaker[Session], user_id: int) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)) or 0


def signed_in(factory: sessionmaker[Session], user_id: int) -> str:
    with factory.begin() as session:
        return staff.start_session(session, session.get_one(User, user_id))


# ------------------------------------------------------------------ passwords


def test_a_new_password_is_long_enough_and_typed_twice_the_same() -> None:
    with pytest.raises(staff.PasswordError) as short:
        staff.check_new_password("x" * (staff.PASSWORD_MIN_CHARS - 1), "x" * (staff.PASSWORD_MIN_CHARS - 1))
    assert short.value.field == "new" and short.value.code == "password_too_short"
    with pytest.raises(staff.PasswordError) as differ:
        staff.check_new_password("a long enough password", "a long enough passw0rd")
    assert differ.value.field == "repeat" and differ.value.code == "password_mismatch"
    assert isinstance(differ.value, Invalid)
    staff.check_new_password("x" * staff.PASSWORD_MIN_CHARS, "x" * staff.PASSWORD_MIN_CHARS)


def test_an_account_made_with_a_one_time_password_must_change_it(session: Session) -> None:
    made = staff.create_user(session, "Olena@Example.org", "editor", PASSWORD, one_time=True)
    chosen = staff.create_user(session, "bob@example.org", "ops", PASSWORD)
    assert made.email == "olena@example.org" and made.must_change_password
    assert not chosen.must_change_password


def test_the_current_password_is_checked_without_a_session_held(factory: sessionmaker[Session],
                                                                password_hash: str) -> None:
    user_id = add(factory, password_hash, "ann@example.org")
    assert staff.verify_password(factory, user_id, PASSWORD) == password_hash
    assert staff.verify_password(factory, user_id, "not the password") is None
    assert staff.verify_password(factory, user_id + 100, PASSWORD) is None
    with factory.begin() as session:
        staff.set_disabled(session, user_id, True)
    assert staff.verify_password(factory, user_id, PASSWORD) is None  # a disabled account has none


def test_setting_a_password_signs_out_every_other_browser(factory: sessionmaker[Session], password_hash: str) -> None:
    user_id = add(factory, password_hash, "ann@example.org")
    here, elsewhere = signed_in(factory, user_id), signed_in(factory, user_id)
    new_hash = staff.hash_password("a brand new password")
    with factory.begin() as session:
        ended = staff.set_password(session, user_id, new_hash, one_time=False, expected_hash=password_hash,
                                   keep_session=here)
    assert ended == 1
    with factory() as session:
        assert staff.user_for_session(session, here) is not None
        assert staff.user_for_session(session, elsewhere) is None
    assert staff.verify_password(factory, user_id, "a brand new password") == new_hash
    assert staff.verify_password(factory, user_id, PASSWORD) is None


def test_a_password_changed_meanwhile_is_not_overwritten(factory: sessionmaker[Session], password_hash: str) -> None:
    """The current password is checked before the transaction (argon2 holds no connection);
    the write then happens only if it is still the one checked."""
    user_id = add(factory, password_hash, "ann@example.org")
    with factory.begin() as session, pytest.raises(staff.PasswordError) as changed:
        staff.set_password(session, user_id, "new-hash", one_time=False, expected_hash="some other hash")
    assert changed.value.field == "current"
    assert staff.verify_password(factory, user_id, PASSWORD) == password_hash


def test_a_reset_gives_a_one_time_password_and_signs_the_user_out(factory: sessionmaker[Session],
                                                                 password_hash: str) -> None:
    user_id = add(factory, password_hash, "ann@example.org")
    browser = signed_in(factory, user_id)
    with factory.begin() as session:
        user = session.get_one(User, user_id)
        _, token = staff.create_api_token(session, user, "script")
    password, new_hash = staff.one_time_password()
    assert len(password) >= staff.PASSWORD_MIN_CHARS
    with factory.begin() as session:
        user = staff.reset_password(session, "ANN@example.org", new_hash)
        assert user.must_change_password
    assert sessions_of(factory, user_id) == 0
    assert staff.verify_password(factory, user_id, password) == new_hash
    assert staff.verify_password(factory, user_id, PASSWORD) is None
    with factory() as session:
        assert staff.user_for_session(session, browser) is None
        assert staff.user_for_api_token(session, token) is not None  # tokens are revoked on their own


# ------------------------------------------------------------------ disabling


def test_a_disabled_account_cannot_use_its_sessions_or_tokens_until_enabled(factory: sessionmaker[Session],
                                                                           password_hash: str) -> None:
    user_id = add(factory, password_hash, "ann@example.org")
    browser = signed_in(factory, user_id)
    with factory.begin() as session:
        _, token = staff.create_api_token(session, session.get_one(User, user_id), "script")

    with factory.begin() as session:
        user, changed = staff.set_disabled(session, user_id, True)
        assert changed and user.disabled_at is not None
    with factory.begin() as session:
        assert staff.set_disabled(session, user_id, True)[1] is False  # already so
    assert staff.authenticate(factory, "ann@example.org", PASSWORD) is None
    with factory.begin() as session:
        assert staff.user_for_session(session, browser) is None
        assert staff.user_for_api_token(session, token) is None
    assert sessions_of(factory, user_id) == 0  # ended, so enabling does not bring them back

    with factory.begin() as session:
        user, changed = staff.set_disabled(session, "ann@example.org", False)
        assert changed and user.disabled_at is None
    with factory.begin() as session:
        assert staff.set_disabled(session, user_id, False)[1] is False
        assert staff.user_for_api_token(session, token) is not None
        assert staff.user_for_session(session, browser) is None
    assert staff.authenticate(factory, "ann@example.org", PASSWORD) is not None


def test_an_unknown_account_is_not_found(session: Session) -> None:
    for who in (404, "nobody@example.org"):
        with pytest.raises(staff.UserNotFound) as missing:
            staff.set_disabled(session, who, True)
        assert isinstance(missing.value, NotFound) and missing.value.code == "user_not_found"
    with pytest.raises(staff.UserNotFound):
        staff.set_role(session, "nobody@example.org", "ops")
    with pytest.raises(staff.UserNotFound):
        staff.reset_password(session, 404, "hash")


# ------------------------------------------------------------------ roles and the last admin


def test_a_role_changes_and_an_unknown_role_is_refused(factory: sessionmaker[Session], password_hash: str) -> None:
    user_id = add(factory, password_hash, "ann@example.org")
    with factory.begin() as session:
        user, was, changed = staff.set_role(session, user_id, "ops")
        assert (user.role, was, changed) == (Role.OPS, Role.EDITOR, True)
    with factory.begin() as session:
        assert staff.set_role(session, user_id, "ops")[2] is False
    with factory.begin() as session, pytest.raises(staff.AccountError, match="role must be one of"):
        staff.set_role(session, user_id, "owner")


def test_the_last_active_admin_is_neither_disabled_nor_demoted(factory: sessionmaker[Session],
                                                             password_hash: str) -> None:
    first = add(factory, password_hash, "first@example.org", Role.ADMIN)
    retired = add(factory, password_hash, "retired@example.org", Role.ADMIN, disabled=True)
    for change in (lambda s: staff.set_disabled(s, first, True), lambda s: staff.set_role(s, first, "editor")):
        with factory.begin() as session, pytest.raises(staff.LastAdmin) as refused:
            change(session)
        assert isinstance(refused.value, Conflict) and "first@example.org is the last active admin" in str(refused.value)
    with factory() as session:
        assert session.get_one(User, first).role == Role.ADMIN and session.get_one(User, first).disabled_at is None

    # A disabled admin is no admin to keep: demoting it is fine.
    with factory.begin() as session:
        assert staff.set_role(session, retired, "ops")[2]
    # With a second active admin, either may go.
    second = add(factory, password_hash, "second@example.org", Role.ADMIN)
    with factory.begin() as session:
        assert staff.set_role(session, first, "editor")[2]
    with factory.begin() as session, pytest.raises(staff.LastAdmin):
        staff.set_disabled(session, second, True)
    with factory.begin() as session:
        assert staff.set_role(session, first, "admin")[2]
    with factory.begin() as session:
        assert staff.set_disabled(session, second, True)[1]


def test_nobody_changes_their_own_accounts_standing(factory: sessionmaker[Session], password_hash: str) -> None:
    """Even with another admin to spare: an admin's own account is another admin's to change."""
    me_id = add(factory, password_hash, "me@example.org", Role.ADMIN)
    add(factory, password_hash, "other@example.org", Role.ADMIN)
    with factory() as session:
        me = session.get_one(User, me_id)
    for change in (lambda s: staff.set_disabled(s, me_id, True, by=me),
                   lambda s: staff.set_role(s, me_id, "editor", by=me),
                   lambda s: staff.reset_password(s, me_id, "hash", by=me)):
        with factory.begin() as session, pytest.raises(staff.OwnAccount) as refused:
            change(session)
        assert refused.value.code == "own_account" and "your own account" in str(refused.value)
    with factory() as session:
        mine = session.get_one(User, me_id)
        assert (mine.role, mine.disabled_at, mine.password_hash) == (Role.ADMIN, None, password_hash)


def test_accounts_are_listed_by_address_with_their_status(factory: sessionmaker[Session], password_hash: str) -> None:
    add(factory, password_hash, "zed@example.org", Role.OPS, disabled=True)
    add(factory, password_hash, "ann@example.org")
    with factory() as session:
        listed = [(u.email, staff.account_status(u)) for u in staff.list_users(session)]
    assert listed == [("ann@example.org", "active"), ("zed@example.org", "disabled")]
