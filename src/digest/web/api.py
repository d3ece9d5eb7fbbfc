"""The JSON API under /api/v1: what editors do in the browser, for scripts. Bearer tokens
(`digest users token`, or POST /api/v1/tokens); OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import DataError

from digest import curation, lifecycle, staff
from digest.content import edition_view
from digest.editions import EditionError, create_edition, edition_counts, parse_send_at, preview_edition
from digest.errors import DigestError, NotFound
from digest.mail import SendError, make_transport
from digest.newsletters import NewsletterError, create_newsletter, list_newsletters
from digest.readers import InvalidReader
from digest.schedules import ScheduleError
from digest.shapes import edition_json, newsletter_json, story_json
from digest.store import ApiToken, Edition, EditionStatus, Role, Story, User, utcnow
from digest.stories import ParseError, StoryFilter, ingest_source, search_stories, set_story_flags, upsert_stories
from digest.stories.parse import StoryIn, parse_datetime
from digest.web.app import Services
from digest.web.auth import ApiError, api_user

Editor = Annotated[User, Depends(api_user(Role.EDITOR))]
Staff = Annotated[User, Depends(api_user(Role.EDITOR, Role.OPS))]

# Input the database cannot take is refused here (422), not at the INSERT (a 503): no NUL
# (PostgreSQL cannot store it; and pydantic will not match a pattern against a string
# holding a lone surrogate, which no driver can encode), no id or count past its column.
NO_NUL = r"^[^\x00]*$"
ID_MAX = 2**63 - 1  # BIGINT ids (SQLite INTEGER)
INT_MAX = 2**31 - 1  # INTEGER columns
Text = Annotated[str, Field(pattern=NO_NUL)]

# Text that fits the VARCHAR(n) column keeping it: longer is a 422 naming the field.
Text64 = Annotated[str, Field(pattern=NO_NUL, max_length=64)]
Text100 = Annotated[str, Field(pattern=NO_NUL, max_length=100)]
Text120 = Annotated[str, Field(pattern=NO_NUL, max_length=120)]
Text200 = Annotated[str, Field(pattern=NO_NUL, max_length=200)]
Text300 = Annotated[str, Field(pattern=NO_NUL, max_length=300)]
Text320 = Annotated[str, Field(pattern=NO_NUL, max_length=320)]
Text500 = Annotated[str, Field(pattern=NO_NUL, max_length=500)]
Text2048 = Annotated[str, Field(pattern=NO_NUL, max_length=2048)]
Id = Annotated[int, Field(le=ID_MAX)]
PathId = Annotated[int, Path(le=ID_MAX)]
QueryText = Annotated[str | None, Query(pattern=NO_NUL)]


class StoryIn_(BaseModel):
    url: Text2048
    title: Text500
    summary: Text = ""
    body: Text = ""
    published_at: Text64 | None = None
    topics: list[Text64] = []
    image_url: Text2048 | None = None
    author: Text200 | None = None
    featured: bool = False


class StoryPatch(BaseModel):
    featured: bool | None = None
    pinned: bool | None = None
    status: Text | None = None


class IngestRequest(BaseModel):
    url: str = Field(description="http(s) URL of an RSS/Atom feed, a JSON list or an article", pattern=NO_NUL)


class NewsletterIn(BaseModel):
    slug: Text64
    name: Text120
    cron: Text100
    timezone: Text64 = "UTC"
    topics: list[Text64] | None = None
    max_stories: int = 5
    min_stories: int = 1
    subject_template: Text300 = "{{ newsletter }}: {{ date }}"
    sender_name: Text120 | None = None


class EditionIn(BaseModel):
    subject: Text300
    at: str | None = Field(None, description="ISO 8601; naive times are read in `tz`; default now",
                           pattern=NO_NUL, max_length=64)
    tz: Text64 | None = None
    topics: list[Text64] | None = None
    max_stories: int = 5
    window_hours: int = 48
    draft: bool = True


class EditionPatch(BaseModel):
    note: Text | None = None


class CurationIn(BaseModel):
    story_id: Id
    action: str = Field(description="pin, exclude or clear", pattern=NO_NUL)
    position: int | None = Field(None, le=INT_MAX)


class OverrideIn(BaseModel):
    story_id: Id
    headline: Text500 | None = None
    summary: Text | None = None


class OrderIn(BaseModel):
    story_ids: list[Id]


class TestSendIn(BaseModel):
    email: Text320


class TokenIn(BaseModel):
    name: Text100 = "api"


def create_api(services: Services) -> FastAPI:
    api = FastAPI(title="digest API", version="1", docs_url="/docs", redoc_url=None,
                  openapi_url="/openapi.json")
    api.state.services = services
    settings = services.settings

    @api.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    domain_errors = (curation.CurationError, lifecycle.LifecycleError, EditionError, NewsletterError,
                     ScheduleError, ParseError, InvalidReader, staff.AccountError, DigestError)

    for error in domain_errors:
        @api.exception_handler(error)
        async def domain_error(request: Request, exc: Exception) -> Response:
            status = 404 if isinstance(exc, NotFound) or str(exc).startswith("no ") else 400
            return JSONResponse({"error": str(exc)}, status_code=status)

    @api.exception_handler(DataError)
    async def does_not_fit(request: Request, exc: DataError) -> Response:
        # The net for a column length or range the request models missed: the client's fault.
        return JSONResponse({"error": f"a value does not fit: {str(exc.orig).split(chr(10))[0][:200]}"},
                            status_code=422)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "temporarily unavailable; nothing was changed"}, status_code=503)

    # ---------------------------------------------------------------- stories

    @api.get("/stories")
    def stories(user: Staff, q: QueryText = None, topic: QueryText = None, featured: bool | None = None,
                status: QueryText = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        with services.factory() as session:
            rows, total = search_stories(session, StoryFilter(
                q=q, topic=topic, featured=featured, status=status, limit=limit, offset=offset))
            return {"total": total, "stories": [story_json(s) for s in rows]}

    @api.post("/stories", status_code=201)
    def add_story(user: Editor, body: StoryIn_) -> dict[str, Any]:
        incoming = StoryIn(url=body.url, title=" ".join(body.title.split()), summary=body.summary,
                           body=body.body, published_at=parse_datetime(body.published_at) if body.published_at
                           else utcnow(), topics=body.topics, image_url=body.image_url,
                           author=body.author, featured=body.featured)
        if not incoming.title or not incoming.url.startswith(("http://", "https://")):
            raise curation.CurationError("a story needs a title and an http(s) url")
        with services.factory.begin() as session:
            result = upsert_stories(session, [incoming])
            story_id = session.scalar(select(Story.id).where(Story.url == incoming.url))
            staff.audit(session, user, "story.add", incoming.url)
        return {"added": result.added, "updated": result.updated, "id": story_id}

    @api.post("/stories/ingest")
    def ingest(user: Editor, body: IngestRequest) -> dict[str, Any]:
        if not body.url.startswith(("http://", "https://")):
            raise curation.CurationError("url must be http(s)")
        with services.factory.begin() as session:
            result = ingest_source(session, body.url)
            staff.audit(session, user, "stories.ingest", body.url, {"added": result.added})
        return {"added": result.added, "updated": result.updated}

    @api.patch("/stories/{story_id}")
    def patch_story(user: Editor, story_id: PathId, body: StoryPatch) -> dict[str, Any]:
        with services.factory.begin() as session:
            story = set_story_flags(session, story_id, featured=body.featured, pinned=body.pinned,
                                             status=body.status)
            staff.audit(session, user, "story.update", f"story:{story_id}", body.model_dump(exclude_none=True))
            return story_json(story)

    # ---------------------------------------------------------------- newsletters

    @api.get("/newsletters")
    def newsletters(user: Staff) -> list[dict[str, Any]]:
        with services.factory() as session:
            return [newsletter_json(n) for n in list_newsletters(session)]

    @api.post("/newsletters", status_code=201)
    def add_newsletter(user: Editor, body: NewsletterIn) -> dict[str, Any]:
        with services.factory.begin() as session:
            newsletter = create_newsletter(
                session, slug=body.slug, name=body.name, cron=body.cron, timezone=body.timezone,
                topics=body.topics, allowed_topics=settings.topic_list, max_stories=body.max_stories,
                min_stories=body.min_stories, subject_template=body.subject_template,
                sender_name=body.sender_name)
            staff.audit(session, user, "newsletter.add", f"newsletter:{newsletter.id}")
            return newsletter_json(newsletter)

    # ---------------------------------------------------------------- editions

    @api.get("/editions")
    def editions(user: Staff, status: EditionStatus | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
                 ) -> list[dict[str, Any]]:
        with services.factory() as session:
            query = select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc()).limit(limit)
            if status:
                query = query.where(Edition.status == status)
            return [edition_json(e) for e in session.scalars(query)]

    @api.post("/editions", status_code=201)
    def add_edition(user: Editor, body: EditionIn) -> dict[str, Any]:
        with services.factory.begin() as session:
            edition = create_edition(
                session, subject=body.subject, send_at=parse_send_at(body.at, body.tz, utcnow()),
                topics=",".join(body.topics) if body.topics else None, allowed_topics=settings.topic_list,
                max_stories=body.max_stories, window_hours=body.window_hours, draft=body.draft)
            staff.audit(session, user, "edition.add", f"edition:{edition.id}")
            return edition_json(edition)

    @api.get("/editions/{edition_id}")
    def edition(user: Staff, edition_id: PathId) -> dict[str, Any]:
        with services.factory() as session:
            found = session.get(Edition, edition_id)
            if found is None:
                raise EditionError(f"no edition with id {edition_id}")
            view = edition_view(session, found)
            counts = edition_counts(session, [edition_id])[0].as_dict()
            return {**edition_json(found), "counts": counts,
                    "stories": [{"id": s.id, "title": s.title, "summary": s.summary, "url": s.url}
                                for s in view.stories]}

    @api.patch("/editions/{edition_id}")
    def patch_edition(user: Editor, edition_id: PathId, body: EditionPatch) -> dict[str, Any]:
        with services.factory.begin() as session:
            curation.set_note(session, edition_id, body.note)
            staff.audit(session, user, "edition.note", f"edition:{edition_id}")
            return edition_json(session.get_one(Edition, edition_id))

    @api.post("/editions/{edition_id}/curation")
    def curate(user: Editor, edition_id: PathId, body: CurationIn) -> dict[str, str]:
        with services.factory.begin() as session:
            curation.curate(session, edition_id, body.story_id, body.action, body.position)
            staff.audit(session, user, f"edition.{body.action}", f"edition:{edition_id}",
                           {"story_id": body.story_id})
        return {"status": "ok"}

    @api.post("/editions/{edition_id}/override")
    def override(user: Editor, edition_id: PathId, body: OverrideIn) -> dict[str, str]:
        with services.factory.begin() as session:
            curation.override(session, edition_id, body.story_id, headline=body.headline, summary=body.summary)
            staff.audit(session, user, "edition.override", f"edition:{edition_id}", {"story_id": body.story_id})
        return {"status": "ok"}

    @api.put("/editions/{edition_id}/order")
    def order(user: Editor, edition_id: PathId, body: OrderIn) -> dict[str, str]:
        with services.factory.begin() as session:
            curation.reorder(session, edition_id, body.story_ids)
            staff.audit(session, user, "edition.reorder", f"edition:{edition_id}", {"story_ids": body.story_ids})
        return {"status": "ok"}

    @api.get("/editions/{edition_id}/preview")
    def preview(user: Staff, edition_id: PathId, email: QueryText = None) -> dict[str, str]:
        with services.factory() as session:
            subject, body_html, body_text = preview_edition(session, edition_id, email)
        return {"subject": subject, "html": body_html, "text": body_text}

    @api.post("/editions/{edition_id}/test")
    def test_send(user: Editor, edition_id: PathId, body: TestSendIn) -> dict[str, str]:
        transport = make_transport(settings)
        with services.factory.begin() as session:
            try:
                message_id = curation.send_test(session, edition_id, body.email, transport, settings)
            except SendError as exc:
                raise ApiError(502, f"the SMTP server did not take the test: {exc}") from None
            staff.audit(session, user, "edition.test", f"edition:{edition_id}", {"to": body.email})
        return {"status": "sent", "message_id": message_id}

    # Declared after /preview and /test so that those paths are not taken for actions.
    @api.post("/editions/{edition_id}/{action}")
    def act(user: Staff, edition_id: PathId, action: str) -> dict[str, Any]:
        if action not in lifecycle.TARGET or action == "unschedule":
            raise ApiError(404, f"unknown action {action!r}")
        if action in ("schedule",) and user.role == Role.OPS:
            raise ApiError(403, "the ops role cannot schedule editions")
        if action == "resume":
            from digest.tasks import enqueue_batch

            changed = lifecycle.resume_and_enqueue(services.factory, edition_id, settings.batch_size,
                                                   enqueue_batch, reason=f"resumed by {user.email}")
            with services.factory.begin() as session:
                staff.audit(session, user, "edition.resume", f"edition:{edition_id}", {"changed": changed})
        else:
            with services.factory.begin() as session:
                reason = f"{action} by {user.email}" if action in ("pause", "cancel") else None
                changed = lifecycle.transition(session, edition_id, action, reason=reason)
                staff.audit(session, user, f"edition.{action}", f"edition:{edition_id}", {"changed": changed})
        with services.factory() as session:
            return {"changed": changed, "edition": edition_json(session.get_one(Edition, edition_id))}

    # ---------------------------------------------------------------- tokens

    @api.get("/tokens")
    def tokens(user: Staff) -> list[dict[str, Any]]:
        with services.factory() as session:
            rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
            return [{"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
                     "revoked": t.revoked_at is not None} for t in rows]

    @api.post("/tokens", status_code=201)
    def new_token(user: Staff, body: TokenIn) -> dict[str, Any]:
        with services.factory.begin() as session:
            row, raw = staff.create_api_token(session, session.get_one(User, user.id), body.name)
            staff.audit(session, user, "token.create", f"token:{row.id}")
            return {"id": row.id, "name": row.name, "token": raw}

    @api.delete("/tokens/{token_id}")
    def revoke(user: Staff, token_id: PathId) -> dict[str, bool]:
        with services.factory.begin() as session:
            revoked = staff.revoke_api_token(session, token_id, user)
            staff.audit(session, user, "token.revoke", f"token:{token_id}", {"revoked": revoked})
        return {"revoked": revoked}

    return api

