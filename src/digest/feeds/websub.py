"""WebSub (W3C Recommendation): a feed that advertises a hub is subscribed there, so its new
stories arrive within seconds of publication; polling goes on beside it as the fallback.

The one writer of a feed's subscription: `hub_state` (requested, verified, denied,
failed), `hub_secret`, `hub_lease_until`, `hub_requested_at`, `hub_error`. What the feed
advertises (`hub_url`, `hub_topic`) is written by each full poll (digest.feeds.poll).

- subscribe: a fresh secret, then `POST hub` with hub.callback (our /hooks/websub/{id}),
  hub.topic, hub.secret and hub.lease_seconds, through the safe fetcher;
- verify: the hub's GET to the callback is answered with its challenge only when mode,
  topic and our pending or live subscription match (else 404: nobody subscribes us to
  anything we did not ask for);
- a push's X-Hub-Signature (sha1/sha256/sha384/sha512 HMAC of the body with the secret) is
  checked before anything is read (digest.feeds.poll.file_pushed);
- renewal: a poll asks again when the lease ends within RENEW_BEFORE, or when a request
  was not verified within RETRY_AFTER.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.infra import FetchError, fetch
from digest.store import Feed

log = logging.getLogger(__name__)

LEASE_ASKED_SECONDS = 7 * 24 * 3600  # hubs may grant another; we renew a day before its end
RENEW_BEFORE = timedelta(days=1)
RETRY_AFTER = timedelta(hours=1)
LEASE_MAX_SECONDS = 365 * 24 * 3600  # a hub's absurd lease is not believed past a year
HUB_ANSWER_MAX_BYTES = 64 * 1024
HUB_DEADLINE_SECONDS = 10.0
SIGNATURE_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
                        "sha512": hashlib.sha512}
CALLBACK_PATH = "/hooks/websub/{feed_id}"


def needs_subscription(hub_url: str | None, state: str | None, lease_until: datetime | None,
                       requested_at: datetime | None, now: datetime) -> bool:
    """Whether to (re)subscribe now: a hub and no live subscription (never asked, or the
    last request unverified, denied or failed more than RETRY_AFTER ago), or a lease that
    ends within RENEW_BEFORE."""
    if not hub_url:
        return False
    if state == "verified" and lease_until is not None:
        return lease_until - now < RENEW_BEFORE
    return requested_at is None or now - requested_at >= RETRY_AFTER


def subscribe(factory: sessionmaker[Session], feed_id: int, callback_base: str, now: datetime) -> str:
    """Ask the feed's hub for pushes; 'requested' (the hub verifies later, at the callback),
    'failed' (`hub_error` says why) or 'none' (no hub)."""
    secret = secrets.token_hex(32)
    with factory.begin() as session:
        feed = session.get(Feed, feed_id)
        if feed is None or not feed.hub_url or not feed.hub_topic:
            return "none"
        hub, topic = feed.hub_url, feed.hub_topic
        feed.hub_secret, feed.hub_state, feed.hub_requested_at, feed.hub_error = secret, "requested", now, None
    form = {"hub.callback": callback_base.rstrip("/") + CALLBACK_PATH.format(feed_id=feed_id),
            "hub.mode": "subscribe", "hub.topic": topic, "hub.secret": secret,
            "hub.lease_seconds": str(LEASE_ASKED_SECONDS)}
    try:
        fetch(hub, form=form, max_bytes=HUB_ANSWER_MAX_BYTES, deadline_seconds=HUB_DEADLINE_SECONDS)
    except FetchError as exc:
        log.info("feed %s: the hub refused the subscription: %s", feed_id, exc, extra={"feed_id": feed_id})
        with factory.begin() as session:
            failed = session.get(Feed, feed_id)
            if failed is not None and failed.hub_secret == secret:
                failed.hub_state, failed.hub_error = "failed", str(exc)[:500]
        return "failed"
    log.info("feed %s: subscription requested at %s", feed_id, hub, extra={"feed_id": feed_id})
    return "requested"


def verify(factory: sessionmaker[Session], feed_id: int, mode: str, topic: str, challenge: str,
           lease_seconds: str | None, now: datetime, reason: str | None = None) -> str | None:
    """The hub's verification of intent: the challenge to echo when it matches what we asked
    (`subscribe`: our pending or live subscription to this topic; `unsubscribe`: a feed we
    no longer follow), '' to acknowledge a `denied`, None (answer 404) otherwise."""
    with factory.begin() as session:
        feed = session.get(Feed, feed_id)
        ours = feed is not None and feed.hub_topic == topic
        if mode == "subscribe":
            if feed is None or not ours or not feed.active or feed.hub_state not in ("requested", "verified"):
                return None
            seconds = int(lease_seconds) if lease_seconds and lease_seconds.isdigit() else LEASE_ASKED_SECONDS
            feed.hub_state = "verified"
            feed.hub_lease_until = now + timedelta(seconds=min(seconds, LEASE_MAX_SECONDS))
            feed.hub_error = None
            return challenge
        if mode == "unsubscribe":
            return challenge if feed is None or not feed.active else None
        if mode == "denied" and feed is not None and ours:
            feed.hub_state, feed.hub_error = "denied", f"the hub denied the subscription: {reason or 'no reason given'}"[:500]
            return ""
    return None


def signature_matches(secret: str | None, body: bytes, header: str | None) -> bool:
    """Whether X-Hub-Signature (`method=hexdigest`) is the HMAC of `body` with our secret."""
    if not secret or not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_ALGORITHMS.get(method.lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())
