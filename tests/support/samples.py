"""Sample data: the topics the sample stories use, the window that reaches them, and source
bytes (RSS, Atom, an article page) for the parsers."""

from __future__ import annotations

import json
from html import escape

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


def article_page(plain: str, url: str, *, description: str | None = None, json_ld: bool = True,
                 open_graph: bool = True) -> bytes:
    """The plain-text sample article (title line, date line, paragraphs, a caption, then the
    site's boilerplate) as a publisher's HTML page: a nav, the story with a figure and its
    caption, a "Get the featured stories in your email" form and related headlines around
    it; JSON-LD (NewsArticle) and OpenGraph/article: meta in the head, as asked."""
    blocks = [" ".join(b.split()) for b in plain.replace("\r\n", "\n").split("\n\n") if b.strip()]
    title, date_line = blocks[0], blocks[1]
    end = next(i for i, b in enumerate(blocks) if b.startswith("Read more"))
    story, related = blocks[2:end], blocks[end + 2:]  # end + 1: the sign-up line, a form here
    paragraphs = "\n".join(
        f'<figure><img src="/images/bakhmut.jpg" alt=""><figcaption>{escape(p)}</figcaption></figure>'
        if p.startswith("PHOTO:") else f"<p>{escape(p)}</p>" for p in story)
    ld = {"@context": "https://schema.org", "@graph": [
        {"@type": "WebSite", "name": "Political IQ", "url": "https://news.example.com/"},
        {"@type": "NewsArticle", "headline": title, "datePublished": "2023-05-22T00:00:00Z",
         "author": [{"@type": "Person", "name": "Dana Whit"}], "image": {"@type": "ImageObject",
         "url": "https://news.example.com/images/bakhmut.jpg"}, "articleSection": "World",
         "keywords": ["Ukraine", "Russia", "Bakhmut"], "mainEntityOfPage": url},
    ]}
    head = [f"<title>{escape(title)} | Political IQ</title>", f'<link rel="canonical" href="{url}">']
    if description:
        head.append(f'<meta name="description" content="{escape(description)}">')
    if open_graph:
        head += [f'<meta property="og:title" content="{escape(title)}">', '<meta property="og:type" content="article">',
                 f'<meta property="og:url" content="{url}">',
                 '<meta property="og:image" content="https://news.example.com/images/og-bakhmut.jpg">',
                 '<meta property="article:published_time" content="2023-05-22T00:00:00+00:00">',
                 '<meta property="article:section" content="World">', '<meta property="article:tag" content="Ukraine">',
                 '<meta property="article:author" content="https://www.facebook.com/politicaliq">']
    if json_ld:
        head.append(f'<script type="application/ld+json">{json.dumps(ld)}</script>')
    nav = "".join(f'<li><a href="/{t}">{t.title()}</a></li>' for t in TOPICS)
    links = "".join(f'<li><a href="/2023/05/{i}">{escape(h)}</a></li>' for i, h in enumerate(related))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{chr(10).join(head)}
</head><body>
<header><a href="/" class="logo">Political IQ</a><nav aria-label="Sections"><ul>{nav}</ul></nav></header>
<main>
<article>
<h1>{escape(title)}</h1>
<p class="byline">By Dana Whit · <time datetime="2023-05-22">{escape(date_line)}</time></p>
{paragraphs}
</article>
<aside class="newsletter-signup"><form action="/subscribe" method="post">
<h2>Get the featured stories in your email</h2><p>Don't miss out on important news.</p>
<label>Email <input type="email" name="email"></label><button>Sign up</button></form></aside>
<section class="related"><h2>Related stories</h2><ul>{links}</ul></section>
</main>
<footer><p>© 2023 Political IQ. All rights reserved.</p></footer>
</body></html>""".encode()
