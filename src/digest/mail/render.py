"""Rendering: edition content in, a subject and two personalisable bodies out.

premailer costs ~11 ms a message, so an edition is rendered and inlined ONCE with
placeholders where the per-reader parts go, then split into segments. Each reader's copy
is a join of those segments with their own values (~µs). The placeholders carry a random
nonce per render, so no story text can forge one, and every value that reaches the HTML
is escaped on the way in.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import premailer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2 import TemplateError as JinjaTemplateError

from digest.config import get_settings
from digest.mail.brand import DEFAULT_BRAND, Brand
from digest.mail.links import MASTHEAD_STORY, click_key, click_prefix, history_key, new_click_nonce, open_prefix, reader_part
from digest.mail.message import EncodedBody
from digest.mail.templates import EMAIL_PARTS, EMAIL_TEMPLATES, check_templates, template_error

# The parts of a message that differ per reader; everything else is shared. `click_nonce`
# ends every click link (digest.mail.links): one per delivered copy, never stored;
# `click_reader` follows it, empty unless the reader's clicks are remembered (opt-in).
READER_FIELDS = ("greeting", "email", "unsubscribe_url", "preferences_url", "click_nonce", "click_reader")
STORY_IMAGE_MAX_PX = 536  # the content column: 600 less 32 px each side


@dataclass(frozen=True)
class StoryView:
    title: str
    url: str
    summary: str
    published_at: datetime
    image_url: str | None = None
    author: str | None = None
    topics: tuple[str, ...] = ()
    id: int = 0
    image_width: int | None = None  # as its source gave it; None: not known
    image_height: int | None = None

    @property
    def image_size(self) -> tuple[int, int | None]:
        """(width, height) of the <img>: at most the column's width, the height scaled with
        it when both are known (so the layout does not shift as images load), else None:
        a guessed height would squash the picture."""
        width = self.image_width if self.image_width and self.image_width > 0 else None
        shown = min(width or STORY_IMAGE_MAX_PX, STORY_IMAGE_MAX_PX)
        if width is None or not self.image_height or self.image_height <= 0:
            return shown, None
        return shown, max(1, round(self.image_height * shown / width))


@dataclass(frozen=True)
class EditionView:
    id: int
    subject: str
    send_at: datetime
    stories: tuple[StoryView, ...]
    preheader: str = ""
    note: str | None = None  # the editor's note, shown above the stories
    newsletter: str | None = None
    newsletter_slug: str | None = None
    sender_name: str | None = None  # the newsletter's own From name, if it has one
    brand: Brand = DEFAULT_BRAND  # its newsletter's, rendered into the edition once
    open_pixel: bool = False  # its newsletter counts opens with a 1x1 image (off by default)


@dataclass(frozen=True)
class Reader:
    email: str
    name: str | None
    token: str
    # Set only for a reader who consented to a click history in a newsletter that offers
    # one: their links then name them (digest.mail.links.reader_part).
    history_id: int | None = None


class Segments:
    """A body split at its placeholders: literal, field, literal, field, …, literal."""

    __slots__ = ("literals", "fields")

    def __init__(self, rendered: str, placeholders: Mapping[str, str]) -> None:
        """`placeholders` maps each field to the token standing for it in `rendered`."""
        by_token = {token: field for field, token in placeholders.items()}
        splitter = re.compile("(" + "|".join(map(re.escape, by_token)) + ")")
        pieces = splitter.split(rendered)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.fields: tuple[str, ...] = tuple(by_token[token] for token in pieces[1::2])

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            out.append(values[field])
            out.append(literal)
        return "".join(out)


@dataclass(frozen=True)
class RenderedEdition:
    subject: str
    html: Segments
    text: Segments

    def personalise(self, reader_values: Mapping[str, str]) -> tuple[str, str]:
        """(html, text) for one reader. Values are raw; HTML escaping happens here."""
        escaped = {key: html.escape(value, quote=True) for key, value in reader_values.items()}
        return self.html.fill(escaped), self.text.fill(reader_values)

    @cached_property
    def _encoded(self) -> tuple[EncodedBody, EncodedBody]:
        return (EncodedBody(self.text.literals, self.text.fields),
                EncodedBody(self.html.literals, self.html.fields))

    def encoded_parts(self, reader_values: Mapping[str, str]) -> tuple[bytes, bytes]:
        """(text, html) for one reader as quoted-printable bytes, the fixed parts encoded
        once per edition (see mailer.message.EncodedBody)."""
        text_body, html_body = self._encoded
        escaped = {key: html.escape(value, quote=True) for key, value in reader_values.items()}
        return text_body.encode(reader_values), html_body.encode(escaped)


@cache
def _environments(templates_dir: Path) -> tuple[Environment, Environment]:
    loader = FileSystemLoader(str(templates_dir / "email"))
    html_env = Environment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    text_env = Environment(
        loader=loader,
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for env in (html_env, text_env):
        env.filters["longdate"] = lambda d: f"{d:%A} {d.day} {d:%B %Y}"
        env.filters["shortdate"] = lambda d: f"{d.day} {d:%b %Y}"
    return html_env, text_env


def render_template(name: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, html, text) of templates/email/<name>/ with the given context; a missing
    or broken file is a TemplateError naming it."""
    templates_dir = get_settings().templates_dir
    html_env, text_env = _environments(templates_dir)
    if "brand" not in context:
        context = {**context, "brand": DEFAULT_BRAND.style()}
    try:
        subject = " ".join(text_env.get_template(f"{name}/subject.txt").render(context).split())
        body_html = html_env.get_template(f"{name}/body.html").render(context)
        body_text = text_env.get_template(f"{name}/body.txt").render(context)
    except JinjaTemplateError as exc:
        raise template_error(exc, templates_dir / "email") from None
    return subject, body_html, body_text


def check_email_templates(templates_dir: Path) -> None:
    """Every email template there compiles and none the mail code renders is missing."""
    required = tuple(f"{name}/{part}" for name in EMAIL_TEMPLATES for part in EMAIL_PARTS)
    check_templates(_environments(templates_dir)[0], templates_dir / "email", required)


def inline_css(markup: str) -> str:
    """premailer: styles onto elements, @media rules kept in a <style> block for phones."""
    return premailer.transform(
        markup,
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,
        strip_important=False,
        keep_style_tags=False,
        # `img { height: auto }` would become height="auto", which Outlook and Apple Mail
        # mis-size, and a fluid image's `width: 100%` would replace the pixel width Outlook
        # needs: sizes in attributes come from the templates, the CSS stays CSS.
        disable_basic_attributes=["height", "width"],
    )


def render_edition(edition: EditionView, template: str = "digest", variant: int = 0) -> RenderedEdition:
    """The edition as sent: every story link and the masthead link go through the signed
    click redirect (digest.mail.links), the reader's nonce filled in per copy. The templates
    do not know: `story.url` and `site_url` simply hold the click links."""
    settings = get_settings()
    nonce = secrets.token_hex(6)
    placeholders = {field: f"DGST{nonce}{field.upper().replace('_', '')}X" for field in READER_FIELDS}
    key = click_key(settings.secret_key)

    def click(story_id: int) -> str:
        return (click_prefix(settings.base_url, key, edition.id, story_id, variant) + placeholders["click_nonce"]
                + placeholders["click_reader"])

    context = {
        "edition": edition,
        "stories": tuple(replace(story, url=click(story.id)) for story in edition.stories),
        "reader": placeholders,
        "sender_name": edition.sender_name or settings.sender_name,
        "postal_address": settings.postal_address,
        "site_url": click(MASTHEAD_STORY),
        "archive_url": f"{settings.base_url}/archive",
        "edition_url": f"{settings.base_url}/archive/{edition.id}",  # "view in browser"
        "brand": edition.brand.style(),
        # The copy's nonce and nothing of the reader: opens are counted, never attributed.
        "open_pixel_url": (open_prefix(settings.base_url, key, edition.id, variant) + placeholders["click_nonce"]
                           if edition.open_pixel else None),
    }
    subject, body_html, body_text = render_template(template, context)
    return RenderedEdition(
        subject=subject,
        html=Segments(inline_css(body_html), placeholders),
        text=Segments(body_text, placeholders),
    )


def reader_values(reader: Reader, click_nonce: str | None = None) -> dict[str, str]:
    """The per-reader values of one copy; `click_nonce` a fresh one unless given (previews
    and test copies pass digest.mail.links.TEST_NONCE, whose clicks are never counted)."""
    settings = get_settings()
    base = settings.base_url
    name = " ".join((reader.name or "").split())
    nonce = click_nonce or new_click_nonce()
    return {
        "greeting": f"Hi {name}," if name else "Hello,",
        "email": reader.email,
        "unsubscribe_url": f"{base}/unsubscribe/{reader.token}",
        "preferences_url": f"{base}/preferences/{reader.token}",
        "click_nonce": nonce,
        "click_reader": reader_part(_history_key(settings.secret_key), nonce, reader.history_id)
        if reader.history_id else "",
    }


@cache
def _history_key(secret_key: str) -> bytes:
    return history_key(secret_key)
