"""Recurring schedules: cron in an IANA zone, across DST changes, one occurrence per wall time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.editions.schedules import (
    ScheduleError,
    check_cron,
    check_subject_template,
    next_sends,
    occurrences,
    render_subject,
    schedule_in_words,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "after", "until", "expected"),
    [
        # Morning Briefing, 07:00 Kyiv: UTC+3 in summer, UTC+2 after 25 Oct 2026.
        ("0 7 * * *", "Europe/Kyiv", utc(2026, 10, 23, 12), utc(2026, 10, 27, 12),
         [utc(2026, 10, 24, 4), utc(2026, 10, 25, 5), utc(2026, 10, 26, 5), utc(2026, 10, 27, 5)]),
        # Weekly Featured, Fridays 17:00 New York: EDT until 1 Nov 2026, then EST.
        ("0 17 * * 5", "America/New_York", utc(2026, 10, 25), utc(2026, 11, 14),
         [utc(2026, 10, 30, 21), utc(2026, 11, 6, 22), utc(2026, 11, 13, 22)]),
        # Spring forward in Kyiv (29 Mar 2026, 03:00 -> 04:00): 03:30 does not exist that
        # night; the occurrence still happens once, at the first valid minute.
        ("30 3 * * *", "Europe/Kyiv", utc(2026, 3, 27, 12), utc(2026, 3, 30, 12),
         [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]),
        # Fall back in Kyiv (25 Oct 2026, 04:00 -> 03:00): 03:30 happens twice; once here.
        ("30 3 * * *", "Europe/Kyiv", utc(2026, 10, 24, 12), utc(2026, 10, 26, 12),
         [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
        ("0 9 * * 1-5", "UTC", utc(2026, 11, 27, 10), utc(2026, 12, 2),
         [utc(2026, 11, 30, 9), utc(2026, 12, 1, 9)]),
    ],
)
def test_occurrences(cron: str, zone: str, after: datetime, until: datetime, expected: list[datetime]) -> None:
    assert occurrences(cron, zone, after, until) == expected


def test_occurrences_continue_where_they_stopped_without_repeating_the_fall_back_hour() -> None:
    first = occurrences("30 3 * * *", "Europe/Kyiv", utc(2026, 10, 24, 12), utc(2026, 10, 25, 1))
    rest = occurrences("30 3 * * *", "Europe/Kyiv", first[-1], utc(2026, 10, 26, 12))
    assert first == [utc(2026, 10, 25, 0, 30)]
    assert rest == [utc(2026, 10, 26, 1, 30)]


@pytest.mark.parametrize("bad", ["61 * * * *", "* * *", "0 7 * * * *", "every day", "",
                                 "0 " + ",".join(["7"] * 60) + " * * *"])  # valid, but past its column
def test_bad_cron_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        check_cron(bad)


def test_a_subject_template_past_its_column_is_refused() -> None:
    check_subject_template("{{ newsletter }}" + "x" * 284)  # 300: fits
    with pytest.raises(ScheduleError, match="at most 300"):
        check_subject_template("{{ newsletter }}" + "x" * 285)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        occurrences("0 7 * * *", "Mars/Olympus", utc(2026, 1, 1), utc(2026, 1, 2))


def test_subject_template_uses_the_local_date() -> None:
    # 23:30 UTC on Thursday is already Friday in Kyiv.
    subject = render_subject("{{ newsletter }} — {{ weekday }} {{ date }}", newsletter="Morning Briefing",
                             when=utc(2026, 11, 26, 23, 30), zone="Europe/Kyiv")
    assert subject == "Morning Briefing — Friday 27 November 2026"


def test_subject_template_errors_are_clear() -> None:
    with pytest.raises(ScheduleError, match="subject template"):
        render_subject("{{ nope }}", newsletter="x", when=utc(2026, 1, 1), zone="UTC")
    with pytest.raises(ScheduleError, match="subject template"):
        render_subject("{{ ''.__class__.__mro__ }}", newsletter="x", when=utc(2026, 1, 1), zone="UTC")


def test_a_schedule_in_words_and_its_next_sends_in_its_zone() -> None:
    assert schedule_in_words("0 7 * * 1-5", "Europe/Kyiv") == "At 07:00, Monday through Friday, Kyiv time"
    assert schedule_in_words("30 6 * * *", "America/New_York") == "At 06:30, every day, New York time"
    assert schedule_in_words("*/15 * * * *", "UTC") == "Every 15 minutes, UTC"
    sends = next_sends("0 7 * * 1-5", "Europe/Kyiv", utc(2026, 11, 27, 6, 0))  # a Friday, 08:00 in Kyiv
    assert [f"{t:%a %d %H:%M %Z}" for t in sends] == [
        "Mon 30 07:00 EET", "Tue 01 07:00 EET", "Wed 02 07:00 EET", "Thu 03 07:00 EET", "Fri 04 07:00 EET"]
