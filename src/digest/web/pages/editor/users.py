"""Staff accounts, for admins: list them, add one (its one-time password shown once), change
a role, disable (after a confirmation) or enable, and issue a new one-time password (after a
confirmation; shown once). Every change is a digest.actions.users call; the rules (at least
one active admin, nobody changes their own account here) are digest.staff's, and a refusal
is the editor's 409 page with a way back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from digest import actions, staff
from digest.errors import Invalid, http_status
from digest.store import Role
from digest.web.api.models import PathId
from digest.web.deps import AdminUser, CheckedForm, actor, services_of
from digest.web.forms import BadRequest
from digest.web.pages.editor.common import editor_page, see_other

router = APIRouter(prefix="/editor")
ROLES = [role.value for role in Role]
# What a redirect's ?done= says on the users page; fixed text, never echoed input.
NOTICES = {
    "disabled": "Account disabled: its sessions ended and its API tokens stopped working.",
    "enabled": "Account enabled: it can sign in again.",
    "role": "Role changed.",
    "unchanged": "Nothing to change: it was already so.",
}
CONFIRM = {  # what each confirmed action does, said before it is done: (heading, words, button)
    "disable": ("Disable {email}?",
                ("They are signed out at once, cannot sign in, and their API tokens stop working until an "
                 "admin enables the account again."),
                "Disable account"),
    "reset": ("New one-time password for {email}?",
              ("Their current password stops working and they are signed out everywhere. You get a one-time "
               "password to give them; at their next sign-in they choose their own. Their API tokens keep "
               "working."),
              "Issue one-time password"),
}


def _users_page(request: Request, values: dict[str, str] | None = None, *, issued: dict[str, Any] | None = None,
                add_error: str | None = None, status: int = 200, done: str = "") -> Response:
    with services_of(request).factory() as session:
        users = staff.list_users(session)
    return editor_page(request, "editor/users.html", "users", {
        "users": users, "roles": ROLES, "values": values or {"email": "", "role": "editor"}, "issued": issued,
        "add_error": add_error, "notice": NOTICES.get(done)}, status)


@router.get("/users")
def users_page(request: Request, user: AdminUser, done: str = "") -> Response:
    return _users_page(request, done=done)


@router.post("/users")
def add_user(request: Request, user: AdminUser, form: CheckedForm) -> Response:
    values = {"email": form.get("email").strip(), "role": form.get("role")}
    password = staff.generate_password()
    try:
        email, role = actions.users.add_user(services_of(request).deps(), actor(user, "web"), values["email"],
                                             values["role"], password, one_time=True)
    except Invalid as exc:
        return _users_page(request, values, add_error=exc.message, status=http_status(exc))
    # Shown on this response only (no redirect): the password is never stored or shown again.
    return _users_page(request, issued={"email": email, "role": role, "password": password, "added": True})


@router.post("/users/{user_id}/role")
def change_role(request: Request, user: AdminUser, user_id: PathId, form: CheckedForm) -> Response:
    outcome = actions.users.change_role(services_of(request).deps(), actor(user, "web"), user_id, form.get("role"))
    return see_other(f"/editor/users?done={'role' if outcome.changed else 'unchanged'}")


@router.get("/users/{user_id}/{action}")
def confirm(request: Request, user: AdminUser, user_id: PathId, action: str) -> Response:
    """The question before a disable or a reset; the answer is the form's POST."""
    if action not in CONFIRM:
        raise BadRequest(404, "Not found", "There is no page at this address.")
    with services_of(request).factory() as session:
        target = staff.find_user(session, user_id)
    title, explanation, button = CONFIRM[action]
    return editor_page(request, "editor/user_confirm.html", "users", {
        "title": title.format(email=target.email), "explanation": explanation, "button": button,
        "action": f"/editor/users/{target.id}/{action}", "danger": action == "disable"})


@router.post("/users/{user_id}/disable")
def disable(request: Request, user: AdminUser, user_id: PathId, form: CheckedForm) -> Response:
    outcome = actions.users.disable(services_of(request).deps(), actor(user, "web"), user_id)
    return see_other(f"/editor/users?done={'disabled' if outcome.changed else 'unchanged'}")


@router.post("/users/{user_id}/enable")
def enable(request: Request, user: AdminUser, user_id: PathId, form: CheckedForm) -> Response:
    outcome = actions.users.enable(services_of(request).deps(), actor(user, "web"), user_id)
    return see_other(f"/editor/users?done={'enabled' if outcome.changed else 'unchanged'}")


@router.post("/users/{user_id}/reset")
def reset(request: Request, user: AdminUser, user_id: PathId, form: CheckedForm) -> Response:
    done = actions.users.reset(services_of(request).deps(), actor(user, "web"), user_id)
    # Shown on this response only, like a new account's.
    return _users_page(request, issued={"email": done["email"], "password": done["password"], "added": False})
