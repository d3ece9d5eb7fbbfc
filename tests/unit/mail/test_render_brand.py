"""The digest's rendering for every client: a newsletter's brand (colours, fonts, logo,
footer, language and direction, Reply-To), dark mode, spacing Outlook keeps, image sizes,
and the confirmation and welcome in the same brand."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import lxml.html
import pytest

from digest.config import get_settings
from digest.mail import (
    MessageHeaders,
    Personal,
    build_message,
    build_message_stdlib,
    check_brand,
    inline_css,
    render_template,
    shared_headers,
)
from digest.mail.render import EditionView, Reader, StoryView, reader_values, render_edition

SEND_AT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
READER = Reader(email="olena@example.org", name="Olena", token="tok-" + "b" * 40)
BRAND = check_brand({"logo_url": "https://cdn.example/logo.png", "logo_width": 180, "accent_color": "#0b5394",
                     "link_color": "#5b2a86", "font": "verdana", "footer_text": "Reader-funded since 1921.",
                     "reply_to": "desk@news.example.com", "language": "ar"})


@pytest.fixture(autouse=True)
def settings(digest_env: Path) -> None:
    get_settings.cache_clear()


def story(**given: object) -> StoryView:
    values: dict[str, object] = {"title": "Council Approves Transit Overhaul", "url": "https://news.example.com/t",
                                 "summary": "Two rapid lines.", "published_at": SEND_AT}
    return StoryView(**{**values, **given})  # type: ignore[arg-type]


def page_of(*stories: StoryView, brand: object = None) -> lxml.html.HtmlElement:
    view = EditionView(id=7, subject="Morning", send_at=SEND_AT, stories=stories or (story(),),
                       **({"brand": brand} if brand is not None else {}))
    markup, _ = render_edition(view).personalise(reader_values(READER))
    return lxml.html.document_fromstring(markup)


def style_of(element: lxml.html.HtmlElement) -> str:
    return (element.get("style") or "").replace(" ", "").lower()


# ------------------------------------------------------------------ for every client


def test_spacing_is_on_table_cells_only() -> None:
    page = page_of(story(image_url="https://news.example.com/i.jpg", topics=("politics",), author="Dan"))

    padded = [el.tag for el in page.iter()
              if isinstance(el.tag, str) and re.search(r"padding[a-z-]*:[1-9]", style_of(el))]
    # Outlook's Word engine drops padding on divs, paragraphs and links.
    assert padded and set(padded) == {"td"}, padded
    assert page.cssselect("td.kicker") and page.cssselect("td.meta") and page.cssselect("td.story-image-cell")


@pytest.mark.parametrize(("size", "attributes", "max_width"), [
    ((1200, 675), ("536", "302"), "536px"),  # scaled to the column
    ((400, 300), ("400", "300"), "400px"),  # smaller: its own size, never stretched
    ((1200, None), ("536", None), "536px"),  # no height known: no height attribute
    ((None, None), ("536", None), "536px"),
])
def test_an_image_has_width_and_height_from_the_story(size: tuple[int | None, int | None],
                                                       attributes: tuple[str, str | None], max_width: str) -> None:
    page = page_of(story(image_url="https://news.example.com/i.jpg", image_width=size[0], image_height=size[1]))

    (image,) = page.cssselect("img.story-image")
    assert (image.get("width"), image.get("height")) == attributes
    assert f"max-width:{max_width}" in style_of(image) and "width:100%" in style_of(image)
    assert image.get("alt") == ""


def test_dark_mode_is_declared_and_lightens_the_brand() -> None:
    page = page_of(brand=BRAND)
    style = BRAND.style()

    metas = {m.get("name"): m.get("content") for m in page.cssselect("meta[name]")}
    assert metas["color-scheme"] == "light dark" and metas["supported-color-schemes"] == "light dark"
    (block,) = [s.text_content() for s in page.cssselect("style") if "prefers-color-scheme: dark" in s.text_content()]
    assert style.accent_dark in block and style.link_dark in block and "#0b5394" not in block


def test_links_name_their_story_and_no_link_text_is_generic() -> None:
    page = page_of(story(), story(title="Markets Rally", url="https://news.example.com/m"))

    texts = [a.text_content().strip() for a in page.cssselect("a")]
    assert "Council Approves Transit Overhaul" in texts and "Markets Rally" in texts
    assert not [t for t in texts if t.lower() in ("read more", "read the story", "here", "click here", "more")]


# ------------------------------------------------------------------ the brand


def test_the_brand_reaches_the_digest() -> None:
    page = page_of(story(topics=("politics",)), brand=BRAND)

    html_element = page.getroottree().getroot()
    assert (html_element.get("lang"), html_element.get("dir")) == ("ar", "rtl")
    (logo,) = page.cssselect("a.brand img.logo")
    assert (logo.get("src"), logo.get("width"), logo.get("alt")) == (
        "https://cdn.example/logo.png", "180", "Political IQ")
    assert "max-width:180px" in style_of(logo) and "width:100%" in style_of(logo)  # never wider than a phone
    assert "color:#0b5394" in style_of(page.cssselect("td.kicker")[0])
    assert "border-bottom:3pxsolid#0b5394" in style_of(page.cssselect("td.dateline")[0])
    assert "color:#5b2a86" in style_of(page.cssselect("h2.headline a")[0])
    assert "verdana" in style_of(page.cssselect("h2.headline")[0])
    assert "verdana" in style_of(page.cssselect("td.summary")[0])
    assert "Reader-funded since 1921." in page.cssselect("td.footer")[0].text_content()


def test_the_default_brand_is_the_house_look() -> None:
    page = page_of()

    assert page.getroottree().getroot().get("lang") == "en"
    assert page.cssselect("a.brand")[0].text_content() == "Political IQ" and not page.cssselect("img.logo")
    assert "georgia" in style_of(page.cssselect("h2.headline")[0])
    assert "arial" in style_of(page.cssselect("td.summary")[0])


def test_the_text_part_carries_the_footer_text() -> None:
    view = EditionView(id=7, subject="Morning", send_at=SEND_AT, stories=(story(),), brand=BRAND)
    _, text = render_edition(view).personalise(reader_values(READER))

    footer = text.split("\n-- \n", 1)[1]
    assert "Reader-funded since 1921." in footer


def test_reply_to_is_a_header_of_the_digest_in_both_builders() -> None:
    settings = get_settings()
    view = EditionView(id=7, subject="Morning", send_at=SEND_AT, stories=(story(),), brand=BRAND)
    shared = shared_headers(view, "Morning", settings)
    personal = Personal(to_name=None, to_address=READER.email, message_id="<m.1@example.org>", date=SEND_AT,
                        unsubscribe_url="https://x.example/u/t", unsubscribe_token="t", text="t", html="<p>h</p>")

    for raw in (build_message(shared, personal), build_message_stdlib(shared, personal)):
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert parsed["Reply-To"] == "desk@news.example.com"
        assert not parsed.defects
    plain = shared_headers(EditionView(id=7, subject="M", send_at=SEND_AT, stories=()), "M", settings)
    assert b"Reply-To" not in build_message(plain, personal)


def test_a_reply_to_with_a_line_break_cannot_become_a_header() -> None:
    with pytest.raises(ValueError, match="single line"):
        MessageHeaders(sender="a@b.example", subject="s", list_id="l <l.b.example>", feedback_id="f",
                       unsubscribe_mailto="u@b.example", reply_to="x@b.example\r\nBcc: all@b.example")


@pytest.mark.parametrize("kind", ["confirm", "welcome"])
def test_the_confirmation_and_welcome_take_the_brand(kind: str) -> None:
    context = {"reader": reader_values(READER), "confirm_url": "https://x.example/confirm/t", "confirm_days": 7,
               "topics": [], "next_edition": None, "sender_name": "Political IQ", "postal_address": "P",
               "site_url": "https://x.example", "archive_url": "https://x.example/archive", "brand": BRAND.style()}
    _, markup, text = render_template(kind, context)
    markup = inline_css(markup)  # as digest.delivery.notices sends it
    page = lxml.html.document_fromstring(markup)

    assert page.getroottree().getroot().get("dir") == "rtl"
    assert "#0b5394" in markup and page.cssselect("img.logo")
    assert "Reader-funded since 1921." in page.cssselect("td.footer")[0].text_content()
    if kind == "confirm":  # the button: a cell with the accent, Outlook's padding on it
        (cell,) = page.cssselect("td.button-cell")
        assert "background-color:#0b5394" in re.sub(r"\s", "", markup[markup.index('class="button-cell"'):][:400])
        assert cell.cssselect("a.button")
    else:  # the welcome's link in the brand's colour, not the browser's blue
        (link,) = page.cssselect("td.intro a")
        assert "color:#0b5394" in style_of(link)
