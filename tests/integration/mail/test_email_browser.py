"""Every kind of message in Chromium, as mail clients draw it: the digest with and without
images (and in a brand with a logo, right to left), the confirmation and the welcome, at
600 and 375 px, light and dark (prefers-color-scheme emulated, as Apple Mail follows it)
and with every <style> block removed (the Gmail app with other accounts, Outlook for
Windows). Nothing may be wider than the window, and every text must read at 4.5:1 on what
it sits on. Screenshots in test-artifacts/email/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from digest.mail import check_brand, inline_css, reader_values, render_edition, render_template
from digest.mail.render import EditionView, Reader, StoryView
from tests.support.browser import launch_chromium, local_context
from tests.support.caches import clear_caches
from tests.support.processes import REPO

pytestmark = pytest.mark.integration
SHOTS = REPO / "test-artifacts" / "email"
WIDTHS = (600, 375)
SEND_AT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
READER = Reader(email="olena.kovalenko@example.org", name="Olena Kovalenko", token="t" * 43)
BRAND = check_brand({"logo_url": "https://cdn.news.example.com/logo.png", "logo_width": 480,
                     "accent_color": "#0b5394", "link_color": "#5b2a86", "font": "system",
                     "footer_text": "Political IQ is reader-funded: thank you.", "language": "ar"})
LONG_WORD = "Antidisestablishmentarianism-and-its-unhyphenated-follow-ups"

# Each element that draws text of its own: its colour against the first opaque background
# behind it (the element's, else an ancestor's; the page's white if none).
_CONTRASTS = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => [r, g, b].map(lin)
      .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.display === 'none' || el.closest('.preheader')) continue;
    out.push({text: el.textContent.trim().slice(0, 40), tag: el.tagName,
              ratio: ratio(rgb(style.color).slice(0, 3), behind(el))});
  }
  return out;
}"""


@pytest.fixture(autouse=True)
def defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """digest's defaults, whatever DIGEST_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    clear_caches()
    yield
    clear_caches()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    yield from local_context(browser)  # outside images are a placeholder PNG, nothing leaves


def stories(images: bool) -> tuple[StoryView, ...]:
    picture = {"image_url": "https://cdn.news.example.com/a.jpg", "image_width": 1200, "image_height": 675}
    return (
        StoryView(title="Council Approves Transit Overhaul After a Long Night of Debate",
                  url="https://news.example.com/transit", summary="Two rapid lines and fewer loops. " * 4,
                  published_at=SEND_AT, author="Dana Whit", topics=("politics",), **(picture if images else {})),
        StoryView(title=f"A headline with a very long word: {LONG_WORD}", url="https://news.example.com/long",
                  summary="Stocks rose.", published_at=SEND_AT, topics=("markets",),
                  **({"image_url": "https://cdn.news.example.com/b.jpg", "image_width": 300} if images else {})),
        StoryView(title="Markets Rally", url="https://news.example.com/markets", summary="", published_at=SEND_AT),
    )


def digest_html(images: bool, branded: bool = False) -> str:
    view = EditionView(id=7, subject="Your morning briefing", send_at=SEND_AT, stories=stories(images),
                       note="A word from the editor before today's stories.", newsletter="Morning",
                       **({"brand": BRAND} if branded else {}))
    return render_edition(view).personalise(reader_values(READER))[0]


def notice_html(kind: str) -> str:
    context = {"reader": reader_values(READER), "confirm_url": "https://digest.example.com/confirm/abc",
               "confirm_days": 7, "topics": ["politics", "world"], "next_edition": "Wednesday 2 December at 07:00 UTC",
               "sender_name": "Political IQ", "postal_address": "Political IQ, 1 Example Plaza, Springfield",
               "site_url": "https://news.example.com", "archive_url": "https://digest.example.com/archive"}
    return inline_css(render_template(kind, context)[1])  # as digest.delivery.notices sends it


MESSAGES = {
    "digest-images": lambda: digest_html(images=True),
    "digest-no-images": lambda: digest_html(images=False),
    "digest-brand-logo-rtl": lambda: digest_html(images=True, branded=True),
    "confirm": lambda: notice_html("confirm"),
    "welcome": lambda: notice_html("welcome"),
}


def without_styles(markup: str) -> str:
    return re.sub(r"<style\b.*?</style>", "", markup, flags=re.DOTALL | re.IGNORECASE)


def check(page: Page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= client, f"{name}: {scroll} px wide in a {client} px window"
        low = [t for t in page.evaluate(_CONTRASTS) if t["ratio"] < 4.5]
        assert low == [], f"{name} at {width} px: text under 4.5:1: {low[:5]}"


@pytest.mark.parametrize("kind", list(MESSAGES))
@pytest.mark.parametrize("scheme", ["light", "dark", "no-style"])
def test_each_message_fits_the_window_and_reads_at_4_5_to_1(context: BrowserContext, kind: str, scheme: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    markup = MESSAGES[kind]()
    page = context.new_page()
    page.emulate_media(color_scheme="dark" if scheme == "dark" else "light")
    page.set_content(without_styles(markup) if scheme == "no-style" else markup, wait_until="load")

    check(page, f"{kind}-{scheme}")
    if scheme == "dark":  # the dark rules did apply: the page is dark, not the light one
        background = page.evaluate("getComputedStyle(document.querySelector('table.container')).backgroundColor")
        assert background == "rgb(31, 31, 31)", background
    if scheme == "no-style":
        assert "<style" not in page.content()


def test_without_styles_the_brand_is_still_inline(context: BrowserContext) -> None:
    page = context.new_page()
    page.set_content(without_styles(MESSAGES["digest-brand-logo-rtl"]()), wait_until="load")
    page.set_viewport_size({"width": 375, "height": 900})

    assert page.evaluate("document.documentElement.dir") == "rtl"
    logo = page.locator("img.logo")
    assert logo.evaluate("e => e.getBoundingClientRect().width") <= 375 - 2 * 32  # 480 px logo, phone-sized
    kicker = page.locator("td.kicker").first.evaluate("e => getComputedStyle(e).color")
    assert kicker == "rgb(11, 83, 148)"  # #0b5394
