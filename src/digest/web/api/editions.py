"""/api/v1/editions: list, create, read, curate, preview, test and steer editions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from digest import actions
from digest.clicks import edition_stats, stats_csv
from digest.editions import (
    KEEP,
    EditionChanges,
    InvalidEdition,
    clip_warning,
    edition_view,
    explain_order,
    get_edition,
    parse_send_at,
    preview_edition,
)
from digest.errors import Invalid
from digest.mail import make_transport
from digest.observe import edition_audiences, edition_counts
from digest.store import Edition, EditionStatus, utcnow
from digest.web.api.models import (
    CurationIn,
    EditionIn,
    EditionPatch,
    OrderIn,
    OverrideIn,
    PathId,
    QueryText,
    TestSendIn,
)
from digest.web.deps import ApiEditor, ApiError, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/editions", tags=["editions"])
# The state actions scripts may ask for: all of digest.actions' but unschedule, which v1 of
# the API never offered (a script's draft stays a draft until it schedules it).
API_ACTIONS = tuple(name for name in actions.EDITION_ACTION_ROLES if name != "unschedule")


@router.get("")
def editions(services: ServicesDep, user: ApiStaff, status: EditionStatus | None = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    with services.factory() as session:
        query = select(Edition).order_by(Edition.send_at.desc(), Edition.id.desc()).limit(limit)
        if status:
            query = query.where(Edition.status == status)
        found = list(session.scalars(query))
        audiences = edition_audiences(session, found, utcnow())
        return [{**actions.edition_json(e), "audience": audiences[e.id]} for e in found]


@router.post("", status_code=201)
def add_edition(services: ServicesDep, user: ApiEditor, body: EditionIn) -> dict[str, Any]:
    return actions.editions.create_edition(
        services.deps(), actor(user, "api"), subject=body.subject, send_at=parse_send_at(body.at, body.tz, utcnow()),
        topics=",".join(body.topics) if body.topics else None, max_stories=body.max_stories,
        window_hours=body.window_hours, draft=body.draft, newsletter=body.newsletter_id,
        ab_subject=body.ab_subject, ab_share=body.ab_share, ab_wait=body.ab_wait)


@router.get("/{edition_id}")
def edition(services: ServicesDep, user: ApiStaff, edition_id: PathId) -> dict[str, Any]:
    with services.factory() as session:
        found = get_edition(session, edition_id)
        view = edition_view(session, found)
        counts = edition_counts(session, [edition_id])[0].as_dict()
        return {**actions.edition_json(found), "audience": counts["audience"], "counts": counts,
                "stories": [{"id": s.id, "title": s.title, "summary": s.summary, "url": s.url} for s in view.stories]}


@router.get("/{edition_id}/stats")
def stats(services: ServicesDep, user: ApiStaff, edition_id: PathId) -> dict[str, Any]:
    """Sent, clicks by people (machines apart), unique clicking copies, per story and subject."""
    with services.factory() as session:
        return edition_stats(session, edition_id).to_json()


@router.get("/{edition_id}/stats.csv")
def stats_as_csv(services: ServicesDep, user: ApiStaff, edition_id: PathId) -> Response:
    with services.factory() as session:
        body = stats_csv(edition_stats(session, edition_id))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="edition-{edition_id}-stats.csv"'})


@router.patch("/{edition_id}")
def patch_edition(services: ServicesDep, user: ApiEditor, edition_id: PathId, body: EditionPatch) -> dict[str, Any]:
    """`note` alone: the editor's note (as the note form). Anything else: the edition's
    subject, send time, limits and one-off newsletter, until it starts sending (409 after)."""
    given = body.model_fields_set
    if given <= {"note"}:
        return actions.editions.note(services.deps(), actor(user, "api"), edition_id, body.note)
    if "tz" in given and body.send_at is None:
        raise InvalidEdition("tz is the zone of send_at: give send_at with it", field="tz")
    changes = EditionChanges(
        subject=body.subject, max_stories=body.max_stories, window_hours=body.window_hours,
        send_at=parse_send_at(body.send_at, body.tz, utcnow()) if body.send_at is not None else None,
        newsletter=body.newsletter_id if "newsletter_id" in given else KEEP,
        note=body.note if "note" in given else KEEP,
        ab_subject=body.ab_subject if "ab_subject" in given else KEEP, ab_share=body.ab_share, ab_wait=body.ab_wait)
    return actions.editions.edit(services.deps(), actor(user, "api"), edition_id, changes).data["edition"]


@router.post("/{edition_id}/curation")
def curate(services: ServicesDep, user: ApiEditor, edition_id: PathId, body: CurationIn) -> dict[str, str]:
    if body.action not in ("pin", "exclude", "clear"):
        raise Invalid("action must be pin, exclude or clear")
    actions.editions.pick(services.deps(), actor(user, "api"), edition_id, body.story_id, body.action, body.position)
    return {"status": "ok"}


@router.post("/{edition_id}/override")
def override(services: ServicesDep, user: ApiEditor, edition_id: PathId, body: OverrideIn) -> dict[str, str]:
    actions.editions.rewrite(services.deps(), actor(user, "api"), edition_id, body.story_id,
                             headline=body.headline, summary=body.summary)
    return {"status": "ok"}


@router.put("/{edition_id}/order")
def order(services: ServicesDep, user: ApiEditor, edition_id: PathId, body: OrderIn) -> dict[str, str]:
    actions.editions.order(services.deps(), actor(user, "api"), edition_id, body.story_ids)
    return {"status": "ok"}


@router.get("/{edition_id}/preview")
def preview(services: ServicesDep, user: ApiStaff, edition_id: PathId,
            email: QueryText = None) -> dict[str, str | int | None]:
    """The copy a reader would get; `html_bytes` its HTML's size and `clip_warning` the
    editor page's warning past 90 KB (Gmail clips at 102 KB), null under; `order` why the
    stories not pinned come in their order when the newsletter orders by readers' clicks
    (null otherwise)."""
    with services.factory() as session:
        subject, body_html, body_text = preview_edition(session, edition_id, email)
        order = explain_order(session, get_edition(session, edition_id))
    return {"subject": subject, "html": body_html, "text": body_text,
            "html_bytes": len(body_html.encode("utf-8")), "clip_warning": clip_warning(body_html), "order": order}


@router.post("/{edition_id}/test")
def test_send(services: ServicesDep, user: ApiEditor, edition_id: PathId, body: TestSendIn) -> dict[str, str]:
    message_id = actions.editions.test_send(services.deps(), actor(user, "api"), edition_id, body.email,
                                            make_transport(services.settings), body.as_email)
    return {"status": "sent", "message_id": message_id}


@router.post("/{edition_id}/duplicate", status_code=201)
def duplicate(services: ServicesDep, user: ApiEditor, edition_id: PathId) -> dict[str, Any]:
    """A new draft copied from this edition; 409 when it reached anyone (send-missing then)."""
    return actions.editions.duplicate(services.deps(), actor(user, "api"), edition_id)


# Declared after /preview, /test and /duplicate so that those paths are not taken for actions.
@router.post("/{edition_id}/{action}")
def act(services: ServicesDep, user: ApiStaff, edition_id: PathId, action: str) -> dict[str, Any]:
    """schedule, cancel, pause, resume, retry-failed or send-missing."""
    if action not in API_ACTIONS:
        raise ApiError(404, f"unknown action {action!r}")
    roles = actions.EDITION_ACTION_ROLES[action]
    who = actor(user, "api")
    if not who.may(roles):
        raise ApiError(403, f"the {user.role.value} role cannot {action} editions")
    outcome = actions.editions.act(services.deps(), who, edition_id, action)
    with services.factory() as session:
        result: dict[str, Any] = {"changed": outcome.changed,
                                  "edition": actions.edition_json(session.get_one(Edition, edition_id))}
    if outcome.count is not None:
        result["count"] = outcome.count
    return result
