"""Request bodies are bounded by route before anything reads them: 413 before a token is
checked or a form parsed, whether the size is declared or only seen while streaming."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.web.limits import API_BODY_MAX_BYTES, SENDGRID_BODY_MAX_BYTES
from tests.support.asgi import Counted, app_for_test, request

HUGE_BYTES = 300 * 1024 * 1024


def test_a_huge_api_body_without_a_token_is_413_before_it_is_read(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    declared = Counted(HUGE_BYTES)
    response = request(app, "POST", "/api/v1/stories", content=declared,
                       headers={"Content-Length": str(HUGE_BYTES), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert declared.taken == 0

    streamed = Counted(HUGE_BYTES)  # chunked: no Content-Length to go by
    response = request(app, "POST", "/api/v1/stories", content=streamed,
                       headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"
    # memory held is the limit and one chunk, not the body
    assert streamed.taken <= API_BODY_MAX_BYTES + 65536


@pytest.mark.parametrize("path", ["/subscribe", "/login", "/editor/stories", "/ops"])
def test_pages_take_at_most_a_form_whatever_the_method(tmp_path: Path, path: str) -> None:
    app = app_for_test(tmp_path, max_form_bytes=4096)
    for method in ("GET", "POST"):
        declared = Counted(1024 * 1024)
        response = request(app, method, path, content=declared, headers={"Content-Length": str(1024 * 1024)})
        assert response.status_code == 413, (method, path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        assert "larger than 4 KB" in response.text
        assert declared.taken == 0


@pytest.mark.parametrize("path", ["/subscribe", "/login"])
def test_a_streamed_form_stops_at_the_limit(tmp_path: Path, path: str) -> None:
    app = app_for_test(tmp_path, max_form_bytes=4096)
    streamed = Counted(1024 * 1024)
    response = request(app, "POST", path, content=streamed,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413, (path, response.status_code)
    assert streamed.taken <= 4096 + 65536


def test_hooks_have_their_own_limits(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    over = str(SENDGRID_BODY_MAX_BYTES + 1)
    response = request(app, "POST", "/hooks/sendgrid", content=Counted(0), headers={"Content-Length": over})
    assert response.status_code == 413
    assert response.json() == {"error": f"That request is larger than {SENDGRID_BODY_MAX_BYTES // 1024} KB."}
    # a hook's limit is not a form's: 100 KB reaches the hook (off here: 404)
    assert request(app, "POST", "/hooks/sendgrid", content=b"[" + b" " * 100_000 + b"]").status_code == 404


def test_a_content_length_that_is_not_a_number_is_400(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    response = request(app, "POST", "/api/v1/stories", content=b"{}", headers={"Content-Length": "12x"})
    assert response.status_code == 400
