"""Reader pages: subscribe, confirm, unsubscribe (page and RFC 8058 one-click), preferences,
my data, forget me.

Rules kept here: a GET never changes anything except /confirm (the double opt-in link);
every form but the one-click POST carries a CSRF token; the subscribe answer is the same
whoever you are; every change goes through digest.readers.lifecycle, which records it.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup

from digest import actions, readers
from digest.errors import DigestError
from digest.config import Settings
from digest.delivery import erase_reader, next_edition_time
from digest.editions import SAMPLE_TOKENS
from digest.infra import RateLimiter, TokenError, check_csrf_token, make_csrf_token, read_confirm_token
from digest.readers import InvalidReader, RequestContext
from digest.store import Frequency, Subscriber, SubscriberStatus
from digest.web.deps import CheckedForm, FormDep, Services, services_of, set_csrf_cookie
from digest.web.headers import framable_policy
from digest.web.embedding import (
    EMBED_CHANNEL,
    HONEYPOT_FIELD,
    PAGE_CHANNEL,
    cors_headers,
    embed_origin,
    page_of,
    preflight_headers,
    wants_json,
)
from digest.web.forms import BadRequest, csrf_pair, require_csrf
from digest.zones import zone_choices

log = logging.getLogger(__name__)
router = APIRouter()

SUBSCRIBE_FORM = "subscribe-page-v1"
EMBED_FORM = "embed-snippet-v1"
SENT_MESSAGE = ("Check your inbox: if that address can receive our emails, a message with a confirmation link "
                "is on its way.")
_NO_STORE = {"Cache-Control": "no-store"}
EMBED_SCRIPT = Path(__file__).parent.parent / "static" / "embed.js"
PAUSE_CHOICES_WEEKS = (0, 1, 2, 4, 8, 12)
ZONES = zone_choices()  # the picker's list: UTC, then real zones by region
RESUBSCRIBE_PER_DAY = 5
DEPARTED_STATUSES = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
ONE_CLICK_FIELD = ("List-Unsubscribe", "One-Click")


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200,
          csrf: bool = False) -> Response:
    services = services_of(request)
    cookie = None
    if csrf:
        cookie, token = csrf_pair(request, services.settings.secret_key)
        context = {**context, "csrf_token": token}
    response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    if cookie is not None:
        set_csrf_cookie(response, cookie, services.settings)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # tokens live in these URLs
    return response


def _context(request: Request, channel: str, form: str | None = None) -> RequestContext:
    return RequestContext(
        channel=channel,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        form=form,
    )


def _reader_or_404(services: Services, token: str) -> Subscriber:
    with services.factory() as session:
        subscriber = readers.find_by_token(session, token)
    if subscriber is None or subscriber.erased_at is not None:
        raise BadRequest(404, "Link not recognised",
                         "This link is not valid any more. If you copied it, check that it is complete.")
    return subscriber


def _allowed(limiter_call: Any) -> bool:
    try:
        return bool(limiter_call())
    except (redis.RedisError, OSError) as exc:
        # Fail open: a Redis outage must not stop people subscribing; double opt-in and
        # the cooldown in the database still hold.
        log.warning("rate limiter unavailable: %s", exc)
        return True


# ------------------------------------------------------------------ subscribe & confirm


@router.get("/subscribe")
def subscribe_form(request: Request) -> Response:
    return _page(request, "subscribe.html", _subscribe_context(request), csrf=True)


def _newsletter_choices(services: Services) -> list[dict[str, Any]]:
    with services.factory() as session:
        return [{"id": n.id, "name": n.name} for n in readers.active_newsletters(session)]


def _newsletter_ids(form: Any, services: Services) -> list[int] | None:
    """The newsletters ticked in a form; None when the page offered no choice."""
    if form.get("newsletters_offered") != "1":
        return None
    raw = form.get_all("newsletters")
    if not all(value.isdigit() for value in raw):
        raise InvalidReader("unknown newsletter")
    offered = {n["id"] for n in _newsletter_choices(services)}
    chosen = sorted({int(value) for value in raw})
    if not set(chosen) <= offered:
        raise InvalidReader("unknown newsletter")
    return chosen


def _subscribe_context(request: Request, **extra: Any) -> dict[str, Any]:
    services = services_of(request)
    newsletters = _newsletter_choices(services)
    return {"topics": services.settings.topic_list, "consent_text": readers.CONSENT_TEXT,
            "chosen": [], "email": "", "name": "", "error": None, "newsletters": newsletters,
            "chosen_newsletters": [n["id"] for n in newsletters], **extra}


@router.get("/embed.js", include_in_schema=False)
def embed_script() -> Response:
    """The optional script for the `digest embed` form on publishers' pages (ours, a few KB)."""
    return Response(EMBED_SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8", headers={
        "Cache-Control": "public, max-age=3600",
        # Loaded by other sites' pages: a default of same-origin here would block it.
        "Cross-Origin-Resource-Policy": "cross-origin"})


# The sign-up frame (`digest embed --iframe`): digest's own form in an <iframe> on the
# publisher's page. A browser sends no cookie of ours to a frame on another site, so the
# form carries a signed stamp in place of the CSRF pair; the frame and its answers may be
# framed by DIGEST_EMBED_ORIGINS only.
FRAME_FORM = "embed-frame-v1"
FRAME_TOKEN_FIELD = "frame_token"
FRAME_STAMP = "embed-frame"
FRAME_TOKEN_MAX_AGE_SECONDS = 24 * 3600
FRAME_QUERY_FIELD = "frame_query"  # the frame's own ?newsletter=&topics=, to show it again after an error
FRAME_QUERY_MAX_CHARS = 500


def _framable(response: Response, settings: Settings) -> None:
    response.headers["Content-Security-Policy"] = framable_policy(settings.embed_origin_list)


def _frame_page(request: Request, status: int = 200, error: str | None = None, query: str = "") -> Response:
    services = services_of(request)
    settings = services.settings
    params = parse_qs(query) if query else {key: [value] for key, value in request.query_params.items()}
    newsletter = (params.get("newsletter") or [""])[0] or None
    topics = (params.get("topics") or [""])[0] or None
    try:
        form = actions.embed.frame_form(services.deps(), make_csrf_token(settings.secret_key, FRAME_STAMP),
                                        newsletter=newsletter, topics=topics,
                                        frame_query=urlencode({k: v for k, v in (("newsletter", newsletter),
                                                                                 ("topics", topics)) if v}))
    except DigestError:
        response = _page(request, "error.html", {"title": "No such sign-up form",
                                                 "message": "This sign-up form is not offered."}, 404)
    else:
        response = _page(request, "embed_frame.html", {"form": Markup(form), "error": error}, status)
    _framable(response, settings)
    return response


@router.get("/embed/frame")
def embed_frame(request: Request) -> Response:
    """The framed sign-up form: ?newsletter=SLUG&topics=a,b as `digest embed --iframe` wrote them."""
    return _frame_page(request)


@router.options("/subscribe")
def subscribe_preflight(request: Request) -> Response:
    """The CORS preflight of a publisher's script (403 for a page not listed)."""
    origin = embed_origin(request, services_of(request).settings)
    return Response(status_code=204, headers=preflight_headers(origin) if origin else None)


@router.post("/subscribe")
def subscribe(request: Request, form: FormDep) -> Response:
    """Every answer that does not refuse the input takes DIGEST_SUBSCRIBE_ANSWER_MS at least,
    whatever the address's state (new, pending, active, suppressed) and whether a robot
    filled the honeypot: the time, like the text, never tells who is subscribed."""
    started = time.monotonic()
    services = services_of(request)
    settings = services.settings
    answer = _subscribe(request, form, services)
    if answer.status_code == 200:
        _pad(started, settings.subscribe_answer_ms / 1000)
    return answer


def _pad(started: float, floor_seconds: float) -> None:
    # A sync route runs on a worker thread: sleeping here holds no event loop.
    left = started + floor_seconds - time.monotonic()
    if left > 0:
        time.sleep(left)


def _subscribe(request: Request, form: Any, services: Services) -> Response:
    settings = services.settings
    origin = embed_origin(request, settings)
    framed = origin is None and check_csrf_token(settings.secret_key, form.get(FRAME_TOKEN_FIELD) or None,
                                                 FRAME_STAMP, FRAME_TOKEN_MAX_AGE_SECONDS)
    if origin is None and not framed:
        require_csrf(request, form, settings.secret_key)
    door = _Door(request, origin, framed, form.get(FRAME_QUERY_FIELD) if framed else "")
    if form.get(HONEYPOT_FIELD):
        return door.sent(settings)  # a robot: the usual answer, and nothing done
    email, name, topics = form.get("email").strip(), form.get("name"), form.get_all("topics")
    if not email:
        return door.invalid("Please enter your email address.", name=name, chosen=topics)
    ip = request.client.host if request.client else "unknown"
    limiter = services.limiter
    mailbox = readers.mailbox_key(email)
    if not _allowed(lambda: limiter.hit("subscribe-ip", ip, settings.subscribe_limit_per_ip_per_hour, 3600)) \
            or not _allowed(lambda: limiter.hit("subscribe-address", mailbox,
                                                settings.subscribe_limit_per_address_per_hour, 3600)):
        return door.too_many()
    notice_id = None
    try:
        newsletter_ids = _newsletter_ids(form, services)
        if newsletter_ids == []:
            raise InvalidReader("choose at least one newsletter")
        with services.factory.begin() as session:
            subscriber, wants_confirmation = readers.request_subscription(
                session, email, name=name or None, topics=topics, allowed_topics=settings.topic_list,
                ctx=door.consent_context(), newsletter_ids=newsletter_ids)
            # The cooldown keeps the form from mailing one address again and again; a
            # confirmation that failed to send is no reason to make its reader wait.
            if wants_confirmation and subscriber is not None and (
                    readers.last_confirmation_failed(session, subscriber.id) or _allowed(
                        lambda: limiter.once_per("confirm-cooldown", mailbox, settings.subscribe_cooldown_seconds))) \
                    and _confirmation_to_domain_allowed(limiter, mailbox, settings):
                notice_id = readers.queue_notice(session, subscriber, "confirm")
    except InvalidReader as exc:
        return door.invalid(str(exc), email=email, name=name, chosen=topics)
    if notice_id is not None:
        _enqueue_notice(services, notice_id)
    # The same answer whoever asked: the form never tells who is subscribed.
    return door.sent(settings)


class _Door:
    """How a sign-up is answered: digest's own page (HTML), or a publisher's page (`origin`
    listed in DIGEST_EMBED_ORIGINS) in HTML with a way back, or in JSON for its script, or
    digest's own frame on a publisher's page (`framed`), whose answers stay framable there."""

    def __init__(self, request: Request, origin: str | None, framed: bool = False, frame_query: str = "") -> None:
        self.request = request
        self.origin = origin
        self.framed = framed
        self.frame_query = frame_query[:FRAME_QUERY_MAX_CHARS]
        self.page = page_of(request, origin) if origin else None
        self.json = origin is not None and wants_json(request)

    def consent_context(self) -> RequestContext:
        if self.framed:
            return _context(self.request, EMBED_CHANNEL, FRAME_FORM)
        if self.origin is None:
            return _context(self.request, PAGE_CHANNEL, SUBSCRIBE_FORM)
        return replace(_context(self.request, EMBED_CHANNEL, EMBED_FORM), page=self.page)

    def _answer(self, response: Response) -> Response:
        if self.origin is not None:
            response.headers.update(cors_headers(self.origin))
        if self.framed:
            _framable(response, services_of(self.request).settings)
        return response

    def sent(self, settings: Settings) -> Response:
        if self.framed:
            return self._answer(_page(self.request, "embed_frame.html", {"sent": True}))
        if self.json:
            return self._answer(JSONResponse({"status": "sent", "message": SENT_MESSAGE}, headers=_NO_STORE))
        return self._answer(_page(self.request, "subscribe_sent.html", {
            "confirm_days": settings.confirm_token_max_age_days, "back_url": self.page}))

    def invalid(self, message: str, **form: Any) -> Response:
        if self.framed:  # the frame's own form again, with the message (our page's needs a cookie)
            return self._answer(_frame_page(self.request, 400, error=message, query=self.frame_query))
        if self.json:
            return self._answer(JSONResponse({"error": message, "code": "invalid"}, 400, headers=_NO_STORE))
        return self._answer(_page(self.request, "subscribe.html", _subscribe_context(
            self.request, error=message, **form), 400, csrf=True))

    def too_many(self) -> Response:
        message = "We received too many sign-ups from here in the last hour. Please try again later."
        if self.json:
            return self._answer(JSONResponse({"error": message, "code": "rate_limited"}, 429, headers=_NO_STORE))
        return self._answer(_page(self.request, "error.html", {"title": "Too many attempts", "message": message}, 429))


def _confirmation_to_domain_allowed(limiter: RateLimiter, mailbox: str, settings: Settings) -> bool:
    domain = mailbox.rpartition("@")[2]
    if _allowed(lambda: limiter.hit("confirm-domain", domain, settings.subscribe_confirmations_per_domain_per_hour,
                                    3600)):
        return True
    log.warning("confirmation to @%s not sent: over %s an hour to that domain", domain,
                settings.subscribe_confirmations_per_domain_per_hour)
    return False


def _enqueue_notice(services: Services, notice_id: int) -> None:
    try:
        services.enqueue_notice(notice_id)
    except Exception as exc:  # noqa: BLE001 - the sweeper sends queued notices later
        log.warning("notice %s not enqueued now (%s); the sweeper will send it", notice_id, exc)


@router.get("/confirm/{token}")
def confirm(request: Request, token: str) -> Response:
    services = services_of(request)
    settings = services.settings
    try:
        subscriber_id, tail = read_confirm_token(settings.secret_key, token,
                                                 settings.confirm_token_max_age_days * 86400)
    except TokenError as exc:
        if exc.expired:
            return _page(request, "error.html", {
                "title": "This link has expired",
                "message": f"Confirmation links work for {settings.confirm_token_max_age_days} days. "
                           "Sign up again and we'll send a fresh one.",
                "action_url": "/subscribe", "action_label": "Sign up again"}, 410)
        raise BadRequest(400, "Link not recognised", str(exc)) from None
    welcome_id = None
    with services.factory.begin() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.erased_at is not None or not secrets.compare_digest(
                subscriber.token[-12:], tail):
            raise BadRequest(400, "Link not recognised", "This confirmation link is not valid.")
        if subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
            raise BadRequest(409, "Cannot confirm", "Mail to this address could not be delivered.")
        if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
            raise BadRequest(409, "You unsubscribed",
                             "This address unsubscribed after the link was sent. Sign up again to come back.")
        if readers.confirm(session, subscriber, _context(request, "form", "confirm-link")):
            welcome_id = readers.queue_notice(session, subscriber, "welcome")
        next_edition = next_edition_time(session)
        topics = subscriber.topics
        token_for_links = subscriber.token
    if welcome_id is not None:
        _enqueue_notice(services, welcome_id)
    return _page(request, "confirmed.html", {"next_edition": next_edition, "topics": topics,
                                             "preferences_url": f"/preferences/{token_for_links}"})


# ------------------------------------------------------------------ unsubscribe


def _sample_link(request: Request, what: str) -> Response:
    """A link from a preview or a test copy: say so, change nothing."""
    return _page(request, "test_link.html", {"what": what})


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str) -> Response:
    if token in SAMPLE_TOKENS:
        return _sample_link(request, "unsubscribes its reader at once")
    subscriber = _reader_or_404(services_of(request), token)
    return _page(request, "unsubscribe.html", {
        "token": token, "email": subscriber.email,
        "already": subscriber.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING),
    }, csrf=True)


@router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, token: str, form: FormDep) -> Response:
    services = services_of(request)
    one_click = form.get(ONE_CLICK_FIELD[0]) == ONE_CLICK_FIELD[1]
    if token in SAMPLE_TOKENS:
        if one_click:
            return Response("This was a test copy: nothing changed.\n", media_type="text/plain; charset=utf-8",
                            headers={"Cache-Control": "no-store"})
        return _sample_link(request, "unsubscribes its reader at once")
    if not one_click:
        require_csrf(request, form, services.settings.secret_key)
    channel = "one-click" if one_click else ("preferences" if form.get("from") == "preferences" else "page")
    ctx = _context(request, channel)

    def leave() -> str | None:
        with services.factory.begin() as session:
            return readers.unsubscribe_by_token(session, token, ctx)

    email = leave()
    if email is None:
        raise BadRequest(404, "Link not recognised", "This unsubscribe link is not valid.")
    if one_click:
        # RFC 8058: a plain 200, no redirect, no cookie.
        return Response("You are unsubscribed.\n", media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-store"})
    return _page(request, "unsubscribed.html", {"email": email, "token": token})


# ------------------------------------------------------------------ preferences & data


def _preferences_context(subscriber: Subscriber, services: Services, **extra: Any) -> dict[str, Any]:
    with services.factory() as session:
        chosen_newsletters = sorted(readers.subscribed_ids(session, subscriber.id))
        history_choices = readers.history_choices(session, subscriber.id)
        counting_opens = readers.counting_opens(session, subscriber.id)
    return {
        "history_choices": history_choices, "history_text": readers.CLICK_HISTORY_TEXT,
        "counting_opens": counting_opens,
        "newsletters": _newsletter_choices(services), "chosen_newsletters": chosen_newsletters,
        "token": subscriber.token, "email": subscriber.email, "name": subscriber.name or "",
        "status": subscriber.status.value, "chosen": subscriber.topics,
        "topics": services.settings.topic_list, "frequency": subscriber.frequency.value,
        "paused_until": subscriber.paused_until, "pause_choices": PAUSE_CHOICES_WEEKS,
        "timezone": subscriber.timezone or "", "zones": ZONES,
        "departed": subscriber.status in DEPARTED_STATUSES, "consent_text": readers.CONSENT_TEXT,
        "saved": False, "error": None, "resubscribed": False, **extra,
    }


@router.get("/preferences/{token}")
def preferences_page(request: Request, token: str) -> Response:
    if token in SAMPLE_TOKENS:
        return _sample_link(request, "opens its reader's preferences")
    services = services_of(request)
    subscriber = _reader_or_404(services, token)
    return _page(request, "preferences.html", _preferences_context(subscriber, services), csrf=True)


@router.post("/preferences/{token}")
def save_preferences(request: Request, token: str, form: CheckedForm) -> Response:
    services = services_of(request)
    pause = form.get("pause_weeks", "0")
    notice_id = None
    try:
        with services.factory.begin() as session:
            subscriber = readers.find_by_token(session, token)
            if subscriber is None or subscriber.erased_at is not None:
                raise BadRequest(404, "Link not recognised", "This preferences link is not valid.")
            if form.get("action") == "resubscribe":
                context, notice_id = _resubscribe(request, services, session, subscriber)
            elif subscriber.status in DEPARTED_STATUSES:
                # Saving choices would look like coming back and change nothing: say so.
                raise BadRequest(409, "You are unsubscribed",
                                 "We send this address nothing, so there are no choices to save. "
                                 "Use \u201cSubscribe again\u201d on your preferences page to come back.")
            else:
                if form.get("action") == "resume":
                    readers.resume(session, subscriber, _context(request, "preferences"))
                else:
                    if not pause.isdigit():
                        raise InvalidReader("choose how many weeks to pause from the list")
                    readers.update_preferences(
                        session, subscriber, name=form.get("name"), topics=form.get_all("topics"),
                        frequency=form.get("frequency", Frequency.EVERY.value), pause_weeks=int(pause),
                        allowed_topics=services.settings.topic_list, ctx=_context(request, "preferences"),
                        newsletter_ids=_newsletter_ids(form, services),
                        timezone=form.get("timezone").strip() or None,
                        click_history_ids=[int(v) for v in form.get_all("click_history") if v.isdigit()]
                        if form.get("click_history_offered") else None)
                context = None  # read once committed: the page shows what was saved
    except (InvalidReader, ValueError) as exc:
        subscriber = _reader_or_404(services, token)
        return _page(request, "preferences.html",
                     _preferences_context(subscriber, services, error=str(exc)), 400, csrf=True)
    if notice_id is not None:
        _enqueue_notice(services, notice_id)  # after the commit: the worker must find the notice
    if context is None:
        context = _preferences_context(_reader_or_404(services, token), services, saved=True)
    return _page(request, "preferences.html", context, csrf=True)


def _resubscribe(request: Request, services: Services, session: Any,
                 subscriber: Subscriber) -> tuple[dict[str, Any], int | None]:
    """A departed reader asks to come back from their preferences page: double opt-in
    again (a new consent event, a confirmation mail), to the newsletters they had."""
    settings = services.settings
    chosen = sorted(readers.subscribed_ids(session, subscriber.id)) or None
    again, wants_confirmation = readers.request_subscription(
        session, subscriber.email, name=subscriber.name, topics=subscriber.topics,
        allowed_topics=settings.topic_list, ctx=_context(request, "preferences"), newsletter_ids=chosen)
    if again is None:  # bounced or complained: the mailbox or its owner said no
        raise BadRequest(409, "We cannot send to this address",
                         "Mail to this address bounced or was reported as unwanted, so we cannot subscribe it again.")
    notice_id = None
    # The page is the reader's own (its link is their secret), so the sign-up form's
    # cooldown per address does not apply: someone who left a minute ago may come back
    # now. A few a day still bound what a leaked link could send.
    if wants_confirmation and _allowed(lambda: services.limiter.hit(
            "resubscribe", str(subscriber.id), RESUBSCRIBE_PER_DAY, 86400)):
        notice_id = readers.queue_notice(session, again, "confirm")
    session.flush()
    return _preferences_context(again, services, resubscribed=notice_id is not None,
                                error=None if notice_id is not None else
                                "We have sent you several links today: please use the newest one."), notice_id


@router.get("/preferences/{token}/data.json")
def my_data(request: Request, token: str) -> Response:
    services = services_of(request)
    _reader_or_404(services, token)
    with services.factory() as session:
        subscriber = readers.find_by_token(session, token)
        assert subscriber is not None
        data = readers.export_data(session, subscriber)
    return Response(json.dumps(data, ensure_ascii=False, indent=2), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-digest-data.json"',
                             "Cache-Control": "no-store"})


@router.post("/preferences/{token}/erase")
def erase(request: Request, token: str, form: CheckedForm) -> Response:
    services = services_of(request)
    if form.get("confirm") != "yes":
        raise BadRequest(400, "Please confirm", "Tick the box to confirm that we should delete your data.")
    with services.factory.begin() as session:
        subscriber = readers.find_by_token(session, token)
        if subscriber is None or subscriber.erased_at is not None:
            raise BadRequest(404, "Link not recognised", "This link is not valid any more.")
        erase_reader(session, subscriber, _context(request, "preferences"))
    return _page(request, "erased.html", {})
