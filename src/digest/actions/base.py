"""What every action needs: who acts (and through which entry point), the world it acts on
(sessions, settings, the queue), and what it hands back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.delivery import Enqueue
from digest.staff import EDITOR_ROLES, OPS_ROLES, audit
from digest.store import Role, User

ENTRY_POINTS = ("web", "api", "ops", "cli")


@dataclass(frozen=True)
class Actor:
    """Who asks for an action: a staff member, or the command line (trusted like a shell on
    the server: no user row). `via` is the entry point, kept in the audit row."""

    user: User | None
    via: str

    @classmethod
    def command_line(cls) -> Actor:
        return cls(None, "cli")

    @property
    def name(self) -> str:
        return self.user.email if self.user is not None else "the command line"

    @property
    def audit_name(self) -> str:
        return self.user.email if self.user is not None else self.via

    def may(self, roles: tuple[Role, ...]) -> bool:
        return self.user is None or self.user.role == Role.ADMIN or self.user.role in roles


@dataclass(frozen=True)
class Deps:
    """The world an action changes: database sessions, settings, and the queue (a Celery
    task's delay in production, a list's append in tests), called only after commit:
    `enqueue_batch` for a range of deliveries, `enqueue_notice` for one notice (a
    confirmation), `release_now` to have due editions released at once rather than at
    beat's next tick (it must not raise: beat releases them anyway). All are required: an
    action must never drop a send silently."""

    factory: sessionmaker[Session]
    settings: Settings
    enqueue_batch: Enqueue
    enqueue_notice: Callable[[int], None]
    release_now: Callable[[], None]


@dataclass(frozen=True)
class Outcome:
    """What an action did: whether it changed anything (False: it was already so, pressing
    twice does nothing more), how many rows it set going, and any data it made."""

    changed: bool
    count: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditRow:
    """The audit row an action writes: its target and detail, filled in as it learns them."""

    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    write: bool = True  # an action that turned out to touch nothing of anyone's may skip it

    def update(self, **fields: Any) -> None:
        self.detail.update(fields)


@contextmanager
def audited(deps: Deps, actor: Actor, action: str, target: str = "") -> Iterator[tuple[Session, AuditRow]]:
    """A transaction whose audit row is written with it: the change and its record commit
    together or not at all."""
    row = AuditRow(target)
    with deps.factory.begin() as session:
        yield session, row
        if row.write:
            audit(session, actor.user, action, row.target, row.detail or None, via=actor.via,
                  actor=actor.audit_name)


def staff_channel(actor: Actor) -> str:
    """The consent ledger's channel for a change staff made to a reader: `admin` from the
    pages and the API, `cli` from the command line."""
    return "cli" if actor.via == "cli" else "admin"


# Which roles may ask for what (admins and the command line may do everything).
EDITION_ACTION_ROLES: dict[str, tuple[Role, ...]] = {
    "schedule": EDITOR_ROLES, "unschedule": EDITOR_ROLES, "cancel": EDITOR_ROLES + OPS_ROLES,
    "pause": EDITOR_ROLES + OPS_ROLES, "resume": EDITOR_ROLES + OPS_ROLES,
    "retry-failed": OPS_ROLES, "send-missing": OPS_ROLES,
}

AfterCommit = Callable[[], None]
