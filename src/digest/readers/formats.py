"""Subscriber exports, ours and other services', read into one shape: what `roster` imports.

Pure: `open_records` reads a file as a stream of records with their line numbers; its
header row picks a layout (`detect_service`), and a layout turns one CSV record
into an `Incoming` (address, name, the service's status in our words, tags, opt-in time,
IP, source). Nothing here touches the database.

Statuses, in our words (`IMPORT_STATUSES`): subscribed, pending, unsubscribed, cleaned,
bounced, blocklisted, complained. `DEPARTED` ones go to the suppression list.

Where a service's export is ambiguous the choice is the one that mails nobody who did not
ask: an unknown status word is a bad row, never "subscribed".
"""

from __future__ import annotations

import csv
import io
import ipaddress
import socket
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from digest.readers.addresses import InvalidReader

SERVICES = ("mailchimp", "substack", "ghost", "listmonk", "beehiiv", "csv", "json")
# digest's own exports: topics and newsletters in them are checked strictly.
OWN_FORMATS = ("csv", "json")
IMPORT_STATUSES = ("subscribed", "pending", "unsubscribed", "cleaned", "bounced", "blocklisted", "complained")
# A departed address is suppressed: never mailed, and a later sign-up sends nothing.
DEPARTED = ("unsubscribed", "cleaned", "bounced", "blocklisted", "complained")
# Words digest's own export writes, and other plain CSVs use, for the statuses above.
STATUS_WORDS = {
    "subscribed": "subscribed", "active": "subscribed", "confirmed": "subscribed", "enabled": "subscribed",
    "pending": "pending", "unconfirmed": "pending",
    "unsubscribed": "unsubscribed", "inactive": "unsubscribed",
    "cleaned": "cleaned", "bounced": "bounced", "blocklisted": "blocklisted", "blacklisted": "blocklisted",
    "complained": "complained",
}
TRUE_WORDS = ("true", "yes", "1", "t")


@dataclass
class Incoming:
    """One reader as another service exported them, in our words."""

    email: str
    status: str  # one of IMPORT_STATUSES
    name: str | None = None
    topics: str | None = None  # digest's own CSV: checked strictly (an unknown topic is an error)
    newsletters: str | None = None  # digest's own CSV: slugs, checked strictly
    tags: list[str] = field(default_factory=list)  # other services: topics or newsletters if they match
    opted_in_at: datetime | None = None
    confirmed_at: datetime | None = None
    left_at: datetime | None = None
    ip: str | None = None
    source: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # kept in the consent event's detail


Mapper = Callable[[dict[str, str], str | None], Incoming]


def parse_time(raw: str | None) -> datetime | None:
    """A service's timestamp, as UTC: ISO 8601 with or without a zone ("Z", "+00", " UTC"),
    a space for the T, fractions of a second. InvalidReader for anything else."""
    text = (raw or "").strip()
    if not text:
        return None
    text = text.removesuffix(" UTC").removesuffix("Z").replace(" ", "T", 1)
    if len(text) > 3 and text[-3] in "+-" and text[-3:].lstrip("+-").isdigit() and "T" in text:
        text += ":00"  # postgres' "+00" (listmonk)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReader(f"cannot read the time {raw.strip()[:40]!r}") from None  # type: ignore[union-attr]
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clean_ip(raw: str | None) -> str | None:
    """An opt-in IP as given, or None: a malformed one is dropped, not the reader."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        # Most opt-in IPs are dotted IPv4, whose strict form (no leading zeros, four parts)
        # is already canonical: the C parser checks one in well under a µs, ipaddress in ~10.
        socket.inet_pton(socket.AF_INET, text)
        return text
    except (OSError, ValueError):  # not dotted IPv4 (ValueError: a NUL in it)
        pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def status_word(raw: str | None, default: str | None) -> str:
    text = (raw or "").strip().lower()
    if not text:
        if default is None:
            raise InvalidReader("no status: give --status")
        return default
    if text not in STATUS_WORDS:
        raise InvalidReader(f"unknown status {text[:40]!r}")
    return STATUS_WORDS[text]


def split_list(raw: str | None) -> list[str]:
    """"a, b" or a Mailchimp TAGS cell ("\"a\",\"b\"") as ["a", "b"]."""
    text = (raw or "").strip()
    if not text:
        return []
    items = next(csv.reader([text], skipinitialspace=True)) if text.startswith('"') else text.split(",")
    return [item.strip() for item in items if item.strip()]


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() in TRUE_WORDS


def _joined(*parts: str | None) -> str | None:
    return " ".join(p.strip() for p in parts if p and p.strip()) or None


# ------------------------------------------------------------------ the layouts


def mailchimp(row: dict[str, str], default: str | None) -> Incoming:
    # Mailchimp exports one file per status. The unsubscribed file adds UNSUB_TIME, the
    # cleaned one CLEAN_TIME; the subscribed file has neither, so the file itself says.
    if "unsub_time" in row:
        status, left = "unsubscribed", parse_time(row.get("unsub_time"))
    elif "clean_time" in row:
        status, left = "cleaned", parse_time(row.get("clean_time"))
    else:
        status, left = status_word(row.get("status"), default or "subscribed"), None
    extra = {k: row[k] for k in ("member_rating", "unsub_reason", "leid") if row.get(k)}
    return Incoming(
        email=row.get("email address", ""), status=status, name=_joined(row.get("first name"), row.get("last name")),
        tags=split_list(row.get("tags")), opted_in_at=parse_time(row.get("optin_time")),
        confirmed_at=parse_time(row.get("confirm_time")), left_at=left,
        ip=clean_ip(row.get("confirm_ip")) or clean_ip(row.get("optin_ip")), source=row.get("source") or None,
        extra=extra)


def substack(row: dict[str, str], default: str | None) -> Incoming:
    # No status column: a reader with email_disabled turned mail off (unsubscribed from
    # emails, still a member); everyone else receives the newsletter.
    status = "unsubscribed" if _truthy(row.get("email_disabled")) else status_word(row.get("status"), default or "subscribed")
    extra = {k: row[k] for k in ("plan", "active_subscription", "expiry") if row.get(k)}
    return Incoming(
        email=row.get("email", ""), status=status, name=row.get("name") or None,
        opted_in_at=parse_time(row.get("created_at")), source=row.get("subscription_source") or row.get("source") or None,
        extra=extra)


def ghost(row: dict[str, str], default: str | None) -> Incoming:
    # Ghost keeps no pending members (it confirms before it creates one). A member with
    # subscribed_to_emails false, or deleted, gets no newsletter: unsubscribed.
    left = parse_time(row.get("deleted_at"))
    subscribed = _truthy(row.get("subscribed_to_emails")) and left is None
    tags = split_list(row.get("labels")) + split_list(row.get("newsletters"))
    extra = {k: row[k] for k in ("id", "tiers", "complimentary_plan", "note") if row.get(k)}
    return Incoming(
        email=row.get("email", ""), status="subscribed" if subscribed else "unsubscribed", name=row.get("name") or None,
        tags=tags, opted_in_at=parse_time(row.get("created_at")), left_at=left, source="ghost", extra=extra)


def listmonk(row: dict[str, str], default: str | None) -> Incoming:
    # `status` is the subscriber's: enabled, disabled or blocklisted. A per-list export
    # adds `subscription_status`: confirmed, unconfirmed (a double opt-in never
    # confirmed: pending here) or unsubscribed.
    raw = (row.get("status") or "").strip().lower()
    per_list = (row.get("subscription_status") or "").strip().lower()
    if raw == "blocklisted":
        status = "blocklisted"
    elif raw == "disabled" or per_list == "unsubscribed":
        status = "unsubscribed"
    elif raw in ("enabled", ""):
        status = {"": default or "subscribed", "confirmed": "subscribed", "unconfirmed": "pending"}.get(per_list, "")
        if not status:
            raise InvalidReader(f"unknown subscription status {per_list[:40]!r}")
    else:
        raise InvalidReader(f"unknown status {raw[:40]!r}")
    tags: list[str] = split_list(row.get("lists"))
    try:
        attributes = json.loads(row.get("attributes") or "{}")
    except (ValueError, RecursionError):
        raise InvalidReader("attributes is not JSON") from None
    if isinstance(attributes, dict) and isinstance(attributes.get("topics"), list):
        tags += [str(t) for t in attributes["topics"]]
    return Incoming(
        email=row.get("email", ""), status=status, name=row.get("name") or None, tags=tags,
        opted_in_at=parse_time(row.get("created_at")), source="listmonk",
        extra={"uuid": row["uuid"]} if row.get("uuid") else {})


BEEHIIV_STATUSES = {
    "active": "subscribed", "validating": "pending", "pending": "pending", "needs_attention": "pending",
    "inactive": "unsubscribed", "invalid": "cleaned",
}


def beehiiv(row: dict[str, str], default: str | None) -> Incoming:
    # active mails; validating/pending wait for a confirmation; needs_attention is a
    # sign-up beehiiv held for review: pending, not mailed until confirmed. inactive is an
    # unsubscribe, invalid an address beehiiv cleaned.
    raw = (row.get("status") or "").strip().lower()
    status = BEEHIIV_STATUSES.get(raw) or (default if not raw and default else "")
    if not status:
        raise InvalidReader(f"unknown status {raw[:40]!r}" if raw else "no status: give --status")
    source = row.get("utm_source") or row.get("referring_site") or None
    extra = {k: row[k] for k in ("subscription_tier", "utm_medium", "utm_campaign", "referring_site") if row.get(k)}
    return Incoming(
        email=row.get("email", ""), status=status, name=row.get("name") or _joined(row.get("first_name"), row.get("last_name")),
        tags=split_list(row.get("tags")), opted_in_at=parse_time(row.get("created_at")), source=source, extra=extra)


def plain(row: dict[str, str], default: str | None) -> Incoming:
    """digest's own export, or any CSV with an `email` column (name, topics, status,
    newsletters, created_at, opted_in_at, confirmed_at, unsubscribed_at, opt_in_ip optional)."""
    return Incoming(
        email=row.get("email", ""), status=status_word(row.get("status"), default), name=row.get("name") or None,
        topics=row.get("topics") or None, newsletters=row.get("newsletters") or None,
        opted_in_at=parse_time(row.get("opted_in_at") or row.get("created_at")),
        confirmed_at=parse_time(row.get("confirmed_at")), left_at=parse_time(row.get("unsubscribed_at")),
        ip=clean_ip(row.get("opt_in_ip")), source=row.get("consent_source") or None)


LAYOUTS: dict[str, Mapper] = {
    "mailchimp": mailchimp, "substack": substack, "ghost": ghost, "listmonk": listmonk, "beehiiv": beehiiv,
    "csv": plain, "json": plain,
}
# The column (lower-cased) each layout's address is in.
EMAIL_COLUMNS = {"mailchimp": "email address"}


def detect_service(header: Sequence[str]) -> str | None:
    """Which service wrote a file with this header row, by the columns only it has; "csv"
    for any other file with an `email` column; None without one."""
    columns = {c.strip().lower() for c in header}
    if "email address" in columns and "email" not in columns:
        return "mailchimp"
    if "email" not in columns:
        return None
    if "subscribed_to_emails" in columns or {"labels", "complimentary_plan"} <= columns:
        return "ghost"
    if "email_disabled" in columns or "active_subscription" in columns:
        return "substack"
    if "uuid" in columns and "attributes" in columns:
        return "listmonk"
    if "utm_source" in columns or "referring_site" in columns or "subscription_tier" in columns:
        return "beehiiv"
    return "csv"


# ------------------------------------------------------------------ reading a file


def open_records(source: str | TextIO, service: str | None = None) -> tuple[Iterator[tuple[int, dict[str, Any]]], str]:
    """The file's records with their line numbers, and the service whose layout it has
    (`service`, or detected from the header row). A file starting with "[" is digest's
    JSON export: one reader a line, read as a stream."""
    stream = io.StringIO(source.removeprefix("\ufeff")) if isinstance(source, str) else source  # a spreadsheet's BOM
    lines = iter(stream)
    first = next(lines, "").lstrip("\ufeff")
    if first.lstrip().startswith("[") and service in (None, "json"):
        return _json_records(first, lines), "json"
    reader = csv.DictReader(itertools.chain([first], lines))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise InvalidReader(f"the CSV cannot be read at line 1: {exc}") from None
    columns = [column_name(f) for f in fieldnames or []]
    reader.fieldnames = columns  # each record's keys in our spelling, worked out once per file
    chosen = service or detect_service(columns)
    if chosen is not None and chosen not in LAYOUTS:
        raise InvalidReader(f"unknown service {chosen!r}; use one of {', '.join(SERVICES)}")
    if chosen is None or EMAIL_COLUMNS.get(chosen, "email") not in columns:
        where = "Email Address" if chosen == "mailchimp" else "email"  # as the service spells it
        raise InvalidReader(f"the CSV needs a header line with an '{where}' column (and optionally name, topics)")
    return ((reader.line_num, record) for record in _records(reader)), chosen


def _records(reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    """The reader's records; a line the csv module cannot read (a field past its size
    limit) refuses the whole file, naming the line."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidReader(f"the CSV cannot be read at line {reader.line_num + 1}: {exc}") from None
        yield record


def _json_records(first: str, lines: Iterator[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """digest's JSON export, "[", then one reader object a line, then "]": each object as
    a CSV record would be (lists joined by ";"). An array on one line is read whole."""
    if first.strip() != "[":
        try:
            items = json.loads(first + "".join(lines))
        except (ValueError, RecursionError) as exc:
            raise InvalidReader(f"the JSON cannot be read: {exc}") from None
        if not isinstance(items, list):
            raise InvalidReader("the JSON must be an array of readers")
        yield from ((1, _json_record(item, 1)) for item in items)
        return
    for number, text in enumerate(lines, start=2):
        text = text.strip().removesuffix(",")
        if text in ("", "]"):
            continue
        try:
            item = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidReader(f"the JSON cannot be read at line {number}: {exc}") from None
        yield number, _json_record(item, number)


def _json_record(item: Any, line: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidReader(f"the JSON cannot be read at line {line}: a reader must be an object")
    return {column_name(str(k)): ";".join(map(str, v)) if isinstance(v, list) else "" if v is None else str(v)
            for k, v in item.items()}


def column_name(raw: str | None) -> str:
    """A column's name as the layouts look it up: trimmed, lower-case, without a BOM."""
    return (raw or "").strip().lower().lstrip("\ufeff")


def count_csv_rows(source: str | TextIO, service: str | None = None) -> int:
    """How many data rows the file holds (InvalidReader as `import_file` would raise it for
    `service`, None: detected): the total for a progress bar."""
    return sum(1 for _ in open_records(source, service)[0])


def detect_file_service(source: str | TextIO) -> str:
    """The service whose layout the file's header row has (InvalidReader without one)."""
    return open_records(source)[1]
