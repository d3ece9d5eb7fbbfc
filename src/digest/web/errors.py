"""One error mapping for the whole web app: what an exception becomes, by its class.

- a domain error (digest.errors): NotFound 404, Invalid 400, Conflict 409, the status
  chosen by class, never by the message's text;
- a page's own refusal (BadRequest: CSRF, a body too large, a link not recognised);
- a framework refusal (no such route 404, wrong method 405, bad parameters 400);
- a value the database refuses (the net behind the per-field checks): 400;
- the mail server refusing a test send: 502; anything else: 503, nothing changed.

Where it answers depends on where it was asked: /api/v1 answers JSON {"error", "code"};
/healthz and /hooks/ answer JSON {"error"}; editor pages answer the editor's error page
with a way back; every other page the site's error page.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import TemplateError as JinjaTemplateError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.editions import EditionFrozen, LifecycleError
from digest.errors import Conflict, DigestError, Invalid, NotFound, http_status
from digest.mail import SendError, TemplateError, template_error
from digest.web.deps import PASSWORD_PAGE, ApiError, NeedsNewPassword, NeedsSignIn, staff_page
from digest.web.forms import BadRequest
from digest.web.limits import BodyTooLarge

log = logging.getLogger(__name__)

# The heading an editor page gives an error, most specific class first.
TITLES: tuple[tuple[type[DigestError], str], ...] = (
    (EditionFrozen, "This edition is frozen"),
    (LifecycleError, "Cannot change the edition"),
    (NotFound, "Not found"),
    (Conflict, "Cannot do that now"),
    (Invalid, "Cannot do that"),
)
TITLES_BY_CODE = {"edition_not_found": "No such edition", "story_not_found": "No such story",
                  "reader_not_found": "No such reader", "feed_not_found": "No such feed"}
_EDITION_PAGE = re.compile(r"^/editor/editions/(\d+)")
_READER_PAGE = re.compile(r"^/editor/readers/(\d+)/")  # an action on a reader: back to them


class EditorError(BadRequest):
    """A failed editor action, shown on an editor page with a way back."""

    def __init__(self, status: int, title: str, message: str, back: str = "/editor") -> None:
        super().__init__(status, title, message)
        self.back = back


STAFF_PATHS = ("/editor", "/ops", "/account")


def editor_back(path: str, role: str = "editor") -> str:
    """Where staff go back to from an error on `path`: the page it belongs to, else their
    dashboard (/ops for ops, who cannot open the editor's)."""
    if path.startswith("/ops/audit"):
        return "/ops/audit"
    if path.startswith("/ops"):
        return "/ops"
    if found := _EDITION_PAGE.match(path):
        return f"/editor/editions/{found.group(1)}"
    if path.startswith("/editor/stories"):
        return "/editor/stories"
    if path.startswith("/editor/tokens"):
        return "/editor/tokens"
    if found := _READER_PAGE.match(path):
        return f"/editor/readers/{found.group(1)}"
    if path.startswith("/editor/readers"):
        return "/editor/readers"
    if path.startswith("/editor/users"):
        return "/editor/users"
    if path.startswith("/editor/feeds"):
        return "/editor/feeds"
    return "/ops" if role == "ops" else "/editor"


def title_for(error: DigestError) -> str:
    if error.code in TITLES_BY_CODE:
        return TITLES_BY_CODE[error.code]
    return next(title for cls, title in TITLES if isinstance(error, cls))


def error_page(request: Request, status: int, title: str, message: str,
               headers: dict[str, str] | None = None) -> Response:
    """The site's answer to an error on `request`: JSON for /healthz and /hooks/, the
    staff error page (a way back to their page or dashboard) for signed-in staff on a
    staff page, the site's error page otherwise."""
    path = request.url.path
    if path.startswith(("/healthz", "/hooks/")):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    user = getattr(request.state, "user", None)
    if path.startswith(STAFF_PATHS) and user is not None:
        back = editor_back(path, user.role.value)
        return staff_page(request, "editor/error.html", {"title": title, "message": message, "back": back}, status)
    # A staff address not (yet) signed in, such as one that does not exist: back to the
    # staff pages (sign-in first if need be), never to the readers' sign-up form.
    staff_way = {"action_url": "/editor", "action_label": "Go to the staff dashboard"} if path.startswith(
        STAFF_PATHS) else {}
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "error.html", {"title": title, "message": message, **staff_way}, status_code=status, headers=headers)


def refusal(request: Request, status: int, message: str) -> Response:
    """An answer given before the app has routed the request (digest.web.limits): the API's
    JSON for /api/, the site's error page or JSON elsewhere."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "code": "too_large" if status == 413 else "bad_request"},
                            status_code=status)
    return error_page(request, status, "Too large" if status == 413 else "Bad request", message)


def install(app: FastAPI) -> None:
    """The handlers of the site (pages, hooks, health); the API has its own (install_api)."""

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return error_page(request, 413, "Too large", exc.detail)

    @app.exception_handler(EditorError)
    async def editor_error(request: Request, exc: EditorError) -> Response:
        return staff_page(request, "editor/error.html",
                          {"title": exc.title, "message": exc.message, "back": exc.back}, exc.status)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return error_page(request, exc.status, exc.title, exc.message)

    @app.exception_handler(DigestError)
    async def domain_error(request: Request, exc: DigestError) -> Response:
        return error_page(request, http_status(exc), title_for(exc), exc.message)

    @app.exception_handler(SendError)
    async def smtp_refused(request: Request, exc: SendError) -> Response:
        return error_page(request, 502, "The test was not sent", f"The mail server did not take it: {exc}")

    @app.exception_handler(NeedsSignIn)
    async def needs_sign_in(request: Request, exc: NeedsSignIn) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(NeedsNewPassword)
    async def needs_new_password(request: Request, exc: NeedsNewPassword) -> Response:
        return RedirectResponse(f"{PASSWORD_PAGE}?next={request.url.path}", status_code=303)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _api_error(exc)

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

    @app.exception_handler(TemplateError)
    async def broken_email_template(request: Request, exc: TemplateError) -> Response:
        log.error("%s (on %s)", exc, request.url.path)  # one line naming the file, no stack
        return error_page(request, 503, "Something went wrong",
                          "We could not complete this just now. Nothing was changed; please try again in a minute.")

    @app.exception_handler(JinjaTemplateError)
    async def broken_page_template(request: Request, exc: JinjaTemplateError) -> Response:
        # A page's own template: the error page may be the broken one, so plain text.
        log.error("%s (on %s)", template_error(exc, Path(app.state.services.settings.templates_dir) / "web"),
                  request.url.path)
        return PlainTextResponse("This page is unavailable just now; please try again in a minute.", status_code=503)

    # Anything else: EndsCleanly, below.


class EndsCleanly:
    """ASGI middleware: an exception no handler took ends its own request with a 503 and
    nothing more. (Starlette's last-resort handler answers and then re-raises, and the
    server resets the connection: the next request a client sends on it would fail.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = completed = False

        async def watched(message: Message) -> None:
            nonlocal started, completed
            started = started or message["type"] == "http.response.start"
            completed = completed or (message["type"] == "http.response.body" and not message.get("more_body"))
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if completed:
                return  # answered (and logged) by the mounted API's own handler
            if started:
                raise  # half an answer: only closing the connection can tell the client
            log.exception("unhandled error on %s", scope["path"])
            await unexpected(Request(scope))(scope, receive, send)


def unexpected(request: Request) -> Response:
    message = "We could not complete this just now. Nothing was changed; please try again in a minute."
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "temporarily unavailable; nothing was changed"}, status_code=503)
    return error_page(request, 503, "Something went wrong", message)


def _api_error(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def install_api(api: FastAPI) -> None:
    """The API's handlers: JSON, the status by class; 422 for a request the models refuse."""

    @api.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _api_error(exc)

    @api.exception_handler(DigestError)
    async def domain_error(request: Request, exc: DigestError) -> Response:
        body: dict[str, object] = {"error": exc.message, "code": exc.code}
        if fields := getattr(exc, "fields", None):  # each bad input by name, for a form to show at its field
            body["fields"] = fields
        return JSONResponse(body, status_code=http_status(exc))

    @api.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return JSONResponse({"error": exc.detail, "code": "too_large"}, status_code=413)

    @api.exception_handler(SendError)
    async def smtp_refused(request: Request, exc: SendError) -> Response:
        return JSONResponse({"error": f"the SMTP server did not take the test: {exc}"}, status_code=502)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @api.exception_handler(DataError)
    async def does_not_fit(request: Request, exc: DataError) -> Response:
        # The net for a column length or range the request models missed: the client's fault.
        return JSONResponse({"error": f"a value does not fit: {str(exc.orig).split(chr(10))[0][:200]}"},
                            status_code=422)

    @api.exception_handler(TemplateError)
    async def broken_template(request: Request, exc: TemplateError) -> Response:
        log.error("%s (on %s)", exc, request.url.path)  # one line naming the file, no stack
        return JSONResponse({"error": "temporarily unavailable; nothing was changed"}, status_code=503)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"error": "temporarily unavailable; nothing was changed"}, status_code=503)


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
