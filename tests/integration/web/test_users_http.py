"""Staff accounts over real HTTP (`digest serve` under uvicorn, the real database and Redis):
sign-in that keeps the address on a mistake, the one-time password that must be replaced
before any other page opens, the change-password page and its bad input, and the admins'
/editor/users (add, change role, disable after a confirmation, enable, new one-time
password), checked in what the pages say and in what the database now holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.store.models import AuditEntry, Role, User, WebSession
from digest.web.pages.auth import PASSWORD_ATTEMPTS_PER_USER
from tests.support.factories import make_user
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, PASSWORD, csrf_token, h1, sign_in, submit

pytestmark = pytest.mark.integration

ADMIN = "admin@example.org"
NEW_PASSWORD = "a password of my very own"
PASSWORD_PAGE = "/account/password"


# ------------------------------------------------------------------ helpers



@contextmanager
def browser(web: str) -> Iterator[httpx.Client]:
    """One more browser of its own (its own cookies)."""
    with httpx.Client(base_url=web, timeout=15, follow_redirects=False) as c:
        yield c


@pytest.fixture
def admin(live: Stack, client: httpx.Client) -> httpx.Client:
    make_user(live, ADMIN, "admin")
    assert sign_in(client, ADMIN).status_code == 303
    return client


def field_errors(html: str) -> dict[str, str]:
    """What the form says at each field: {field name: message}."""
    return {name: unescape(text) for name, text in re.findall(r'id="([\w-]+)-error"[^>]*>([^<]*)<', html)}


def user_row(live: Stack, email: str) -> User:
    with live.factory() as session:
        return session.scalars(select(User).where(User.email == email)).one()


def audit_rows(live: Stack) -> list[tuple[str, str, object]]:
    with live.factory() as session:
        return [(row.action, row.target, row.detail)
                for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def change_password(client: httpx.Client, current: str, new: str, repeat: str | None = None,
                    next_path: str = "") -> httpx.Response:
    return submit(client, PASSWORD_PAGE, PASSWORD_PAGE, {"current": current, "new": new,
                                                         "repeat": new if repeat is None else repeat,
                                                         "next": next_path})


def shown_password(html: str) -> str:
    found = re.findall(r'id="one-time-password"[^>]*value="([^"]+)"', html)
    assert len(found) == 1, "no one-time password on the page"
    return unescape(found[0])


def user_id(live: Stack, email: str) -> int:
    return user_row(live, email).id


# ------------------------------------------------------------------ sign-in


def test_a_failed_sign_in_keeps_the_address_but_never_the_password(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor")
    wrong = sign_in(client, EDITOR, "not the password at all")
    assert wrong.status_code == 401
    assert "do not match" in wrong.text
    assert f'id="email" name="email" type="email" autocomplete="username" required value="{EDITOR}"' in wrong.text
    assert "not the password at all" not in wrong.text
    hostile = sign_in(client, '"><script>alert(1)</script>@example.org', "whatever password")
    assert hostile.status_code == 401 and "<script>alert(1)" not in hostile.text


# ------------------------------------------------------------------ one-time passwords


def test_a_one_time_password_opens_nothing_but_the_change_password_page(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor", one_time=True)
    signed = sign_in(client, EDITOR, next_path="/editor/stories")
    assert signed.status_code == 303
    assert signed.headers["location"] == f"{PASSWORD_PAGE}?next=%2Feditor%2Fstories"

    for path in ("/editor", "/editor/stories", "/editor/tokens", "/editor/users", "/ops", "/ops/status.json"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"{PASSWORD_PAGE}?next={path}"
    page = client.get(f"{PASSWORD_PAGE}?next=/editor/stories")
    assert page.status_code == 200 and h1(page.text) == "Change your password"
    assert "You signed in with a one-time password" in page.text
    assert 'href="/editor' not in page.text  # no way around it but signing out
    # A form posted elsewhere does nothing either.
    posted = client.post("/editor/tokens", data={"csrf_token": csrf_token(page.text), "name": "sneaky"})
    assert posted.status_code == 303 and posted.headers["location"].startswith(PASSWORD_PAGE)

    done = change_password(client, PASSWORD, NEW_PASSWORD, next_path="/editor/stories")
    assert done.status_code == 303 and done.headers["location"] == "/editor/stories"
    assert client.get("/editor/stories").status_code == 200
    assert user_row(live, EDITOR).must_change_password is False
    assert [(action, detail) for action, _, detail in audit_rows(live)] == [
        ("login", {"ip": "127.0.0.1"}), ("user.password", {"was_one_time": True})]


def test_changing_a_password_keeps_this_browser_and_signs_out_the_others(live: Stack, client: httpx.Client,
                                                                         web: str) -> None:
    make_user(live, OPS, "ops")
    with browser(web) as other:
        assert sign_in(other, OPS, next_path="/ops").status_code == 303
        assert sign_in(client, OPS, next_path="/ops").status_code == 303
        assert client.get("/ops").status_code == 200 and 'href="/account/password"' in client.get("/ops").text

        done = change_password(client, PASSWORD, NEW_PASSWORD)
        assert done.status_code == 303
        assert done.headers["location"] == "/ops?done=password-changed"  # ops' home, not the editor's
        assert "Password changed." in client.get(done.headers["location"]).text
        assert other.get("/ops").headers["location"] == "/login?next=/ops"
    client.cookies.clear()
    assert sign_in(client, OPS, PASSWORD).status_code == 401
    assert sign_in(client, OPS, NEW_PASSWORD, next_path="/ops").status_code == 303


def test_a_bad_new_password_comes_back_at_its_field_and_changes_nothing(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor", one_time=True)
    assert sign_in(client, EDITOR).status_code == 303
    cases = [  # (current, new, repeat) → the field that says what is wrong
        (("not my password", NEW_PASSWORD, NEW_PASSWORD), "current", "the current password is not right"),
        ((PASSWORD, "too short", "too short"), "new", "at least 12 characters"),
        ((PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "?"), "repeat", "not the same"),
        ((PASSWORD, PASSWORD, PASSWORD), "new", "not the one you have"),
    ]
    for (current, new, repeat), field, message in cases:
        response = change_password(client, current, new, repeat)
        assert response.status_code == 400, (field, response.status_code)
        errors = field_errors(response.text)
        assert list(errors) == [field] and message in errors[field], errors
        assert f'id="{field}" name="{field}"' in response.text
        assert re.search(rf'id="{field}" name="{field}"[^>]*aria-invalid="true"', response.text)
        assert current not in response.text and new not in response.text  # never echoed
    page = client.get(PASSWORD_PAGE)
    forged = client.post(PASSWORD_PAGE, data={"csrf_token": "forged", "current": PASSWORD, "new": NEW_PASSWORD,
                                              "repeat": NEW_PASSWORD})
    assert forged.status_code == 403
    missing = client.post(PASSWORD_PAGE, data={"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert missing.status_code == 403
    assert page.status_code == 200
    assert user_row(live, EDITOR).must_change_password is True
    assert [action for action, _, _ in audit_rows(live)] == ["login"]
    assert staff.authenticate(live.factory, EDITOR, PASSWORD) is not None


def test_guessing_at_the_current_password_is_limited(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor")
    assert sign_in(client, EDITOR).status_code == 303
    token = csrf_token(client.get(PASSWORD_PAGE).text)
    # Until refused: another test run on this Redis may clear the counters once in a while,
    # which can only make the refusal come later, never sooner.
    answers: list[httpx.Response] = []
    while len(answers) < 4 * PASSWORD_ATTEMPTS_PER_USER and (not answers or answers[-1].status_code != 429):
        answers.append(client.post(PASSWORD_PAGE, data={"csrf_token": token, "current": "guess", "new": "short",
                                                        "repeat": "short"}))
    assert [a.status_code for a in answers[:PASSWORD_ATTEMPTS_PER_USER]] == [400] * PASSWORD_ATTEMPTS_PER_USER
    assert answers[-1].status_code == 429 and "Too many attempts" in answers[-1].text


def test_the_password_page_wants_a_signed_in_user(client: httpx.Client) -> None:
    response = client.get(PASSWORD_PAGE)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={PASSWORD_PAGE}"
    assert client.post(PASSWORD_PAGE, data={"current": "x"}).status_code in (303, 403)


# ------------------------------------------------------------------ /editor/users


def test_only_admins_open_the_users_page(live: Stack, client: httpx.Client) -> None:
    assert client.get("/editor/users").headers["location"] == "/login?next=/editor/users"
    for email, role in ((EDITOR, "editor"), (OPS, "ops")):
        make_user(live, email, role)
        client.cookies.clear()
        assert sign_in(client, email, next_path="/").status_code == 303
        for path in ("/editor/users", f"/editor/users/{user_id(live, email)}/disable"):
            response = client.get(path)
            assert response.status_code == 403, (email, path)
            assert "cannot open this page" in response.text
        assert 'href="/editor/users"' not in client.get(PASSWORD_PAGE).text
        token = csrf_token(client.get(PASSWORD_PAGE).text)
        refused = client.post("/editor/users", data={"csrf_token": token, "email": "x@example.org", "role": "admin"})
        assert refused.status_code == 403
    with live.factory() as session:
        assert session.scalar(select(User).where(User.email == "x@example.org")) is None


def test_an_admin_adds_a_user_who_must_replace_the_one_time_password(live: Stack, admin: httpx.Client,
                                                                     web: str) -> None:
    page = admin.get("/editor/users")
    assert page.status_code == 200 and h1(page.text) == "Users"
    assert 'href="/editor/users" aria-current="page"' in page.text
    added = submit(admin, "/editor/users", "/editor/users", {"email": "New.Person@Example.org", "role": "ops"})
    assert added.status_code == 200
    password = shown_password(added.text)
    assert "Account new.person@example.org created (ops)" in added.text
    assert password not in admin.get("/editor/users").text  # shown once
    row = user_row(live, "new.person@example.org")
    assert (row.role, row.must_change_password, row.disabled_at) == (Role.OPS, True, None)
    listed = admin.get("/editor/users").text
    assert re.search(r"new\.person@example\.org</span></td>\s*<td data-label=\"Role\">ops</td>", listed)
    assert "one-time password</span>" in listed and "never" in listed

    with browser(web) as newcomer:
        signed = sign_in(newcomer, "new.person@example.org", password, next_path="/ops")
        assert signed.headers["location"] == f"{PASSWORD_PAGE}?next=%2Fops"
        landed = change_password(newcomer, password, NEW_PASSWORD, next_path="/ops").headers["location"]
        assert landed == "/ops?done=password-changed"  # home, saying so
        assert "Password changed." in newcomer.get(landed).text
    assert ("user.add", f"user:{row.id}", {"role": "ops", "one_time": True}) in audit_rows(live)
    assert password not in str(audit_rows(live))


def test_a_bad_new_user_comes_back_as_the_form_with_the_reason(live: Stack, admin: httpx.Client) -> None:
    for data, status, message in (
        ({"email": "not-an-address", "role": "editor"}, 400, "invalid email address"),
        ({"email": ADMIN.upper(), "role": "editor"}, 409, f"a user {ADMIN} exists"),
        ({"email": "someone@example.org", "role": "owner"}, 400, "role must be one of"),
    ):
        response = submit(admin, "/editor/users", "/editor/users", data)
        assert response.status_code == status, data
        assert message in field_errors(response.text)["add"]
        assert f'value="{data["email"]}"' in response.text  # what was typed is kept
        assert 'id="one-time-password"' not in response.text
    forged = admin.post("/editor/users", data={"csrf_token": "forged", "email": "x@example.org", "role": "editor"})
    assert forged.status_code == 403
    with live.factory() as session:
        assert [u.email for u in staff.list_users(session)] == [ADMIN]


def test_a_role_changes_and_a_bad_one_is_refused(live: Stack, admin: httpx.Client) -> None:
    editor_id = make_user(live, EDITOR, "editor")
    response = submit(admin, "/editor/users", f"/editor/users/{editor_id}/role", {"role": "ops"})
    assert response.status_code == 303 and response.headers["location"] == "/editor/users?done=role"
    assert "Role changed." in admin.get("/editor/users?done=role").text
    assert user_row(live, EDITOR).role == Role.OPS
    again = submit(admin, "/editor/users", f"/editor/users/{editor_id}/role", {"role": "ops"})
    assert again.headers["location"] == "/editor/users?done=unchanged"

    bad = submit(admin, "/editor/users", f"/editor/users/{editor_id}/role", {"role": "owner"})
    assert bad.status_code == 400 and "role must be one of" in bad.text
    assert 'href="/editor/users">Back to the users' in bad.text
    unknown = submit(admin, "/editor/users", f"/editor/users/{editor_id + 1000}/role", {"role": "ops"})
    assert unknown.status_code == 404 and "no user with id" in unknown.text
    assert submit(admin, "/editor/users", "/editor/users/not-a-number/role", {"role": "ops"}).status_code == 400
    own = submit(admin, "/editor/users", f"/editor/users/{user_id(live, ADMIN)}/role", {"role": "editor"})
    assert own.status_code == 409 and "your own account" in own.text
    assert user_row(live, ADMIN).role == Role.ADMIN
    assert [(a, d) for a, _, d in audit_rows(live) if a == "user.role"] == [
        ("user.role", {"role": "ops", "was": "editor"}), ("user.role", {"role": "ops", "was": "ops"})]


def test_a_disabled_user_is_signed_out_and_cannot_sign_in_or_use_a_token(live: Stack, admin: httpx.Client,
                                                                         web: str) -> None:
    editor_id = make_user(live, EDITOR, "editor")
    with live.factory.begin() as session:
        _, token = staff.create_api_token(session, session.get_one(User, editor_id), "script")
    api = {"Authorization": f"Bearer {token}"}
    with browser(web) as editor:
        assert sign_in(editor, EDITOR).status_code == 303
        assert editor.get("/editor").status_code == 200
        assert editor.get("/api/v1/tokens", headers=api).status_code == 200

        question = admin.get(f"/editor/users/{editor_id}/disable")
        assert question.status_code == 200 and h1(question.text) == f"Disable {EDITOR}?"
        assert user_row(live, EDITOR).disabled_at is None  # asking changes nothing
        done = submit(admin, f"/editor/users/{editor_id}/disable", f"/editor/users/{editor_id}/disable")
        assert done.status_code == 303 and done.headers["location"] == "/editor/users?done=disabled"
        assert "Account disabled" in admin.get(done.headers["location"]).text

        assert editor.get("/editor").headers["location"] == "/login?next=/editor"
        assert editor.get("/api/v1/tokens", headers=api).status_code == 401
        refused = sign_in(editor, EDITOR)
        assert refused.status_code == 401 and f'value="{EDITOR}"' in refused.text
        with live.factory() as session:
            assert session.scalars(select(WebSession).where(WebSession.user_id == editor_id)).all() == []

        enabled = submit(admin, "/editor/users", f"/editor/users/{editor_id}/enable")
        assert enabled.headers["location"] == "/editor/users?done=enabled"
        assert editor.get("/api/v1/tokens", headers=api).status_code == 200
        assert sign_in(editor, EDITOR).status_code == 303
    assert [(a, d) for a, _, d in audit_rows(live) if a.startswith("user.")] == [
        ("user.disable", {"changed": True}), ("user.enable", {"changed": True})]


def test_an_admin_does_not_disable_their_own_account(live: Stack, admin: httpx.Client) -> None:
    """From the page this is also what keeps an admin: whoever asks is an active admin and
    may not disable themselves (the last-admin rule itself: tests/unit/staff, the CLI's)."""
    admin_id = user_id(live, ADMIN)
    own = submit(admin, "/editor/users", f"/editor/users/{admin_id}/disable")
    assert own.status_code == 409 and "you cannot disable your own account" in own.text
    assert user_row(live, ADMIN).disabled_at is None
    other_id = make_user(live, "other-admin@example.org", "admin")
    assert submit(admin, "/editor/users", f"/editor/users/{other_id}/disable").status_code == 303
    again = submit(admin, "/editor/users", f"/editor/users/{other_id}/disable")
    assert again.headers["location"] == "/editor/users?done=unchanged"
    assert submit(admin, "/editor/users", f"/editor/users/{other_id + 1000}/disable").status_code == 404
    assert admin.get(f"/editor/users/{other_id + 1000}/disable").status_code == 404
    assert admin.get(f"/editor/users/{other_id}/explode").status_code == 404
    forged = admin.post(f"/editor/users/{other_id}/enable", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert user_row(live, "other-admin@example.org").disabled_at is not None


def test_a_new_one_time_password_replaces_the_old_and_signs_the_user_out(live: Stack, admin: httpx.Client,
                                                                         web: str) -> None:
    editor_id = make_user(live, EDITOR, "editor")
    with browser(web) as editor:
        assert sign_in(editor, EDITOR).status_code == 303
        question = admin.get(f"/editor/users/{editor_id}/reset")
        assert h1(question.text) == f"New one-time password for {EDITOR}?"
        issued = submit(admin, f"/editor/users/{editor_id}/reset", f"/editor/users/{editor_id}/reset")
        assert issued.status_code == 200
        password = shown_password(issued.text)
        assert f"New one-time password for {EDITOR}" in issued.text

        assert editor.get("/editor").headers["location"] == "/login?next=/editor"
        assert sign_in(editor, EDITOR, PASSWORD).status_code == 401
        signed = sign_in(editor, EDITOR, password)
        assert signed.headers["location"] == f"{PASSWORD_PAGE}?next=%2Feditor"
    assert user_row(live, EDITOR).must_change_password is True
    own = submit(admin, "/editor/users", f"/editor/users/{user_id(live, ADMIN)}/reset")
    assert own.status_code == 409
    assert [(a, t) for a, t, _ in audit_rows(live) if a == "user.reset"] == [("user.reset", f"user:{editor_id}")]
    assert password not in str(audit_rows(live))
