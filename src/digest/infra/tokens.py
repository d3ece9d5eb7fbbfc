"""Signed, purpose-scoped tokens.

Per-reader links (unsubscribe, preferences) use the reader's opaque 256-bit token kept in
the database. Confirmation links are different on purpose: signed with DIGEST_SECRET_KEY
under their own salt and carrying their issue time, so they expire and so neither kind can
stand in for the other. CSRF tokens are signed under a third salt.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM_SALT = "digest.confirm.v1"
CSRF_SALT = "digest.csrf.v1"


class TokenError(ValueError):
    """Unknown, altered or expired; `expired` tells which."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(secret: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=salt)


def make_confirm_token(secret: str, subscriber_id: int, reader_token: str) -> str:
    # The reader token's tail binds the link to this reader's current identity: after an
    # erasure (new token) an old confirmation link is dead.
    return _serializer(secret, CONFIRM_SALT).dumps([subscriber_id, reader_token[-12:]])


def read_confirm_token(secret: str, token: str, max_age_seconds: int) -> tuple[int, str]:
    if not token or len(token) > 256:
        raise TokenError("This confirmation link is not valid.")
    try:
        subscriber_id, tail = _serializer(secret, CONFIRM_SALT).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise TokenError("This confirmation link has expired.", expired=True) from None
    except (BadSignature, ValueError, TypeError):
        raise TokenError("This confirmation link is not valid.") from None
    if not isinstance(subscriber_id, int) or not isinstance(tail, str):
        raise TokenError("This confirmation link is not valid.")
    return subscriber_id, tail


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(24)


def make_csrf_token(secret: str, cookie_value: str) -> str:
    return _serializer(secret, CSRF_SALT).dumps(cookie_value)


def check_csrf_token(secret: str, token: str | None, cookie_value: str | None,
                     max_age_seconds: int) -> bool:
    if not token or not cookie_value or len(token) > 512:
        return False
    try:
        value = _serializer(secret, CSRF_SALT).loads(token, max_age=max_age_seconds)
    except (BadSignature, SignatureExpired):
        return False
    return isinstance(value, str) and secrets.compare_digest(value, cookie_value)
