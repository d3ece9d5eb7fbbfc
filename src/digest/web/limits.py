"""How large a request body may be, by route, enforced before anything reads it.

The limit is checked against Content-Length as the request arrives and again, byte by byte,
while the body streams in (chunked requests, or a client that lies): a body over the limit
is answered 413 before it is parsed and before any token or session is looked at, so an
unauthenticated client cannot make the process hold a large body in memory.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.readers import CSV_UPLOAD_MAX_BYTES

API_BODY_MAX_BYTES = 1024 * 1024
# SNS messages are at most 256 KB; JSON escaping and the envelope come on top.
SES_BODY_MAX_BYTES = 1024 * 1024
SENDGRID_BODY_MAX_BYTES = 4 * 1024 * 1024
INBOUND_BODY_MAX_BYTES = 1024 * 1024
# A WebSub push carries the feed itself: as large as a polled feed may be.
WEBSUB_BODY_MAX_BYTES = 10 * 1024 * 1024
STORY_UPLOAD_MAX_BYTES = 2 * 1024 * 1024
# A CSV sent as a JSON string: every quote and line break escaped doubles at worst.
API_IMPORT_MAX_BYTES = 2 * CSV_UPLOAD_MAX_BYTES + 64 * 1024

# A refused body up to this size is read and dropped before the 413 (see _drain); a larger
# one is left unread, and its client may see the connection reset instead.
DRAIN_MAX_BYTES = 32 * 1024 * 1024

# (path, limit) for routes that take more than a form; the first match wins; a path ending
# in "/" matches everything under it. Every other route gets DIGEST_MAX_FORM_BYTES.
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/v1/readers/import", API_IMPORT_MAX_BYTES),
    ("/api/v1/", API_BODY_MAX_BYTES),
    ("/hooks/ses", SES_BODY_MAX_BYTES),
    ("/hooks/sendgrid", SENDGRID_BODY_MAX_BYTES),
    ("/hooks/inbound", INBOUND_BODY_MAX_BYTES),
    ("/hooks/websub/", WEBSUB_BODY_MAX_BYTES),
    ("/editor/readers/import", CSV_UPLOAD_MAX_BYTES),
    ("/editor/stories/upload", STORY_UPLOAD_MAX_BYTES),
)


def body_limit(path: str, form_limit: int) -> int:
    """The most bytes a request body to `path` may hold."""
    for prefix, limit in ROUTE_LIMITS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return limit
    return form_limit


async def _drain(receive: Receive, *, more_body: bool) -> None:
    """Read and drop the rest of a refused body, up to DRAIN_MAX_BYTES: the server closes the
    connection after a 413, and closing on unread bytes sends a TCP reset that can destroy
    the 413 before the client reads it. Nothing is kept, so memory stays flat."""
    drained = 0
    while more_body and drained <= DRAIN_MAX_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        more_body = message.get("more_body", False)


class BodyTooLarge(HTTPException):
    """The body grew past its route's limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"That request is larger than {limit // 1024} KB."


class BodyLimit:
    """ASGI middleware: 413 for a body over its route's limit (`limit_for(path)`), answered by
    `refuse(request, status, message)` when nothing has been sent yet."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int],
                 refuse: Callable[[Request, int, str], Response]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        # A client that waits for "100 Continue" sends nothing unless asked: no need to drain.
        drain = "100-continue" not in headers.get("expect", "").lower()
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status, message = ((413, too_large_message(limit)) if declared.isdigit()
                               else (400, "The Content-Length header is not a number."))
            if drain and declared.isdigit() and int(declared) <= DRAIN_MAX_BYTES:
                await _drain(receive, more_body=True)
            await self.refuse(Request(scope), status, message)(scope, receive, send)
            return

        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if drain:
                        await _drain(receive, more_body=message.get("more_body", False))
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyTooLarge as exc:
            # Only if no handler below answered it (one that reads the body outside a route).
            if started:
                raise
            await self.refuse(Request(scope), 413, exc.detail)(scope, receive, send)
