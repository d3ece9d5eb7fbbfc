"""A newsletter's brand: logo, colours, font, footer, reply-to and language, checked in one
pure place and turned into what the email templates use.

Contrast is WCAG 2's relative-luminance ratio. A colour is refused when it reads at less
than 4.5:1 against the background it sits on: the accent is the kicker's text and the
button's background (white text on it) on the white page; the link colour is the
headlines' and the footer's links on the same white. Dark mode (Apple Mail, iOS, Outlook
for Mac honour `prefers-color-scheme`) gets each colour lightened just enough to read on
the dark page (the accent at 4.5:1, the headline links at 7:1, as clear as the text), so an
editor picks one accent and both schemes pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

from digest.errors import Unprocessable
from digest.mail.addresses import InvalidAddress, normalise_address

MIN_CONTRAST_RATIO = 4.5  # WCAG 2 AA for body text
HEADLINE_DARK_RATIO = 7.0  # WCAG 2 AAA: the dark-mode headlines (links) stand out as text does
LIGHT_BACKGROUND = "#ffffff"  # the message's page (templates/email/_base: .container)
DARK_BACKGROUND = "#1f1f1f"  # the same page in dark mode
LOGO_WIDTH_MIN_PX, LOGO_WIDTH_MAX_PX = 16, 536  # 536: the content column (600 less 2 × 32)
LOGO_WIDTH_DEFAULT_PX = 200
URL_MAX_CHARS = 2048
FOOTER_TEXT_MAX_CHARS = 500

# Email-safe stacks by name: each starts with a font that Windows, macOS, iOS and Android
# all carry (or a system alias), so Outlook's Word engine never falls back to Times.
FONTS: dict[str, str] = {
    "georgia": "Georgia, 'Times New Roman', Times, serif",
    "times": "'Times New Roman', Times, Georgia, serif",
    "arial": "Arial, Helvetica, sans-serif",
    "helvetica": "'Helvetica Neue', Helvetica, Arial, sans-serif",
    "verdana": "Verdana, Geneva, Tahoma, sans-serif",
    "tahoma": "Tahoma, Verdana, Segoe, sans-serif",
    "trebuchet": "'Trebuchet MS', 'Lucida Grande', Tahoma, sans-serif",
    "system": "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
}
DEFAULT_FONT = "georgia"  # the masthead, headlines and the editor's note
DEFAULT_BODY_FONT = "arial"  # the rest, unless the brand names one font for everything

# Primary language subtags written right to left.
RTL_LANGUAGES = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ps", "sd", "ug", "ur", "yi"})
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
BRAND_FIELDS = ("logo_url", "logo_width", "accent_color", "link_color", "font", "footer_text", "reply_to",
                "language")


class BrandError(Unprocessable):
    """A brand value refused; `fields` maps each bad one (JSON names) to why."""

    default_code = "invalid_brand"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = dict(fields)


# ------------------------------------------------------------------ colour


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    r, g, b = hex_to_rgb(colour)
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2: (L1 + 0.05) / (L2 + 0.05), the lighter over the darker, 1 to 21."""
    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def lighten_to_pass(colour: str, background: str = DARK_BACKGROUND, ratio: float = MIN_CONTRAST_RATIO) -> str:
    """The colour mixed with white in steps of 5 % until it reads at `ratio` on `background`
    (a dark one): the same hue, as little lighter as needed."""
    r, g, b = hex_to_rgb(colour)
    for step in range(21):
        t = step / 20
        mixed = "#{:02x}{:02x}{:02x}".format(*(round(c + (255 - c) * t) for c in (r, g, b)))
        if contrast_ratio(mixed, background) >= ratio:
            return mixed
    return "#ffffff"


def darken_to_pass(colour: str, background: str, ratio: float = MIN_CONTRAST_RATIO) -> str:
    """The colour mixed with black in steps of 5 % until it reads at `ratio` on `background`
    (a light one)."""
    r, g, b = hex_to_rgb(colour)
    for step in range(21):
        t = 1 - step / 20
        mixed = "#{:02x}{:02x}{:02x}".format(*(round(c * t) for c in (r, g, b)))
        if contrast_ratio(mixed, background) >= ratio:
            return mixed
    return "#000000"


READER_PAGE_BACKGROUND = "#f2f2ef"  # templates/web/base.html: --bg, where links sit on the reader pages


def reader_page_accent(brand: Brand) -> str:
    """The accent for the newsletter's reader pages: links sit on their off-white page, a
    little darker than white, so the accent is darkened as far as that needs (if at all)."""
    return darken_to_pass(brand.accent_color or DEFAULT_ACCENT, READER_PAGE_BACKGROUND)


def _ratio_words(ratio: float) -> str:
    # Rounded down: 4.48 is "4.4:1", never a "4.5:1" that is refused.
    return f"{math.floor(ratio * 10) / 10:.1f}:1"


def _colour(field: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX_COLOUR.match(value.strip()):
        raise ValueError(f"{field} must be a colour like #a3241b")
    colour = value.strip().lower()
    if len(colour) == 4:
        colour = "#" + "".join(c * 2 for c in colour[1:])
    ratio = contrast_ratio(colour, LIGHT_BACKGROUND)
    if ratio < MIN_CONTRAST_RATIO:
        raise ValueError(f"{field} {colour} is {_ratio_words(ratio)} on {where}; "
                         f"needs {MIN_CONTRAST_RATIO:g}:1")
    return colour


# ------------------------------------------------------------------ the brand


@dataclass(frozen=True)
class Brand:
    """What a newsletter's messages and reader pages look like; every value checked (see
    `check_brand`). None: the default."""

    logo_url: str | None = None
    logo_width: int | None = None
    accent_color: str | None = None
    link_color: str | None = None
    font: str | None = None
    footer_text: str | None = None
    reply_to: str | None = None
    language: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BRAND_FIELDS}

    def style(self) -> BrandStyle:
        """The values the templates use, defaults filled in and dark-mode colours made."""
        accent = self.accent_color or DEFAULT_ACCENT
        link = self.link_color or DEFAULT_LINK
        language = self.language or "en"
        return BrandStyle(
            accent=accent, link=link, accent_dark=lighten_to_pass(accent),
            # Headlines are the links: as clear as the body text in the dark, not merely legible.
            link_dark=lighten_to_pass(link, ratio=HEADLINE_DARK_RATIO),
            # Markup: the stacks are this module's own constants, quotes and all, and
            # autoescaping would turn 'Times New Roman' into &#39;…&#39; in the CSS.
            font=Markup(FONTS[self.font or DEFAULT_FONT]), body_font=Markup(FONTS[self.font or DEFAULT_BODY_FONT]),
            logo_url=self.logo_url,
            logo_width=self.logo_width or LOGO_WIDTH_DEFAULT_PX, footer_text=self.footer_text or "",
            language=language, dir=text_direction(language))


DEFAULT_ACCENT = "#a3241b"
DEFAULT_LINK = "#1a1a1a"


@dataclass(frozen=True)
class BrandStyle:
    """A brand as the templates read it (`brand` in their context): rendered once an edition."""

    accent: str
    link: str
    accent_dark: str
    link_dark: str
    font: str  # the display font: masthead, headlines, the note
    body_font: str
    logo_url: str | None
    logo_width: int
    footer_text: str
    language: str
    dir: str
    page_dark: str = DARK_BACKGROUND


DEFAULT_BRAND = Brand()


def text_direction(language: str) -> str:
    return "rtl" if language.split("-", 1)[0].lower() in RTL_LANGUAGES else "ltr"


def _logo_url(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("logo_url must be an https:// address (mail clients block or warn about http images)")
    if len(text) > URL_MAX_CHARS or any(c.isspace() or ord(c) < 32 or c in "\"'<>\\" for c in text):
        raise ValueError(f"logo_url must be one address of at most {URL_MAX_CHARS} characters, no spaces or quotes")
    return text


def _logo_width(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not LOGO_WIDTH_MIN_PX <= value <= LOGO_WIDTH_MAX_PX:
        raise ValueError(f"logo_width must be a whole number of pixels from {LOGO_WIDTH_MIN_PX} to {LOGO_WIDTH_MAX_PX}")
    return value


def _font(value: Any) -> str | None:
    text = str(value).strip().lower() if value is not None else ""
    if not text:
        return None
    if text not in FONTS:
        raise ValueError(f"font must be one of {', '.join(FONTS)}")
    return text


def _footer(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise ValueError("footer_text must be plain text")
    if len(text) > FOOTER_TEXT_MAX_CHARS:
        raise ValueError(f"footer_text must be at most {FOOTER_TEXT_MAX_CHARS} characters")
    return " ".join(text.split()) or None


def _reply_to(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        return normalise_address(text)[0]
    except InvalidAddress:
        raise ValueError(f"reply_to {text[:80]!r} is not a valid email address") from None


def _language(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if len(text) > 35 or not _LANGUAGE.match(text):
        raise ValueError("language must be a language tag such as en, fr-CA or ar")
    primary, _, rest = text.partition("-")
    return primary.lower() + (f"-{rest}" if rest else "")


_CHECKS = {
    "logo_url": _logo_url,
    "logo_width": _logo_width,
    "accent_color": lambda v: _colour("accent_color", v, "white") if v not in (None, "") else None,
    "link_color": lambda v: _colour("link_color", v, "white") if v not in (None, "") else None,
    "font": _font,
    "footer_text": _footer,
    "reply_to": _reply_to,
    "language": _language,
}


def check_brand(changes: Mapping[str, Any], current: Brand = DEFAULT_BRAND) -> Brand:
    """`current` with `changes` applied (a field given as None or "" goes back to the
    default); BrandError naming every bad field at once."""
    unknown = sorted(set(changes) - set(BRAND_FIELDS))
    errors = {name: f"{name} is not a brand field (one of {', '.join(BRAND_FIELDS)})" for name in unknown}
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in unknown:
            continue
        try:
            values[name] = _CHECKS[name](value)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise BrandError(errors)
    return replace(current, **values)
