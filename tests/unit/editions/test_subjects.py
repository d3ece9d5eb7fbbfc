"""Subject templates fill in the documented names and run nothing: a template that asks
for more is refused when saved (a 400 naming the field, in well under a second), and one
stored before that rule is skipped by the scheduler with its reason."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions.newsletters import create_newsletter
from digest.editions.schedules import ScheduleError, check_subject_template, render_subject, schedule_editions
from digest.store import Edition, Newsletter
from tests.support.asgi import api_token, app_for_test, request

HOSTILE = [
    "{{ 9**(9**8) > 0 }}",
    "{{ 9**(9**7) }}",
    "{% for x in range(10**6) %}x{% endfor %}",
    "{{ range(10**9) | list }}",
    "{{ newsletter * 100000000 }}",
    "{{ newsletter | upper }}",
    "{{ newsletter ~ date }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ lipsum }}",
    "{% set x = 1 %}{{ newsletter }}",
    "{{ newsletter }",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_anything_but_the_names_is_refused_at_once(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(ScheduleError, match="^subject template: "):
        check_subject_template(template)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("template", "subject"), [
    ("{{ newsletter }}: {{ date }}", "Morning: 1 December 2026"),
    ("{{weekday}} briefing from {{ newsletter }}", "Tuesday briefing from Morning"),
    ("{{- newsletter -}} ! {# an editor's note #}", "Morning!"),
    ("Plain words, 100% {curly}", "Plain words, 100% {curly}"),
])
def test_the_documented_names_are_filled_in(template: str, subject: str) -> None:
    assert check_subject_template(template) == template
    assert render_subject(template, newsletter="Morning", when=datetime(2026, 12, 1, 7, tzinfo=UTC),
                          zone="UTC") == subject


def test_the_api_answers_a_template_bomb_with_400_naming_the_field_in_under_a_second(tmp_path: Path) -> None:
    app = app_for_test(tmp_path)
    token = api_token(app)
    assert request(app, "GET", "/api/v1/newsletters", headers=token).status_code == 200  # first-request costs
    started = time.monotonic()
    response = request(app, "POST", "/api/v1/newsletters", headers=token, json={
        "slug": "bomb", "name": "Bomb", "cron": "0 7 * * *", "timezone": "UTC",
        "subject_template": "{{ 9**(9**8) > 0 }}"})
    assert time.monotonic() - started < 1
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("subject template: ")


def test_a_stored_template_that_breaks_the_rule_is_skipped_by_the_scheduler(
        session: Session, caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    for slug in ("good", "legacy"):
        create_newsletter(session, slug=slug, name=slug.title(), cron="0 * * * *", timezone="UTC",
                          allowed_topics=["politics"], topics=["politics"])
    legacy = session.scalars(select(Newsletter).where(Newsletter.slug == "legacy")).one()
    legacy.subject_template = "{% for x in range(10**6) %}x{% endfor %}"  # as an older version stored it
    for newsletter in session.scalars(select(Newsletter)):
        newsletter.created_at = now - timedelta(minutes=1)
    session.flush()

    with caplog.at_level(logging.WARNING, logger="digest.editions.schedules"):
        created = schedule_editions(session, now, ahead_hours=3)
    assert created == 3
    made = session.scalars(select(Edition.newsletter_id)).all()
    assert legacy.id not in made and len(made) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "newsletter legacy: editions not scheduled: subject template: only text and {{ newsletter }}, "
        "{{ date }}, {{ weekday }} may be used, no {% … %} tags"]
