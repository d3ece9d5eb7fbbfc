"""Sign-up from a publisher's own page (`digest embed`, DIGEST_EMBED_ORIGINS): which door a
POST /subscribe came through, and what its answer carries back across origins.

Browsers send Origin on every cross-origin POST, so Origin decides: a listed publisher's
page needs no CSRF cookie (it cannot have ours) and gets CORS headers naming it alone; any
other page is refused. No Origin (an old browser, a script), "null" (a page with
Referrer-Policy: no-referrer, such as ours) or digest's own origin: the CSRF token of
digest's own page is required, as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from digest import actions
from digest.config import Settings
from digest.web.forms import BadRequest

EMBED_CHANNEL = "embed"  # the consent channel of a sign-up from a publisher's page
PAGE_CHANNEL = "form"  # digest's own /subscribe page (the channel it has always recorded)
HONEYPOT_FIELD = actions.embed.HONEYPOT_FIELD  # hidden from people: whoever fills it is a robot
PREFLIGHT_MAX_AGE_SECONDS = 600
PAGE_MAX_CHARS = 500


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def embed_origin(request: Request, settings: Settings) -> str | None:
    """The listed publisher origin this request comes from; None for digest's own door.
    BadRequest 403 for a page that is neither."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return None
    normal = _origin_of(origin)
    if normal is not None and normal in settings.embed_origin_list:
        return normal
    # Our own page: the configured base URL, or the host the browser reached (behind a
    # TLS-terminating proxy the scheme seen here is not the reader's).
    if normal is not None and (normal == _origin_of(settings.base_url)
                               or urlsplit(normal).netloc == request.headers.get("host", "").lower()):
        return None
    raise BadRequest(403, "Not from an allowed page",
                     "This sign-up form may only be used on our own pages and the sites we name.")


def page_of(request: Request, origin: str) -> str:
    """The page the form was on: the Referer when the publisher's page sends it in full and it
    is on that origin (browsers send only the origin by default across sites), else the origin."""
    referer = request.headers.get("referer", "")
    if referer and _origin_of(referer) == origin:
        return referer[:PAGE_MAX_CHARS]
    return origin


def cors_headers(origin: str) -> dict[str, str]:
    """For the listed origin only: a script on that page may read the answer; no cookies."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_headers(origin: str) -> dict[str, str]:
    return {**cors_headers(origin), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Accept, Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS)}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()
