"""Staff: editors, ops and admins; their browser sessions and API tokens; the audit log.

Passwords are argon2 hashes; sessions and API tokens are random secrets of which only a
SHA-256 is stored, so a database leak opens nothing, and either can be revoked.
"""

from digest.staff.accounts import (
    API_TOKEN_PREFIX,
    EDITOR_ROLES,
    OPS_ROLES,
    PASSWORD_MIN_CHARS,
    SESSION_MAX_AGE_HOURS,
    AccountError,
    AccountExists,
    SignIn,
    authenticate,
    create_api_token,
    create_user,
    end_session,
    generate_password,
    record_sign_in,
    revoke_api_token,
    start_session,
    user_for_api_token,
    user_for_session,
)
from digest.staff.audit import AUDIT_TARGET_MAX_CHARS, audit

__all__ = [
    "API_TOKEN_PREFIX", "AUDIT_TARGET_MAX_CHARS", "EDITOR_ROLES", "OPS_ROLES", "PASSWORD_MIN_CHARS",
    "SESSION_MAX_AGE_HOURS", "AccountError", "AccountExists", "SignIn", "audit", "authenticate", "create_api_token",
    "create_user", "end_session", "generate_password", "record_sign_in", "revoke_api_token", "start_session", "user_for_api_token",
    "user_for_session",
]
