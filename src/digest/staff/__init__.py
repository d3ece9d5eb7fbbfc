"""Staff: editors, ops and admins; their passwords, browser sessions and API tokens; who may
sign in and as what; the audit log.

Passwords are argon2 hashes; sessions and API tokens are random secrets of which only a
SHA-256 is stored, so a database leak opens nothing, and either can be revoked. A one-time
password must be replaced at the next sign-in; at least one active admin always remains.
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
from digest.staff.passwords import (
    PasswordError,
    check_new_password,
    hash_password,
    one_time_password,
    set_password,
    verify_password,
)
from digest.staff.users import (
    LastAdmin,
    OwnAccount,
    UserNotFound,
    account_status,
    find_user,
    list_users,
    reset_password,
    set_disabled,
    set_role,
)

__all__ = [
    "API_TOKEN_PREFIX", "AUDIT_TARGET_MAX_CHARS", "EDITOR_ROLES", "OPS_ROLES", "PASSWORD_MIN_CHARS",
    "SESSION_MAX_AGE_HOURS", "AccountError", "AccountExists", "LastAdmin", "OwnAccount", "PasswordError", "SignIn",
    "UserNotFound", "account_status", "audit", "authenticate", "check_new_password", "create_api_token", "create_user",
    "end_session", "find_user", "generate_password", "hash_password", "list_users",
    "one_time_password", "record_sign_in", "reset_password", "revoke_api_token", "set_disabled",
    "set_password", "set_role", "start_session", "user_for_api_token", "user_for_session", "verify_password",
]
