"""The shared machinery under the domains: Redis (one client per process, rate limits,
token buckets, the departures channel), signed tokens (confirmation links, CSRF), the
one safe way to fetch a URL from the server (`fetch`: public addresses only, a deadline
and a size cap), and JSON from outside read with a bound on its nesting.

Nothing here knows the database or the domain rules; the packages above decide what to
count, what to announce and what to sign.
"""

from digest.infra.departures import DepartureWatch, announce_after_commit, watch
from digest.infra.fetch import (
    Fetched,
    FetchError,
    FetchRefused,
    FetchStatus,
    FetchTimeout,
    FetchTooLarge,
    fetch,
)
from digest.infra.jsontext import JSON_MAX_DEPTH, JsonTooDeep, load_json
from digest.infra.ratelimit import RateLimiter, TokenBucket, process_client
from digest.infra.tokens import (
    TokenError,
    check_csrf_token,
    make_confirm_token,
    make_csrf_token,
    new_csrf_secret,
    read_confirm_token,
)

__all__ = [
    "DepartureWatch",
    "FetchError",
    "FetchRefused",
    "FetchStatus",
    "FetchTimeout",
    "FetchTooLarge",
    "Fetched",
    "JSON_MAX_DEPTH",
    "JsonTooDeep",
    "RateLimiter",
    "TokenBucket",
    "TokenError",
    "announce_after_commit",
    "check_csrf_token",
    "fetch",
    "load_json",
    "make_confirm_token",
    "make_csrf_token",
    "new_csrf_secret",
    "process_client",
    "read_confirm_token",
    "watch",
]
