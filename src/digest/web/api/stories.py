"""/api/v1/stories: search, add one, ingest a feed or article by URL, set the flags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from digest import actions
from digest.errors import Invalid
from digest.store import utcnow
from digest.stories import StoryFilter, search_stories, story_from_fields
from digest.web.api.models import IngestRequest, PathId, QueryText, StoryIn_, StoryPatch
from digest.web.deps import ApiEditor, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/stories", tags=["stories"])


@router.get("")
def stories(services: ServicesDep, user: ApiStaff, q: QueryText = None, topic: QueryText = None,
            featured: bool | None = None, status: QueryText = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0
            ) -> dict[str, Any]:
    with services.factory() as session:
        rows, total = search_stories(session, StoryFilter(
            q=q, topic=topic, featured=featured, status=status, limit=limit, offset=offset))
        return {"total": total, "stories": [actions.story_json(s) for s in rows]}


@router.post("", status_code=201)
def add_story(services: ServicesDep, user: ApiEditor, body: StoryIn_) -> dict[str, Any]:
    # The checks every story from outside gets (a feed's JSON items, the editor's form).
    incoming = story_from_fields({**body.model_dump(), "published_at": body.published_at or utcnow().isoformat()})
    result, story_id = actions.stories.add_story(services.deps(), actor(user, "api"), incoming)
    return {"added": result.added, "updated": result.updated, "id": story_id}


@router.post("/ingest")
def ingest(services: ServicesDep, user: ApiEditor, body: IngestRequest) -> dict[str, Any]:
    if not body.url.startswith(("http://", "https://")):
        raise Invalid("url must be http(s)")
    result = actions.stories.ingest(services.deps(), actor(user, "api"), body.url)
    return {"added": result.added, "updated": result.updated}


@router.patch("/{story_id}")
def patch_story(services: ServicesDep, user: ApiEditor, story_id: PathId, body: StoryPatch) -> dict[str, Any]:
    return actions.stories.flag(services.deps(), actor(user, "api"), story_id, featured=body.featured,
                                pinned=body.pinned, status=body.status)
