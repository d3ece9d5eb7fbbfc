"""The message: the fast builder and the stdlib reference must parse to the same thing, and
no value, however odd, may add or split a header."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from digest.mail.message import (
    HeaderInjection,
    MessageHeaders,
    Personal,
    build_message,
    build_message_stdlib,
    message_id_for,
)

SECRET = "unit-test-secret-0123456789"
HEADERS_EXPECTED = ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                    "List-Unsubscribe-Post", "Feedback-ID", "MIME-Version", "Content-Type"]
COMPARED = ["From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
            "List-Unsubscribe-Post", "Feedback-ID"]
TEXT = "Hi Zoë,\n\n1. Zürich summit ends\nRead the story: https://news.example.com/z\n\nline with trailing space \n"
HTML = '<!DOCTYPE html><html><body><p style="color:#333">Zoë — “quoted”</p>' + "<p>x</p>" * 400 + "</body></html>\n"

NAMES = {
    "ascii": "Ann Lee",
    "utf-8": "Zoë Čapek-Ωmega",
    "cyrillic": "Олена Коваленко",
    "comma": "Lee, Ann",
    "quotes": '"The" Ann',
    "angle and at": "ann <evil@example.com>, bob@example.com",
    "crlf": "Ann\r\nBcc: victim@example.com",
    "lf": "Ann\nX-Injected: 1",
    "semicolon group": "Group: a@example.com;",
    "none": None,
    "empty": "",
    "long ascii": "A" * 200,
    "long utf-8": "Ж" * 200,
    "long utf-8 words": "Олександра Костянтинівна Коваленко-Шевченко",
}
# CPython's policy.default parser keeps the space between two adjacent encoded-words in a
# display name (RFC 2047 6.2 says to drop it), and the stdlib builder splits long non-ASCII
# names into several encoded-words. For those names the display name is compared through
# email.header's RFC 2047 decoder instead; see rfc2047_to().
SPLIT_BY_STDLIB = {"long utf-8", "long utf-8 words"}


def shared(**overrides: str) -> MessageHeaders:
    values = {
        "sender": "Político IQ <digest@news.example.com>",
        "subject": "Ранкові новини: “featured” stories — 1 December",
        "list_id": "Featured Stories <featured.news.example.com>",
        "feedback_id": "7:digest:edition:digest",
        "unsubscribe_mailto": "unsubscribe@news.example.com",
    }
    return MessageHeaders(**{**values, **overrides})


def personal(name: str | None = "Zoë Reader", **overrides: object) -> Personal:
    values: dict[str, object] = {
        "to_name": name,
        "to_address": "reader@example.com",
        "message_id": message_id_for(7, 42, "news.example.com", SECRET),
        "date": datetime(2026, 12, 1, 5, 0, 3, tzinfo=UTC),
        "unsubscribe_url": "https://digest.example.net/unsubscribe/TOKEN123",
        "unsubscribe_token": "TOKEN123",
        "text": TEXT,
        "html": HTML,
    }
    return Personal(**{**values, **overrides})  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def both(headers: MessageHeaders, person: Personal) -> list[tuple[str, bytes]]:
    return [("fast", build_message(headers, person)), ("stdlib", build_message_stdlib(headers, person))]


def rfc2047_to(raw: bytes) -> str:
    """The To header as RFC 2047 reads it: encoded-words joined without the folding space."""
    legacy = email.message_from_bytes(raw, policy=email.policy.compat32)
    return str(make_header(decode_header(legacy["To"])))


# ------------------------------------------------------------------ same message, two builders


@pytest.mark.parametrize("key", NAMES.keys())
def test_fast_and_stdlib_builders_parse_the_same(key: str) -> None:
    (_, fast_raw), (_, reference_raw) = both(shared(), personal(NAMES[key]))
    fast, reference = parse(fast_raw), parse(reference_raw)

    for header in COMPARED:
        if header == "To" and key in SPLIT_BY_STDLIB:
            assert rfc2047_to(fast_raw) == rfc2047_to(reference_raw)
            continue
        assert str(fast[header]) == str(reference[header]), header
    assert fast.get_body(("plain",)).get_content() == reference.get_body(("plain",)).get_content()
    assert fast.get_body(("html",)).get_content() == reference.get_body(("html",)).get_content()


def test_body_text_survives_exactly() -> None:
    for kind, raw in both(shared(), personal()):
        message = parse(raw)
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert text == TEXT, kind
        assert html == HTML, kind


def test_text_without_final_newline_gains_one_in_both() -> None:
    for kind, raw in both(shared(), personal(text="no newline at end")):
        assert parse(raw).get_body(("plain",)).get_content().replace("\r\n", "\n") == "no newline at end\n", kind


@pytest.mark.parametrize("builder", [build_message, build_message_stdlib])
def test_multipart_alternative_plain_then_html(builder) -> None:  # type: ignore[no-untyped-def]
    message = parse(builder(shared(), personal()))

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert message.defects == [] and all(part.defects == [] for part in parts)


@pytest.mark.parametrize("builder", [build_message, build_message_stdlib])
def test_utf8_subject_and_names_survive(builder) -> None:  # type: ignore[no-untyped-def]
    message = parse(builder(shared(), personal("Олена Zoë")))

    assert str(message["Subject"]) == "Ранкові новини: “featured” stories — 1 December"
    assert message["From"].addresses[0].display_name == "Político IQ"
    assert message["From"].addresses[0].addr_spec == "digest@news.example.com"
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Олена Zoë", "reader@example.com")


def test_header_values() -> None:
    message = parse(build_message(shared(), personal()))

    assert parsedate_to_datetime(str(message["Date"])) == datetime(2026, 12, 1, 5, 0, 3, tzinfo=UTC)
    assert str(message["Message-ID"]) == message_id_for(7, 42, "news.example.com", SECRET)
    assert str(message["List-Id"]) == "Featured Stories <featured.news.example.com>"
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message["Feedback-ID"]) == "7:digest:edition:digest"
    assert str(message["MIME-Version"]) == "1.0"


@pytest.mark.parametrize("builder", [build_message, build_message_stdlib])
def test_list_unsubscribe_has_https_and_mailto(builder) -> None:  # type: ignore[no-untyped-def]
    value = " ".join(str(parse(builder(shared(), personal()))["List-Unsubscribe"]).split())

    uris = [part.strip().strip("<>") for part in value.split(",")]
    assert uris == [
        "https://digest.example.net/unsubscribe/TOKEN123",
        "mailto:unsubscribe@news.example.com?subject=unsubscribe%20TOKEN123",
    ]


# ------------------------------------------------------------------ no injection


@pytest.mark.parametrize("key", NAMES.keys())
@pytest.mark.parametrize("builder", [build_message, build_message_stdlib])
def test_names_never_add_a_header_or_a_recipient(builder, key: str) -> None:  # type: ignore[no-untyped-def]
    name = NAMES[key]
    raw = builder(shared(), personal(name))
    message = parse(raw)

    assert sorted(message.keys()) == sorted(HEADERS_EXPECTED)
    assert [a.addr_spec for a in message["To"].addresses] == ["reader@example.com"]
    assert message["To"].defects == ()
    if name and key in SPLIT_BY_STDLIB:
        assert rfc2047_to(raw) == f"{name} <reader@example.com>"
    elif name:
        assert message["To"].addresses[0].display_name == " ".join(name.split())


@pytest.mark.parametrize("field", ["subject", "sender", "list_id", "feedback_id", "unsubscribe_mailto"])
@pytest.mark.parametrize("bad", ["a\r\nBcc: victim@example.com", "a\nX: 1", "a\rb", "a\x00b"])
def test_line_breaks_in_shared_headers_are_refused(field: str, bad: str) -> None:
    with pytest.raises(HeaderInjection, match=field):
        shared(**{field: bad})


@pytest.mark.parametrize("field", ["to_address", "message_id", "unsubscribe_url"])
def test_line_breaks_in_per_reader_headers_are_refused(field: str) -> None:
    bad = personal(**{field: "x@example.com\r\nBcc: victim@example.com"})

    with pytest.raises(HeaderInjection):
        build_message(shared(), bad)
    with pytest.raises(ValueError):  # the reference: HeaderInjection or the email package's own
        build_message_stdlib(shared(), bad)


# ------------------------------------------------------------------ wire format


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_lines_are_crlf_and_at_most_998_octets(name: str | None) -> None:
    long_subject = "Ж" * 300
    long_line_html = "<p>" + "word " * 2000 + "</p>"
    for kind, raw in both(shared(subject=long_subject), personal(name, html=long_line_html)):
        assert b"\n" not in raw.replace(b"\r\n", b""), kind
        assert b"\r" not in raw.replace(b"\r\n", b""), kind
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998, kind
        assert raw.isascii(), kind
        assert parse(raw).get_body(("html",)).get_content().replace("\r\n", "\n").rstrip("\n") == long_line_html


def test_shared_bytes_shortcut_gives_the_same_bytes() -> None:
    headers = shared()

    assert build_message(headers, personal(), shared_bytes=headers.encoded_shared) == build_message(
        headers, personal())


def test_same_input_same_bytes() -> None:
    assert build_message(shared(), personal()) == build_message(shared(), personal())


# ------------------------------------------------------------------ Message-ID


def test_message_id_is_stable_per_delivery() -> None:
    first = message_id_for(7, 42, "news.example.com", SECRET)

    assert message_id_for(7, 42, "news.example.com", SECRET) == first
    assert first.startswith("<digest.7.42.") and first.endswith("@news.example.com>")


@pytest.mark.parametrize(
    ("edition_id", "delivery_id", "secret"),
    [(7, 43, SECRET), (8, 42, SECRET), (74, 2, SECRET), (7, 42, SECRET + "x")],
)
def test_message_id_differs_for_another_delivery_or_secret(edition_id: int, delivery_id: int, secret: str) -> None:
    assert message_id_for(edition_id, delivery_id, "news.example.com", secret) != message_id_for(
        7, 42, "news.example.com", SECRET)


def test_message_id_is_a_valid_header_value() -> None:
    message = parse(build_message(shared(), personal()))

    assert message["Message-ID"].defects == ()
    assert str(message["Message-ID"]).count("@") == 1


@pytest.mark.parametrize("list_id", [
    "Café Politique <politics.featured.news.example.com>",
    'Politics: "Today" <politics.news.example.com>',
    "Дайджест новин дня з дуже довгою назвою для перевірки згортання рядків <kyiv.news.example.com>",
    "Plain Name <plain.news.example.com>",
])
def test_list_id_keeps_a_literal_id_whatever_the_name(list_id: str) -> None:
    from email import message_from_bytes
    from email import policy as email_policy

    from digest.mail.message import encode_list_id

    raw = f"List-Id: {encode_list_id(list_id)}\r\n\r\n".encode("ascii")
    list_address = list_id.rsplit("<", 1)[1]
    assert raw.rstrip().endswith(f"<{list_address}".encode())  # the id outside any encoded-word
    parsed = message_from_bytes(raw, policy=email_policy.default)["List-Id"]
    assert not parsed.defects
    name = list_id.rsplit("<", 1)[0].strip()
    shown = str(parsed).replace('\\"', '"')
    assert name in shown and shown.endswith(f"<{list_address}")
