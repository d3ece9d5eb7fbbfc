"""Staff sign-in: session cookies for pages, bearer tokens for /api/v1, roles for both.

A reader's token never opens anything here: readers have no User row, and only session
ids and API tokens (both random, stored as SHA-256) identify staff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from digest import staff
from digest.store import Role, User
from digest.web.app import Services
from digest.web.forms import CSRF_COOKIE, BadRequest, csrf_pair, read_form, require_csrf

SESSION_COOKIE = "digest_session"
router = APIRouter()


class NeedsSignIn(Exception):
    """A page that needs a signed-in user was asked for without one."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def current_user(request: Request) -> User | None:
    services = _services(request)
    with services.factory.begin() as session:
        user = staff.user_for_session(session, request.cookies.get(SESSION_COOKIE))
        if user is not None:
            session.expunge(user)
    return user


def page_user(*roles: Role) -> Callable[[Request], User]:
    """A dependency for pages: the signed-in user with one of `roles` (admins always)."""

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise NeedsSignIn()
        if user.role != Role.ADMIN and user.role not in roles:
            raise BadRequest(403, "Not allowed", f"Your role ({user.role.value}) cannot open this page.")
        request.state.user = user
        return user

    return dependency


def api_user(*roles: Role) -> Callable[[Request], User]:
    """A dependency for /api/v1: `Authorization: Bearer dgt_…` with one of `roles`."""

    def dependency(request: Request) -> User:
        header = request.headers.get("authorization", "")
        raw = header[7:].strip() if header.lower().startswith("bearer ") else None
        services = _services(request)
        with services.factory.begin() as session:
            user = staff.user_for_api_token(session, raw)
            if user is not None:
                session.expunge(user)
        if user is None:
            raise ApiError(401, "a valid API token is required (Authorization: Bearer …)")
        if user.role != Role.ADMIN and user.role not in roles:
            raise ApiError(403, f"the {user.role.value} role cannot do this")
        return user

    return dependency


def staff_page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render a staff page with a CSRF token for its forms."""
    services = _services(request)
    cookie, token = csrf_pair(request, services.settings.secret_key)
    context = {"csrf_token": token, "user": getattr(request.state, "user", None), **context}
    response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax",
                        secure=services.settings.base_url.startswith("https://"), max_age=6 * 3600)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login")
async def login_page(request: Request, next: str = "/editor") -> Response:  # noqa: A002
    return staff_page(request, "staff/login.html", {"next": _safe_next(next), "error": None})


def _safe_next(target: str) -> str:
    # Only local paths: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/editor"


@router.post("/login")
async def login(request: Request) -> Response:
    services = _services(request)
    form = await read_form(request, services.settings.max_form_bytes)
    require_csrf(request, form, services.settings.secret_key)
    next_url = _safe_next(form.get("next", "/editor"))
    email, password = form.get("email").strip(), form.get("password")
    ip = request.client.host if request.client else "unknown"
    try:
        allowed = services.limiter.hit("login-ip", ip, 30, 900)
    except (redis.RedisError, OSError):
        allowed = True  # fail open: Redis down must not lock staff out (passwords still checked)
    if not allowed:
        return staff_page(request, "staff/login.html",
                          {"next": next_url, "error": "Too many attempts. Wait a few minutes."}, 429)
    with services.factory.begin() as session:
        user = staff.authenticate(session, email, password) if email and password else None
        if user is None:
            session.rollback()
            return staff_page(request, "staff/login.html",
                              {"next": next_url, "error": "That email and password do not match."}, 401)
        raw = staff.start_session(session, user)
        staff.audit(session, user, "login", f"user:{user.id}", {"ip": ip})
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax",
                        secure=services.settings.base_url.startswith("https://"),
                        max_age=staff.SESSION_MAX_AGE_HOURS * 3600)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    services = _services(request)
    form = await read_form(request, services.settings.max_form_bytes)
    require_csrf(request, form, services.settings.secret_key)
    with services.factory.begin() as session:
        staff.end_session(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def install(app: Any) -> None:
    """Error handlers: pages send strangers to /login; the API answers JSON."""
    from fastapi.responses import JSONResponse

    @app.exception_handler(NeedsSignIn)
    async def needs_sign_in(request: Request, exc: NeedsSignIn) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    app.include_router(router)

