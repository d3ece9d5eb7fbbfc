"""The stories page: search and filter the library, feature and retract, ingest a feed by
URL, upload a file, add one story by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from digest import actions
from digest.errors import DigestError, http_status
from digest.infra import FetchError
from digest.store import Story, StoryStatus, utcnow
from digest.stories import ParseError, StoryFilter, parse_source, search_stories, story_from_fields
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.errors import EditorError
from digest.web.forms import read_upload, require_csrf
from digest.web.limits import STORY_UPLOAD_MAX_BYTES
from digest.web.pages.editor.common import editor_page, see_other

router = APIRouter(prefix="/editor")
STORIES_PAGE_SIZE = 50


def _day(raw: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise EditorError(400, "Bad date", f"{label} must be a date such as 2026-05-01.",
                          "/editor/stories") from None


def _stories_context(request: Request, filters: dict[str, str], page: int = 1) -> dict[str, Any]:
    settings = services_of(request).settings
    featured = {"": None, "yes": True, "no": False}.get(filters.get("featured", ""), None)
    if filters.get("featured", "") not in ("", "yes", "no"):
        raise EditorError(400, "Bad filter", "Featured must be yes, no or any.", "/editor/stories")
    start, end = _day(filters.get("published_from", ""), "From"), _day(filters.get("published_to", ""), "To")
    story_filter = StoryFilter(
        q=filters.get("q") or None, topic=filters.get("topic") or None, featured=featured,
        status=filters.get("status") or None,
        published_from=datetime.combine(start, time.min, UTC) if start else None,
        published_to=datetime.combine(end, time.max, UTC) if end else None,
        limit=STORIES_PAGE_SIZE, offset=(page - 1) * STORIES_PAGE_SIZE)
    with services_of(request).factory() as session:
        try:
            stories, total = search_stories(session, story_filter)
        except DigestError as exc:
            raise EditorError(400, "Bad filter", str(exc), "/editor/stories") from None
    shown = {k: v for k, v in filters.items() if v}
    here = "/editor/stories" + (f"?{urlencode({**shown, 'page': page})}" if shown or page > 1 else "")
    return {
        "stories": stories, "total": total, "page": page, "filters": filters, "topics": settings.topic_list,
        "back": here,
        "prev_url": f"/editor/stories?{urlencode({**shown, 'page': page - 1})}" if page > 1 else None,
        "next_url": (f"/editor/stories?{urlencode({**shown, 'page': page + 1})}"
                     if page * STORIES_PAGE_SIZE < total else None),
        "story_form": {"topics": []},
    }


@router.get("/stories")
def stories_page(request: Request, user: EditorUser, q: str = "", topic: str = "", featured: str = "",
                       status: str = "", published_from: str = "", published_to: str = "", page: int = 1,
                       done: str = "", added: int = 0, updated: int = 0, undo: int = 0) -> Response:
    filters = {"q": q.strip()[:200], "topic": topic, "featured": featured, "status": status,
               "published_from": published_from, "published_to": published_to}
    context = _stories_context(request, filters, max(1, page))
    if done == "ingested":
        # Numbers from our own redirect: nothing the URL says is echoed as text.
        context["notice"] = f"{added} stories added, {updated} updated."
    if done == "story-retracted" and undo:
        with services_of(request).factory() as session:  # the story by its id: no text from the URL
            story = session.get(Story, undo)
            if story is not None and story.status == StoryStatus.RETRACTED:
                context["undo"] = {"id": story.id, "title": story.title}
                context["notice"] = None  # the undo line says it, with its button
    return editor_page(request, "editor/stories.html", "stories", context, done=done)


@router.get("/stories/{story_id}/retract")
def retract_page(request: Request, user: EditorUser, story_id: int, back: str = "/editor/stories") -> Response:
    """Retracting takes a story out of every edition not yet sent: asked first, by name."""
    with services_of(request).factory() as session:
        story = session.get(Story, story_id)
        if story is None:
            raise EditorError(404, "No such story", f"There is no story {story_id}.", "/editor/stories")
        return editor_page(request, "editor/story_retract.html", "stories",
                           {"story": story, "back": _safe_back(back)})


def _safe_back(target: str) -> str:
    return target if target.startswith("/editor/stories") and "//" not in target else "/editor/stories"


@router.post("/stories/{story_id}/flags")
def update_story(request: Request, user: EditorUser, story_id: int, form: CheckedForm) -> Response:
    featured = {"1": True, "0": False}.get(form.get("featured"))
    status = form.get("status") or None
    if featured is None and status is None:
        raise EditorError(400, "Nothing to change", "Choose feature, unfeature, retract or restore.",
                          "/editor/stories")
    back = _safe_back(form.get("back"))
    if status == "retracted" and form.get("confirm") != "yes":  # one stray click never retracts
        return see_other(f"/editor/stories/{story_id}/retract?{urlencode({'back': back})}")
    try:
        actions.stories.flag(services_of(request).deps(), actor(user, "web"), story_id, featured=featured,
                             status=status)
    except DigestError as exc:
        raise EditorError(http_status(exc), "Cannot change the story", str(exc), "/editor/stories") from None
    done = f"done=story-retracted&undo={story_id}" if status == "retracted" else "done=story-updated"
    return see_other(back + ("&" if "?" in back else "?") + done)


def _feed_error(request: Request, url: str, message: str) -> Response:
    """The stories page again, the message at the address field it is about."""
    context = _stories_context(request, {})
    context.update(feed_url=url, feed_error=message)
    return editor_page(request, "editor/stories.html", "stories", context, 400)


def _stories_error(request: Request, message: str, **extra: Any) -> Response:
    context = _stories_context(request, {})
    context.update(extra)
    return editor_page(request, "editor/stories.html", "stories", {**context, "error": message}, 400)


@router.post("/stories/ingest")
def ingest_feed(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    url = form.get("url").strip()
    if not url.startswith(("http://", "https://")):
        return _feed_error(request, url, "The address must start with http:// or https://.")
    try:
        result = actions.stories.ingest(services_of(request).deps(), actor(user, "web"), url)
    except FetchError as exc:
        return _feed_error(request, url, str(exc))  # one line, never the remote's content
    except ParseError as exc:
        return _feed_error(request, url, f"Could not read that page or feed: {exc}")
    return see_other(f"/editor/stories?done=ingested&added={result.added}&updated={result.updated}")


async def _upload(request: Request) -> bytes:
    """The uploaded file's bytes, the form around it checked for CSRF (reading is async)."""
    form, data, _ = await read_upload(request, STORY_UPLOAD_MAX_BYTES, "file")
    require_csrf(request, form, services_of(request).settings.secret_key)
    return data


@router.post("/stories/upload")
def upload_stories(request: Request, user: EditorUser, data: Annotated[bytes, Depends(_upload)]) -> Response:
    try:
        stories = parse_source(data, origin="upload")
    except ParseError as exc:
        return _stories_error(request, f"Could not read that file: {exc}")
    result = actions.stories.upload(services_of(request).deps(), actor(user, "web"), stories)
    return see_other(f"/editor/stories?done=ingested&added={result.added}&updated={result.updated}")


@router.post("/stories/add")
def add_story(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    services = services_of(request)
    topics = form.get_all("topics")
    entered = {"url": form.get("url"), "title": form.get("title"), "summary": form.get("summary"),
               "published_at": form.get("published_at"), "image_url": form.get("image_url"),
               "topics": topics}
    item: dict[str, Any] = {"url": entered["url"], "title": entered["title"], "summary": entered["summary"],
                            "topics": [t for t in topics if t in services.settings.topic_list],
                            "published_at": entered["published_at"] or utcnow().isoformat(),
                            "image_url": entered["image_url"].strip() or None}
    try:
        # The same checks as an uploaded file's stories and the API's: one function.
        story = story_from_fields(item)
    except ParseError as exc:
        return _stories_error(request, str(exc), story_form=entered)
    actions.stories.add_story(services.deps(), actor(user, "web"), story)
    return see_other(f"/editor/stories?{urlencode({'q': story.url, 'done': 'story-added'})}")
