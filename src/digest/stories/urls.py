"""One address per article: the same story linked with and without tracking parameters is
one story, not two.

Pure: no network; a URL is never fetched to find where it leads.
"""

from __future__ import annotations

from urllib.parse import unquote_plus, urlsplit

# Query parameters that say who sent the reader, never which page: dropped (names compared
# lowercased). utm_*: Google Analytics campaigns; fbclid, gclid, dclid, gbraid, wbraid,
# msclkid, yclid, twclid, ttclid, li_fat_id: ad platforms' click ids; mc_cid, mc_eid:
# Mailchimp; _hsenc, _hsmi: HubSpot; mkt_tok: Marketo; _ga, _gl: Google's cross-site ids;
# igshid: Instagram shares; ref, cmpid, ocid, s_cid, at_medium, at_campaign: publishers'
# own campaign tags (CNN, MSN, Adobe, AT Internet).
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "_ga", "_gl", "igshid",
    "ref", "cmpid", "ocid", "s_cid", "at_medium", "at_campaign",
})
TRACKING_PARAM_PREFIXES = ("utm_",)
DEFAULT_PORTS = {"http": "80", "https": "443"}


def canonical_url(url: str) -> str:
    """`url` as one story's address: scheme and host lowercased, the scheme's default port,
    the fragment and tracking parameters (TRACKING_PARAMS, utm_*) dropped, the other
    parameters kept in their order and spelling, the path left alone except that an empty
    one becomes "/". Idempotent. Anything without a scheme and a host, or that urllib cannot
    split (a broken IPv6 literal), is returned as it is: this names URLs, it does not check
    them (parse's URL check does)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    scheme = parts.scheme.lower()
    netloc = _netloc(scheme, parts.netloc)
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _tracking(pair))
    return f"{scheme}://{netloc}{parts.path or '/'}{'?' + query if query else ''}"


def _netloc(scheme: str, netloc: str) -> str:
    """The host lowercased and a default (or empty) port dropped; user info kept as it is."""
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port:  # no port, or the colons of an IPv6 literal
        host, port = hostport, ""
    elif port and (not port.isascii() or not port.isdigit()):
        host, port = hostport, ""  # not a port: leave it to the URL check
    if port == DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{userinfo}{at}{host.lower()}{':' + port if port else ''}"


def _tracking(pair: str) -> bool:
    name = unquote_plus(pair.split("=", 1)[0]).lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PARAM_PREFIXES)
