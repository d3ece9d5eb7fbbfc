"""API tokens: create one (its secret shown on that response only) and revoke one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from digest import actions
from digest.store import ApiToken, User
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.pages.editor.common import editor_page, see_other

router = APIRouter(prefix="/editor")


def _tokens_page(request: Request, user: User, new_token: dict[str, str] | None = None,
                 done: str = "", status: int = 200) -> Response:
    with services_of(request).factory() as session:
        tokens = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                      .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))
    return editor_page(request, "editor/tokens.html", "tokens", {"tokens": tokens, "new_token": new_token},
                       status, done=done)


@router.get("/tokens")
def tokens_page(request: Request, user: EditorUser, done: str = "") -> Response:
    return _tokens_page(request, user, done=done)


@router.post("/tokens")
def create_token(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    token = actions.tokens.create_token(services_of(request).deps(), actor(user, "web"), form.get("name"))
    # Shown on this response only (no redirect): the secret is never stored or shown again.
    return _tokens_page(request, user, {"name": token["name"], "secret": token["token"]})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, user: EditorUser, token_id: int, form: CheckedForm) -> Response:
    revoked = actions.tokens.revoke_token(services_of(request).deps(), actor(user, "web"), token_id)
    return see_other(f"/editor/tokens?done={'token-revoked' if revoked else 'token-unknown'}")
