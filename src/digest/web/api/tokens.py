"""/api/v1/tokens: the caller's API tokens; create one (the secret shown once), revoke one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from digest import actions
from digest.store import ApiToken
from digest.web.api.models import PathId, TokenIn
from digest.web.deps import ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("")
def tokens(services: ServicesDep, user: ApiStaff) -> list[dict[str, Any]]:
    with services.factory() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
        return [{"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
                 "revoked": t.revoked_at is not None} for t in rows]


@router.post("", status_code=201)
def new_token(services: ServicesDep, user: ApiStaff, body: TokenIn) -> dict[str, Any]:
    return actions.tokens.create_token(services.deps(), actor(user, "api"), body.name)


@router.delete("/{token_id}")
def revoke(services: ServicesDep, user: ApiStaff, token_id: PathId) -> dict[str, bool]:
    return {"revoked": actions.tokens.revoke_token(services.deps(), actor(user, "api"), token_id)}
