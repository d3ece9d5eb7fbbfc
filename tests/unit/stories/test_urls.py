"""canonical_url: one address per article, whatever campaign linked it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.stories import canonical_url
from digest.stories.parse import URL_RE


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://News.Example.COM/2023/05/Story", "https://news.example.com/2023/05/Story"),
    ("HTTPS://news.example.com/a", "https://news.example.com/a"),
    ("https://news.example.com", "https://news.example.com/"),
    ("https://news.example.com?id=3", "https://news.example.com/?id=3"),
    ("http://news.example.com:80/a", "http://news.example.com/a"),
    ("https://news.example.com:443/a", "https://news.example.com/a"),
    ("https://news.example.com:/a", "https://news.example.com/a"),
    ("http://news.example.com:443/a", "http://news.example.com:443/a"),  # not http's port
    ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
    ("https://news.example.com/a#comments", "https://news.example.com/a"),
    ("https://news.example.com/a?", "https://news.example.com/a"),
    ("https://news.example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x&utm_term=y&utm_content=z",
     "https://news.example.com/a"),
    ("https://news.example.com/a?b=2&utm_source=rss&a=1&fbclid=IwAR0", "https://news.example.com/a?b=2&a=1"),
    ("https://news.example.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5&_ga=6&_gl=7&igshid=8",
     "https://news.example.com/a"),
    ("https://news.example.com/a?ref=homepage&cmpid=nl&ocid=msn&id=9", "https://news.example.com/a?id=9"),
    ("https://news.example.com/a?UTM_Source=x&Ref=y&q=1", "https://news.example.com/a?q=1"),  # names any case
    ("https://news.example.com/a?utm%5Fsource=x&q=1", "https://news.example.com/a?q=1"),  # names decoded
    ("https://news.example.com/a?reference=1&referrer=2&utm=3", "https://news.example.com/a?reference=1&referrer=2&utm=3"),
    ("https://news.example.com/a?q=%20x+y&Z=%7E&q=2", "https://news.example.com/a?q=%20x+y&Z=%7E&q=2"),  # as spelt
    ("https://news.example.com/a?page=2&&utm_source=x", "https://news.example.com/a?page=2"),
    ("https://news.example.com/A/%7Euser/./b/../c;v=1", "https://news.example.com/A/%7Euser/./b/../c;v=1"),
    ("https://news.example.com/a/?id=1", "https://news.example.com/a/?id=1"),
    ("https://Desk:PW@News.Example.com:443/a", "https://Desk:PW@news.example.com/a"),
    ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
    ("http://[2001:db8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
    ("https://news.example.com:99999999999/a", "https://news.example.com:99999999999/a"),
    ("https://news.example.com:ab/a", "https://news.example.com:ab/a"),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize("url", ["mailto:desk@news.example.com", "/2023/05/story", "http://[::1/a", "", "news.example.com"])
def test_what_is_not_an_absolute_url_is_returned_as_it_is(url: str) -> None:
    assert canonical_url(url) == url


URLS = st.from_regex(URL_RE, fullmatch=True)


@given(URLS)
def test_canonical_url_is_idempotent_and_keeps_a_url_a_url(url: str) -> None:
    once = canonical_url(url)

    assert canonical_url(once) == once
    assert URL_RE.fullmatch(once), once
