"""Actions on API tokens: create one (its secret shown once) and revoke one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from digest.actions.base import Actor, Deps, audited
from digest.errors import NotFound
from digest.staff import create_api_token, revoke_api_token
from digest.store import User


def create_token(deps: Deps, actor: Actor, name: str, *, for_email: str | None = None) -> dict[str, Any]:
    """A token for the acting user (or, from the command line, for `for_email`); returns
    {id, name, token}: the secret, shown this once and stored only as a hash."""
    with audited(deps, actor, "token.create") as (session, row):
        if actor.user is not None:
            user = session.get_one(User, actor.user.id)
        else:
            user = session.scalar(select(User).where(User.email == (for_email or "").strip().lower()))
            if user is None:
                raise NotFound(f"no user {for_email}")
        token, raw = create_api_token(session, user, name)
        row.target = f"token:{token.id}"
        row.update(name=token.name)
        return {"id": token.id, "name": token.name, "token": raw}


def revoke_token(deps: Deps, actor: Actor, token_id: int) -> bool:
    """Owners revoke their own tokens; admins and the command line any. True if this call
    revoked it. A revoke that revoked nothing (unknown, not theirs, revoked already) writes
    no audit row: guessing at other people's token ids leaves no noise in the log."""
    with audited(deps, actor, "token.revoke", f"token:{token_id}") as (session, row):
        revoked = revoke_api_token(session, token_id, actor.user)
        row.write = revoked
    return revoked
