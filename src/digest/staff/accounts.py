"""Staff accounts: editors, ops and admins. Passwords hashed with argon2; browser sessions
and API tokens are random secrets of which only a SHA-256 is stored, so a database leak
opens nothing, and either can be revoked.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import Conflict, Invalid
from digest.mail import normalise_address
from digest.store import ApiToken, Role, User, WebSession, utcnow

SESSION_MAX_AGE_HOURS = 12
PASSWORD_MIN_CHARS = 12
API_TOKEN_PREFIX = "dgt_"
# Sign-ins must not starve the pages. argon2-cffi releases the GIL, and by default one check
# runs 4 lanes on 4 threads: four sign-ins at once made 16 busy threads on 2 cores and
# /archive's p99 10x slower (digest bench). So: one lane per check (the same memory and
# passes, so the same cost to an attacker per guess), and at most half the cores hashing at
# once in a process; the other half keeps serving. A hash made with other parameters is
# upgraded at its next sign-in.
ARGON2_LANES = 1
HASHING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
_hasher = PasswordHasher(parallelism=ARGON2_LANES)
_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)


class AccountError(Invalid):
    """A role, password or address that cannot make an account."""


class AccountExists(Conflict, AccountError):
    """A conflict first (409): the input is fine, the address has an account."""


def _hash(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with _hashing:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(f"role must be one of {', '.join(r.value for r in Role)}") from None


def create_user(session: Session, email: str, role: str, password: str, *, one_time: bool = False) -> User:
    """A new account. `one_time`: the password was made for the person (printed or shown
    once), so their first sign-in must replace it."""
    chosen = parse_role(role)
    if len(password) < PASSWORD_MIN_CHARS:
        raise AccountError(f"password must be at least {PASSWORD_MIN_CHARS} characters")
    _, key = normalise_address(email)
    if session.scalar(select(User.id).where(User.email == key)) is not None:
        raise AccountExists(f"a user {key} exists")
    user = User(email=key, role=chosen, password_hash=_hash(password), must_change_password=one_time)
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignIn:
    """A checked password: whose, and the hash to store if argon2's parameters changed."""

    user_id: int
    new_hash: str | None
    one_time: bool = False  # the password is one an admin issued (random, not guessable)


def authenticate(factory: sessionmaker[Session], email: str, password: str) -> SignIn | None:
    """Check a password without holding a database connection while argon2 runs (tens of
    milliseconds of CPU; a pool of connections idle in transaction would run out first).
    None for a wrong password or an unknown or disabled account, at the same cost."""
    with factory() as session:
        row = session.execute(select(User.id, User.password_hash, User.disabled_at, User.must_change_password)
                              .where(User.email == email.strip().lower())).first()
    if row is None or row.disabled_at is not None:
        _hash(password)  # same cost whether or not the account exists
        return None
    if not _verify(row.password_hash, password):
        return None
    new_hash = _hash(password) if _hasher.check_needs_rehash(row.password_hash) else None
    return SignIn(row.id, new_hash, one_time=bool(row.must_change_password))


def record_sign_in(session: Session, sign_in: SignIn, now: datetime | None = None) -> tuple[User, str] | None:
    """The checked user signed in: (user, the new browser session's cookie value); None if
    the account was disabled meanwhile."""
    user = session.get(User, sign_in.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if sign_in.new_hash is not None:
        user.password_hash = sign_in.new_hash
    user.last_login_at = now or utcnow()
    return user, start_session(session, user, now)


def start_session(session: Session, user: User, now: datetime | None = None) -> str:
    """A new browser session; returns the cookie value (shown once, stored hashed)."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    session.add(WebSession(id_hash=_sha256(raw), user_id=user.id, created_at=now,
                           expires_at=now + timedelta(hours=SESSION_MAX_AGE_HOURS)))
    return raw


def user_for_session(session: Session, raw: str | None) -> User | None:
    if not raw or len(raw) > 100:
        return None
    row = session.get(WebSession, _sha256(raw))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.disabled_at is None else None


def end_session(session: Session, raw: str | None) -> None:
    if raw:
        row = session.get(WebSession, _sha256(raw))
        if row is not None:
            session.delete(row)


def end_user_sessions(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """Sign the user out of every browser but `keep` (a session cookie value); returns how
    many sessions ended."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep:
        query = query.where(WebSession.id_hash != _sha256(keep))
    return session.execute(query.execution_options(synchronize_session=False)).rowcount or 0


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """(row, secret); the secret is shown once and only its hash is kept."""
    name = " ".join(name.split())[:100] or "token"
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_sha256(raw), prefix=raw[:10])
    session.add(token)
    session.flush()
    return token, raw


def user_for_api_token(session: Session, raw: str | None) -> User | None:
    if not raw or not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(raw)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or user.disabled_at is not None:
        return None
    token.last_used_at = utcnow()
    return user


def revoke_api_token(session: Session, token_id: int, user: User | None) -> bool:
    """Owners revoke their own tokens; admins (and the command line: user None) any. True
    if this call revoked it."""
    query = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if user is not None and user.role != Role.ADMIN:
        query = query.where(ApiToken.user_id == user.id)
    return (session.execute(query.values(revoked_at=utcnow()).execution_options(
        synchronize_session=False)).rowcount or 0) == 1


# Which roles may do what. Admins may do everything.
EDITOR_ROLES = (Role.EDITOR, Role.ADMIN)
OPS_ROLES = (Role.OPS, Role.ADMIN)
