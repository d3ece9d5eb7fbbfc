"""The safety net behind the input checks: a value the database refuses (too long, out of
range) is the request's fault, so a page gets a 400 and the API a 422, never a 503. Every
known input is checked against its column before it gets there (tests/integration), so
the refusal is raised here by a route made for the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.exc import DataError
from sqlalchemy.orm import sessionmaker

from digest.config import REPO_ROOT, Settings
from digest.mail import TemplateError
from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.web.app import Services, create_app


class Refused(Exception):
    """What psycopg says when a value is longer than its column."""

    def __str__(self) -> str:
        return "value too long for type character varying(64)\nCONTEXT: the statement"


def refuse() -> None:
    raise DataError("INSERT INTO consent_events …", {}, Refused())


def app_with_refusing_routes(tmp_path: Path) -> FastAPI:
    settings = Settings(env="test", secret_key="web-errors-secret-0123456789",
                        database_url=f"sqlite:///{tmp_path / 'digest.db'}")
    services = Services(settings=settings, factory=sessionmaker(make_engine(settings.database_url)),
                        redis=redis.Redis(), enqueue_notice=lambda _: None, enqueue_inbound=lambda _: None)
    app = create_app(services)
    app.add_api_route("/refused-page", refuse)
    [api] = [route.app for route in app.routes if getattr(route, "path", "") == "/api/v1"]  # type: ignore[attr-defined]
    api.add_api_route("/refused", refuse)
    return app


def test_a_value_the_database_refuses_is_a_4xx_with_a_clear_answer(tmp_path: Path) -> None:
    app = app_with_refusing_routes(tmp_path)

    async def fetch(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://digest.test") as client:
            return await client.get(path)

    page = anyio.run(fetch, "/refused-page")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "too long or out of range" in page.text and "Traceback" not in page.text

    api = anyio.run(fetch, "/api/v1/refused")
    assert api.status_code == 422
    assert api.json() == {"error": "a value does not fit: value too long for type character varying(64)"}


def test_a_missing_page_template_is_a_503_and_one_log_line_naming_it(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    (templates / "web" / "subscribe.html").unlink()
    settings = Settings(env="test", secret_key="web-errors-secret-0123456789", templates_dir=templates,
                        database_url=f"sqlite:///{tmp_path / 'digest.db'}")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    services = Services(settings=settings, factory=sessionmaker(engine),
                        redis=redis.Redis(), enqueue_notice=lambda _: None, enqueue_inbound=lambda _: None)
    app = create_app(services)

    async def fetch(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://digest.test") as client:
            return await client.get(path)

    page = anyio.run(fetch, "/subscribe")
    assert page.status_code == 503 and "Traceback" not in page.text
    [record] = [r for r in caplog.records if r.name == "digest.web.errors"]
    assert record.getMessage() == f"template {templates / 'web' / 'subscribe.html'} not found (on /subscribe)"
    assert record.exc_info is None

    (templates / "web" / "archive.html").write_text("{% if x %}")
    with pytest.raises(TemplateError, match=f"^template {templates / 'web' / 'archive.html'}, line 1, is broken"):
        create_app(services)
