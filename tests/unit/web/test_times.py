"""Times on an editor page: one zone a page, named, the instant in UTC on hover."""

from __future__ import annotations

from datetime import UTC, datetime

from digest.config import Settings
from digest.web.app import templates_for

WINTER = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 4, 30, tzinfo=UTC)


def render(source: str, settings: Settings | None = None, **context: object) -> str:
    env = templates_for(settings or Settings()).env
    return env.from_string(source).render(**context)


def test_a_time_is_shown_in_the_sites_zone_with_utc_on_hover() -> None:
    html = render("{{ t | when }}", Settings(timezone="Europe/Kyiv"), t=WINTER)

    assert html == ('<time datetime="2026-12-01T05:00:00Z" title="Tue 1 Dec 2026, 05:00 UTC">'
                    "Tue 1 Dec 2026, 07:00 EET</time>")


def test_the_pages_zone_wins_over_the_sites_and_follows_summer_time() -> None:
    html = render("{{ t | when }}", Settings(timezone="Europe/Kyiv"), t=SUMMER, zone="America/New_York")

    assert html == ('<time datetime="2026-07-01T04:30:00Z" title="Wed 1 Jul 2026, 04:30 UTC">'
                    "Wed 1 Jul 2026, 00:30 EDT</time>")


def test_a_zone_given_to_the_filter_wins_and_utc_is_the_default() -> None:
    assert ">Tue 1 Dec 2026, 07:00 EET</time>" in render("{{ t | when('Europe/Kyiv') }}", t=WINTER, zone="UTC")
    assert ">Tue 1 Dec 2026, 05:00 UTC</time>" in render("{{ t | when }}", t=WINTER)
    assert render("{{ t | when }}", t=None) == "—"
