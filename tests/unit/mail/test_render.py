"""Rendering: one inlined render per edition, then cheap, isolated per-reader copies."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

import digest.mail.render
from digest.config import get_settings
from digest.mail.links import click_key, click_prefix
from digest.mail.render import EditionView, Reader, StoryView, reader_values, render_edition
from digest.readers import new_token

POSTAL = "Unit Test News Ltd, 42 Inline Street, Testville TV1 2AB"
BASE_URL = "https://digest.example.net/mail"
SEND_AT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
HOSTILE_TITLE = ('<script>alert("pwned")</script> “Quotes” & \'apostrophes\' '
                 'DGST000000000000EMAILX DGSTUNSUBSCRIBEURLX {{ reader.email }} {% if 1 %}x{% endif %}')


@pytest.fixture(autouse=True)
def footer_settings(digest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_POSTAL_ADDRESS", POSTAL)
    monkeypatch.setenv("DIGEST_BASE_URL", BASE_URL + "/")
    get_settings.cache_clear()


def stories() -> tuple[StoryView, ...]:
    return (
        StoryView(id=11, title="Council Approves Transit Overhaul", url="https://news.example.com/transit?a=1&b=2",
                  summary="Two rapid lines & fewer loops.", published_at=datetime(2026, 11, 30, 8, tzinfo=UTC),
                  image_url="https://news.example.com/transit.jpg", author="Dan Whit", topics=("politics",)),
        StoryView(id=12, title="Markets Rally", url="https://news.example.com/markets",
                  summary="Stocks rose.", published_at=datetime(2026, 11, 30, 9, tzinfo=UTC)),
    )


def edition(*extra: StoryView, subject: str = "Your  morning\tbriefing") -> EditionView:
    return EditionView(id=7, subject=subject, send_at=SEND_AT, stories=stories() + extra)


READER = Reader(email="olena@example.org", name="Olena Kovalenko", token="tok-" + "a" * 40)


NONCE = "6b0f8f6f00000000a1"


def personalised(view: EditionView | None = None, reader: Reader = READER) -> tuple[str, str]:
    return render_edition(view or edition()).personalise(reader_values(reader, NONCE))


def click(story_id: int) -> str:
    """The signed click link of a story (0: the masthead) in edition 7, as this copy has it."""
    return click_prefix(BASE_URL, click_key(get_settings().secret_key), 7, story_id, 0) + NONCE


def doc(markup: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(markup)


# ------------------------------------------------------------------ the HTML part


def test_subject_is_one_line() -> None:
    assert render_edition(edition()).subject == "Your morning briefing"


def test_styles_are_inlined_on_links_and_cells() -> None:
    page = doc(personalised()[0])

    headline_links = page.cssselect("h2.headline a")
    assert len(headline_links) == 2
    for link in headline_links:
        assert "color:#1a1a1a" in link.get("style").replace(" ", "")
    for cell in page.cssselect("td.story"):
        assert "padding:20px32px" in cell.get("style").replace(" ", "")
    assert "font-family" in page.cssselect("td.footer")[0].get("style")


def test_media_query_survives_in_a_style_block() -> None:
    page = doc(personalised()[0])

    blocks = [style.text_content() for style in page.cssselect("style")]
    assert any("@media" in block and "max-width: 620px" in block for block in blocks)
    # Only the responsive and dark-mode rules stay in <head>; the rest went onto the elements.
    assert not any(re.search(r"\.summary\s*\{\s*font-family", block) for block in blocks)


def test_the_container_is_fluid_up_to_600px_without_a_media_query_and_fixed_for_outlook() -> None:
    markup = personalised()[0]
    page = doc(markup)

    (container,) = page.cssselect("table.container")
    assert container.get("width") == "100%"
    style = container.get("style").replace(" ", "")
    assert "width:100%" in style and "max-width:600px" in style  # inline: no <style> needed
    # Outlook's Word engine ignores max-width: a 600 px table in conditional comments, and
    # the 96-dpi block so images keep their size at 120 dpi.
    assert '<!--[if mso]><table role="presentation" width="600"' in markup
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in markup


def test_preheader_is_hidden_and_leads_with_the_first_headline() -> None:
    page = doc(personalised()[0])

    (preheader,) = page.cssselect("div.preheader")
    assert "display:none" in preheader.get("style").replace(" ", "")
    # Not hidden by a colour: text in the background's colour costs 0.7 in SpamAssassin.
    assert "color" not in preheader.get("style").replace("background-color", "")
    assert preheader.text_content().startswith("Council Approves Transit Overhaul")
    assert page.cssselect("body > *")[0] is preheader


def test_images_have_alt_and_width() -> None:
    images = doc(personalised()[0]).cssselect("img")

    assert images, "the first story has an image"
    for image in images:
        assert image.get("alt") == ""  # the headline below says it: with images off, once
        assert image.get("width") == "536"
        # Fluid in the cell (no <style> needed): a fixed 536 px would hold a phone at 600 px.
        assert "width:100%" in image.get("style").replace(" ", "")
        assert "max-width:536px" in image.get("style").replace(" ", "")
        assert image.get("src") == "https://news.example.com/transit.jpg"
        # height="auto" (premailer's copy of `height: auto`) mis-sizes images in Outlook.
        assert image.get("height") is None
        assert "height:auto" in image.get("style").replace(" ", "")


def test_story_links_and_text() -> None:
    page = doc(personalised()[0])

    hrefs = [a.get("href") for a in page.cssselect("td.story a")]
    # One link a story, its headline (a heading): the HTML and the text part carry the same
    # links, and a screen reader's list of links names each story once.
    # Each through the signed click redirect, which finds the story's address by its id.
    assert hrefs == [click(11), click(12)]
    assert "news.example.com/transit?" not in personalised()[0]
    (masthead,) = page.cssselect("td.masthead a")
    assert masthead.get("href") == click(0)
    assert [h.text_content() for h in page.cssselect("td.story h2")] == ["Council Approves Transit Overhaul",
                                                                        "Markets Rally"]
    (view,) = page.cssselect("td.view a")
    assert view.get("href") == f"{BASE_URL}/archive/{edition().id}"
    assert [d.text_content() for d in page.cssselect("td.summary")] == ["Two rapid lines & fewer loops.",
                                                                         "Stocks rose."]


def test_footer_has_address_and_the_readers_own_links() -> None:
    page = doc(personalised()[0])

    footer = page.cssselect("td.footer")[0]
    assert POSTAL in footer.text_content()
    assert READER.email in footer.text_content()
    links = {a.text_content(): a.get("href") for a in footer.cssselect("a")}
    assert links["Unsubscribe"] == f"{BASE_URL}/unsubscribe/{READER.token}"
    assert links["Manage preferences"] == f"{BASE_URL}/preferences/{READER.token}"


def test_greeting_uses_the_name_or_a_plain_hello() -> None:
    named = doc(personalised()[0]).cssselect("td.intro")[0].text_content()
    nameless = doc(personalised(reader=Reader(email="x@example.org", name=None, token="t"))[0])

    assert named.startswith("Hi Olena Kovalenko, here are today's 2 featured stories.")
    assert nameless.cssselect("td.intro")[0].text_content().startswith("Hello, here are")


# ------------------------------------------------------------------ the text part


def test_text_part_has_every_link_and_the_footer() -> None:
    text = personalised()[1]

    assert f"\n{click(11)}\n" in text
    assert f"\n{click(12)}\n" in text
    assert f"View this edition in your browser: {BASE_URL}/archive/{edition().id}" in text
    assert "\n-- \n" in text  # the signature separator, so clients fold the footer away
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 78  # a URL is never broken
    assert f"Unsubscribe: {BASE_URL}/unsubscribe/{READER.token}" in text
    assert f"Manage preferences: {BASE_URL}/preferences/{READER.token}" in text
    assert POSTAL in text
    assert "1. Council Approves Transit Overhaul" in text and "2. Markets Rally" in text
    assert "<" not in text  # no markup in the plain part


# ------------------------------------------------------------------ hostile content


def hostile_edition() -> EditionView:
    evil = StoryView(title=HOSTILE_TITLE, url='https://news.example.com/x?q="><script>alert(2)</script>',
                     summary='<img src=x onerror="alert(3)"> {{ reader.token }}',
                     published_at=datetime(2026, 11, 30, tzinfo=UTC),
                     image_url='https://news.example.com/i.jpg" onload="alert(4)', author="<b>Eve</b>")
    return edition(evil)


def test_hostile_story_content_is_escaped_in_html() -> None:
    markup = personalised(hostile_edition())[0]
    page = doc(markup)

    assert "<script" not in markup
    assert not page.cssselect("script")
    assert not [el for el in page.iter() if any(name.startswith("on") for name in el.attrib)]
    headline = page.cssselect("h2.headline a")[-1]
    assert headline.text_content() == HOSTILE_TITLE
    # The story's address is not in the mail at all: the redirect reads it from the store.
    assert headline.get("href") == click(0)
    assert "alert(2)" not in markup
    assert page.cssselect("td.summary")[-1].text_content().startswith('<img src=x onerror="alert(3)">')


def test_template_syntax_and_guessed_placeholders_in_a_story_are_left_alone() -> None:
    markup, text = personalised(hostile_edition())

    for part in (markup, text):
        assert "DGST000000000000EMAILX" in part
        assert "DGSTUNSUBSCRIBEURLX" in part
        assert "{{ reader.email }}" in part
        assert "{{ reader.token }}" in part
        assert "{% if 1 %}x{% endif %}" in part
        # The reader's address shows up in the footer only, never where the title is.
        assert part.count(READER.email) == 1
        assert READER.token not in part.replace(f"/unsubscribe/{READER.token}", "").replace(
            f"/preferences/{READER.token}", "")


def test_a_placeholder_from_one_render_means_nothing_in_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []
    real_segments = digest.mail.render.Segments

    def spying_segments(rendered: str, placeholders: dict[str, str]) -> digest.mail.render.Segments:
        seen.append(dict(placeholders))
        return real_segments(rendered, placeholders)

    monkeypatch.setattr(digest.mail.render, "Segments", spying_segments)
    render_edition(edition())
    leaked = seen[0]["email"]
    story = StoryView(title=f"Leaked {leaked}", url="https://news.example.com/l", summary=leaked,
                      published_at=datetime(2026, 11, 30, tzinfo=UTC))

    markup, text = render_edition(edition(story)).personalise(reader_values(READER))

    assert seen[-1]["email"] != leaked
    assert f"Leaked {leaked}" in markup and f"Leaked {leaked}" in text
    assert markup.count(READER.email) == 1 and text.count(READER.email) == 1


def test_reader_values_are_escaped_in_html_and_raw_in_text() -> None:
    sly = Reader(email="o'brien+tag@example.org", name='Bob <b>"Bobby"</b> & Co', token="t0k")

    markup, text = personalised(reader=sly)

    assert "<b>" not in markup
    assert doc(markup).cssselect("td.intro")[0].text_content().startswith('Hi Bob <b>"Bobby"</b> & Co,')
    assert 'Hi Bob <b>"Bobby"</b> & Co,' in text
    assert "o'brien+tag@example.org" in text


# ------------------------------------------------------------------ one render, many readers


def test_fifty_readers_never_see_each_others_details() -> None:
    rendered = render_edition(edition())
    readers = [
        Reader(email=f"r{uuid.uuid4().hex[:12]}@example.org", name=f"Name{uuid.uuid4().hex[:12]}",
               token=new_token())
        for _ in range(50)
    ]

    copies = [rendered.personalise(reader_values(reader)) for reader in readers]

    for index, (markup, text) in enumerate(copies):
        own = readers[index]
        for part in (markup, text):
            assert own.email in part and own.name in part and own.token in part
        for other in readers[:index] + readers[index + 1 :]:
            for part in (markup, text):
                assert other.email not in part
                assert other.name not in part
                assert other.token not in part


def test_personalised_copies_differ_only_in_reader_values() -> None:
    rendered = render_edition(edition())
    a = Reader(email="a@example.org", name="Ann", token="TOKENA")
    b = Reader(email="b@example.org", name="Ann", token="TOKENB")

    html_a, text_a = rendered.personalise(reader_values(a, NONCE))
    html_b, text_b = rendered.personalise(reader_values(b, NONCE))

    assert html_a.replace("a@example.org", "b@example.org").replace("TOKENA", "TOKENB") == html_b
    assert text_a.replace("a@example.org", "b@example.org").replace("TOKENA", "TOKENB") == text_b


def test_premailer_runs_once_per_render_not_per_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_inline = digest.mail.render.inline_css

    def counting_inline(markup: str) -> str:
        calls.append(len(markup))
        return real_inline(markup)

    monkeypatch.setattr(digest.mail.render, "inline_css", counting_inline)

    rendered = render_edition(edition())
    for i in range(50):
        rendered.personalise(reader_values(Reader(email=f"r{i}@example.org", name=f"R{i}", token=f"t{i}")))

    assert len(calls) == 1


def test_no_placeholder_survives_personalisation() -> None:
    markup, text = personalised()

    assert not re.search(r"DGST[0-9a-f]{12}", markup + text)
