"""The SMTP connection against a real server (aiosmtpd), with PIPELINING offered and not:
the same messages arrive intact and every refusal maps to the same SendError."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from digest.config import SmtpTarget
from digest.mail.message import WireMessage
from digest.mail.transport import SendError, SmtpConnection, SmtpTransport
from tests.support.processes import free_port
from tests.support.smtp import RecordingHandler

pytestmark = pytest.mark.integration

SENDER = "digest@news.example.com"
DOTTED = (b"From: digest@news.example.com\r\nSubject: dots\r\nMessage-ID: <dots@x>\r\n\r\n"
          b".leading dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nlast line\r\n")


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[SmtpTransport, RecordingHandler]]:
    from aiosmtpd.controller import Controller

    handler = RecordingHandler()
    handler.advertise_pipelining = request.param
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        yield SmtpTransport(SmtpTarget(f"smtp://127.0.0.1:{controller.port}"), timeout=10, local_hostname="transport.localhost"), handler
    finally:
        controller.stop()


def test_the_path_taken_follows_the_servers_offer(server) -> None:  # type: ignore[no-untyped-def]
    transport, handler = server
    with transport.connect() as connection:
        assert isinstance(connection, SmtpConnection)
        assert connection.pipelining is handler.advertise_pipelining


def test_a_wire_message_goes_out_as_it_is(server) -> None:  # type: ignore[no-untyped-def]
    # The fast path's output: CRLF only, leading dots written "=2E" (quoted-printable).
    wire = WireMessage(b"Subject: wire\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                       b"=2Eleading dot=\r\n=2E\r\nlast line\r\n")
    transport, handler = server
    with transport.connect() as connection:
        connection.send(SENDER, "wire@example.org", wire)
    assert [m.data for m in handler.messages] == [bytes(wire)]


def test_messages_arrive_byte_for_byte_with_leading_dots_unstuffed(server) -> None:  # type: ignore[no-untyped-def]
    transport, handler = server
    with transport.connect() as connection:
        for n in range(3):
            connection.send(SENDER, f"reader{n}@example.org", DOTTED)
    assert [m.rcpt_tos for m in handler.messages] == [[f"reader{n}@example.org"] for n in range(3)]
    assert all(m.mail_from == SENDER for m in handler.messages)
    assert {m.data for m in handler.messages} == {DOTTED}


def test_bare_line_feeds_are_sent_as_crlf(server) -> None:  # type: ignore[no-untyped-def]
    transport, handler = server
    with transport.connect() as connection:
        connection.send(SENDER, "lf@example.org", b"Subject: lf\n\n.first\nsecond\n")
    assert handler.messages[0].data == b"Subject: lf\r\n\r\n.first\r\nsecond\r\n"


@pytest.mark.parametrize(("local", "code", "permanent", "lost"), [
    ("reject", 550, True, False),
    ("tempfail", 451, False, False),
    ("drop", 421, False, True),
])
def test_refusals_map_to_send_errors_and_the_connection_goes_on(server, local, code, permanent,  # type: ignore[no-untyped-def]
                                                                lost) -> None:
    transport, handler = server
    with transport.connect() as connection:
        with pytest.raises(SendError) as refused:
            connection.send(SENDER, f"{local}@example.org", DOTTED)
        assert (refused.value.code, refused.value.permanent, refused.value.connection_lost) == (code, permanent, lost)
        assert str(refused.value).startswith(str(code))
        if not lost:  # the envelope was reset: the next message on this connection goes alone
            connection.send(SENDER, "after@example.org", DOTTED)
    assert [m.rcpt_tos for m in handler.messages] == ([] if lost else [["after@example.org"]])


def test_a_server_that_goes_away_is_a_lost_connection(server) -> None:  # type: ignore[no-untyped-def]
    transport, handler = server
    with transport.connect() as connection:
        connection.client.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
        with pytest.raises(SendError) as failure:
            connection.send(SENDER, "gone@example.org", DOTTED)
    assert failure.value.connection_lost and not failure.value.permanent
    assert handler.messages == []
