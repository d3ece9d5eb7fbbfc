"""Which addresses a server-side fetch may reach: public unicast only.

Pure: no network. The fetcher resolves a host, asks `refusal` about every address the
resolver gave, and connects only to one that was asked about.
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598: neither "private" nor global to ipaddress
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address sits in the last 32 bits
# What inet_aton reads as an IPv4 address besides the dotted quad: 2130706433, 0177.0.0.1,
# 0x7f.1, 127.1. Browsers and resolvers take these; ipaddress (rightly) does not.
LEGACY_IPV4_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host spelling means to the C resolver, or None for a name."""
    if not LEGACY_IPV4_RE.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        return None


def parse_address(host: str) -> IPAddress | None:
    """A host written as an address (any IPv4 spelling, IPv6 with or without brackets)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return legacy_ipv4(bare)


def refusal(address: IPAddress) -> str | None:
    """Why a fetch may not connect to `address` (the kind of range), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "IPv4-mapped IPv6"
        # 6to4, Teredo and NAT64 addresses route to the IPv4 address inside them.
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal(embedded)
            return f"{inner} inside IPv6" if inner else None
        if address in ipaddress.ip_network("fc00::/7"):
            return "unique-local"
        if address.is_site_local:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in CGNAT:
        return "carrier-grade NAT"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None
