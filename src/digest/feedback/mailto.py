"""Inbound mail to the unsubscribe address: the mailto: half of List-Unsubscribe.

A reader is identified only by the token our List-Unsubscribe put in the subject
("unsubscribe TOKEN") or in the address (unsubscribe+TOKEN@…), never by the From
header, which anyone can forge.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from digest.feedback.maildir import process_maildir
from digest.readers import RequestContext, find_by_token, unsubscribe

INBOUND_MAX_BYTES = 1024 * 1024
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{40,64}")
SUBJECT_RE = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{40,64})\b", re.IGNORECASE)
ADDRESS_RE = re.compile(r"^[^+@]+\+([A-Za-z0-9_-]{40,64})@", re.IGNORECASE)


@dataclass(frozen=True)
class InboundResult:
    outcome: str  # unsubscribed, already, unknown-token, no-token, unreadable
    subscriber_id: int | None = None


def token_from_message(raw: bytes) -> str | None:
    """The unsubscribe token a message carries in its subject or recipient address."""
    try:
        message = email.message_from_bytes(raw[:INBOUND_MAX_BYTES], policy=policy.default)
        assert isinstance(message, EmailMessage)
        subject = str(message.get("Subject", ""))
        recipients = [addr for _, addr in getaddresses(
            [str(v) for h in ("To", "Delivered-To", "X-Original-To", "Cc") for v in message.get_all(h, [])]
        )]
    except Exception:  # noqa: BLE001 - hostile bytes: any parse failure means "no token"
        return None
    found = SUBJECT_RE.search(subject)
    if found:
        return found.group(1)
    for address in recipients:
        match = ADDRESS_RE.match(address)
        if match:
            return match.group(1)
    return None


def unsubscribe_by_mail(session: Session, raw: bytes) -> InboundResult:
    """One message to the unsubscribe address: its reader leaves, if its token is ours."""
    token = token_from_message(raw)
    if token is None:
        return InboundResult("no-token")
    subscriber = find_by_token(session, token)
    if subscriber is None:
        return InboundResult("unknown-token")
    changed = unsubscribe(session, subscriber, RequestContext(channel="mailto"))
    return InboundResult("unsubscribed" if changed else "already", subscriber.id)


def process_mailto_maildir(factory: sessionmaker[Session], folder: Path) -> list[InboundResult]:
    """Every message in the maildir's new/ (DIGEST_UNSUBSCRIBE_MAILDIR), unsubscribed."""
    return process_maildir(factory, folder, unsubscribe_by_mail, INBOUND_MAX_BYTES)
