"""Which clicks are a machine's: the rules, as constants (docs/clicks.md lists them).

A click is a machine's when it is
- a HEAD request (a person's browser sends GET);
- from a user agent naming a link scanner, a link preview, a crawler or an HTTP library
  (MACHINE_AGENTS, matched case-insensitively anywhere in the header), or from none at all;
- on a copy sent less than `DIGEST_CLICK_SCAN_SECONDS` (20 s) before: scanners at the
  receiving end (Microsoft Safe Links, Mimecast, Proofpoint, Barracuda) open every link
  within seconds of delivery, people do not;
- part of a burst: a second, different link of the same copy within BURST_SECONDS of the
  one before; that click and the copy's earlier ones are then all counted as machine;
- past FLOOD_CLICKS_PER_MINUTE from one address (the address is kept as a keyed hash in
  Redis for the minute, nowhere else).
"""

from __future__ import annotations

BURST_SECONDS = 2
FLOOD_CLICKS_PER_MINUTE = 60
FLOOD_WINDOW_SECONDS = 60

# Substrings of User-Agent headers sent by link scanners, previews, crawlers and libraries.
MACHINE_AGENTS = (
    # security scanners and mail gateways
    "safelinks", "safe links", "mimecast", "proofpoint", "barracuda", "urldefense", "ironport", "fireeye",
    "trendmicro", "forcepoint", "symantec", "sophos", "microsoft office", "ms-office", "msoffice",
    # link previews and social cards
    "preview", "facebookexternalhit", "slackbot", "twitterbot", "linkedinbot", "whatsapp", "telegrambot",
    "discordbot", "skypeuripreview", "embedly", "pinterest", "redditbot", "applebot", "googleimageproxy",
    # crawlers and monitors
    "bot", "crawler", "spider", "slurp", "headlesschrome", "phantomjs", "uptime", "pingdom",
    # HTTP libraries and tools
    "curl", "wget", "python-requests", "python-httpx", "python-urllib", "aiohttp", "go-http-client",
    "okhttp", "java/", "libwww", "httpclient", "axios", "node-fetch",
)


def is_machine_agent(user_agent: str | None) -> bool:
    if not user_agent or not user_agent.strip():
        return True
    lowered = user_agent.lower()
    return any(word in lowered for word in MACHINE_AGENTS)
