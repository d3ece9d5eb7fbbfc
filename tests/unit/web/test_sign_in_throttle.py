"""Sign-in is throttled per account, wherever the tries come from, with a lock-out that
doubles; an admin's one-time password still lets the owner in. Which X-Forwarded-For to
believe is configured (DIGEST_FORWARDED_ALLOW_IPS), and by default none is."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from digest import staff
from digest.cli.app import proxy_options
from digest.config import ConfigError, Settings, get_settings
from digest.infra import RateLimiter
from digest.store import User
from digest.web.pages.auth import LOGIN_ATTEMPTS_PER_IP, LOGIN_FREE_FAILURES_PER_ACCOUNT
from tests.support.asgi import SECRET, app_for_test, served, sign_in_from

PASSWORD = "correct horse battery staple"


def staff_member(app: FastAPI) -> str:
    email = f"editor-{uuid.uuid4().hex[:8]}@example.org"
    with app.state.services.factory.begin() as session:
        staff.create_user(session, email, "editor", PASSWORD)
    return email


def forget_addresses(app: FastAPI) -> None:
    """The per-address counters of the addresses these tests sign in from (Redis keeps
    them a quarter of an hour, past this test)."""
    limiter = RateLimiter(app.state.services.redis)
    for ip in ["127.0.0.1", *(f"203.0.113.{n}" for n in range(256)), *(address(n) for n in range(256))]:
        limiter.forget("login-ip", ip)


def address(n: int) -> str:
    return f"198.51.100.{n}"


def test_wrong_passwords_from_many_addresses_lock_the_account(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    forget_addresses(app)
    email = staff_member(app)
    for n in range(LOGIN_FREE_FAILURES_PER_ACCOUNT + 1):
        assert sign_in_from(app, address(n), email, f"guess-{n}").status_code == 401
    refused = sign_in_from(app, address(99), email, PASSWORD)  # even the right password, for now
    assert refused.status_code == 429
    assert "Too many failed sign-ins for this account" in refused.text and "one-time password" in refused.text
    assert sign_in_from(app, address(98), email.upper(), PASSWORD).status_code == 429  # the same account
    other = staff_member(app)  # another account is not affected
    assert sign_in_from(app, address(97), other, PASSWORD).status_code == 303


def test_an_admins_one_time_password_lets_a_locked_out_owner_in(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    forget_addresses(app)
    email = staff_member(app)
    for n in range(LOGIN_FREE_FAILURES_PER_ACCOUNT + 3):
        sign_in_from(app, address(n), email, f"guess-{n}")
    one_time, hashed = staff.one_time_password()
    with app.state.services.factory.begin() as session:
        user_id = session.scalars(select(User.id).where(User.email == email)).one()
        staff.set_password(session, user_id, hashed, one_time=True)
    assert sign_in_from(app, address(50), email, "still a guess").status_code == 429
    answer = sign_in_from(app, address(51), email, one_time)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/account/password")
    # signing in cleared the failures: the next wrong try is an ordinary 401
    assert sign_in_from(app, address(52), email, "typo").status_code == 401


def test_forwarded_addresses_are_not_believed_by_default(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    settings = Settings(env="test", secret_key=SECRET)
    assert proxy_options(settings) == {"proxy_headers": False}
    forget_addresses(app)
    with served(app, **proxy_options(settings)) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        # a fresh X-Forwarded-For (and a fresh account) on every try: still one client
        statuses = [_try(client, n) for n in range(LOGIN_ATTEMPTS_PER_IP + 1)]
    assert statuses[:LOGIN_ATTEMPTS_PER_IP] == [401] * LOGIN_ATTEMPTS_PER_IP
    assert statuses[-1] == 429


def test_forwarded_addresses_are_believed_from_the_configured_proxies(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    settings = Settings(env="test", secret_key=SECRET, forwarded_allow_ips=" 127.0.0.1 , 10.0.0.0/8")
    assert proxy_options(settings) == {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1,10.0.0.0/8"}
    forget_addresses(app)
    with served(app, **proxy_options(settings)) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        statuses = [_try(client, n) for n in range(LOGIN_ATTEMPTS_PER_IP + 1)]
    assert statuses == [401] * (LOGIN_ATTEMPTS_PER_IP + 1)


def _try(client: httpx.Client, n: int) -> int:
    forwarded = {"X-Forwarded-For": f"203.0.113.{n}"}
    page = client.get("/login", headers=forwarded)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", headers=forwarded, data={
        "csrf_token": token, "email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "guess"}).status_code


def test_forwarded_allow_ips_is_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_FORWARDED_ALLOW_IPS", "127.0.0.1,not-an-address")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="DIGEST_FORWARDED_ALLOW_IPS: must be comma-separated IP"):
        get_settings()
    get_settings.cache_clear()
