"""The web app: reader pages now, editor and ops pages later. `digest serve` runs it.

Side effects reach the app through `Services` (database sessions, Redis, the task queue)
so tests can run the real app against the real services, in-process or under uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.config import Settings, get_settings
from digest.infra import RateLimiter
from digest.store import session_factory
from digest.web.forms import BadRequest

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    factory: sessionmaker[Session]
    redis: redis.Redis
    enqueue_notice: Callable[[int], None]
    enqueue_inbound: Callable[[bytes], None]

    @property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis)


def default_services(settings: Settings | None = None) -> Services:
    settings = settings or get_settings()

    def enqueue_notice(notice_id: int) -> None:
        from digest.tasks import send_notice

        send_notice.delay(notice_id)

    def enqueue_inbound(raw: bytes) -> None:
        import base64

        from digest.tasks import process_inbound

        process_inbound.delay(base64.b64encode(raw).decode("ascii"))

    return Services(
        settings=settings,
        factory=session_factory(),
        redis=redis.Redis.from_url(settings.redis_url or settings.broker_url,
                                   socket_connect_timeout=1, socket_timeout=1),
        enqueue_notice=enqueue_notice,
        enqueue_inbound=enqueue_inbound,
    )


def templates_for(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(Path(settings.templates_dir) / "web"))
    templates.env.globals["site_name"] = settings.sender_name
    templates.env.globals["site_url"] = settings.public_site_url
    return templates


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method some route serves at `path` (included routers searched too)."""
    methods: set[str] = set()
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is not None:
            pending.extend(nested)
            continue
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def create_app(services: Services | None = None) -> FastAPI:
    services = services or default_services()
    app = FastAPI(title="digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.templates = templates_for(services.settings)

    def error_page(request: Request, status: int, title: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
        if request.url.path.startswith(("/healthz", "/hooks/")):
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return app.state.templates.TemplateResponse(
            request, "error.html", {"title": title, "message": message}, status_code=status, headers=headers)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return error_page(request, exc.status, exc.title, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed"}
        message = {404: "There is no page at this address.",
                   405: "This page does not accept that kind of request."}.get(exc.status_code, str(exc.detail))
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # RFC 9110: name every method the path allows (starlette names one route's).
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.url.path)))
        return error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), message,
                          headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400, "Bad request", "Part of this request is not valid.")

    @app.exception_handler(DataError)
    async def does_not_fit(request: Request, exc: DataError) -> Response:
        # A value the database refuses (too long, out of range) is the request's fault. Every
        # input is checked against its column before this; this is the net for one missed.
        log.warning("database refused a value on %s: %s", request.url.path, str(exc.orig).split("\n")[0])
        return error_page(request, 400, "Bad request", "Part of this request is too long or out of range.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error_page(request, 503, "Something went wrong",
                          "We could not complete this just now. Nothing was changed; please try again in a minute.")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/subscribe", status_code=303)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        checks = {"database": "ok", "broker": "ok"}
        try:
            with services.factory() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report, don't raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            services.redis.ping()
        except (redis.RedisError, OSError) as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", **checks},
                            status_code=200 if healthy else 503)

    from digest.web import auth, editor_pages
    from digest.web.api import create_api
    from digest.web.archive import router as archive_router
    from digest.web.hooks import router as hooks_router
    from digest.web.ops_pages import router as ops_router
    from digest.web.reader_pages import router as reader_router

    app.include_router(reader_router)
    app.include_router(archive_router)
    auth.install(app)
    editor_pages.install(app)
    app.include_router(ops_router)
    app.include_router(hooks_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount("/api/v1", create_api(services))
    return app
