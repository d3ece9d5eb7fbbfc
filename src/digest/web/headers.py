"""Security headers on every answer, error pages included, set in one place.

Every HTML page gets a Content-Security-Policy: scripts only from our own origin (no page
has an inline script, and none may: a nonce or hash would be the only way in), no plugins,
forms post only to us, and no framing (`frame-ancestors 'none'`, with X-Frame-Options for
older browsers). Inline styles stay allowed: the editor's email preview is an iframe
`srcdoc`, which inherits this policy, and an email is all inline styles; a style cannot run
script. Images may come from any https origin (story images).

Pages whose URL carries a reader's token get `Referrer-Policy: no-referrer`, so following
a link never hands the token to another site; every other answer `same-origin`. HSTS is
sent when DIGEST_BASE_URL is https.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


def framable_policy(ancestors: tuple[str, ...]) -> str:
    """The policy for a page meant to be framed by `ancestors` (the publisher's origins);
    'none' when there are none."""
    allowed = " ".join(ancestors) if ancestors else "'none'"
    return CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", f"frame-ancestors {allowed}")


HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600
# The reader pages whose path holds a token (confirm, unsubscribe, preferences, their erase
# and data export), whatever the answer: an error page there holds the token just the same.
TOKEN_PATH = re.compile(r"^/(confirm|unsubscribe|preferences)/")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response that lacks them."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        referrer = "no-referrer" if TOKEN_PATH.match(scope["path"]) else "same-origin"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", referrer)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
                        # A page that may be framed (the sign-up frame) names where in its
                        # own CSP; X-Frame-Options cannot name a list, so it is left off there.
                        headers.setdefault("X-Frame-Options", "DENY")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE_SECONDS}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
