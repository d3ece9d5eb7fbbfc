"""The message: headers and a multipart/alternative body, as bytes ready for SMTP.

Two builders with one contract. `build_message` is the fast path the send loop uses:
headers shared by an edition are encoded once (`MessageHeaders`), and each reader's
copy is a join of byte strings plus a quoted-printable pass in C. `build_message_stdlib`
builds the same message with email.message.EmailMessage; tests hold the two to the same
parsed result.

No stored value can inject a header: every value is checked for CR/LF when it comes in
(`HeaderInjection`), and folded/encoded by the email package's own routines on the way out.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

MAX_HEADER_VALUE_CHARS = 998
ADDRESS_UNFOLDED_MAX_CHARS = 900  # longer "Name <address>" values are encoded and folded


class HeaderInjection(ValueError):
    """A value meant for a header holds CR or LF."""


def check_header_value(value: str, what: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjection(f"{what} must be a single line")
    return value


def _encode_unstructured(value: str) -> str:
    """A header value as 7-bit text: as-is when ASCII and short, else RFC 2047 folded."""
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


_PHRASE_SPECIALS = set('()<>[]:;@\\,."')


def encode_list_id(value: str) -> str:
    """`Name <id>` (RFC 2919) as 7-bit text with the `<id>` always literal: a non-ASCII name
    becomes encoded-words on its own, a name with specials (`:`, `"` …) a quoted string.
    Without the name's own encoding "Café Politique <politics.featured…>" went out as one
    encoded-word holding the id, which list filters cannot read."""
    name, bracket, rest = value.rpartition("<")
    if not bracket:
        return _encode_unstructured(value)
    name, list_id = " ".join(name.split()), "<" + rest.strip()
    if not name:
        return list_id
    if not name.isascii():
        phrase = Header(name, "utf-8", maxlinelen=60).encode(linesep="\r\n")
    elif _PHRASE_SPECIALS & set(name):
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = name
    return f"{phrase} {list_id}"


def encode_address(name: str | None, address: str) -> str:
    check_header_value(address, "address")
    name = " ".join((name or "").split())  # collapse, never carry a line break
    if not name:
        return address
    if name.isascii():
        plain = formataddr((name, address), charset="utf-8")
        if len(plain) <= ADDRESS_UNFOLDED_MAX_CHARS:
            return plain
    # formataddr makes one encoded-word however long the name: 200 emoji would be a
    # 1,100-octet line (RFC 5322 allows 998). Header splits and folds it instead.
    folded = Header(name, "utf-8", maxlinelen=76).encode(linesep="\r\n")
    return f"{folded} <{address}>"


def message_id_for(edition_id: int, delivery_id: int, domain: str, secret: str) -> str:
    """Stable per delivery: a resend after a crash carries the same Message-ID, so the
    receiving side can recognise it; the HMAC keeps ids unguessable from outside."""
    tag = hmac.new(secret.encode(), f"{edition_id}.{delivery_id}".encode(), hashlib.sha256)
    return f"<digest.{edition_id}.{delivery_id}.{tag.hexdigest()[:16]}@{domain}>"


@dataclass(frozen=True)
class MessageHeaders:
    """Everything in the header block that is the same for every reader of an edition."""

    sender: str
    subject: str
    list_id: str
    feedback_id: str
    unsubscribe_mailto: str
    reply_to: str = ""  # the newsletter's brand's; empty: replies go to From

    def __post_init__(self) -> None:
        for what in ("sender", "subject", "list_id", "feedback_id", "unsubscribe_mailto", "reply_to"):
            check_header_value(getattr(self, what), what)

    @property
    def encoded_shared(self) -> bytes:
        name, address = parseaddr(self.sender)
        lines = [
            f"From: {encode_address(name, address)}",
            *([f"Reply-To: {encode_address(None, self.reply_to)}"] if self.reply_to else []),
            f"Subject: {_encode_unstructured(self.subject)}",
            f"List-Id: {encode_list_id(self.list_id)}",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            f"Feedback-ID: {self.feedback_id}",
            "MIME-Version: 1.0",
        ]
        return ("\r\n".join(lines) + "\r\n").encode("ascii")


@dataclass(frozen=True)
class Personal:
    """The per-reader half of a message."""

    to_name: str | None
    to_address: str
    message_id: str
    date: datetime
    unsubscribe_url: str
    unsubscribe_token: str
    text: str
    html: str


_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


def list_unsubscribe(unsubscribe_url: str, mailto: str, token: str) -> str:
    check_header_value(unsubscribe_url, "unsubscribe URL")
    # Reader tokens are URL-safe base64: nothing to quote (quote() is ~8 µs a message).
    subject = f"unsubscribe%20{token}" if _URL_SAFE.fullmatch(token) else quote(f"unsubscribe {token}")
    return f"<{unsubscribe_url}>, <mailto:{mailto}?subject={subject}>"


def _qp(body: str) -> bytes:
    # b2a_qp works on '\n' lines; SMTP wants CRLF. Trailing spaces are encoded by it.
    data = body.replace("\r\n", "\n").encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def boundary_for(message_id: str) -> str:
    # Derived from the Message-ID: unique per message and never present in QP bodies
    # (QP output has no '==' runs followed by letters like this, and lines are short).
    return "==digest_" + hashlib.blake2s(message_id.encode(), digest_size=12).hexdigest() + "=="


def build_message(shared: MessageHeaders, personal: Personal, *, shared_bytes: bytes | None = None) -> bytes:
    """The fast path: final message bytes for one reader (pass `shared_bytes`, computed once
    per edition from `shared.encoded_shared`, in loops)."""
    boundary = boundary_for(personal.message_id)
    head = shared_bytes if shared_bytes is not None else shared.encoded_shared
    per_reader = (
        f"To: {encode_address(personal.to_name, personal.to_address)}\r\n"
        f"Date: {format_datetime(personal.date)}\r\n"
        f"Message-ID: {check_header_value(personal.message_id, 'Message-ID')}\r\n"
        f"List-Unsubscribe: {list_unsubscribe(personal.unsubscribe_url, shared.unsubscribe_mailto, personal.unsubscribe_token)}\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        "\r\n"
    ).encode("ascii")
    part_head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    # The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1), so each part
    # ends with one more: without it a reader's client drops the body's last line break.
    dash = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            head,
            per_reader,
            dash[2:],
            part_head % b"plain",
            _qp(personal.text),
            dash,
            part_head % b"html",
            _qp(personal.html),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
    )


SOFT_BREAK = b"=\r\n"


def qp_piece(text: str) -> bytes:
    """Quoted-printable for a piece of a body, CRLF line ends; b"" for an empty piece."""
    if not text:
        return b""
    # A lone CR is a line break too (as for str.splitlines and the email package): b2a_qp
    # would leave it bare, and a bare CR must not reach the wire (RFC 5322 2.3).
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    if encoded.startswith(b".") or b"\n." in encoded:
        encoded = _escape_leading_dots(encoded)
    return encoded.replace(b"\n", b"\r\n")


QP_LINE_MAX = 76  # RFC 2045 6.7


def _escape_leading_dots(encoded: bytes) -> bytes:
    """A "." opening a line becomes "=2E", which decodes to the same "." (RFC 2045), so no
    line of a fast-path body starts with a dot and SMTP has nothing to dot-stuff: every
    piece starts a line (after "=" CRLF), so every piece is done here, once per edition for
    the fixed parts (a digest's CSS has many such lines). A line pushed past 76 characters
    by the two more is split with a soft break, never inside an "=XX"."""
    lines = []
    for line in encoded.split(b"\n"):
        while line.startswith(b"."):
            line = b"=2E" + line[1:]
            if len(line) <= QP_LINE_MAX:
                break
            cut = QP_LINE_MAX - 3
            while b"=" in line[cut - 2:cut]:  # an "=XX" escape or a soft break straddles the cut
                cut -= 1
            lines.append(line[:cut] + b"=")
            line = line[cut:]  # at most a few characters; a leading "." goes round again
        lines.append(line)
    return b"\n".join(lines)


class EncodedBody:
    """A body whose fixed parts are quoted-printable encoded once per edition.

    Per reader only the few personal values are encoded; pieces are joined with QP soft
    line breaks ("=" CRLF), which decoders remove, so every line stays within 76
    characters and the decoded text is exactly literal + value + literal… This is what
    makes a message cost microseconds instead of a full encode of ~20 KB per reader.
    """

    __slots__ = ("literals", "fields", "_pairs")

    def __init__(self, literals: tuple[str, ...], fields: tuple[str, ...]) -> None:
        pieces = list(literals)
        if not pieces[-1].endswith("\n"):
            pieces[-1] += "\n"  # like _qp: every part ends with a line break
        self.literals = tuple(qp_piece(piece) for piece in pieces)
        self.fields = fields
        # Each field with the literal after it, that literal's soft break already in front.
        self._pairs = tuple((field, SOFT_BREAK + literal if literal else b"")
                            for field, literal in zip(fields, self.literals[1:], strict=True))

    def encode(self, values: Mapping[str, str]) -> bytes:
        # Each value encoded once, however many places it stands in (the click nonce ends
        # every story link); a plain ASCII word, such as the nonce, is its own encoding.
        encoded = {}
        for field, value in values.items():
            piece = value.encode("ascii") if value.isascii() and value.isalnum() else qp_piece(value)
            encoded[field] = SOFT_BREAK + piece if piece else b""
        out = [self.literals[0]]
        for field, literal in self._pairs:
            out.append(encoded[field])
            out.append(literal)
        return b"".join(out)


_date_cache: list[object] = [0, ""]


def date_header(now: datetime) -> str:
    """RFC 5322 Date, formatted once per second (it is the same for a whole second)."""
    second = int(now.timestamp())
    if _date_cache[0] != second:
        _date_cache[0], _date_cache[1] = second, format_datetime(now.replace(microsecond=0))
    return str(_date_cache[1])


class WireMessage(bytes):
    """Message bytes as SMTP wants them already: CRLF line ends only and no line starting
    with a dot. Every piece of the fast path is built so (header values refuse CR and LF;
    the bodies are quoted-printable with leading dots as "=2E"), and a property test holds
    it to that. The SMTP transport then sends it as it is, where other bytes cost a count of
    line ends and a dot-stuffing pass over 17 KB (~45 µs a message)."""

    __slots__ = ()


def assemble_message(shared_bytes: bytes, *, to_header: str, date: datetime, message_id: str,
                     list_unsubscribe_header: str, text_qp: bytes, html_qp: bytes) -> WireMessage:
    """The final bytes from pre-encoded pieces: the send loop's hot path. Produces the same
    structure as build_message (tests hold both to the standard library's parse)."""
    boundary = boundary_for(message_id)
    head = (
        f"To: {to_header}\r\nDate: {date_header(date)}\r\nMessage-ID: {message_id}\r\n"
        f"List-Unsubscribe: {list_unsubscribe_header}\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
    ).encode("ascii")
    dash = f"\r\n--{boundary}\r\n".encode("ascii")
    return WireMessage(b"".join((shared_bytes, head, _PART_HEAD_PLAIN, text_qp, dash, _PART_HEAD_HTML, html_qp,
                                 f"\r\n--{boundary}--\r\n".encode("ascii"))))


_PART_HEAD = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
_PART_HEAD_PLAIN = _PART_HEAD.format("plain").encode("ascii")
_PART_HEAD_HTML = _PART_HEAD.format("html").encode("ascii")


def build_message_stdlib(shared: MessageHeaders, personal: Personal) -> bytes:
    """The reference build with the standard library; slower, used to check the fast path."""
    message = EmailMessage(policy=SMTP)
    message["From"] = shared.sender
    if shared.reply_to:
        message["Reply-To"] = shared.reply_to
    # One encoded-word, as before encode_address folded: the email package refuses line
    # breaks in a value, decodes the name and folds it its own way.
    to_name = " ".join((personal.to_name or "").split())
    message["To"] = formataddr((to_name, personal.to_address), charset="utf-8") if to_name else personal.to_address
    message["Subject"] = shared.subject
    message["Date"] = format_datetime(personal.date)
    message["Message-ID"] = personal.message_id
    message["List-Id"] = encode_list_id(shared.list_id)
    message["List-Unsubscribe"] = list_unsubscribe(
        personal.unsubscribe_url, shared.unsubscribe_mailto, personal.unsubscribe_token
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Feedback-ID"] = shared.feedback_id
    message.set_content(personal.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(personal.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes()
