"""Staff accounts in a real browser (Debian's Chromium driven by Playwright): an admin adds an
editor on /editor/users and reads the one-time password off the page; the editor signs in
with it, is made to choose a password of their own (a mistake shown at its field first), and
lands on the dashboard; the admin disables an account after the question.

Each page is photographed at desktop and phone width into
test-artifacts/screenshots/editor-<page>-<width>.png and checked for the basics: each input
has a label, one h1, nothing wider than a 375 px phone.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from digest.store.models import User
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import make_user
from tests.support.stack import Stack

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

ADMIN = "admin@example.org"
NEWCOMER = "newcomer@example.org"
LEAVER = "leaver@example.org"
OWN_PASSWORD = "my own password, at last"


def shoot(page: Page, live: Stack, name: str) -> None:
    """The accessibility basics at both widths; screenshots once (the PostgreSQL run)."""
    check_and_shoot(page, name, prefix="editor" if live.backend == "postgresql" else None)


def notice(page: Page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def test_a_new_editor_signs_in_with_a_one_time_password_and_chooses_their_own(
        live: Stack, context: BrowserContext) -> None:
    make_user(live, ADMIN, "admin")
    make_user(live, LEAVER, "ops")
    page = context.new_page()

    # The admin finds Users in the navigation and adds an editor.
    page.goto("/login")
    submit_sign_in(page, ADMIN)
    heading(page, "Editor dashboard")
    page.get_by_role("link", name="Users").click()
    heading(page, "Users")
    shoot(page, live, "users")
    page.get_by_label("Email").fill(NEWCOMER)
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Add user").click()
    notice(page, f"Account {NEWCOMER} created (editor)")
    password_box = page.get_by_label(f"One-time password for {NEWCOMER}", exact=True)
    expect(password_box).to_have_value(re.compile(r"^\S{12,}$"))
    one_time = password_box.input_value()
    expect(page.get_by_role("row").filter(has_text=NEWCOMER)).to_contain_text("one-time password")
    shoot(page, live, "users-added")

    # Disabling asks first.
    page.get_by_role("link", name=f"Disable {LEAVER}").click()
    heading(page, f"Disable {LEAVER}?")
    shoot(page, live, "user-disable")
    page.get_by_role("button", name="Disable account").click()
    notice(page, "Account disabled")
    expect(page.get_by_role("row").filter(has_text=LEAVER)).to_contain_text("disabled")
    expect(page.get_by_role("button", name=f"Enable {LEAVER}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    # A mistyped password keeps the address typed.
    submit_sign_in(page, NEWCOMER, "not the one-time password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.get_by_label("Email")).to_have_value(NEWCOMER)
    expect(page.get_by_label("Password")).to_have_value("")
    shoot(page, live, "sign-in-failed")

    # With the one-time password: the change-password page, and nowhere else.
    page.get_by_label("Password").fill(one_time)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Change your password")
    expect(page).to_have_url(re.compile(r"/account/password\?next=%2Feditor$"))
    expect(page.get_by_text("You signed in with a one-time password")).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    shoot(page, live, "password-first")

    # A mistake comes back at its field.
    page.get_by_label("One-time password").fill(one_time)
    page.get_by_label("New password", exact=True).fill(OWN_PASSWORD)
    page.get_by_label("New password again").fill(OWN_PASSWORD + "!")
    page.get_by_role("button", name="Change password").click()
    repeat = page.get_by_label("New password again")
    expect(repeat).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#repeat-error")).to_have_text("the two new passwords are not the same")
    shoot(page, live, "password-error")

    page.get_by_label("One-time password").fill(one_time)
    page.get_by_label("New password", exact=True).fill(OWN_PASSWORD)
    repeat.fill(OWN_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    heading(page, "Editor dashboard")  # where they were going
    notice(page, "Password changed.")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)  # editors manage no accounts
    page.get_by_role("link", name="Account").click()
    heading(page, "Change your password")
    expect(page.get_by_label("Current password")).to_be_visible()
    shoot(page, live, "password")
    with live.factory() as session:
        assert session.scalars(select(User.must_change_password).where(User.email == NEWCOMER)).one() is False

    # Next time, their own password goes straight to the dashboard.
    page.get_by_role("button", name="Sign out").click()
    submit_sign_in(page, NEWCOMER, OWN_PASSWORD)
    heading(page, "Editor dashboard")
