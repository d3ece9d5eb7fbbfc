"""The click redirect: GET or HEAD /c/<edition>/<story>/<variant>/<signature>/<nonce>.

A good signature answers 302 to the stored story (digest.clicks.ClickTargets), whatever
Redis does: the count is made on the way (people and machines apart, docs/clicks.md) and
with Redis away it is lost and logged. A link that was tampered with, cut short or moved to
another edition, and an edition that does not exist, answer 404 and redirect nowhere.
"""

from __future__ import annotations

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.clicks import Click, ClickCounter, ClickTargets, remember
from digest.mail import NONCE_PATTERN, click_key, hash_nonce, history_key, split_reader, valid_click
from digest.web.deps import services_of

_NOT_FOUND = "This link is not one of ours, or its edition is gone.\n"
# Numbers as the links carry them: digits, no sign, no leading zero, at most 18.
_MAX_DIGITS = 18


class ClickService:
    """What the redirect needs, made once per app: the key, the counter, the targets."""

    def __init__(self, request: Request) -> None:
        services = services_of(request)
        settings = services.settings
        self.key = click_key(settings.secret_key)
        # Short timeouts: a reader waits for the redirect, and a lost count is only a count.
        client = redis.asyncio.Redis.from_url(settings.redis_url or settings.broker_url,
                                              socket_connect_timeout=0.25, socket_timeout=0.5)
        self.counter = ClickCounter(client, self.key, settings.click_scan_seconds)
        self.client = client
        self.history_key = history_key(settings.secret_key)  # links that name a consenting reader
        self.targets = ClickTargets(services.factory, settings.base_url, settings.public_site_url)


def _service(request: Request) -> ClickService:
    service = getattr(request.app.state, "clicks", None)
    if service is None:
        service = request.app.state.clicks = ClickService(request)
    return service


def _number(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_DIGITS or (text[0] == "0" and text != "0"):
        return None
    return int(text)


def install(app: FastAPI) -> None:
    """The redirect as a plain Starlette route: FastAPI's parameter handling would be a fifth
    of a click's cost, and every part of the path is checked here anyway."""
    app.add_route("/c/{edition}/{story}/{variant}/{signature}/{nonce}", click, methods=["GET", "HEAD"],
                  include_in_schema=False)


async def click(request: Request) -> Response:
    # Async, unlike the other routes: what blocks here is rare (a story's first lookup in
    # TARGET_CACHE_SECONDS goes to a thread) and Redis is asked without blocking.
    service = _service(request)
    params = request.path_params
    numbers = (_number(params["edition"]), _number(params["story"]), _number(params["variant"]))
    signature = params["signature"]
    # A reader who asked for a click history has their (signed) id after the nonce.
    split = split_reader(service.history_key, params["nonce"])
    nonce, reader_id = split if split is not None else ("", None)
    if None in numbers or not NONCE_PATTERN.match(nonce):
        return PlainTextResponse(_NOT_FOUND, status_code=404)
    edition_id, story_id, variant_no = numbers  # type: ignore[misc]
    if not valid_click(service.key, edition_id, story_id, variant_no, signature):
        return PlainTextResponse(_NOT_FOUND, status_code=404)
    if service.targets.cached(edition_id, story_id):
        target = service.targets.target(edition_id, story_id)
    else:
        target = await run_in_threadpool(service.targets.target, edition_id, story_id)
    if target is None:
        return PlainTextResponse(_NOT_FOUND, status_code=404)
    counted = await service.counter.count(Click(edition_id=edition_id, story_id=story_id, variant=variant_no,
                                                nonce=nonce, method=request.method,
                                                user_agent=request.headers.get("user-agent"),
                                                address=request.client.host if request.client else ""))
    if reader_id is not None and counted == "human":  # machines' clicks are nobody's history
        await remember(service.client, edition_id, story_id, variant_no, hash_nonce(service.key, nonce), reader_id)
    # No referrer to the story from here, and nothing cached: each GET is one click.
    return Response(status_code=302, headers={"Location": target, "Cache-Control": "no-store",
                                              "Referrer-Policy": "no-referrer"})
