"""Transports: where finished message bytes go. One small interface, three kinds.

    with transport.connect() as conn:
        conn.send(envelope_from, recipient, message_bytes)   # raises SendError

SMTP (smtp://, smtps://, STARTTLS) for production and tests against a real server, an
outbox folder (one .eml per message) for the demo, and a recording list for unit tests.
"""

from __future__ import annotations

import functools
import os
import random
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from digest.config import SmtpTarget
from digest.mail.dkim import DkimSigner, SigningTransport
from digest.mail.message import WireMessage


class SendError(Exception):
    """A message was not accepted.

    `permanent` (a 5xx for this recipient) means never retry it; otherwise it is
    transient. `connection_lost` means the connection is unusable: the caller stops the
    batch and leaves the rest for a retry.
    """

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False,
                 connection_lost: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.connection_lost = connection_lost


class Connection(Protocol):
    def send(self, envelope_from: str, recipient: str, message: bytes) -> None: ...


class Transport(Protocol):
    def connect(self) -> AbstractContextManager[Connection]: ...


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


# An envelope address we can put on the wire as it is: printable ASCII, no space, no angle
# brackets (readers' addresses are ASCII-only and validated; anything else goes the slow way).
_PLAIN_ADDRESS = re.compile(r"[!-;=?-~]+")


_ANY_LINE_END = re.compile(rb"\r\n|\r|\n")


def _crlf(message: bytes) -> bytes:
    """Line ends as SMTP wants them (CRLF): the fast path's WireMessage has them already;
    other bytes are counted and rewritten when they need it."""
    if isinstance(message, WireMessage):
        return message
    crlf = message.count(b"\r\n")
    if message.count(b"\n") == crlf and message.count(b"\r") == crlf:
        return message
    return _ANY_LINE_END.sub(b"\r\n", message)


def _data_payload(message: bytes) -> bytes:
    """What follows DATA: `message` (CRLF line ends) dot-stuffed and ended by CRLF . CRLF.
    One replace where smtplib runs a regular expression over the whole body on every send
    (~90 µs for 17 KB here); none for a WireMessage, which has no line starting with a dot."""
    if isinstance(message, WireMessage):
        return message + b".\r\n"
    if b"\r\n." in message:
        message = message.replace(b"\r\n.", b"\r\n..")
    if message.startswith(b"."):
        message = b"." + message
    return message + (b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n")


class SmtpConnection:
    def __init__(self, client: smtplib.SMTP) -> None:
        self.client = client
        # RFC 2920: MAIL, RCPT and DATA go out in one write and their replies are read
        # together, one round trip instead of three. Postfix and most relays offer it.
        self.pipelining = client.does_esmtp and client.has_extn("pipelining")
        self.size_limit = client.has_extn("size")

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        message = _crlf(message)
        try:
            if self.pipelining and _PLAIN_ADDRESS.fullmatch(envelope_from) and _PLAIN_ADDRESS.fullmatch(recipient):
                self._send_pipelined(envelope_from, recipient, _data_payload(message), len(message))
                return
            refused = self.client.sendmail(envelope_from, [recipient], message)
        except SendError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (450, b"recipient refused"))
            raise SendError(f"{code} {_reply_text(reply)}", code=code, permanent=code >= 500,
                            connection_lost=code == 421) from None
        except smtplib.SMTPSenderRefused as exc:
            # Our own envelope sender was refused: not the reader's fault, never a bounce.
            raise SendError(f"sender refused: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
                            code=exc.smtp_code, connection_lost=True) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise SendError(f"connection lost: {exc}", connection_lost=True) from None
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            raise SendError(f"{code} {_reply_text(exc.smtp_error)}", code=code,
                            permanent=500 <= code < 600,
                            connection_lost=code == 421 or not 400 <= code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"connection error: {exc}", connection_lost=True) from None
        if refused:
            code, reply = refused[recipient]
            raise SendError(f"{code} {_reply_text(reply)}", code=code, permanent=code >= 500)

    def _send_pipelined(self, envelope_from: str, recipient: str, payload: bytes, size: int) -> None:
        client = self.client
        mail_options = f" SIZE={size}" if self.size_limit else ""
        client.send(f"MAIL FROM:<{envelope_from}>{mail_options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        mail_code, mail_reply = client.getreply()
        rcpt_code, rcpt_reply = client.getreply()
        data_code, data_reply = client.getreply()
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            # The server opened DATA although the envelope failed (RFC 2920 §3.1 lets it):
            # end the empty transaction; it cannot deliver anything without a recipient.
            client.send(".\r\n")
            client.getreply()
        if mail_code != 250:
            self._reset()
            raise SendError(f"sender refused: {mail_code} {_reply_text(mail_reply)}", code=mail_code,
                            connection_lost=True)
        if rcpt_code not in (250, 251):
            self._reset()
            raise SendError(f"{rcpt_code} {_reply_text(rcpt_reply)}", code=rcpt_code,
                            permanent=rcpt_code >= 500, connection_lost=rcpt_code == 421)
        if data_code != 354:
            self._reset()
            raise SendError(f"{data_code} {_reply_text(data_reply)}", code=data_code,
                            permanent=500 <= data_code < 600,
                            connection_lost=data_code == 421 or not 400 <= data_code < 600)
        client.send(payload)
        code, reply = client.getreply()
        if code != 250:
            raise SendError(f"{code} {_reply_text(reply)}", code=code, permanent=500 <= code < 600,
                            connection_lost=code == 421 or not 400 <= code < 600)

    def _reset(self) -> None:
        """RSET after a refused envelope, so the next message starts clean (what sendmail
        does); a connection that cannot even do that is reported lost by the next send."""
        try:
            self.client.rset()
        except (OSError, smtplib.SMTPException):
            pass


@dataclass
class SmtpTransport:
    target: SmtpTarget
    timeout: float = 30.0
    local_hostname: str | None = None

    @contextmanager
    def connect(self) -> Iterator[SmtpConnection]:
        try:
            if self.target.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.target.host, self.target.port, timeout=self.timeout,
                    local_hostname=self.local_hostname, context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(self.target.host, self.target.port, timeout=self.timeout,
                                      local_hostname=self.local_hostname)
            client.ehlo()
            if self.target.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if self.target.username:
                client.login(self.target.username, self.target.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to {self.target.host}:{self.target.port}: {exc}",
                            connection_lost=True) from None
        try:
            yield SmtpConnection(client)
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.MULTILINE | re.IGNORECASE)


class OutboxConnection:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        found = _MESSAGE_ID.search(message[:8192])
        key = found.group(1).decode("ascii", "replace") if found else recipient
        name = _UNSAFE_FILENAME.sub("_", key)[:150] + ".eml"
        # Same Message-ID, same file: a resend after a crash overwrites, never duplicates.
        tmp = self.folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(message)
        os.replace(tmp, self.folder / name)


@dataclass
class OutboxTransport:
    folder: Path

    @contextmanager
    def connect(self) -> Iterator[OutboxConnection]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SendError(f"cannot create outbox {self.folder}: {exc.strerror}",
                            connection_lost=True) from None
        yield OutboxConnection(self.folder)


@dataclass
class RecordingTransport:
    """Keeps (envelope_from, recipient, bytes) in memory; `fail` maps recipients to errors."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail: dict[str, SendError] = field(default_factory=dict)

    @contextmanager
    def connect(self) -> Iterator[RecordingTransport]:
        yield self

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if recipient in self.fail:
            raise self.fail[recipient]
        self.sent.append((envelope_from, recipient, message))


def transport_for(target: SmtpTarget, timeout: float = 30.0,
                  helo: str | None = None) -> SmtpTransport | OutboxTransport:
    if target.scheme == "outbox":
        assert target.folder is not None
        return OutboxTransport(target.folder)
    # An explicit EHLO name: smtplib's default does a reverse DNS look-up per connection.
    return SmtpTransport(target, timeout=timeout, local_hostname=helo or socket.gethostname())


POOL_COOLDOWN_SECONDS = 30.0
# Per process: servers that refused a connection or dropped one lately, and until when.
_down_until: dict[str, float] = {}


class PooledConnection:
    def __init__(self, inner: SmtpConnection, key: str) -> None:
        self.inner = inner
        self.key = key

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        try:
            self.inner.send(envelope_from, recipient, message)
        except SendError as exc:
            if exc.connection_lost:
                _down_until[self.key] = time.monotonic() + POOL_COOLDOWN_SECONDS
            raise


@dataclass
class PoolTransport:
    """Several SMTP servers, chosen by weight; one that refuses or drops connections is
    left alone for POOL_COOLDOWN_SECONDS and the next one is tried (failover)."""

    members: list[SmtpTransport]

    def _order(self) -> list[SmtpTransport]:
        now = time.monotonic()
        up = [m for m in self.members if _down_until.get(m.target.url, 0) <= now and m.target.weight > 0]
        down = [m for m in self.members if m not in up]
        ordered: list[SmtpTransport] = []
        while up:  # weighted random order without replacement
            pick = random.choices(up, weights=[m.target.weight for m in up])[0]
            ordered.append(pick)
            up.remove(pick)
        return ordered + down  # servers marked down are the last resort, not never

    @contextmanager
    def connect(self) -> Iterator[PooledConnection]:
        last: SendError | None = None
        for member in self._order():
            with ExitStack() as stack:
                try:
                    connection = stack.enter_context(member.connect())
                except SendError as exc:  # refused or down: the next server
                    _down_until[member.target.url] = time.monotonic() + POOL_COOLDOWN_SECONDS
                    last = exc
                    continue
                yield PooledConnection(connection, member.target.url)
                return
        raise last or SendError("no SMTP server configured", connection_lost=True)


def make_transport(settings: Any) -> Any:
    """The transport DIGEST_SMTP_URL describes (one server, an outbox, or a pool), signing
    with DKIM when DIGEST_DKIM_SELECTOR and DIGEST_DKIM_PRIVATE_KEY_FILE are set."""
    targets = settings.smtp_targets
    transport: Any
    if len(targets) == 1:
        transport = transport_for(targets[0], settings.smtp_timeout_seconds, settings.smtp_helo)
    elif any(t.scheme == "outbox" for t in targets):
        raise ValueError("an outbox cannot be part of an SMTP pool")
    else:
        transport = PoolTransport([SmtpTransport(t, timeout=settings.smtp_timeout_seconds,
                                                 local_hostname=settings.smtp_helo or socket.gethostname())
                                   for t in targets])
    if settings.dkim_selector and settings.dkim_private_key_file:
        transport = SigningTransport(transport, dkim_signer(settings.dkim_selector,
                                                            settings.dkim_domain or settings.sender_domain,
                                                            str(settings.dkim_private_key_file)))
    return transport


@functools.cache
def dkim_signer(selector: str, domain: str, key_path: str) -> Any:
    return DkimSigner.from_file(selector, domain, Path(key_path))
