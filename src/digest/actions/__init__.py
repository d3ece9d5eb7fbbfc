"""Actions: every change made on someone's behalf, one function each.

The editor and ops pages, the JSON API and the command line all call these, each with an
`Actor` (who, and through which entry point). An action makes the change, writes the
audit row in the same transaction and enqueues work only after it has committed, then
returns what it did; so the entry points cannot drift apart in what they change, what
they record or what they send.

    from digest import actions
    actions.editions.pause(deps, Actor(user, "ops"), edition_id)
"""

from digest.actions import ab_tests, audit_log, editions, embed, feeds, newsletters, readers, stories, tokens, users
from digest.actions.base import EDITION_ACTION_ROLES, ENTRY_POINTS, Actor, AuditRow, Deps, Outcome, audited
from digest.actions.shapes import (
    edition_json,
    feed_json,
    import_json,
    newsletter_json,
    reader_history_json,
    reader_json,
    story_json,
    subscriber_json,
    user_json,
)

__all__ = [
    "ab_tests", "EDITION_ACTION_ROLES", "ENTRY_POINTS", "Actor", "AuditRow", "Deps", "Outcome", "audit_log", "audited",
    "edition_json",
    "editions", "embed", "feed_json", "feeds", "import_json", "newsletter_json", "newsletters", "reader_history_json", "reader_json", "readers",
    "stories", "story_json", "subscriber_json", "tokens", "user_json", "users",
]
