"""Every answer carries the security headers, error pages and refusals included: a policy
that allows no inline script and no framing, nosniff, and a Referrer-Policy that never
hands a reader's token to another site; HSTS once the site is https."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.asgi import app_for_test, request

# (method, path, status, Referrer-Policy): reader pages send no referrer at all (their URLs
# hold tokens, their error pages included); staff and other pages only to our own origin.
PAGES = [
    ("GET", "/subscribe", 200, "no-referrer"),
    ("GET", "/login", 200, "same-origin"),
    ("GET", "/archive", 200, "same-origin"),
    ("GET", "/no-such-page", 404, "same-origin"),
    ("POST", "/subscribe", 403, "same-origin"),  # no CSRF token: the error page
    ("GET", "/unsubscribe/not-a-token", 404, "no-referrer"),
    ("GET", "/preferences/not-a-token", 404, "no-referrer"),
    ("GET", "/confirm/not-a-token", 400, "no-referrer"),
]


@pytest.mark.parametrize(("method", "path", "status", "referrer"), PAGES)
def test_every_page_and_error_page_has_the_headers(tmp_path: Path, method: str, path: str, status: int,
                                                    referrer: str) -> None:
    app = app_for_test(tmp_path)
    response = request(app, method, path)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == referrer
    assert "strict-transport-security" not in response.headers
    assert "<script>" not in response.text and "<script " not in response.text.replace('<script src="/static/', "")


def test_json_answers_and_refusals_are_not_sniffed(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    for method, path, kwargs in (("GET", "/api/v1/editions", {}), ("GET", "/healthz", {}),
                                 ("POST", "/api/v1/stories", {"content": b"x", "headers": {"Content-Length": "9" * 9}})):
        response = request(app, method, path, **kwargs)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path


def test_hsts_when_the_site_is_https(tmp_path: Path) -> None:
    app = app_for_test(tmp_path, base_url="https://news.example.com/digest")
    for path in ("/subscribe", "/no-such-page", "/api/v1/editions"):
        assert request(app, "GET", path).headers["strict-transport-security"] == "max-age=31536000", path
