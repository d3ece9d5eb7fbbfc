"""A real SMTP server (aiosmtpd) for the tests, with scripted refusals.

Recipients steer it: `reject…@` gets 550 at RCPT, `tempfail…@` gets 451 the first
time, `drop…@` gets 421 (closing) the first time.
"""

from __future__ import annotations

import email
import threading
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
