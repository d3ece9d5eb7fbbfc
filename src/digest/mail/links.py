"""Click links: every story link and the masthead link of a digest go through a signed
redirect, `<base>/c/<edition>/<story>/<variant>/<signature>/<nonce>`.

The signature is an HMAC-SHA256 (a key derived from DIGEST_SECRET_KEY, truncated to 128
bits) over the edition, the story and the subject variant; the target is looked up from the
stored story, never read from the link, so the redirect cannot be pointed anywhere else.
Story 0 is the masthead (the publisher's site).

The nonce is the one per-reader part: the send time in hex, a random value per process and
a counter, filled into the rendered edition like the reader's name (microseconds). It says
"one delivered copy" and nothing about whose: it is neither stored with the delivery nor
derivable from the reader, so the unique-clicker estimate never learns who clicked. It is
not signed: a changed nonce only makes a click count as another copy's (the per-address
flood limit bounds that) or, with a fresh send time, as a machine's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import re
import secrets
import time

MASTHEAD_STORY = 0
# Previews and test copies: their links redirect like a reader's and are never counted.
TEST_NONCE = "test"
SIGNATURE_BYTES = 16
NONCE_PATTERN = re.compile(r"^(?:[0-9a-f]{8}[0-9a-f]{8}[0-9a-f]{1,16}|test)$")

_NONCE_PREFIX = secrets.token_hex(4)
_nonces = itertools.count(1)


def _new_process() -> None:
    """A forked child (Celery's prefork pool forks after this module is imported) takes its
    own prefix and counter: with the parent's, two children made the same nonces in the same
    second, and two readers' copies counted as one in the unique count."""
    global _NONCE_PREFIX, _nonces
    _NONCE_PREFIX = secrets.token_hex(4)
    _nonces = itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


def click_key(secret_key: str) -> bytes:
    """The key click links are signed with: derived, so a click signature says nothing about
    the secret that signs sessions, tokens and Message-IDs."""
    return hmac.digest(secret_key.encode("utf-8"), b"digest.clicks.v1", "sha256")


def click_signature(key: bytes, edition_id: int, story_id: int, variant: int) -> str:
    mac = hmac.digest(key, f"{edition_id}:{story_id}:{variant}".encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(mac[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def click_prefix(base_url: str, key: bytes, edition_id: int, story_id: int, variant: int) -> str:
    """The shared part of a click link; the reader's nonce follows it."""
    return f"{base_url}/c/{edition_id}/{story_id}/{variant}/{click_signature(key, edition_id, story_id, variant)}/"


def valid_click(key: bytes, edition_id: int, story_id: int, variant: int, signature: str) -> bool:
    expected = click_signature(key, edition_id, story_id, variant)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def new_click_nonce() -> str:
    """One delivered copy's nonce: send time (8 hex), this process's random prefix (8 hex),
    a counter. Unique across processes without a syscall per message."""
    return f"{int(time.time()):08x}{_NONCE_PREFIX}{next(_nonces):x}"


def nonce_sent_at(nonce: str) -> int | None:
    """The send time a nonce carries (Unix seconds); None for a test copy's."""
    return None if nonce == TEST_NONCE else int(nonce[:8], 16)


def hash_nonce(key: bytes, nonce: str) -> str:
    """What Redis sees of a nonce: a keyed hash, so not even the burst check keeps the nonce."""
    return hmac.digest(key, nonce.encode("ascii"), "sha256")[:12].hex()


# Per-reader click history (only for a reader who consented, in a newsletter that offers it):
# the copy's links end with `r<reader id, hex>s<tag>` after the nonce, the tag an HMAC over
# the nonce and the reader (its own derived key), so it names one reader for one copy and
# cannot be made for anyone else without the secret. Everyone else's links have nothing there.
READER_TAG_BYTES = 12
_READER_PART = re.compile(r"^([0-9a-f]{17,32})r([1-9a-f][0-9a-f]{0,15})s([0-9a-f]{24})$")


def history_key(secret_key: str) -> bytes:
    return hmac.digest(secret_key.encode("utf-8"), b"digest.clicks.history.v1", "sha256")


def reader_part(key: bytes, nonce: str, reader_id: int) -> str:
    """What follows the nonce in the links of a reader whose clicks are remembered."""
    tag = hmac.digest(key, f"{nonce}:{reader_id}".encode("ascii"), "sha256")[:READER_TAG_BYTES].hex()
    return f"r{reader_id:x}s{tag}"


def split_reader(key: bytes, nonce: str) -> tuple[str, int | None] | None:
    """(the nonce, the reader or None) of a link's last part; None when it names a reader
    with a tag that is not ours (a forged or altered link)."""
    if "r" not in nonce:
        return nonce, None
    found = _READER_PART.match(nonce)
    if found is None:
        return None
    bare, reader_id = found.group(1), int(found.group(2), 16)
    expected = reader_part(key, bare, reader_id)
    if not hmac.compare_digest(expected.encode("ascii"), nonce[len(bare):].encode("ascii")):
        return None
    return bare, reader_id


# The open pixel: `<base>/o/<edition>/<variant>/<signature>/<nonce>.gif`, the signature over
# "open:<edition>:<variant>" with the click key (no click signature can stand for it).
def open_signature(key: bytes, edition_id: int, variant: int) -> str:
    mac = hmac.digest(key, f"open:{edition_id}:{variant}".encode("ascii"), "sha256")
    return base64.urlsafe_b64encode(mac[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def open_prefix(base_url: str, key: bytes, edition_id: int, variant: int) -> str:
    return f"{base_url}/o/{edition_id}/{variant}/{open_signature(key, edition_id, variant)}/"


def valid_open(key: bytes, edition_id: int, variant: int, signature: str) -> bool:
    expected = open_signature(key, edition_id, variant)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))
