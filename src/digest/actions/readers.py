"""Actions staff take on readers: add one, import many. (Readers' own actions, such as
signing up or leaving, are digest.readers' and carry their consent records instead.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from digest.actions.base import Actor, Deps, audited
from digest.actions.shapes import subscriber_json
from digest.readers import ImportReport, add_subscriber, import_csv


def add_reader(deps: Deps, actor: Actor, email: str, *, name: str | None = None,
               topics: str | Iterable[str] | None = None, confirmed: bool = False) -> dict[str, Any]:
    """One reader (pending unless `confirmed`: consent gathered elsewhere); returns its JSON."""
    with audited(deps, actor, "reader.add") as (session, row):
        subscriber = add_subscriber(session, email, name=name, topics=topics, confirmed=confirmed,
                                    allowed_topics=deps.settings.topic_list, consent_source=actor.via)
        row.target = f"reader:{subscriber.id}"
        row.update(confirmed=confirmed)
        return subscriber_json(subscriber)


def import_readers(deps: Deps, actor: Actor, text: str, *, confirmed: bool = False,
                   progress: Callable[[int], None] | None = None) -> ImportReport:
    """A CSV of email,name,topics: valid rows imported, bad ones reported by line."""
    with audited(deps, actor, "readers.import", "csv") as (session, row):
        report = import_csv(session, text, allowed_topics=deps.settings.topic_list, confirmed=confirmed,
                            progress=progress)
        row.update(imported=report.imported, duplicates=report.duplicates, suppressed=report.suppressed,
                   rejected=len(report.errors) - report.suppressed)
    return report
