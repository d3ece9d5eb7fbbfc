"""Time zones people pick: real places from the tz database, grouped by region.

The tz database ships ~600 names, a third of them links kept for old spellings (US/Eastern,
Europe/Kiev, Cuba) and a few that are no place at all ("Factory", "localtime": the host's
own clock). A picker offers the database's own list of zones, zone1970.tab (one per
region whose clocks have agreed since 1970), with UTC first; where the table is missing
(a trimmed container), every Region/City name in the ten regions. A name typed or stored
before is still accepted if it is a real zone (a link such as Europe/Kiev keeps working);
only the non-places are refused.
"""

from __future__ import annotations

import functools
import zoneinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian",
           "Pacific")
NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


class UnknownZone(ValueError):
    """Not a time zone a person can be in; the message says what to give instead."""


def load_zone(name: str) -> ZoneInfo:
    """The zone called `name` (an IANA name such as Europe/Kyiv), or UnknownZone."""
    key = name.strip()
    if key in NOT_PLACES or key.startswith("posix/") or key.startswith("right/"):
        raise UnknownZone(f"unknown time zone {name[:64]!r} (use an IANA name such as Europe/Kyiv)")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZone(f"unknown time zone {name[:64]!r} (use an IANA name such as Europe/Kyiv)") from None


@functools.cache
def zone_choices() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(region, its zones) in the picker's order: UTC, then each region's zones by name."""
    names = _tabled() or {n for n in zoneinfo.available_timezones() if n.split("/", 1)[0] in REGIONS}
    grouped: dict[str, list[str]] = {}
    for name in sorted(names):
        grouped.setdefault(name.split("/", 1)[0], []).append(name)
    return (("UTC", ("UTC",)), *((region, tuple(grouped[region])) for region in REGIONS if region in grouped))


def _tabled() -> set[str]:
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone1970.tab"
        try:
            lines = table.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        names = {line.split("\t")[2] for line in lines if line and not line.startswith("#") and line.count("\t") >= 2}
        return {n for n in names if n.split("/", 1)[0] in REGIONS and _loads(n)}
    return set()


def _loads(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
