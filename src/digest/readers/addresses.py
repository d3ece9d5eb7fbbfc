"""A reader's address, name and topics, checked and normalised before anything is stored.

Addresses are checked for syntax only (email-validator, no DNS at request time) and kept
in normalised form; uniqueness is case-insensitive through `email_key`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from digest.errors import Invalid
from digest.mail import InvalidAddress, normalise_address

NAME_MAX_CHARS = 200
TOKEN_BYTES = 32  # 256 bits


class InvalidReader(Invalid):
    """An address, name or topic list that cannot be stored; the message says which."""


def email_hash(email_key: str) -> str:
    """The one-way form kept on the suppression list."""
    return hashlib.sha256(email_key.strip().lower().encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def normalise_email(raw: str) -> tuple[str, str]:
    """(normalised address, case-insensitive key) or InvalidReader."""
    try:
        return normalise_address(raw)
    except InvalidAddress as exc:
        raise InvalidReader(str(exc)) from None


# Providers that deliver "a.b.c@" to "abc@": for them a dot is no more a new address than a
# plus-tag is. The second name is the first's older spelling.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(raw: str) -> str:
    """The mailbox an address reaches, as the sign-up limits count it: lower-cased, the
    plus-tag gone (`victim+0@` … `victim+9@` are one mailbox), and for DOTLESS_DOMAINS the
    dots of the local part too. Only for counting: the address stored and mailed is the
    one typed. A string that is no address at all is counted as it is."""
    try:
        _, key = normalise_email(raw)
    except InvalidReader:
        return raw.strip().lower()
    local, _, domain = key.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        domain = DOTLESS_DOMAINS[domain]
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


def clean_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    if any(c in raw for c in "\r\n\x00"):
        raise InvalidReader("name must be a single line")
    name = " ".join(raw.split())
    if len(name) > NAME_MAX_CHARS:
        raise InvalidReader(f"name is longer than {NAME_MAX_CHARS} characters")
    return name or None


def clean_topics(raw: str | Iterable[str] | None, allowed: list[str]) -> list[str]:
    if raw is None:
        return []
    items = raw.replace(";", ",").split(",") if isinstance(raw, str) else list(raw)
    topics = sorted({item.strip().lower() for item in items if item and item.strip()})
    unknown = [t for t in topics if t not in allowed]
    if unknown:
        raise InvalidReader(f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    return topics
