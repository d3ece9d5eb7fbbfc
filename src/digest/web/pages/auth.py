"""Staff sign-in and sign-out, and the change-password page: a session cookie for pages
(bearer tokens for /api/v1 are checked in digest.web.deps).

Someone signed in with a one-time password is sent from sign-in (and from any other staff
page, by digest.web.deps `page_user`) to the change-password page until they choose their
own. A reader's token never opens anything here: readers have no User row, and only session
ids and API tokens (both random, stored as SHA-256) identify staff.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import redis
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from digest import actions, staff
from digest.store import Role, User
from digest.web.deps import (
    PASSWORD_PAGE,
    SESSION_COOKIE,
    AccountUser,
    CheckedForm,
    Services,
    actor,
    services_of,
    staff_page,
)

router = APIRouter()
LOGIN_ATTEMPTS_PER_IP = 30
LOGIN_WINDOW_SECONDS = 900
# Per account, wherever the tries come from: after 5 failures each locks the account's
# sign-in for twice as long as the last (30 s, 1 min, 2 min … at most an hour). A
# one-time password an admin issued still signs its owner in: it is random, not guessed.
LOGIN_FREE_FAILURES_PER_ACCOUNT = 5
LOGIN_LOCK_BASE_SECONDS = 30
LOGIN_LOCK_MAX_SECONDS = 3600
LOGIN_FAILURES_MEMORY_SECONDS = 24 * 3600
PASSWORD_ATTEMPTS_PER_USER = 10  # per LOGIN_WINDOW_SECONDS: each checks the current password
HOMES = {Role.EDITOR: "/editor", Role.ADMIN: "/editor", Role.OPS: "/ops"}
PASSWORD_CHANGED = {"/editor": "/editor?done=password-changed",  # where each home says so
                    "/ops": "/ops?done=password-changed"}


@router.get("/login")
def login_page(request: Request, next: str = "/editor") -> Response:  # noqa: A002
    return staff_page(request, "staff/login.html", {"next": _safe_next(next), "email": "", "error": None})


def _safe_next(target: str, default: str = "/editor") -> str:
    # Only local paths: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else default


def _allowed(services: Services, scope: str, key: str, limit: int) -> bool:
    try:
        return services.limiter.hit(scope, key, limit, LOGIN_WINDOW_SECONDS)
    except (redis.RedisError, OSError):
        return True  # fail open: Redis down must not lock staff out (passwords still checked)


def _locked_for(services: Services, account: str) -> float:
    try:
        return services.limiter.locked_for("login-account", account)
    except (redis.RedisError, OSError):
        return 0.0  # fail open, as above


def _failed(services: Services, account: str) -> None:
    try:
        services.limiter.failed("login-account", account, free=LOGIN_FREE_FAILURES_PER_ACCOUNT,
                                base_seconds=LOGIN_LOCK_BASE_SECONDS, max_seconds=LOGIN_LOCK_MAX_SECONDS,
                                memory_seconds=LOGIN_FAILURES_MEMORY_SECONDS)
    except (redis.RedisError, OSError):
        pass


def _succeeded(services: Services, account: str) -> None:
    try:
        services.limiter.forget("login-account", account)
    except (redis.RedisError, OSError):
        pass


@router.post("/login")
def login(request: Request, form: CheckedForm) -> Response:
    """Argon2 costs tens of milliseconds of CPU: a plain def route, so it runs in the thread
    pool and the event loop keeps serving; the check holds no database connection, and at
    most half the cores hash at once (digest.staff), so pages stay fast during sign-ins."""
    services = services_of(request)
    next_url = _safe_next(form.get("next", "/editor"))
    email, password = form.get("email").strip(), form.get("password")
    ip = request.client.host if request.client else "unknown"
    again = {"next": next_url, "email": email}  # a failed sign-in keeps the address typed
    if not _allowed(services, "login-ip", ip, LOGIN_ATTEMPTS_PER_IP):
        return staff_page(request, "staff/login.html", {**again, "error": "Too many attempts. Wait a few minutes."},
                          429)
    account = email.lower()
    locked = _locked_for(services, account) if email else 0.0
    checked = staff.authenticate(services.factory, email, password) if email and password else None
    if locked and not (checked is not None and checked.one_time):
        if checked is None:
            _failed(services, account)
        minutes = max(1, math.ceil(locked / 60))
        return staff_page(request, "staff/login.html", {
            **again, "error": f"Too many failed sign-ins for this account. Try again in {minutes} "
                              f"minute{'s' if minutes > 1 else ''}, or ask an admin for a one-time password."}, 429)
    if checked is None and email:
        _failed(services, account)
    signed_in = None
    if checked is not None:
        with services.factory.begin() as session:
            signed_in = staff.record_sign_in(session, checked)
            if signed_in is not None:
                staff.audit(session, signed_in[0], "login", f"user:{checked.user_id}", {"ip": ip}, via="web")
    if signed_in is None:
        return staff_page(request, "staff/login.html", {**again, "error": "That email and password do not match."},
                          401)
    _succeeded(services, account)
    user, raw = signed_in
    if user.must_change_password:
        next_url = f"{PASSWORD_PAGE}?{urlencode({'next': next_url})}"
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax",
                        secure=services.settings.base_url.startswith("https://"),
                        max_age=staff.SESSION_MAX_AGE_HOURS * 3600)
    return response


@router.post("/logout")
def logout(request: Request, form: CheckedForm) -> Response:
    services = services_of(request)
    with services.factory.begin() as session:
        staff.end_session(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# ------------------------------------------------------------------ the account's password


def _password_page(request: Request, user: User, next_url: str, errors: dict[str, str] | None = None,
                   status: int = 200, error: str | None = None) -> Response:
    context: dict[str, Any] = {"active": "account", "next": next_url, "errors": errors or {}, "error": error,
                               "one_time": user.must_change_password, "min_chars": staff.PASSWORD_MIN_CHARS}
    return staff_page(request, "staff/password.html", context, status)


@router.get(PASSWORD_PAGE)
def password_page(request: Request, user: AccountUser, next: str = "") -> Response:  # noqa: A002
    return _password_page(request, user, _safe_next(next, ""))


@router.post(PASSWORD_PAGE)
def change_password(request: Request, user: AccountUser, form: CheckedForm) -> Response:
    """Current password, new twice; a mistake comes back at its field (400). Other browsers
    signed in as this user are signed out; this one stays."""
    services = services_of(request)
    next_url = _safe_next(form.get("next"), "")
    if not _allowed(services, "password-user", str(user.id), PASSWORD_ATTEMPTS_PER_USER):
        return _password_page(request, user, next_url, status=429, error="Too many attempts. Wait a few minutes.")
    try:
        actions.users.change_password(services.deps(), actor(user, "web"), form.get("current"), form.get("new"),
                                      form.get("repeat"), keep_session=request.cookies.get(SESSION_COOKIE))
    except staff.PasswordError as exc:
        return _password_page(request, user, next_url, {exc.field: exc.message}, 400)
    home = HOMES[user.role]
    stay = next_url and next_url not in PASSWORD_CHANGED and not next_url.startswith(PASSWORD_PAGE)
    landing = next_url if stay else PASSWORD_CHANGED[home]
    return RedirectResponse(landing, status_code=303)
