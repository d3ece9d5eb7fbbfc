"""The consent ledger (GDPR Art. 7): who gave or withdrew consent, when, how, to which text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from digest.store import ConsentEvent, Subscriber

CONSENT_VERSION = "2026-11-01"
CONSENT_TEXT = (
    "Email me the featured stories. I can unsubscribe at any time with one click; "
    "my address is used for nothing else."
)
# "form" is digest's own sign-up page; "embed" the snippet on a publisher's page.
CHANNELS = ("one-click", "page", "mailto", "preferences", "admin", "cli", "import", "form", "embed")


@dataclass(frozen=True)
class RequestContext:
    """Where a consent came from: kept with the event."""

    channel: str
    ip: str | None = None
    user_agent: str | None = None
    form: str | None = None
    page: str | None = None  # the publisher's page a sign-up came from, kept in the detail


def record(session: Session, subscriber: Subscriber, kind: str, ctx: RequestContext,
           *, with_text: bool = False, detail: dict[str, Any] | None = None) -> None:
    session.add(ConsentEvent(**consent_values(subscriber.id, kind, ctx, with_text=with_text, detail=detail)))


def consent_values(subscriber_id: int, kind: str, ctx: RequestContext, *, with_text: bool = False,
                    detail: dict[str, Any] | None = None) -> dict[str, Any]:
    if ctx.page:
        detail = {**(detail or {}), "page": ctx.page}
    return {
        "subscriber_id": subscriber_id, "kind": kind, "channel": ctx.channel, "form": ctx.form,
        "consent_text": CONSENT_TEXT if with_text else None,
        "consent_version": CONSENT_VERSION if with_text else None,
        # Cut to their columns: behind a proxy the address comes from an unchecked
        # X-Forwarded-For, and a long one must not cost a reader their unsubscribe.
        "ip": (ctx.ip or "")[:64] or None, "user_agent": (ctx.user_agent or "")[:500] or None, "detail": detail,
    }
