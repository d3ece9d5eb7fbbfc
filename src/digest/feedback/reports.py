"""Bounce and complaint reports, parsed: bytes or JSON in, plain data out. No database.

Three shapes arrive:
- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status),
  mailed back to the envelope sender by the receiving MTA;
- RFC 5965 ARF complaint reports (report-type=feedback-report) from mailbox providers'
  feedback loops;
- the JSON of Amazon SES (through SNS) and SendGrid's Event Webhook.

All of them become `FeedbackEvent`s: hard bounce, soft bounce or complaint, with the
recipient and the original Message-ID when the report carries them. What the event does
to a reader is decided in digest.feedback.apply. Parsing never raises on hostile input: junk is
"no event".
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser
from typing import Any, Literal

REPORT_MAX_BYTES = 1024 * 1024
RECIPIENTS_MAX_PER_REPORT = 100
DIAGNOSTIC_MAX_CHARS = 500
ADDRESS_MAX_CHARS = 320

Kind = Literal["hard", "soft", "complaint"]

STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,250}@[^<>\s]{1,250}>")
_ADDRESS_CHAR = r"[^\s<>;,\"()@\x00-\x1f\x7f\ud800-\udfff]"  # no controls, no undecodable bytes
ADDRESS_RE = re.compile(rf"{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+\.{_ADDRESS_CHAR}+")
# A 5xx with these codes is about the message or the sender, not the address: the mailbox
# is full, the message too big, or a policy (spam, reputation, authentication) refused it.
# Suppressing the reader for those would empty the list the day our DKIM breaks; they
# count as soft bounces, so a mailbox that keeps refusing is still suppressed in the end.
SOFT_DESPITE_5XX = ("5.2.2", "5.2.3", "5.3.4")
SOFT_DESPITE_5XX_CLASSES = ("5.7.",)
# ARF feedback types that are a reader's complaint; not-spam and auth-failure are not.
COMPLAINT_FEEDBACK_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status", "message/feedback-report")
HEADER_PARTS = ("text/rfc822-headers", "message/rfc822", "message/global-headers", "message/global")


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient of an RFC 3464 report (only `failed` and `delayed` are kept)."""

    recipient: str | None
    action: str  # failed, delayed
    status: str | None  # "5.1.1"
    diagnostic: str | None
    message_id: str | None


@dataclass(frozen=True)
class ComplaintReport:
    """An RFC 5965 feedback report."""

    recipient: str | None
    message_id: str | None
    feedback_type: str


@dataclass(frozen=True)
class FeedbackEvent:
    """What digest.feedback.apply applies: one recipient, one verdict."""

    kind: Kind
    source: str  # dsn, arf, ses, sendgrid
    recipient: str | None
    message_id: str | None
    status: str | None = None
    diagnostic: str | None = None
    feedback_type: str | None = None


# ------------------------------------------------------------------ classification


def classify(action: str, status: str | None, diagnostic: str | None = None) -> Literal["hard", "soft"] | None:
    """hard, soft, or None when nothing went wrong (delivered, relayed, expanded).

    `failed` with a 5.x.x status is hard unless the code says the mailbox exists (see
    SOFT_DESPITE_5XX); `delayed`, and `failed` after giving up on 4.x.x, are soft.
    """
    action = action.strip().lower()
    if action == "delayed":
        return "soft"
    if action != "failed":
        return None
    code = effective_status(status, diagnostic)
    if code is None or not code.startswith("5."):
        return "soft"
    if code in SOFT_DESPITE_5XX or code.startswith(SOFT_DESPITE_5XX_CLASSES):
        return "soft"
    return "hard"


def effective_status(status: str | None, diagnostic: str | None) -> str | None:
    """The Status field, or the more precise code in the diagnostic when Status is the
    generic X.0.0 of the same class (Exchange and some relays write "5.0.0")."""
    found = STATUS_RE.search(status or "")
    code = ".".join(found.groups()) if found else None
    detail = STATUS_RE.search(diagnostic or "")
    if detail is not None:
        precise = ".".join(detail.groups())
        if code is None or (code.endswith(".0.0") and precise[0] == code[0]):
            return precise
    return code


# ------------------------------------------------------------------ mailed reports


def parse_dsn(raw: bytes) -> list[DeliveryReport]:
    """The failed and delayed recipients of an RFC 3464 report; [] for anything else."""
    try:
        return list(_dsn_reports(raw))[:RECIPIENTS_MAX_PER_REPORT]
    except Exception:  # noqa: BLE001 - hostile bytes: any parse failure means "no report"
        return []


def parse_arf(raw: bytes) -> ComplaintReport | None:
    """The RFC 5965 feedback report in a message, or None."""
    try:
        return _arf_report(raw)
    except Exception:  # noqa: BLE001 - as above
        return None


def events_from_message(raw: bytes) -> list[FeedbackEvent]:
    """Every bounce or complaint a mailed report carries ([] for an auto-reply, a person
    writing back, or junk)."""
    complaint = parse_arf(raw)
    if complaint is not None:
        if complaint.feedback_type not in COMPLAINT_FEEDBACK_TYPES or not (complaint.recipient or complaint.message_id):
            return []
        return [FeedbackEvent("complaint", "arf", complaint.recipient, complaint.message_id,
                              feedback_type=complaint.feedback_type)]
    events = []
    for report in parse_dsn(raw):
        kind = classify(report.action, report.status, report.diagnostic)
        if kind is not None and (report.recipient or report.message_id):
            events.append(FeedbackEvent(kind, "dsn", report.recipient, report.message_id,
                                        status=effective_status(report.status, report.diagnostic),
                                        diagnostic=report.diagnostic))
    return events


def _message(raw: bytes) -> Message:
    # compat32 keeps odd headers as raw strings instead of raising on them.
    return email.message_from_bytes(raw[:REPORT_MAX_BYTES], policy=policy.compat32)


def _report_parts(message: Message) -> list[Message]:
    """The children of the (first) multipart/report, or of the top multipart when a
    sender forgot the report content type."""
    for part in message.walk():
        if part.get_content_type() == "multipart/report":
            return list(part.get_payload())
    if message.is_multipart():
        return list(message.get_payload())
    return []


def _text(value: object) -> str:
    return " ".join(str(value).split())


def _field_blocks(part: Message) -> list[dict[str, str]]:
    """A report part's field blocks (per-message, then per-recipient), names lower-cased."""
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                blocks.append({k.lower(): _text(v) for k, v in block.items()})
                body = block.get_payload()
                if isinstance(body, str) and body.strip():  # global-delivery-status: one sub-message
                    blocks.extend(_text_blocks(body))
    elif isinstance(payload, str):
        blocks.extend(_text_blocks(payload))
    return [b for b in blocks if b]


def _text_blocks(text: str) -> Iterator[dict[str, str]]:
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text):
        fields: dict[str, str] = {}
        name = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and name:
                fields[name] = _text(f"{fields[name]} {line}")
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                fields[name] = _text(value)
        yield fields


def _original_message_id(parts: Iterable[Message], fields: Iterable[dict[str, str]] = ()) -> str | None:
    """The Message-ID of the message the report is about: from the returned headers or
    message, else a Gmail-style X-Original-Message-ID field."""
    for part in parts:
        if part.get_content_type() not in HEADER_PARTS:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):  # message/*: the stdlib parsed the returned message
            headers = payload[0] if payload and isinstance(payload[0], Message) else None
        else:  # text/rfc822-headers, possibly base64
            text = part.get_payload(decode=True)
            headers = HeaderParser(policy=policy.compat32).parsestr(
                text.decode("utf-8", "replace"), headersonly=True) if isinstance(text, bytes) else None
        if headers is not None:
            found = MESSAGE_ID_RE.search(_text(headers.get("Message-ID", "")))
            if found:
                return found.group(0)
    for block in fields:
        found = MESSAGE_ID_RE.search(block.get("x-original-message-id", ""))
        if found:
            return found.group(0)
    return None


def _address(value: str | None) -> str | None:
    """The address of a DSN/ARF address field ("rfc822; a@b", "<a@b>"), or None."""
    if not value:
        return None
    tokens = value.rsplit(";", 1)[-1].split()
    token = next((t for t in tokens if "@" in t), "").strip("<>").rstrip(".")
    if len(token) > ADDRESS_MAX_CHARS or not ADDRESS_RE.fullmatch(token):
        return None
    return token


def _dsn_reports(raw: bytes) -> Iterator[DeliveryReport]:
    parts = _report_parts(_message(raw))
    status_parts = [p for p in parts if p.get_content_type() in REPORT_PARTS[:2]]
    if not status_parts:
        return
    blocks = _field_blocks(status_parts[0])
    message_id = _original_message_id(parts, blocks)
    for block in blocks:
        action = block.get("action", "").lower().split(" ", 1)[0]
        if action not in ("failed", "delayed"):
            continue  # the per-message block, or delivered/relayed/expanded
        # Original-Recipient is the address we sent to; Final-Recipient may be an alias's.
        recipient = _address(block.get("original-recipient")) or _address(block.get("final-recipient"))
        diagnostic = block.get("diagnostic-code")
        if diagnostic:
            diagnostic = diagnostic.split(";", 1)[-1].strip()[:DIAGNOSTIC_MAX_CHARS] or None
        found = STATUS_RE.search(block.get("status", ""))
        yield DeliveryReport(recipient, action, ".".join(found.groups()) if found else None, diagnostic,
                             message_id)


def _arf_report(raw: bytes) -> ComplaintReport | None:
    parts = _report_parts(_message(raw))
    report = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if report is None:
        return None
    fields: dict[str, str] = {}
    for block in _field_blocks(report):
        for name, value in block.items():
            fields.setdefault(name, value)
    feedback_type = fields.get("feedback-type", "").strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", feedback_type):
        return None
    recipient = _address(fields.get("original-rcpt-to"))
    return ComplaintReport(recipient, _original_message_id(parts), feedback_type)


# ------------------------------------------------------------------ provider JSON


def events_from_ses(notification: Any) -> list[FeedbackEvent]:
    """The events of one Amazon SES notification (the JSON inside an SNS `Message`), in
    either the notification format (notificationType) or event publishing (eventType)."""
    if not isinstance(notification, dict):
        return []
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    found = MESSAGE_ID_RE.search(str(common.get("messageId") or ""))
    message_id = found.group(0) if found else None
    events = []
    if kind == "Bounce" and isinstance(notification.get("bounce"), dict):
        bounce = notification["bounce"]
        # Permanent is SES' own verdict; Transient and Undetermined may still deliver later.
        verdict: Kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        for entry in _dicts(bounce.get("bouncedRecipients")):
            events.append(FeedbackEvent(
                verdict, "ses", _address(str(entry.get("emailAddress") or "")), message_id,
                status=effective_status(_str(entry.get("status")), _str(entry.get("diagnosticCode"))),
                diagnostic=(_str(entry.get("diagnosticCode")) or _str(bounce.get("bounceSubType")) or "")[
                    :DIAGNOSTIC_MAX_CHARS] or None))
    elif kind == "Complaint" and isinstance(notification.get("complaint"), dict):
        complaint = notification["complaint"]
        feedback_type = (_str(complaint.get("complaintFeedbackType")) or "abuse").lower()
        if feedback_type in COMPLAINT_FEEDBACK_TYPES:
            for entry in _dicts(complaint.get("complainedRecipients")):
                events.append(FeedbackEvent("complaint", "ses", _address(str(entry.get("emailAddress") or "")),
                                            message_id, feedback_type=feedback_type))
    return [e for e in events if e.recipient or e.message_id][:RECIPIENTS_MAX_PER_REPORT]


def events_from_sendgrid(payload: Any) -> list[FeedbackEvent]:
    """bounce, dropped and spamreport events of a SendGrid Event Webhook POST (a JSON array);
    other events (delivered, open, deferred…) are not ours to act on."""
    events = []
    for item in _dicts(payload):
        name = item.get("event")
        found = MESSAGE_ID_RE.search(_str(item.get("smtp-id")) or "")
        message_id = found.group(0) if found else None
        recipient = _address(_str(item.get("email")))
        reason = (_str(item.get("reason")) or "")[:DIAGNOSTIC_MAX_CHARS] or None
        if name == "bounce":
            status = effective_status(_str(item.get("status")), reason)
            # type "blocked": the receiver refused us (reputation, policy), not the address.
            kind = "soft" if item.get("type") == "blocked" else classify("failed", status, reason)
            if kind is not None:
                events.append(FeedbackEvent(kind, "sendgrid", recipient, message_id, status, reason))
        elif name == "dropped":
            # SendGrid did not even try: only its own verdicts on the address count.
            if reason in ("Bounced Address", "Invalid"):
                events.append(FeedbackEvent("hard", "sendgrid", recipient, message_id, None, reason))
            elif reason == "Spam Reporting Address":
                events.append(FeedbackEvent("complaint", "sendgrid", recipient, message_id,
                                            feedback_type="abuse"))
        elif name == "spamreport":
            events.append(FeedbackEvent("complaint", "sendgrid", recipient, message_id, feedback_type="abuse"))
    return [e for e in events if e.recipient or e.message_id]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
