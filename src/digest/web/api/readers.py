"""/api/v1/readers: search the list, read one reader's history, unsubscribe a reader on
their behalf, import a CSV. Reads take any staff token; changes an editor's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from digest import actions, readers
from digest.web.api.models import ID_MAX, ImportIn, PathId, QueryText
from digest.web.deps import ApiEditor, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/readers", tags=["readers"])


@router.get("")
def search(services: ServicesDep, user: ApiStaff, q: QueryText = None, status: QueryText = None,
           newsletter_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None, topic: QueryText = None,
           limit: Annotated[int, Query(ge=1, le=readers.READERS_PAGE_MAX)] = 50,
           offset: Annotated[int, Query(ge=0, le=ID_MAX)] = 0) -> dict[str, Any]:
    """Readers whose address or name holds `q`, with the status, newsletter and topic given;
    newest first; `total` counts every match."""
    with services.factory() as session:
        rows, total = readers.search_readers(session, readers.ReaderFilter(
            q=q, status=status, newsletter_id=newsletter_id, topic=topic, limit=limit, offset=offset))
        newsletters = readers.newsletters_of(session, [s.id for s in rows])
        return {"total": total, "readers": [actions.reader_json(s, newsletters[s.id]) for s in rows]}


@router.get("/{reader_id}")
def reader(services: ServicesDep, user: ApiStaff, reader_id: PathId) -> dict[str, Any]:
    """The reader with every delivery, consent event, notice, bounce and complaint."""
    with services.factory() as session:
        return actions.reader_history_json(readers.reader_history(session, reader_id))


@router.post("/{reader_id}/unsubscribe")
def unsubscribe(services: ServicesDep, user: ApiEditor, reader_id: PathId) -> dict[str, Any]:
    """The reader leaves at once (consent channel `admin`); answers the reader, with
    `changed` false if they had already left."""
    outcome = actions.readers.unsubscribe_reader(services.deps(), actor(user, "api"), reader_id)
    return {**outcome.data, "changed": outcome.changed}


@router.post("/import")
def import_readers(services: ServicesDep, user: ApiEditor, body: ImportIn) -> dict[str, Any]:
    """A subscriber export (digest's CSV, or Mailchimp's, Substack's, Ghost's, listmonk's or
    beehiiv's: `from`, or told from the header) as the command line imports it: valid rows
    in with their statuses, the rest refused or left alone, by line."""
    report = actions.readers.import_readers(
        services.deps(), actor(user, "api"), body.csv, confirmed=body.confirmed, service=body.from_,
        status=body.status, file_name=body.file_name, send_confirmations=body.send_confirmations)
    return actions.import_json(report)
