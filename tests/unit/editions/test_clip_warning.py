"""The preview's size warning: past 90 KB of HTML, before Gmail clips at 102 KB."""

from __future__ import annotations

from digest.editions import CLIP_WARNING_BYTES, clip_warning


def test_under_90_kb_nothing_is_said() -> None:
    assert clip_warning("x" * CLIP_WARNING_BYTES) is None


def test_over_90_kb_the_size_and_gmails_limit_are_named() -> None:
    warning = clip_warning("x" * (95 * 1024))

    assert warning is not None and warning.startswith("This edition's HTML is 95 KB: Gmail clips messages over 102 KB")


def test_the_size_is_counted_in_bytes_as_sent() -> None:
    assert clip_warning("é" * (CLIP_WARNING_BYTES // 2 + 1)) is not None  # two bytes each in UTF-8
