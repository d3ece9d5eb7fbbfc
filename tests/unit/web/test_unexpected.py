"""Outside JSON nested without end is a 400, never a RecursionError; and an error nobody
expected ends its own request with a 503, leaving the connection open for the next."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI

from digest.infra import JSON_MAX_DEPTH, JsonTooDeep, load_json
from digest.stories import ParseError, parse_source
from tests.support.asgi import app_for_test, ask_twice, request, served

BOMB = b"[" * 200_000 + b"]" * 200_000


def test_load_json_refuses_depth_bombs_as_a_value_error() -> None:
    with pytest.raises(JsonTooDeep):
        load_json(BOMB)
    with pytest.raises(JsonTooDeep):
        load_json(b"[" * (JSON_MAX_DEPTH + 1) + b"]" * (JSON_MAX_DEPTH + 1))  # parses, but too deep
    assert load_json(b"[" * JSON_MAX_DEPTH + b"]" * JSON_MAX_DEPTH) is not None
    assert load_json('{"a": [{"b": 1}]}') == {"a": [{"b": 1}]}


def test_a_story_source_nested_without_end_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not valid JSON: nested"):
        parse_source(BOMB, origin="upload")


def test_hooks_and_the_api_answer_a_depth_bomb_with_400(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = app_for_test(tmp_path, ses_topic_arns="arn:aws:sns:us-east-1:123456789012:bounces")
    with caplog.at_level(logging.ERROR):
        hook = request(app, "POST", "/hooks/ses", content=BOMB)
        api = request(app, "POST", "/api/v1/stories", content=BOMB, headers={"Content-Type": "application/json"})
    assert hook.status_code == 400 and hook.json() == {"error": f"The body nests deeper than {JSON_MAX_DEPTH} levels."}
    assert api.status_code == 400
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def boom() -> None:
    raise RuntimeError("nobody expected this")


def app_that_fails(tmp_path: Path) -> FastAPI:
    app = app_for_test(tmp_path)
    app.add_api_route("/boom", boom)
    [api] = [route.app for route in app.routes if getattr(route, "path", "") == "/api/v1"]  # type: ignore[attr-defined]
    api.add_api_route("/boom", boom)
    return app


@pytest.mark.parametrize("path", ["/boom", "/api/v1/boom"])
def test_an_unexpected_error_ends_its_own_request_and_the_connection_stays_usable(
        tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="digest.web.errors"), served(app_that_fails(tmp_path)) as port:
        first, second = ask_twice(port, path, "/login")
    assert first.startswith(b"HTTP/1.1 503 "), first[:200]
    assert b"Traceback" not in first and b"nobody expected" not in first
    assert second.startswith(b"HTTP/1.1 200 "), second[:200]
    # logged once, with its traceback, where it happened
    assert [r.getMessage() for r in caplog.records] == [f"unhandled error on {path}"]


def test_an_unexpected_error_page_carries_the_security_headers(tmp_path: Path) -> None:
    response = request(app_that_fails(tmp_path), "GET", "/boom")
    assert response.status_code == 503
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
