"""The audit log: who did what, when, through which entry point. Written by digest.actions,
once per action, in the action's own transaction: a change and its record commit together."""

from __future__ import annotations

from sqlalchemy.orm import Session

from digest.store import AuditEntry, User

AUDIT_TARGET_MAX_CHARS = 120  # the column; a longer target (a story's URL) is kept whole in detail


def audit(session: Session, user: User | None, action: str, target: str,
          detail: dict[str, object] | None = None, *, via: str | None = None, actor: str | None = None) -> None:
    """One row: `user` (None: `actor`, else "system") did `action` to `target` through `via`."""
    if len(target) > AUDIT_TARGET_MAX_CHARS:
        detail = {**(detail or {}), "target": target}
        target = target[: AUDIT_TARGET_MAX_CHARS - 1] + "…"
    session.add(AuditEntry(user_id=user.id if user else None, actor=user.email if user else actor or "system",
                           via=via, action=action, target=target, detail=detail))
