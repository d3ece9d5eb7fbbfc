"""Real SMTP servers (aiosmtpd handlers) for the tests, with scripted refusals.

- RecordingHandler, the session's sink: recipients steer it: `reject…@` gets 550 at RCPT,
  `tempfail…@` gets 451 the first time, `drop…@` gets 421 (closing) the first time;
- PacedHandler, the ops lane's: the same, slowed and held on demand (see lane.py);
- ChaosHandler, the chaos tests': random refusals and drops, and quiet moments to kill in.
"""

from __future__ import annotations

import asyncio
import email
import random
import threading
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


class Pipelining:
    """Offers PIPELINING (RFC 2920) in the EHLO reply, as Postfix does, so the tests take
    the sender's pipelined path; `advertise_pipelining = False` makes a server without it
    (the sender then goes through smtplib's sendmail). aiosmtpd reads one command line at
    a time, so pipelined commands need nothing more from it."""

    advertise_pipelining = True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        if self.advertise_pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")  # before the last "250 HELP"
        return responses


class RecordingHandler(Pipelining):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.seen_rcpt: dict[str, int] = {}

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.seen_rcpt.clear()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        local = address.split("@", 1)[0].lower()
        with self.lock:
            count = self.seen_rcpt[address] = self.seen_rcpt.get(address, 0) + 1
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("tempfail") and count == 1:
            return "451 4.7.1 Try again later"
        if local.startswith("drop") and count == 1:
            return "421 4.3.2 Service shutting down, closing channel"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def by_recipient(self) -> dict[str, list[Received]]:
        with self.lock:
            result: dict[str, list[Received]] = {}
            for received in self.messages:
                for rcpt in received.rcpt_tos:
                    result.setdefault(rcpt, []).append(received)
            return result


def start_smtp_server() -> tuple[Controller, RecordingHandler]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    return controller, handler


class PacedHandler(RecordingHandler):
    """The session sink's behaviour (reject…, tempfail…, drop… addresses), plus:

    - `delay`: seconds spent in every DATA, so a send takes a while;
    - `hold(after)`: accept `after` more messages, then keep every DATA waiting until
      `release()`. `waiting` is how many connections are held now; with every worker
      process held the ledger cannot change;
    - `tempfail_always`: `tempfail…` addresses get 451 at every try, not only the first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0
        self.budget: int | None = None
        self.waiting = 0
        self.tempfail_always = False

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self.delay, self.budget, self.tempfail_always = 0.0, None, False

    def hold(self, after: int = 0) -> None:
        with self.lock:
            self.budget = after

    def release(self) -> None:
        with self.lock:
            self.budget = None

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.tempfail_always and address.split("@", 1)[0].lower().startswith("tempfail"):
            with self.lock:
                self.seen_rcpt[address] = self.seen_rcpt.get(address, 0) + 1
            return "451 4.7.1 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        held = False
        while True:
            with self.lock:
                if self.budget is None or self.budget > 0:
                    if self.budget is not None:
                        self.budget -= 1
                    if held:
                        self.waiting -= 1
                    break
                if not held:
                    self.waiting += 1
                    held = True
            await asyncio.sleep(0.005)
        return await super().handle_DATA(server, session, envelope)


def hard_bounces(address: str) -> bool:
    return int(uuid.uuid5(uuid.NAMESPACE_DNS, address).hex, 16) % 100 == 0  # 1 % of readers


class ChaosHandler(Pipelining):
    """4xx for 5 % of transactions at random, 5xx for 1 % of recipients; can hold new
    transactions and tell when no connection is between a 250 and its next command.
    Offers PIPELINING, as Postfix does, so refusals arrive in pipelined replies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, float, str]] = []  # (recipient, time, Message-ID)
        self.helos: list[str] = []  # the sending host's EHLO name, one per `received` entry
        # When each `received` entry's transaction began (its MAIL FROM): the moment the sender
        # committed to that message, which is what an unsubscribe can still stop.
        self.started: list[float] = []
        self.mail_at: dict[int, float] = {}  # session -> when its current MAIL FROM came
        self.rng = random.Random(20261125)
        self.held = threading.Event()
        self.in_window: dict[int, float] = {}  # session -> when its 250 went out
        self.refused_4xx = 0
        self.dropped = 0

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        with self.lock:
            self.in_window.pop(id(session), None)
        while self.held.is_set():
            await asyncio.sleep(0.002)
        with self.lock:
            self.mail_at[id(session)] = time.monotonic()
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if hard_bounces(address):
            return "550 5.1.1 No such user"
        with self.lock:
            temporary = self.rng.random() < 0.05
            self.refused_4xx += temporary
        if temporary:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        with self.lock:
            self.in_window[id(session)] = time.monotonic()  # a transaction is in flight
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            drop = self.rng.random() < 0.005
            self.dropped += drop
        if drop:  # the connection dies mid-DATA: the message is not taken
            server.transport.abort()
            return "421 4.4.2 Connection dropped"
        message_id = ""
        for line in envelope.content.split(b"\r\n", 40):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, time.monotonic(), message_id))
                self.helos.append(session.host_name or "")
                self.started.append(self.mail_at.get(id(session), 0.0))
            self.in_window[id(session)] = time.monotonic()
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.in_window.pop(id(session), None)
        return "221 Bye"

    def quiet_moment(self, timeout: float = 5.0) -> None:
        """Hold new transactions until no connection is inside the 250 window."""
        self.held.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                # A client answers a 250 within milliseconds; an entry older than 2 s is a
                # connection that died without QUIT (an earlier kill), not one in the window.
                now = time.monotonic()
                if all(now - at > 2.0 for at in self.in_window.values()):
                    return
            time.sleep(0.001)
        raise AssertionError("no quiet moment in 5 s")

    def release(self) -> None:
        self.held.clear()
