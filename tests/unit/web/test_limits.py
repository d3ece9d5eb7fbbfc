"""Request bodies are bounded by route before anything reads them: 413 before a token is
checked or a form parsed, whether the size is declared or only seen while streaming."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import httpx
import pytest

from digest.web.limits import API_BODY_MAX_BYTES, DRAIN_MAX_BYTES, SENDGRID_BODY_MAX_BYTES
from tests.support.asgi import Counted, app_for_test, request, served

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
    tracemalloc.start()
    try:
        response = request(app, "POST", "/api/v1/stories", content=streamed,
                           headers={"Content-Type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"
    # read up to the limit, the rest (to a cap) dropped unread; memory stays flat throughout
    assert streamed.taken <= API_BODY_MAX_BYTES + DRAIN_MAX_BYTES + 2 * 65536
    assert peak < 8 * 1024 * 1024, peak


@pytest.mark.parametrize("path", ["/subscribe", "/login", "/editor/stories", "/ops"])
def test_pages_take_at_most_a_form_whatever_the_method(tmp_path: Path, path: str) -> None:
    app = app_for_test(tmp_path, max_form_bytes=4096)
    for method in ("GET", "POST"):
        declared = Counted(1024 * 1024)
        response = request(app, method, path, content=declared, headers={"Content-Length": str(1024 * 1024)})
        assert response.status_code == 413, (method, path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        assert "larger than 4 KB" in response.text


@pytest.mark.parametrize("path", ["/subscribe", "/login"])
def test_a_streamed_form_stops_at_the_limit(tmp_path: Path, path: str) -> None:
    app = app_for_test(tmp_path, max_form_bytes=4096)
    streamed = Counted(1024 * 1024)
    response = request(app, "POST", path, content=streamed,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413, (path, response.status_code)
    assert streamed.taken <= 4096 + DRAIN_MAX_BYTES + 2 * 65536


def test_a_refused_body_is_answered_not_reset_over_a_real_connection(tmp_path: Path) -> None:
    """uvicorn closes the connection after a 413; closing on unread bytes would send a TCP
    reset that can destroy the answer, so a body up to DRAIN_MAX_BYTES is read and dropped."""
    app = app_for_test(tmp_path)
    body = b'{"title": "' + b"x" * 5_000_000 + b'"}'
    with served(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        for _ in range(5):
            response = client.post("/api/v1/stories", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 413 and response.json()["code"] == "too_large"


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
