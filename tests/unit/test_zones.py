"""The time-zone picker's list and the one check every form, command and setting uses."""

from __future__ import annotations

import zoneinfo

import pytest

from digest import zones
from digest.zones import UnknownZone, load_zone, zone_choices


def test_the_picker_offers_real_places_by_region_with_utc_first() -> None:
    choices = zone_choices()
    names = [name for _, group in choices for name in group]

    assert choices[0] == ("UTC", ("UTC",))
    assert [region for region, _ in choices[1:]] == [r for r in zones.REGIONS if any(
        n.startswith(r + "/") for n in names)]
    assert {"Europe/Kyiv", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "Africa/Lagos"} <= set(names)
    # No non-places and no links kept for old spellings.
    assert not {"Factory", "localtime", "US/Eastern", "Cuba", "Etc/GMT+5", "Europe/Kiev"} & set(names)
    assert len(names) == len(set(names)) and 250 < len(names) < 450
    for region, group in choices[1:]:
        assert list(group) == sorted(group) and all(n.startswith(region + "/") for n in group)
        assert all(zoneinfo.ZoneInfo(n) for n in group)


def test_without_the_tables_every_region_name_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoneinfo, "TZPATH", ())
    zone_choices.cache_clear()
    try:
        names = {name for _, group in zone_choices() for name in group}
        assert "Europe/Kyiv" in names and "Europe/Kiev" in names and "Factory" not in names and "US/Eastern" not in names
    finally:
        zone_choices.cache_clear()


@pytest.mark.parametrize("name", ["Europe/Kyiv", " Europe/Kyiv ", "Europe/Kiev", "US/Eastern", "UTC"])
def test_a_real_zone_loads_whatever_its_spelling(name: str) -> None:
    assert load_zone(name).key == name.strip()


@pytest.mark.parametrize("name", ["Factory", "localtime", "posixrules", "posix/Europe/Kyiv", "right/UTC", "Mars/Base",
                                  "../../etc/passwd", "", "Europe/Kyiv\x00"])
def test_a_non_place_is_refused_in_words(name: str) -> None:
    with pytest.raises(UnknownZone, match=r"unknown time zone .*\(use an IANA name such as Europe/Kyiv\)"):
        load_zone(name)
