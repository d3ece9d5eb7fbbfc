"""The sign-up snippet a publisher pastes into its own pages (`digest embed`).

A plain form that posts to digest's /subscribe: it works with no script (the reader lands on
digest's "check your inbox" page, with a link back), the page's origin must be listed in
DIGEST_EMBED_ORIGINS, and it carries the honeypot field that robots fill and people never see.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from digest import readers
from digest.actions.base import Deps
from digest.editions import get_newsletter
from digest.errors import Conflict

HONEYPOT_FIELD = "website"  # the name web.embedding checks; a contract with pasted snippets


class ArchivedNewsletter(Conflict):
    """An archived newsletter is offered by no form."""


@cache
def _environment(templates_dir: Path) -> Environment:
    return Environment(loader=FileSystemLoader(str(templates_dir / "embed")),
                       autoescape=select_autoescape(default=True), keep_trailing_newline=True)


def _offered(deps: Deps, newsletter: str | None) -> dict[str, object] | None:
    if newsletter is None:
        return None
    with deps.factory() as session:
        found = get_newsletter(session, newsletter)
        if found.archived_at is not None:
            raise ArchivedNewsletter(f"newsletter {found.slug!r} is archived: no form offers it",
                                     code="newsletter_archived")
        return {"id": found.id, "name": found.name, "slug": found.slug}


def embed_snippet(deps: Deps, *, newsletter: str | None = None, topics: str | Iterable[str] | None = None,
                  script: bool = False, iframe: bool = False) -> str:
    """The HTML to paste: for one newsletter (`newsletter`, a slug; none: every newsletter a
    new reader gets) with a choice among `topics` (none: no choice, every topic); `script`:
    with digest's /embed.js, which submits in place (the form works without it); `iframe`:
    an <iframe> of digest's /embed/frame instead, for a site that allows no script and no
    form posting elsewhere (the frame is allowed on DIGEST_EMBED_ORIGINS only)."""
    settings = deps.settings
    chosen = readers.clean_topics(topics, settings.topic_list)
    offered = _offered(deps, newsletter)
    environment = _environment(Path(settings.templates_dir))
    if iframe:
        query = urlencode([*([("newsletter", str(offered["slug"]))] if offered else []),
                           *([("topics", ",".join(chosen))] if chosen else [])])
        return environment.get_template("iframe.html").render(
            src=f"{settings.base_url}/embed/frame" + (f"?{query}" if query else ""), newsletter=offered)
    return environment.get_template("snippet.html").render(
        action=f"{settings.base_url}/subscribe", newsletter=offered, topics=chosen,
        consent_text=readers.CONSENT_TEXT, honeypot=HONEYPOT_FIELD,
        script_url=f"{settings.base_url}/embed.js" if script else None)


def frame_form(deps: Deps, frame_token: str, *, newsletter: str | None = None,
               topics: str | Iterable[str] | None = None, frame_query: str = "") -> str:
    """The form inside digest's /embed/frame: the snippet's, posting to /subscribe on our own
    origin with `frame_token` (a signed stamp standing in for the CSRF cookie, which a
    browser does not send to a frame on another site's page)."""
    settings = deps.settings
    return _environment(Path(settings.templates_dir)).get_template("snippet.html").render(
        action="/subscribe", newsletter=_offered(deps, newsletter),
        topics=readers.clean_topics(topics, settings.topic_list), consent_text=readers.CONSENT_TEXT,
        honeypot=HONEYPOT_FIELD, script_url=None, frame_token=frame_token, frame_query=frame_query)
