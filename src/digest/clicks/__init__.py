"""Clicks, counted without knowing who clicked: the signed redirect's target, counting in
Redis on the request path (people and machines apart; docs/clicks.md), the periodic flush
into the database, and each edition's stats.

What is kept: per edition, story and subject variant, the number of clicks by people and
by machines, the same per edition and hour, and an estimate of how many copies had a link
followed. No reader, address,
IP, user agent or time of one click is written to the database (an hour holds its
clicks as one number).
"""

from digest.clicks.counting import Click, ClickCounter, first_look
from digest.clicks.flush import flush_clicks, flush_edition
from digest.clicks.history import flush_history, remember
from digest.clicks.opens import OpenCounter, flush_opens
from digest.clicks.rules import (
    BURST_SECONDS,
    FLOOD_CLICKS_PER_MINUTE,
    MACHINE_AGENTS,
    is_machine_agent,
)
from digest.clicks.stats import (
    AbStats,
    EditionNotFound,
    EditionStats,
    HourStats,
    StoryStats,
    VariantStats,
    edition_stats,
    stats_csv,
    subject_arms,
)
from digest.clicks.targets import ClickTargets, with_utm

__all__ = [
    "AbStats", "BURST_SECONDS", "Click", "ClickCounter", "ClickTargets", "EditionNotFound", "EditionStats",
    "FLOOD_CLICKS_PER_MINUTE", "HourStats", "MACHINE_AGENTS", "OpenCounter", "StoryStats", "VariantStats", "edition_stats",
    "first_look", "flush_clicks", "flush_edition", "flush_history", "flush_opens", "is_machine_agent", "remember",
    "stats_csv", "subject_arms", "with_utm",
]
