"""The open pixel: GET /o/<edition>/<variant>/<signature>/<nonce>, a 1x1 transparent GIF.

In the HTML of a newsletter that turned `open_pixel` on (off by default; docs/clicks.md says
why it is unreliable). A good signature counts an open (digest.clicks.OpenCounter) and
answers the image, whatever Redis does; anything else is 404. The nonce is the copy's: a
link that names a reader (a click history) never stands here.
"""

from __future__ import annotations

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from digest.clicks import OpenCounter
from digest.mail import NONCE_PATTERN, click_key, valid_open
from digest.web.deps import services_of

# The smallest transparent GIF (43 bytes).
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
_MAX_DIGITS = 18


def _number(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_DIGITS or (text[0] == "0" and text != "0"):
        return None
    return int(text)


def _counter(request: Request) -> tuple[bytes, OpenCounter]:
    found = getattr(request.app.state, "opens", None)
    if found is None:
        settings = services_of(request).settings
        key = click_key(settings.secret_key)
        client = redis.asyncio.Redis.from_url(settings.redis_url or settings.broker_url,
                                              socket_connect_timeout=0.25, socket_timeout=0.5)
        found = request.app.state.opens = (key, OpenCounter(client, key))
    return found  # type: ignore[no-any-return]


def install(app: FastAPI) -> None:
    app.add_route("/o/{edition}/{variant}/{signature}/{nonce}", pixel, methods=["GET", "HEAD"],
                  include_in_schema=False)


async def pixel(request: Request) -> Response:
    key, counter = _counter(request)
    params = request.path_params
    edition_id, variant = _number(params["edition"]), _number(params["variant"])
    nonce = params["nonce"]
    if edition_id is None or variant is None or not NONCE_PATTERN.match(nonce) or not valid_open(
            key, edition_id, variant, params["signature"]):
        return PlainTextResponse("Not one of ours.\n", status_code=404)
    if request.method == "GET":  # a HEAD fetches no image: no open
        await counter.count(edition_id, variant, nonce)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private",
                                                            "Referrer-Policy": "no-referrer"})
