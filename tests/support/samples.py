"""Sample data: the topics the sample stories use, the window that reaches them, and source
bytes (RSS, Atom) for the parsers."""

from __future__ import annotations

TOPICS = ["politics", "world", "business", "technology", "science", "health", "sports", "culture"]
SAMPLE_WINDOW_HOURS = 24 * 365 * 10  # the sample stories are from May 2023

# An RSS 2.0 feed: HTML in a description, categories (one of them "featured"), an
# enclosure image, a +0200 date, and an item without a link that cannot be a story.
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example.com/</link><description>d</description>
<item><title>First &amp; foremost</title><link>https://news.example.com/first</link>
<description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt; &amp;amp; more.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Second paragraph.&lt;/p&gt;</description>
<category>Politics</category><category>World News</category><category>featured</category>
<enclosure url="https://news.example.com/first.jpg" type="image/jpeg" length="1"/>
<pubDate>Mon, 22 May 2023 10:00:00 GMT</pubDate><author>desk@news.example.com (Ann Lee)</author></item>
<item><title>Second</title><link>https://news.example.com/second</link><description>Plain summary.</description>
<pubDate>Tue, 23 May 2023 10:00:00 +0200</pubDate></item>
<item><title>No link, so not a story</title><description>x</description></item>
</channel></rss>"""

# An Atom feed: an HTML title, HTML summary and content, a published date with an offset.
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title><id>urn:news</id><updated>2023-05-22T10:00:00Z</updated>
<entry><title type="html">Atom &lt;em&gt;headline&lt;/em&gt; &amp;amp; co</title>
<link rel="alternate" href="https://news.example.com/atom-1"/><id>urn:1</id>
<updated>2023-05-22T10:00:00Z</updated><published>2023-05-21T09:30:00+01:00</published>
<summary type="html">&lt;p&gt;Atom &lt;a href="https://x.example"&gt;summary&lt;/a&gt; text.&lt;/p&gt;</summary>
<content type="html">&lt;p&gt;Para one.&lt;/p&gt;&lt;p&gt;Para &lt;i&gt;two&lt;/i&gt;.&lt;/p&gt;</content>
<category term="Science"/><category term="technology"/><author><name>Bea Ray</name></author></entry>
</feed>"""
