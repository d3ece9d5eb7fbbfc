"""Which addresses a fetch may reach, whatever their spelling: no network needed."""

from __future__ import annotations

import ipaddress

import pytest

from digest.config import parse_fetch_allow
from digest.infra.addresses import legacy_ipv4, parse_address, refusal

REFUSED = {
    "127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "loopback",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "10.0.0.1": "private", "172.16.0.1": "private", "172.31.255.255": "private", "192.168.1.1": "private",
    "169.254.169.254": "link-local", "fe80::1": "link-local",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
    "100.64.0.1": "carrier-grade NAT", "100.127.255.254": "carrier-grade NAT",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved",
    "192.0.2.1": "private", "198.18.0.1": "private", "203.0.113.9": "private", "192.0.0.1": "private",
    "2001:db8::1": "private",
    "fc00::1": "unique-local", "fd12:3456::1": "unique-local", "fec0::1": "site-local",
    "::ffff:127.0.0.1": "IPv4-mapped IPv6", "::ffff:8.8.8.8": "IPv4-mapped IPv6",
    "2002:7f00:1::": "loopback inside IPv6", "2002:a00:1::": "private inside IPv6",
    "64:ff9b::7f00:1": "loopback inside IPv6", "64:ff9b::a9fe:a9fe": "link-local inside IPv6",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "2606:4700:4700::1111",
          "2002:808:808::", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "kind"), REFUSED.items())
def test_non_public_addresses_are_refused_by_kind(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_may_be_fetched(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("spelling", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001",
                                      "127.0.1", "0x7F.0.0.1", "127.0.0.1."])
def test_every_spelling_of_loopback_is_loopback(spelling: str) -> None:
    address = parse_address(spelling)
    assert address == ipaddress.IPv4Address("127.0.0.1") or (address is not None and address.is_loopback)
    assert refusal(address) == "loopback"


@pytest.mark.parametrize(("spelling", "address"), [("3232235777", "192.168.1.1"), ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
                                                   ("012.1", "10.0.0.1"), ("[::1]", "::1"), ("[::ffff:7f00:1]", "::ffff:7f00:1")])
def test_other_spellings_mean_their_address(spelling: str, address: str) -> None:
    assert parse_address(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["news.example.com", "0x7g.1", "1.2.3.4.5", "127.0.0.1.nip.io", "localhost", ""])
def test_names_are_not_addresses(name: str) -> None:
    assert legacy_ipv4(name) is None


def test_fetch_allow_entries_parse() -> None:
    assert parse_fetch_allow(" cms.intranet , 127.0.0.1:8080,[::1]:81,[fd00::5], ::1") == [
        ("cms.intranet", None), ("127.0.0.1", 8080), ("::1", 81), ("fd00::5", None), ("::1", None)]


@pytest.mark.parametrize("bad", ["host:0", "host:99999", "host:http", "[::1]x", "http://cms/", "a b"])
def test_bad_fetch_allow_entries_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_fetch_allow(bad)
