"""Clicks, counted without knowing who clicked: the signed redirect's target, counting in
Redis on the request path (people and machines apart; docs/clicks.md), the periodic flush
into the database, and each edition's stats.

What is kept: per edition, story and subject variant, the number of clicks by people and
by machines, and an estimate of how many copies had a link followed. No reader, address,
IP, user agent or click time is written to the database.
"""

from digest.clicks.counting import Click, ClickCounter, first_look
from digest.clicks.flush import flush_clicks
from digest.clicks.history import flush_history, remember
from digest.clicks.opens import OpenCounter, flush_opens
from digest.clicks.rules import (
    BURST_SECONDS,
    FLOOD_CLICKS_PER_MINUTE,
    MACHINE_AGENTS,
    is_machine_agent,
)
from digest.clicks.stats import EditionNotFound, EditionStats, StoryStats, VariantStats, edition_stats, stats_csv
from digest.clicks.targets import ClickTargets, with_utm

__all__ = [
    "BURST_SECONDS", "Click", "ClickCounter", "ClickTargets", "EditionNotFound", "EditionStats",
    "FLOOD_CLICKS_PER_MINUTE", "MACHINE_AGENTS", "StoryStats", "VariantStats", "edition_stats", "first_look",
    "OpenCounter", "flush_clicks", "flush_history", "flush_opens", "is_machine_agent", "remember", "stats_csv", "with_utm",
]
