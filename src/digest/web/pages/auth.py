"""Staff sign-in and sign-out: a session cookie for pages (bearer tokens for /api/v1 are
checked in digest.web.deps).

A reader's token never opens anything here: readers have no User row, and only session
ids and API tokens (both random, stored as SHA-256) identify staff.
"""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from digest import staff
from digest.web.deps import SESSION_COOKIE, CheckedForm, services_of, staff_page

router = APIRouter()
LOGIN_ATTEMPTS_PER_IP = 30
LOGIN_WINDOW_SECONDS = 900


@router.get("/login")
def login_page(request: Request, next: str = "/editor") -> Response:  # noqa: A002
    return staff_page(request, "staff/login.html", {"next": _safe_next(next), "error": None})


def _safe_next(target: str) -> str:
    # Only local paths: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/editor"


@router.post("/login")
def login(request: Request, form: CheckedForm) -> Response:
    """Argon2 costs tens of milliseconds of CPU: a plain def route, so it runs in the thread
    pool and the event loop keeps serving; the check holds no database connection, and at
    most half the cores hash at once (digest.staff), so pages stay fast during sign-ins."""
    services = services_of(request)
    next_url = _safe_next(form.get("next", "/editor"))
    email, password = form.get("email").strip(), form.get("password")
    ip = request.client.host if request.client else "unknown"
    try:
        allowed = services.limiter.hit("login-ip", ip, LOGIN_ATTEMPTS_PER_IP, LOGIN_WINDOW_SECONDS)
    except (redis.RedisError, OSError):
        allowed = True  # fail open: Redis down must not lock staff out (passwords still checked)
    if not allowed:
        return staff_page(request, "staff/login.html",
                          {"next": next_url, "error": "Too many attempts. Wait a few minutes."}, 429)
    checked = staff.authenticate(services.factory, email, password) if email and password else None
    signed_in = None
    if checked is not None:
        with services.factory.begin() as session:
            signed_in = staff.record_sign_in(session, checked)
            if signed_in is not None:
                staff.audit(session, signed_in[0], "login", f"user:{checked.user_id}", {"ip": ip}, via="web")
    if signed_in is None:
        return staff_page(request, "staff/login.html",
                          {"next": next_url, "error": "That email and password do not match."}, 401)
    raw = signed_in[1]
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
