"""The send loop's hot path (pre-encoded pieces joined with soft line breaks) must give the
same message as the standard library's build of the same content."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from digest.mail.message import (
    MessageHeaders,
    Personal,
    assemble_message,
    build_message_stdlib,
    encode_address,
    list_unsubscribe,
    message_id_for,
)
from digest.mail.render import EditionView, Reader, StoryView, reader_values, render_edition

WHEN = datetime(2026, 12, 1, 5, 0, 3, tzinfo=UTC)
STORIES = (
    StoryView(title="Zürich summit = “deal” — 🚆 " + "long " * 40, url="https://news.example.com/a?x=1&y=2",
              summary="Line with = signs and trailing space \n" + "ü" * 120, published_at=WHEN),
    StoryView(title="שלום עולם (right-to-left)", url="https://news.example.com/b", summary="", published_at=WHEN,
              author="Ann O'Brien", image_url="https://news.example.com/b.jpg", topics=("world",)),
)
READERS = [
    Reader(email="ann@example.com", name="Ann Lee", token="T" * 43),
    Reader(email="zoe@example.org", name="Zoë Čapek-Ωmega", token="tok_-123" * 5),
    Reader(email="x@example.net", name=None, token="a" * 43),
    Reader(email="q@example.com", name='"The" <Quote> & Co, =?utf-8?q?x?=', token="b" * 43),
]


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.email)
def test_fast_path_parses_like_the_standard_library(reader: Reader) -> None:
    rendered = render_edition(EditionView(id=7, subject="Ранкові “featured” — 1 Dec", send_at=WHEN, stories=STORIES,
                                          note="An editor's note = with ü"))
    shared = MessageHeaders(sender="Political IQ <digest@news.example.com>", subject=rendered.subject,
                            list_id="Featured Stories <featured.news.example.com>",
                            feedback_id="7:digest:edition:digest", unsubscribe_mailto="unsubscribe@news.example.com")
    values = reader_values(reader)
    message_id = message_id_for(7, 42, "news.example.com", "secret-0123456789abcdef")
    text_qp, html_qp = rendered.encoded_parts(values)
    fast_raw = assemble_message(
        shared.encoded_shared, to_header=encode_address(reader.name, reader.email), date=WHEN,
        message_id=message_id, list_unsubscribe_header=list_unsubscribe(values["unsubscribe_url"],
                                                                        shared.unsubscribe_mailto, reader.token),
        text_qp=text_qp, html_qp=html_qp)
    html, text = rendered.personalise(values)
    reference_raw = build_message_stdlib(shared, Personal(
        to_name=reader.name, to_address=reader.email, message_id=message_id, date=WHEN,
        unsubscribe_url=values["unsubscribe_url"], unsubscribe_token=reader.token, text=text, html=html))

    fast, reference = parse(fast_raw), parse(reference_raw)
    for header in ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                   "List-Unsubscribe-Post", "Feedback-ID", "MIME-Version"]:
        # Folding whitespace is not content: the stdlib folds long headers, the fast path need not.
        assert " ".join(str(fast[header]).split()) == " ".join(str(reference[header]).split()), header
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    assert fast.get_body(("plain",)).get_content() == reference.get_body(("plain",)).get_content()
    assert fast.get_body(("html",)).get_content() == reference.get_body(("html",)).get_content()
    assert reader.token in fast.get_body(("plain",)).get_content()
    # Quoted-printable lines stay within 76 characters; every line ends in CRLF.
    body = fast_raw.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert b"\n" not in fast_raw.replace(b"\r\n", b"")
