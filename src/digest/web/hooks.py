"""Webhooks: bounces and complaints from Amazon SES (through SNS) and SendGrid, and mail to
the unsubscribe address from an MTA pipe or a provider's inbound webhook.

Both refuse anything unsigned, badly signed or stale with 403 (digest.feedback.signatures);
each answers 404 while its setting is unset. Events are applied inside the request, in one
transaction, so a 2xx means they are recorded: on any failure the provider retries, and
applying is idempotent (digest.feedback.apply). Nothing waits in Redis, which may lose it;
Redis only remembers the provider's event ids (SendGrid `sg_event_id`, SNS `MessageId`)
for WEBHOOK_DEDUPE_SECONDS, so a signed request replayed while fresh changes nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import redis
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.config import load_sendgrid_key
from digest.store import utcnow
from digest.feedback import (
    CertificateUnavailable,
    FeedbackEvent,
    SignatureError,
    SnsCertificates,
    apply_events,
    events_from_sendgrid,
    events_from_ses,
    is_sns_url,
    verify_sendgrid,
    verify_sns,
)
from digest.feeds import FeedNotFound, file_pushed, verify
from digest.infra import JSON_MAX_DEPTH, JsonTooDeep, load_json
from digest.web.deps import Services, services_of
from digest.web.forms import BadRequest, read_body
from digest.web.limits import (
    INBOUND_BODY_MAX_BYTES,
    SENDGRID_BODY_MAX_BYTES,
    SES_BODY_MAX_BYTES,
    WEBSUB_BODY_MAX_BYTES,
)

log = logging.getLogger(__name__)
router = APIRouter()

# Longer than any provider retries a delivery, and than a stamp stays fresh.
WEBHOOK_DEDUPE_SECONDS = 24 * 3600
EVENT_ID_MAX_CHARS = 200
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def sns_certificates(app: FastAPI) -> SnsCertificates:
    """The app's SNS certificate cache (one per app; tests set their own, with a fetcher
    that serves a local certificate, as `app.state.sns_certificates`)."""
    cache = getattr(app.state, "sns_certificates", None)
    if cache is None:
        cache = app.state.sns_certificates = SnsCertificates()
    return cache  # type: ignore[no-any-return]


@lru_cache(maxsize=4)
def _sendgrid_key(value: str) -> ec.EllipticCurvePublicKey:
    return load_sendgrid_key(value)


class Sightings:
    """The provider event ids this request is the first to bring (Redis SET NX with a TTL).
    Without Redis every id counts as new: applying is idempotent, so a replay then costs
    work, not correctness."""

    def __init__(self, client: redis.Redis, provider: str) -> None:
        self.client = client
        self.provider = provider
        self.claimed: list[str] = []

    def claim(self, ids: Sequence[str | None]) -> list[bool]:
        """For each id: True if it is new (or None: nothing to go by), False if seen before."""
        keys = [f"digest:hook-seen:{self.provider}:{i}" if i else None for i in ids]
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in filter(None, keys):
                pipe.set(key, b"1", nx=True, ex=WEBHOOK_DEDUPE_SECONDS)
            answers = iter(pipe.execute())
        except (redis.RedisError, OSError) as exc:
            log.warning("%s event ids not checked for replays (Redis: %s)", self.provider, exc)
            return [True] * len(ids)
        fresh = [True if key is None else bool(next(answers)) for key in keys]
        self.claimed = [key for key, new in zip(keys, fresh, strict=True) if key and new]
        return fresh

    def release(self) -> None:
        """Forget this request's ids: it failed, and the provider's retry must be applied."""
        if self.claimed:
            try:
                self.client.delete(*self.claimed)
            except (redis.RedisError, OSError) as exc:
                log.warning("%s event ids not released (Redis: %s)", self.provider, exc)


def _event_id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= EVENT_ID_MAX_CHARS else None


def _apply_new(services: Services, provider: str, ids: Sequence[str | None],
               events_of: Callable[[list[bool]], Sequence[FeedbackEvent]]) -> tuple[dict[str, int], int]:
    """Apply the events of the ids not seen before: (outcomes, how many were replays)."""
    sightings = Sightings(services.redis, provider)
    fresh = sightings.claim(ids)
    try:
        outcomes = _apply(services, events_of(fresh))
    except BaseException:
        sightings.release()
        raise
    return outcomes, fresh.count(False)


def _apply(services: Services, events: Sequence[FeedbackEvent]) -> dict[str, int]:
    if not events:
        return {}
    with services.factory.begin() as session:
        applied = apply_events(session, events, soft_bounce_limit=services.settings.soft_bounce_limit)
    return dict(Counter(a.outcome for a in applied))


def _json(body: bytes) -> Any:
    try:
        return load_json(body)
    except JsonTooDeep:
        raise BadRequest(400, "Bad request", f"The body nests deeper than {JSON_MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "Bad request", "The body must be JSON.") from None


def _ok(**fields: object) -> JSONResponse:
    return JSONResponse({"status": "ok", **fields})


def _applied(outcomes: dict[str, int], replays: int) -> JSONResponse:
    return _ok(outcomes=outcomes, **({"replays": replays} if replays else {}))


@router.post("/hooks/ses")
async def ses_hook(request: Request) -> Response:
    """An SNS POST: a SubscriptionConfirmation, or a Notification carrying an SES Bounce or
    Complaint. Only signed messages from the topics in DIGEST_SES_TOPIC_ARNS are accepted."""
    services = services_of(request)
    settings = services.settings
    if not settings.ses_topic_arns:
        raise BadRequest(404, "Not found", "The SES hook is not enabled (set DIGEST_SES_TOPIC_ARNS).")
    message = _json(await read_body(request, SES_BODY_MAX_BYTES))
    if not isinstance(message, dict):
        raise BadRequest(400, "Bad request", "The body must be an SNS message (a JSON object).")
    topic = message.get("TopicArn")
    if topic not in settings.ses_topic_arns.split(","):
        # A valid signature only proves that *some* SNS topic sent it.
        raise BadRequest(403, "Forbidden", "Not a topic this hook accepts.")
    certificates = sns_certificates(request.app)
    try:
        await run_in_threadpool(verify_sns, message, certificates)
    except SignatureError as exc:
        log.warning("SNS message refused: %s", exc)
        raise BadRequest(403, "Forbidden", f"Refused: {exc}.") from None
    except CertificateUnavailable as exc:
        log.error("SNS signing certificate unavailable: %s", exc)
        raise BadRequest(503, "Unavailable", "The signing certificate could not be fetched; retry later.") from None

    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = message.get("SubscribeURL")
        if settings.ses_auto_confirm and is_sns_url(url):
            try:
                await run_in_threadpool(certificates.fetch, url)
            except CertificateUnavailable as exc:
                log.error("SNS subscription to %s not confirmed: %s", topic, exc)
                raise BadRequest(503, "Unavailable", "The subscription could not be confirmed; retry later.") from None
            log.warning("SNS subscription to %s confirmed", topic)
            return _ok(subscription="confirmed")
        log.warning("SNS subscription to %s waits for confirmation: open %s (or set DIGEST_SES_AUTO_CONFIRM=true)",
                    topic, url)
        return _ok(subscription="logged")
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS says this endpoint was unsubscribed from %s", topic)
        return _ok()
    try:
        notification = load_json(message["Message"])
    except (ValueError, TypeError):
        notification = None
    outcomes, replays = await run_in_threadpool(
        _apply_new, services, "ses", [_event_id(message.get("MessageId"))],
        lambda fresh: events_from_ses(notification) if fresh[0] else [])
    return _applied(outcomes, replays)


@router.post("/hooks/sendgrid")
async def sendgrid_hook(request: Request) -> Response:
    """SendGrid's Event Webhook with Signed Event Webhook on: bounce, dropped and
    spamreport events are applied, the others ignored."""
    services = services_of(request)
    settings = services.settings
    if not settings.sendgrid_public_key:
        raise BadRequest(404, "Not found", "The SendGrid hook is not enabled (set DIGEST_SENDGRID_PUBLIC_KEY).")
    body = await read_body(request, SENDGRID_BODY_MAX_BYTES)
    try:
        verify_sendgrid(_sendgrid_key(settings.sendgrid_public_key), request.headers.get(SENDGRID_SIGNATURE_HEADER),
                        request.headers.get(SENDGRID_TIMESTAMP_HEADER), body)
    except SignatureError as exc:
        log.warning("SendGrid event POST refused: %s", exc)
        raise BadRequest(403, "Forbidden", f"Refused: {exc}.") from None
    payload = _json(body)
    items = payload if isinstance(payload, list) else []
    ids = [_event_id(item.get("sg_event_id")) if isinstance(item, dict) else None for item in items]
    outcomes, replays = await run_in_threadpool(
        _apply_new, services, "sendgrid", ids,
        lambda fresh: events_from_sendgrid([item for item, new in zip(items, fresh, strict=True) if new]))
    return _applied(outcomes, replays)


# ------------------------------------------------------------------ inbound mail


@router.post("/hooks/inbound")
async def inbound_hook(request: Request) -> Response:
    """Raw RFC 5322 bytes of a message to the unsubscribe address, from an MTA pipe or a
    provider's inbound webhook. Needs `Authorization: Bearer DIGEST_INBOUND_SECRET`."""
    services = services_of(request)
    secret = services.settings.inbound_secret
    supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not secret:
        raise BadRequest(404, "Not found", "Inbound mail is not enabled (set DIGEST_INBOUND_SECRET).")
    if not secrets.compare_digest(supplied.encode(), secret.encode()):
        raise BadRequest(401, "Unauthorized", "A valid bearer token is required.")
    raw = await read_body(request, INBOUND_BODY_MAX_BYTES)
    if not raw.strip():
        raise BadRequest(400, "Bad request", "The body must be an RFC 5322 message.")
    await run_in_threadpool(services.enqueue_inbound, raw)  # a broker round trip: off the event loop
    return Response(json.dumps({"status": "accepted"}), status_code=202, media_type="application/json")



# ------------------------------------------------------------------ WebSub


@router.get("/hooks/websub/{feed_id}")
async def websub_verify(request: Request, feed_id: int) -> Response:
    """A hub verifying our intent (WebSub 5.3): its challenge echoed only when the mode and
    topic match a subscription we asked for (or, to unsubscribe, a feed we no longer
    follow); 404 otherwise, so nobody subscribes us to what we did not ask for."""
    query = request.query_params
    mode, topic, challenge = query.get("hub.mode", ""), query.get("hub.topic", ""), query.get("hub.challenge", "")
    if mode in ("subscribe", "unsubscribe") and not challenge:
        raise BadRequest(400, "Bad request", "hub.challenge is missing.")
    factory = services_of(request).factory
    answer = await run_in_threadpool(verify, factory, feed_id, mode, topic, challenge,
                                     query.get("hub.lease_seconds"), utcnow(), query.get("hub.reason"))
    if answer is None:
        raise BadRequest(404, "Not found", "No such subscription.")
    return Response(answer, media_type="text/plain")


@router.post("/hooks/websub/{feed_id}")
async def websub_push(request: Request, feed_id: int) -> Response:
    """A hub's push of the feed's new content, signed with our secret (X-Hub-Signature).
    Filed within the request; a wrong signature is ignored but still answered 2xx, as
    WebSub asks (the hub learns nothing it could try again with)."""
    body = await read_body(request, WEBSUB_BODY_MAX_BYTES)
    factory = services_of(request).factory
    try:
        result = await run_in_threadpool(file_pushed, factory, feed_id, body, request.headers.get("x-hub-signature"))
    except FeedNotFound:
        raise BadRequest(404, "Not found", "No such subscription.") from None
    return _ok(status="accepted" if result.outcome == "pushed" else "ignored")
