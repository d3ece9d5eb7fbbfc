"""What every route may ask for: the services (sessions, Redis, the queue), the signed-in
staff member with a role, a form already read and CSRF-checked, and the Actor for
digest.actions. Routes are plain `def` (FastAPI runs them in a thread pool): database,
Redis and argon2 work never runs on the event loop. Only reading a request body is async,
in these dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker

from digest import actions, staff
from digest.config import Settings, get_settings
from digest.delivery import Enqueue
from digest.infra import RateLimiter
from digest.store import Role, User, session_factory
from digest.web.forms import CSRF_COOKIE, BadRequest, Form, csrf_pair, read_form, require_csrf
from digest.worker import enqueue_batch, enqueue_inbound, enqueue_notice, release_now

SESSION_COOKIE = "digest_session"
PASSWORD_PAGE = "/account/password"  # where a one-time password is replaced
CSRF_COOKIE_MAX_AGE_SECONDS = 6 * 3600


@dataclass
class Services:
    """Side effects reach the app through these, so tests run the real app against the real
    services, in-process or under uvicorn."""

    settings: Settings
    factory: sessionmaker[Session]
    redis: redis.Redis
    enqueue_notice: Callable[[int], None]
    enqueue_inbound: Callable[[bytes], None]
    enqueue_batch: Enqueue = enqueue_batch
    release_now: Callable[[], None] = release_now

    @property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis)

    def deps(self) -> actions.Deps:
        return actions.Deps(self.factory, self.settings, self.enqueue_batch, self.enqueue_notice, self.release_now)


def default_services(settings: Settings | None = None) -> Services:
    settings = settings or get_settings()
    return Services(
        settings=settings,
        factory=session_factory(),
        redis=redis.Redis.from_url(settings.redis_url or settings.broker_url,
                                   socket_connect_timeout=1, socket_timeout=1),
        enqueue_notice=enqueue_notice,
        enqueue_inbound=enqueue_inbound,
    )


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services_of)]


# ------------------------------------------------------------------ who is asking


class NeedsSignIn(Exception):
    """A page that needs a signed-in user was asked for without one."""


class NeedsNewPassword(Exception):
    """A staff page was asked for by someone signed in with a one-time password: they choose
    their own first (the change-password page is the one page they may open)."""


class ApiError(Exception):
    """An /api/v1 refusal that is not a domain error: no token, wrong role, SMTP refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def current_user(request: Request) -> User | None:
    services = services_of(request)
    with services.factory.begin() as session:
        user = staff.user_for_session(session, request.cookies.get(SESSION_COOKIE))
        if user is not None:
            session.expunge(user)
    return user


def _signed_in(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise NeedsSignIn()
    return user


def page_user(*roles: Role) -> Callable[[Request], User]:
    """A dependency for pages: the signed-in user with one of `roles` (admins always; no
    roles: admins only), whose password is their own. A plain function, so FastAPI runs
    its database lookup in the thread pool."""

    def dependency(request: Request) -> User:
        user = _signed_in(request)
        if user.must_change_password:
            raise NeedsNewPassword()
        if user.role != Role.ADMIN and user.role not in roles:
            raise BadRequest(403, "Not allowed", f"Your role ({user.role.value}) cannot open this page.")
        request.state.user = user
        return user

    return dependency


def account_user(request: Request) -> User:
    """A dependency for the account page: any signed-in staff member, one with a one-time
    password included (it is where they choose their own)."""
    user = _signed_in(request)
    request.state.user = user
    return user


def api_user(*roles: Role) -> Callable[[Request], User]:
    """A dependency for /api/v1: `Authorization: Bearer dgt_…` with one of `roles`."""

    def dependency(request: Request) -> User:
        header = request.headers.get("authorization", "")
        raw = header[7:].strip() if header.lower().startswith("bearer ") else None
        with services_of(request).factory.begin() as session:
            user = staff.user_for_api_token(session, raw)
            if user is not None:
                session.expunge(user)
        if user is None:
            raise ApiError(401, "a valid API token is required (Authorization: Bearer …)")
        if user.role != Role.ADMIN and user.role not in roles:
            raise ApiError(403, f"the {user.role.value} role cannot do this")
        return user

    return dependency


EditorUser = Annotated[User, Depends(page_user(Role.EDITOR))]
OpsUser = Annotated[User, Depends(page_user(Role.OPS))]
AdminUser = Annotated[User, Depends(page_user())]
AccountUser = Annotated[User, Depends(account_user)]
ApiEditor = Annotated[User, Depends(api_user(Role.EDITOR))]
ApiStaff = Annotated[User, Depends(api_user(Role.EDITOR, Role.OPS))]


def actor(user: User, via: str) -> actions.Actor:
    return actions.Actor(user, via)


# ------------------------------------------------------------------ forms


async def form_of(request: Request) -> Form:
    """The request's form, bounded and strictly decoded (no CSRF check: the one-click
    unsubscribe POST and sign-in handle theirs)."""
    return await read_form(request, services_of(request).settings.max_form_bytes)


async def checked_form(request: Request) -> Form:
    """The request's form, read (bounded, strictly decoded) and checked for CSRF."""
    form = await form_of(request)
    require_csrf(request, form, services_of(request).settings.secret_key)
    return form


FormDep = Annotated[Form, Depends(form_of)]
CheckedForm = Annotated[Form, Depends(checked_form)]


# ------------------------------------------------------------------ pages


def staff_page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render a staff page with a CSRF token for its forms."""
    services = services_of(request)
    cookie, token = csrf_pair(request, services.settings.secret_key)
    context = {"csrf_token": token, "user": getattr(request.state, "user", None), **context}
    response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    set_csrf_cookie(response, cookie, services.settings)
    response.headers["Cache-Control"] = "no-store"
    return response


def set_csrf_cookie(response: Response, cookie: str, settings: Settings) -> None:
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax",
                        secure=settings.base_url.startswith("https://"), max_age=CSRF_COOKIE_MAX_AGE_SECONDS)
