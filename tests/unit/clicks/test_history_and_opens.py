"""The opt-in parts of clicks, as pure functions: a link that names a consenting reader
(its tag), the open pixel's signature, and a rendered copy with and without them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import get_settings
from digest.mail import (
    NONCE_PATTERN,
    click_key,
    click_prefix,
    history_key,
    new_click_nonce,
    open_prefix,
    reader_part,
    split_reader,
    valid_open,
)
from digest.mail.render import EditionView, Reader, StoryView, reader_values, render_edition

KEY = history_key("unit-test-secret-0123456789")
CLICKS = click_key("unit-test-secret-0123456789")
NONCE = "6b0f8f6f00000000a1"


def test_a_reader_part_names_one_reader_for_one_copy_and_cannot_be_moved() -> None:
    part = reader_part(KEY, NONCE, 4242)
    assert part.startswith(f"r{4242:x}s") and part.isalnum()  # one plain word in the message
    assert split_reader(KEY, NONCE + part) == (NONCE, 4242)
    assert split_reader(KEY, NONCE) == (NONCE, None)  # everyone else: the bare nonce
    assert split_reader(KEY, "test") == ("test", None)
    tag = part.split("s", 1)[1]
    forged = [NONCE + f"r{4243:x}s{tag}",                        # another reader under this tag
              "6b0f8f6f00000000a2" + part,                      # another copy's nonce
              NONCE + part[:-1], NONCE + part + "0",            # cut short, made longer
              NONCE + part[:-1] + ("0" if part[-1] != "0" else "1"),
              NONCE + "r0s" + tag, NONCE + "r" + "f" * 17 + "s" + tag, "../r1s" + tag]
    for link in forged:
        assert split_reader(KEY, link) is None, link
    assert split_reader(history_key("another-secret-0123456789"), NONCE + part) is None
    assert reader_part(KEY, NONCE, 4242) != reader_part(CLICKS, NONCE, 4242)  # its own key


def test_the_open_pixels_signature_covers_edition_and_variant_and_is_no_click_signature() -> None:
    prefix = open_prefix("https://d.example", CLICKS, 7, 0)
    signature = prefix.rstrip("/").rsplit("/", 1)[1]
    assert prefix == f"https://d.example/o/7/0/{signature}/"
    assert valid_open(CLICKS, 7, 0, signature)
    assert not valid_open(CLICKS, 8, 0, signature) and not valid_open(CLICKS, 7, 1, signature)
    assert not valid_open(CLICKS, 7, 0, signature[:-1])
    assert click_prefix("https://d.example", CLICKS, 7, 0, 0).split("/")[-2] != signature


@pytest.fixture
def settings(digest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_BASE_URL", "https://digest.example.net")
    get_settings.cache_clear()


def view(open_pixel: bool = False) -> EditionView:
    story = StoryView(id=11, title="Council Approves Transit Overhaul", url="https://news.example.com/transit",
                      summary="Two rapid lines.", published_at=datetime(2026, 11, 30, 8, tzinfo=UTC))
    return EditionView(id=7, subject="Morning", send_at=datetime(2026, 12, 1, 5, tzinfo=UTC), stories=(story,),
                       open_pixel=open_pixel)


def test_a_copy_names_its_reader_only_when_asked_and_its_pixel_never(settings: None) -> None:
    reader = Reader(email="olena@example.org", name="Olena", token="tok-" + "a" * 40)
    nonce = new_click_nonce()
    plain_html, plain_text = render_edition(view()).personalise(reader_values(reader, nonce))
    assert "/o/" not in plain_html  # off by default: no image at all
    assert f"/{nonce}\"" in plain_html and "r" not in nonce
    remembered = replace(reader, history_id=99)
    html, text = render_edition(view(open_pixel=True)).personalise(reader_values(remembered, nonce))
    part = reader_part(history_key(get_settings().secret_key), nonce, 99)
    assert f"/{nonce}{part}\"" in html and f"/{nonce}{part}" in text
    [pixel] = [line for line in html.split("<img ") if "/o/7/0/" in line]
    assert f"/{nonce}\"" in pixel and part not in pixel and 'width="1" height="1"' in pixel
    assert "/o/" not in text
    assert NONCE_PATTERN.match(nonce)
