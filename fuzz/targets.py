"""atheris targets: every parser that takes bytes from outside, fed what a fuzzer makes.

`python fuzz/targets.py TARGET [libFuzzer options…]` (or `scripts/fuzz.sh TARGET SECONDS`).
Each target hands the bytes to one parser and lets through only the refusals that parser
documents (ParseError, InvalidReader, JsonTooDeep/ValueError for JSON): any other
exception, a hang past libFuzzer's timeout or a crash is a finding. A finding's input is
written to ./crash-… by libFuzzer; turn each into a regression test beside the parser's
own tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["digest"]):
    from digest.feedback import events_from_message, events_from_sendgrid, events_from_ses, token_from_message
    from digest.infra import load_json
    from digest.readers import ImportReport, InvalidReader, count_csv_rows
    from digest.readers.roster import read_csv_rows
    from digest.stories import ParseError, canonical_url, parse_json, parse_source
    from digest.stories.formats import parse_json_feed, parse_rss_atom, parse_sitemap
    from digest.stories.parse import html_to_text, parse_article

TOPICS = ["politics", "world", "business"]


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def feed(data: bytes) -> None:
    """RSS and Atom, under the rules every feed's items share."""
    try:
        parse_rss_atom(data)
    except ParseError:
        pass


def jsonfeed(data: bytes) -> None:
    """JSON Feed 1.0 and 1.1; and canonical_url on whatever text the bytes make."""
    try:
        parse_json_feed(data)
    except ParseError:
        pass
    canonical_url(_text(data))


def sitemap(data: bytes) -> None:
    """Google News sitemaps (lxml: no DTD, no entities, no network)."""
    try:
        parse_sitemap(data)
    except ParseError:
        pass


def json_source(data: bytes) -> None:
    try:
        parse_json(data)
    except ParseError:
        pass


def article(data: bytes) -> None:
    try:
        parse_article(_text(data), "https://news.example.com/a")
    except ParseError:
        pass
    html_to_text(_text(data))


def source(data: bytes) -> None:
    """Whatever an upload or a fetched URL holds: sniffed, then parsed."""
    try:
        parse_source(data, origin="upload")
    except ParseError:
        pass


def bounce(data: bytes) -> None:
    """DSNs (RFC 3464) and ARF reports (RFC 5965) mailed to the bounce box."""
    events_from_message(data)


def inbound(data: bytes) -> None:
    """Mail to the unsubscribe address."""
    token_from_message(data)


def webhook(data: bytes) -> None:
    """SES (inside SNS) and SendGrid webhook bodies, after the signature."""
    try:
        payload = load_json(data)
    except ValueError:
        return
    events_from_sendgrid(payload)
    events_from_ses(payload)
    if isinstance(payload, dict) and isinstance(payload.get("Message"), str):
        try:
            events_from_ses(load_json(payload["Message"]))
        except ValueError:
            pass


def csv_import(data: bytes) -> None:
    text = _text(data)
    try:
        count_csv_rows(text)
        for _ in read_csv_rows(text, TOPICS, ImportReport()):
            pass
        for _ in read_csv_rows(text, TOPICS, ImportReport(), service=None):  # any service's layout, detected
            pass
    except InvalidReader:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "feed": feed, "jsonfeed": jsonfeed, "sitemap": sitemap, "json": json_source, "article": article,
    "source": source, "bounce": bounce, "inbound": inbound, "webhook": webhook, "csv": csv_import,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
