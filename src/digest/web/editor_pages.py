"""Editor pages under /editor: the dashboard, stories, newsletters and API tokens, and
the helpers every editor page shares (editions and their curation: editor_editions).

Plain server-rendered forms: every change is one POST, checked for CSRF, done through the
same service calls the JSON API makes (curation, lifecycle, editions, newsletters, stories)
and written to the audit log, then redirected (303) back to the page it came from. Bad
input comes back as the page with the message and a 4xx status; a frozen edition is a
409, never a 500.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from digest import staff
from digest.editions import edition_counts
from digest.errors import DigestError, http_status
from digest.newsletters import NewsletterError, create_newsletter, list_newsletters
from digest.schedules import ScheduleError, occurrences
from digest.store import ApiToken, Edition, EditionStatus, Role, Story, User, utcnow
from digest.stories import ParseError, StoryFilter, ingest_source, search_stories, set_story_flags, upsert_stories
from digest.stories.ingest import parse_source
from digest.stories.parse import parse_json
from digest.web.app import Services
from digest.web.auth import page_user, staff_page
from digest.web.forms import BadRequest, Form, read_form, read_upload, require_csrf

router = APIRouter(prefix="/editor")
Editor = Annotated[User, Depends(page_user(Role.EDITOR))]

UPLOAD_MAX_BYTES = 2 * 1024 * 1024
STORIES_PAGE_SIZE = 50
UPCOMING_EDITIONS_SHOWN = 20
RECENT_EDITIONS_SHOWN = 10
NEXT_OCCURRENCE_LOOKAHEAD_DAYS = 400
UPCOMING = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.SENDING, EditionStatus.PAUSED)
FINISHED = (EditionStatus.SENT, EditionStatus.CANCELLED, EditionStatus.SKIPPED)
ZONES = sorted(available_timezones())

# What a redirect's ?done= says on the page it lands on; fixed text, never echoed input.
NOTICES = {
    "story-updated": "Story updated.",
    "story-added": "Story saved.",
    "newsletter-added": "Newsletter created. Its editions appear here as their dates come near.",
    "edition-added": "Draft edition created. Curate it below, then schedule it.",
    "pinned": "Story pinned to this edition.",
    "pinned-hidden": "Story pinned, but it does not show: the edition is full of pins, the story was in an "
                     "earlier edition, or it is published after the send time.",
    "excluded": "Story left out of this edition.",
    "cleared": "Story restored to the automatic choice.",
    "unpinned": "Story unpinned.",
    "moved": "Order saved.",
    "override": "Headline and summary saved for this edition.",
    "note": "Editor's note saved.",
    "test-sent": "Test sent.",
    "schedule": "Edition scheduled: it goes out at its send time.",
    "unschedule": "Edition back to draft: it will not go out until scheduled again.",
    "cancel": "Edition cancelled.",
    "unchanged": "Nothing to change: it was already so.",
    "token-revoked": "Token revoked.",
    "token-unknown": "That token was already revoked.",
}


class EditorError(BadRequest):
    """A failed editor action, shown on an editor page with a way back."""

    def __init__(self, status: int, title: str, message: str, back: str = "/editor") -> None:
        super().__init__(status, title, message)
        self.back = back


def install(app: FastAPI) -> None:
    @app.exception_handler(EditorError)
    async def editor_error(request: Request, exc: EditorError) -> Response:
        return staff_page(request, "editor/error.html",
                          {"title": exc.title, "message": exc.message, "back": exc.back}, exc.status)

    from digest.web.editor_editions import (
        router as editions_router,  # it imports this module
    )

    app.state.templates.env.filters["when"] = when
    app.include_router(router)
    app.include_router(editions_router)


def when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local:%Z}"


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def checked_form(request: Request) -> Form:
    services = services_of(request)
    form = await read_form(request, services.settings.max_form_bytes)
    require_csrf(request, form, services.settings.secret_key)
    return form


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def editor_page(request: Request, name: str, active: str, context: dict[str, Any], status: int = 200,
          done: str | None = None) -> Response:
    return staff_page(request, name, {"active": active, "notice": NOTICES.get(done or ""), "error": None,
                                      **context}, status)


def int_field(form: Form, name: str, default: int, label: str) -> int:
    raw = form.get(name).strip()
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 6:
        raise ValueError(f"{label} must be a whole number")
    return int(raw)


# ------------------------------------------------------------------ dashboard


@router.get("")
async def dashboard(request: Request, user: Editor, done: str = "") -> Response:
    now = utcnow()
    with services_of(request).factory() as session:
        upcoming = list(session.scalars(select(Edition).where(Edition.status.in_(UPCOMING))
                                        .order_by(Edition.send_at, Edition.id).limit(UPCOMING_EDITIONS_SHOWN)))
        recent = list(session.scalars(select(Edition).where(Edition.status.in_(FINISHED))
                                      .order_by(Edition.send_at.desc(), Edition.id.desc())
                                      .limit(RECENT_EDITIONS_SHOWN)))
        counts = {c.id: c for c in edition_counts(session, [e.id for e in upcoming + recent])}
        newsletters = []
        for newsletter in list_newsletters(session):
            next_edition = session.scalar(
                select(Edition).where(Edition.newsletter_id == newsletter.id,
                                      Edition.status.in_((EditionStatus.DRAFT, EditionStatus.SCHEDULED)))
                .order_by(Edition.send_at).limit(1))
            next_time = next_edition.send_at if next_edition else _next_occurrence(newsletter.cron,
                                                                                   newsletter.timezone, now)
            newsletters.append({"row": newsletter, "next_edition": next_edition, "next_time": next_time})
    return editor_page(request, "editor/dashboard.html", "dashboard", {
        "newsletters": newsletters, "upcoming": upcoming, "recent": recent, "counts": counts}, done=done)


def _next_occurrence(cron: str, zone: str, now: datetime) -> datetime | None:
    try:
        found = occurrences(cron, zone, now, now + timedelta(days=NEXT_OCCURRENCE_LOOKAHEAD_DAYS), limit=1)
    except ScheduleError:
        return None
    return found[0] if found else None


# ------------------------------------------------------------------ stories


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
async def stories_page(request: Request, user: Editor, q: str = "", topic: str = "", featured: str = "",
                       status: str = "", published_from: str = "", published_to: str = "", page: int = 1,
                       done: str = "", added: int = 0, updated: int = 0) -> Response:
    filters = {"q": q.strip()[:200], "topic": topic, "featured": featured, "status": status,
               "published_from": published_from, "published_to": published_to}
    context = _stories_context(request, filters, max(1, page))
    if done == "ingested":
        # Numbers from our own redirect: nothing the URL says is echoed as text.
        context["notice"] = f"{added} stories added, {updated} updated."
    return editor_page(request, "editor/stories.html", "stories", context, done=done)


def _safe_back(target: str) -> str:
    return target if target.startswith("/editor/stories") and "//" not in target else "/editor/stories"


@router.post("/stories/{story_id}/flags")
async def update_story(request: Request, user: Editor, story_id: int) -> Response:
    form = await checked_form(request)
    featured = {"1": True, "0": False}.get(form.get("featured"))
    status = form.get("status") or None
    if featured is None and status is None:
        raise EditorError(400, "Nothing to change", "Choose feature, unfeature, retract or restore.",
                          "/editor/stories")
    with services_of(request).factory.begin() as session:
        try:
            set_story_flags(session, story_id, featured=featured, status=status)
        except DigestError as exc:
            raise EditorError(http_status(exc), "Cannot change the story", str(exc),
                              "/editor/stories") from None
        staff.audit(session, user, "story.update", f"story:{story_id}",
                       {k: v for k, v in {"featured": featured, "status": status}.items() if v is not None})
    back = _safe_back(form.get("back"))
    return see_other(back + ("&" if "?" in back else "?") + "done=story-updated")


def _stories_error(request: Request, message: str, **extra: Any) -> Response:
    context = _stories_context(request, {})
    context.update(extra)
    return editor_page(request, "editor/stories.html", "stories", {**context, "error": message}, 400)


@router.post("/stories/ingest")
async def ingest_feed(request: Request, user: Editor) -> Response:
    form = await checked_form(request)
    url = form.get("url").strip()
    if not url.startswith(("http://", "https://")):
        return _stories_error(request, "The feed address must start with http:// or https://.", feed_url=url)

    def work() -> tuple[int, int]:
        with services_of(request).factory.begin() as session:
            result = ingest_source(session, url)
            staff.audit(session, user, "stories.ingest", url[:200],
                           {"added": result.added, "updated": result.updated})
        return result.added, result.updated

    try:
        added, updated = await run_in_threadpool(work)  # a slow feed must not hold the event loop
    except ParseError as exc:
        return _stories_error(request, f"Could not read that feed: {exc}", feed_url=url)
    return see_other(f"/editor/stories?done=ingested&added={added}&updated={updated}")


@router.post("/stories/upload")
async def upload_stories(request: Request, user: Editor) -> Response:
    services = services_of(request)
    form, data = await read_upload(request, UPLOAD_MAX_BYTES, "file")
    require_csrf(request, form, services.settings.secret_key)
    try:
        stories = parse_source(data, origin="upload")
    except ParseError as exc:
        return _stories_error(request, f"Could not read that file: {exc}")
    with services.factory.begin() as session:
        result = upsert_stories(session, stories)
        staff.audit(session, user, "stories.upload", f"{len(stories)} stories",
                       {"added": result.added, "updated": result.updated})
    return see_other(f"/editor/stories?done=ingested&added={result.added}&updated={result.updated}")


@router.post("/stories/add")
async def add_story(request: Request, user: Editor) -> Response:
    services = services_of(request)
    form = await checked_form(request)
    topics = form.get_all("topics")
    entered = {"url": form.get("url"), "title": form.get("title"), "summary": form.get("summary"),
               "published_at": form.get("published_at"), "image_url": form.get("image_url"),
               "topics": topics}
    item: dict[str, Any] = {"url": entered["url"], "title": entered["title"], "summary": entered["summary"],
                            "topics": [t for t in topics if t in services.settings.topic_list],
                            "published_at": entered["published_at"] or utcnow().isoformat(),
                            "image_url": entered["image_url"].strip() or None}
    try:
        # The same checks as an uploaded file's stories: http(s) URLs, a one-line title, a date.
        [story] = parse_json(json.dumps([item]).encode())
    except ParseError as exc:
        return _stories_error(request, str(exc).removeprefix("item 1: "), story_form=entered)
    with services.factory.begin() as session:
        upsert_stories(session, [story])
        story_id = session.scalar(select(Story.id).where(Story.url == story.url))
        staff.audit(session, user, "story.add", story.url[:200], {"id": story_id})
    return see_other(f"/editor/stories?{urlencode({'q': story.url, 'done': 'story-added'})}")


# ------------------------------------------------------------------ newsletters


def editor_form_page(request: Request, name: str, active: str, values: dict[str, Any], error: str | None,
                     status: int) -> Response:
    """A create form (newsletter, edition) with what was entered, the error if any, and the
    topics and time zones to choose from."""
    return editor_page(request, name, active, {
        "values": values, "topics": services_of(request).settings.topic_list, "zones": ZONES,
        "error": error}, status)


def _newsletter_page(request: Request, values: dict[str, Any], error: str | None = None,
                     status: int = 200) -> Response:
    return editor_form_page(request, "editor/newsletter_new.html", "newsletter", values, error, status)


@router.get("/newsletters/new")
async def new_newsletter(request: Request, user: Editor) -> Response:
    return _newsletter_page(request, {
        "slug": "", "name": "", "sender_name": "", "cron": "0 7 * * *", "timezone": "UTC", "topics": [],
        "max_stories": 5, "min_stories": 1, "subject_template": "{{ newsletter }}: {{ date }}"})


@router.post("/newsletters/new")
async def add_newsletter(request: Request, user: Editor) -> Response:
    services = services_of(request)
    form = await checked_form(request)
    values = {name: form.get(name) for name in ("slug", "name", "sender_name", "cron", "timezone",
                                                 "max_stories", "min_stories", "subject_template")}
    values["topics"] = form.get_all("topics")
    try:
        with services.factory.begin() as session:
            newsletter = create_newsletter(
                session, slug=values["slug"].strip(), name=values["name"], cron=values["cron"],
                timezone=values["timezone"].strip(), topics=values["topics"] or None,
                allowed_topics=services.settings.topic_list,
                max_stories=int_field(form, "max_stories", 5, "Max stories"),
                min_stories=int_field(form, "min_stories", 1, "Min stories"),
                subject_template=values["subject_template"], sender_name=values["sender_name"] or None)
            staff.audit(session, user, "newsletter.add", f"newsletter:{newsletter.id}", {"slug": newsletter.slug})
    except (NewsletterError, ValueError) as exc:
        return _newsletter_page(request, values, str(exc), 400)
    return see_other("/editor?done=newsletter-added")


# ------------------------------------------------------------------ API tokens


def _tokens_page(request: Request, user: User, new_token: dict[str, str] | None = None,
                 done: str = "", status: int = 200) -> Response:
    with services_of(request).factory() as session:
        tokens = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                      .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))
    return editor_page(request, "editor/tokens.html", "tokens", {"tokens": tokens, "new_token": new_token}, status,
                 done=done)


@router.get("/tokens")
async def tokens_page(request: Request, user: Editor, done: str = "") -> Response:
    return _tokens_page(request, user, done=done)


@router.post("/tokens")
async def create_token(request: Request, user: Editor) -> Response:
    form = await checked_form(request)
    with services_of(request).factory.begin() as session:
        row, raw = staff.create_api_token(session, session.get_one(User, user.id), form.get("name"))
        staff.audit(session, user, "token.create", f"token:{row.id}", {"name": row.name})
        new_token = {"name": row.name, "secret": raw}
    # Shown on this response only (no redirect): the secret is never stored or shown again.
    return _tokens_page(request, user, new_token)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, user: Editor, token_id: int) -> Response:
    await checked_form(request)
    with services_of(request).factory.begin() as session:
        revoked = staff.revoke_api_token(session, token_id, user)
        if revoked:
            staff.audit(session, user, "token.revoke", f"token:{token_id}")
    return see_other(f"/editor/tokens?done={'token-revoked' if revoked else 'token-unknown'}")
