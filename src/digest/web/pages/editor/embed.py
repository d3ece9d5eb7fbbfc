"""The sign-up box for the publisher's pages: the snippet `digest embed` prints, for each
newsletter, with the topics to offer and the in-place script as choices, shown as it will
look (an inert preview) and ready to copy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from digest import actions
from digest.errors import DigestError
from digest.editions import list_newsletters
from digest.web.deps import EditorUser, services_of
from digest.web.pages.editor.common import editor_page

router = APIRouter(prefix="/editor")
VARIANTS = {
    "form": "A plain form: after sending, the reader sees digest's “check your inbox” page, with a link back",
    "script": "The form sent in place by digest's small script (/embed.js): the reader stays on the article",
    "iframe": "A frame holding digest's own form, for a site that allows no script and no form posting elsewhere",
}


@router.get("/embed")
def embed_page(request: Request, user: EditorUser, newsletter: str = "",
               topics: Annotated[list[str] | None, Query()] = None, variant: str = "form") -> Response:
    """GET only: choosing changes nothing stored, so the choices are a plain form whose
    answer is this page again, with the snippet and its preview for those choices."""
    services = services_of(request)
    settings = services.settings
    with services.factory() as session:
        newsletters = [n for n in list_newsletters(session) if n.archived_at is None]
    chosen = [t for t in (topics or []) if t in settings.topic_list]
    slug = newsletter if any(n.slug == newsletter for n in newsletters) else ""
    error = None
    try:
        snippet = actions.embed.embed_snippet(services.deps(), newsletter=slug or None, topics=chosen,
                                              script=variant == "script", iframe=variant == "iframe")
        # The iframe variant's snippet is only a frame pointing at our own /embed/frame, which
        # this page may not frame: the preview shows the form that frame holds instead.
        preview = (actions.embed.frame_form(services.deps(), "preview", newsletter=slug or None, topics=chosen)
                   if variant == "iframe" else snippet)
    except DigestError as exc:  # e.g. a newsletter archived between the list and the snippet
        snippet, preview, error = "", "", str(exc)
    origins = list(settings.embed_origin_list)
    return editor_page(request, "editor/embed.html", "embed", {
        "newsletters": newsletters, "newsletter": slug, "topics": settings.topic_list, "chosen": chosen,
        "variant": variant if variant in VARIANTS else "form", "variants": VARIANTS, "snippet": snippet,
        "preview": preview, "origins": origins, "error": error,
        "base_url": settings.base_url})
