"""/metrics in production answers only a scraper holding DIGEST_METRICS_TOKEN; without a
token set it is closed there (and open in development and tests, where it is handy)."""

from __future__ import annotations

from pathlib import Path

from tests.support.asgi import app_for_test, request

PRODUCTION = {"env": "production", "secret_key": "a-production-secret-0123456789",
              "base_url": "https://news.example.com/digest", "dkim_by_mta": True}


def test_production_without_a_token_is_closed(tmp_path: Path) -> None:
    response = request(app_for_test(tmp_path, **PRODUCTION), "GET", "/metrics")
    assert response.status_code == 404
    assert "DIGEST_METRICS_TOKEN" in response.json()["error"]


def test_production_with_a_token_wants_it(tmp_path: Path) -> None:
    app = app_for_test(tmp_path, metrics_token="scrape-me-0123456789", **PRODUCTION)
    assert request(app, "GET", "/metrics").status_code == 401
    assert request(app, "GET", "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = request(app, "GET", "/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert scraped.status_code == 200 and "digest_" in scraped.text


def test_development_without_a_token_is_open(tmp_path: Path) -> None:
    assert request(app_for_test(tmp_path, env="development"), "GET", "/metrics").status_code == 200
