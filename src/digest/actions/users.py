"""Actions on staff accounts: add one (from the command line; there is no sign-up page)."""

from __future__ import annotations

from digest.actions.base import Actor, Deps, audited
from digest.staff import create_user


def add_user(deps: Deps, actor: Actor, email: str, role: str, password: str) -> tuple[str, str]:
    """An editor, ops or admin account; returns (its address, its role)."""
    with audited(deps, actor, "user.add") as (session, row):
        user = create_user(session, email, role, password)
        row.target = f"user:{user.id}"
        row.update(role=user.role.value)
        return user.email, user.role.value
