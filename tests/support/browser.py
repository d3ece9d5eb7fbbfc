"""Playwright helpers for the browser tests: Debian's Chromium, a context that keeps every
request on this machine, screenshots with the accessibility basics, and the sign-in form."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    expect,
    sync_playwright,
)

from tests.support.processes import REPO
from tests.support.web import PASSWORD

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 375
VIEW_HEIGHT = 900

_UNLABELLED = """els => els.filter(e => {
    const named = (e.labels && [...e.labels].some(l => l.textContent.trim()))
        || (e.getAttribute('aria-label') || '').trim() || e.getAttribute('aria-labelledby');
    return !named;
}).map(e => e.outerHTML)"""

_TOO_WIDE = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 5).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A flat-colour PNG: stands in for the story images the sample feed points at."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


PLACEHOLDER_IMAGE = _png(160, 90, (190, 196, 204))


def launch_chromium() -> Iterator[Browser]:
    """The body of a module's `browser` fixture: Debian's Chromium, headless, closed afterwards."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def local_context(browser: Browser, *, base_url: str | None = None,
                  placeholder_images: bool = True, javascript: bool = True,
                  bypass_csp: bool = False) -> Iterator[BrowserContext]:
    """The body of a `context` fixture: a desktop-sized en-GB context from which nothing leaves
    the machine (outside images get PLACEHOLDER_IMAGE if `placeholder_images`, all else is refused);
    `javascript` False: a reader whose browser runs no script; `bypass_csp`: the tests may
    inject scripts of their own (axe-core, tests/support/axe.py)."""
    context = browser.new_context(viewport={"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT}, locale="en-GB",
                                  base_url=base_url, java_script_enabled=javascript, bypass_csp=bypass_csp)
    context.set_default_timeout(10_000)

    def outside(route: Route) -> None:
        if placeholder_images and route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/png", body=PLACEHOLDER_IMAGE)
        else:
            route.abort()

    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), outside)
    yield context
    context.close()


def check_and_shoot(page: Page, name: str, *, prefix: str | None, labels: bool = True,
                    one_h1: bool = True) -> None:
    """At desktop and phone width: a full-page screenshot to SCREENSHOTS/<prefix>-<name>-<width>.png
    (none if `prefix` is None), every input labelled (if `labels`), exactly one h1 (if `one_h1`),
    and nothing wider than the phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for width in (DESKTOP_WIDTH, PHONE_WIDTH):
            page.set_viewport_size({"width": width, "height": VIEW_HEIGHT})
            if prefix is not None:
                page.screenshot(path=str(SCREENSHOTS / f"{prefix}-{name}-{width}.png"), full_page=True)
            if labels:
                unlabelled = page.eval_on_selector_all("input:not([type=hidden]), select, textarea", _UNLABELLED)
                assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"
            if one_h1:
                assert page.locator("h1").count() == 1, f"{name}: not exactly one h1"
            if width == PHONE_WIDTH:
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_width <= PHONE_WIDTH, (f"{name}: {scroll_width} px wide on a {PHONE_WIDTH} px phone: "
                                                     f"{page.evaluate(_TOO_WIDE)}")
    finally:
        page.set_viewport_size({"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT})


def heading(page: Page, text: str) -> None:
    """The page's one h1 says `text` (waiting for it, as Playwright's expect does)."""
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def submit_sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill in and submit the /login form the page is showing."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
