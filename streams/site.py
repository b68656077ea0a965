"""A small news site on loopback (pages with nav, sidebars, comments, and an RSS feed) for demo and tests."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web


@dataclass(frozen=True)
class Page:
    """One article of the site."""

    slug: str
    title: str
    date: str
    byline: str
    body: tuple[str, ...]
    comments: tuple[str, ...] = ()
    # A syndicated copy: another URL serving the same article.
    copy_of: str | None = None


@dataclass
class Site:
    """The site's articles, its sidebar and extra feed entries that lead to non-articles."""

    name: str
    sidebar_title: str
    sidebar: list[str]
    pages: list[Page]
    extras: list[dict[str, str]] = field(default_factory=list)
    # Raw bytes served at a path instead of a rendered page (broken pages, binaries).
    raw: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def page(self, slug: str) -> Page:
        # Positions by slug, checked on use and rebuilt when stale: the benches serve thousands of pages and
        # a feed lists them all, so a scan per lookup made each feed quadratic.
        at = self._index.get(slug)
        if at is None or at >= len(self.pages) or self.pages[at].slug != slug:
            self._index = {p.slug: i for i, p in enumerate(self.pages)}
            at = self._index[slug]
        p = self.pages[at]
        if p.copy_of:
            original = self.page(p.copy_of)
            return Page(
                slug, original.title, original.date, original.byline, original.body, original.comments
            )
        return p


def load_site(path: Path | None = None) -> Site:
    """Read a site description (YAML); the bundled demo site by default."""
    if path is None:
        text = resources.files("streams.demo_site").joinpath("articles.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    pages = [
        Page(
            slug=a["slug"],
            title=a.get("title", ""),
            date=a.get("date", ""),
            byline=a.get("byline", ""),
            body=tuple(a.get("body", ())),
            comments=tuple(a.get("comments", ())),
            copy_of=a.get("copy_of"),
        )
        for a in doc["articles"]
    ]
    side = doc.get("sidebar", {})
    return Site(
        doc["site"], side.get("title", ""), list(side.get("items", [])), pages, list(doc.get("extras", []))
    )


def demo_watchlist_path() -> Path:
    """Where the bundled demo watchlist is installed."""
    return Path(str(resources.files("streams.demo_site").joinpath("watchlist.yaml")))


def render_page(site: Site, page: Page, base: str) -> str:
    """An article page as real sites serve it: nav, article, related list, sidebar, comments, footer."""
    e = html.escape
    paragraphs = "\n".join(f"      <p>{e(p)}</p>" for p in page.body)
    sidebar = "\n".join(
        f'        <li><a href="{base}/news/side-{i}.html">{e(t)}</a></li>' for i, t in enumerate(site.sidebar)
    )
    # The ten latest other stories, as a real related list shows: not the whole archive.
    others = [p for p in site.pages if p.slug != page.slug and not p.copy_of][-10:]
    related = "\n".join(
        f'        <li><a href="{base}/news/{p.slug}.html">{e(p.title)}</a></li>' for p in others
    )
    comments = "\n".join(
        f'      <div class="comment"><span class="author">reader{i + 1}</span><p>{e(c)}</p></div>'
        for i, c in enumerate(page.comments)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{e(page.title)} | {e(site.name)}</title>
  <link rel="canonical" href="{base}/news/{page.slug}.html?utm_source=canonical">
  <meta property="article:published_time" content="{e(page.date)}">
  <meta name="author" content="{e(page.byline.removeprefix("By "))}">
</head>
<body>
  <header>
    <div class="logo"><a href="{base}/">{e(site.name)}</a></div>
    <nav class="main-nav"><ul>
      <li><a href="{base}/">Home</a></li><li><a href="{base}/africa">Africa</a></li>
      <li><a href="{base}/middle-east">Middle East</a></li><li><a href="{base}/opinion">Opinion</a></li>
      <li><a href="{base}/newsletter">Subscribe</a></li>
    </ul></nav>
  </header>
  <main>
    <article class="story">
      <h1>{e(page.title)}</h1>
      <p class="byline">{e(page.byline)} · <time datetime="{e(page.date)}">{e(page.date[:10])}</time></p>
{paragraphs}
    </article>
    <section class="related"><h2>Related stories</h2><ul>
{related}
    </ul></section>
    <aside class="sidebar"><h2>{e(site.sidebar_title)}</h2><ul>
{sidebar}
    </ul></aside>
    <section id="comments" class="comments"><h2>Comments</h2>
{comments}
    </section>
  </main>
  <footer><p>© 2020 {e(site.name)}. All rights reserved.</p><a href="{base}/privacy">Privacy</a></footer>
</body>
</html>
"""


def _rfc822(date: str) -> str:
    try:
        return format_datetime(datetime.fromisoformat(date.replace("Z", "+00:00")))
    except ValueError:
        return ""


def render_feed(site: Site, base: str) -> str:
    """An RSS 2.0 feed with every page and the extra entries."""
    e = html.escape
    shown = (site.page(p.slug) for p in site.pages)
    items = [
        f"""    <item>
      <title>{e(p.title)}</title>
      <link>{base}/news/{p.slug}.html?utm_source=rss&amp;utm_medium=feed</link>
      <guid isPermaLink="false">{e(site.name)}-{e(p.slug)}</guid>
      <pubDate>{_rfc822(p.date)}</pubDate>
      <description>{e(p.body[0][:160] if p.body else "")}</description>
    </item>"""
        for p in shown
    ]
    items += [
        f"""    <item>
      <title>{e(x["title"])}</title>
      <link>{base}{x["path"]}</link>
    </item>"""
        for x in site.extras
    ]
    joined = "\n".join(items)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>{e(site.name)}</title>
    <link>{base}/</link>
    <description>News from North Africa and the Sahel</description>
{joined}
  </channel>
</rss>
"""


async def serve_loopback(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve app on loopback (a free port unless given): the runner to clean up, and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, host, port)
    await tcp.start()
    bound = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound}"


class SiteServer:
    """Serves a Site on 127.0.0.1 with a free port; the feed honours If-None-Match."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.base = ""
        self.requests: list[str] = []
        self.not_modified = 0
        self._runner: web.AppRunner | None = None
        #: A WebSub hub the feed advertises (in a Link header, as many publishers do), when set.
        self.hub: str | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(path)
        for extra in self.site.extras:
            if extra["path"] == path and "html" in extra:
                return web.Response(text=extra["html"], content_type="text/html")
        if path in self.site.raw:
            ctype, body = self.site.raw[path]
            return web.Response(body=body, headers={"Content-Type": ctype})
        if path == "/feed.xml":
            body = render_feed(self.site, self.base).encode()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == etag:
                self.not_modified += 1
                return web.Response(status=304, headers={"ETag": etag})
            headers = {"Content-Type": "application/rss+xml", "ETag": etag}
            if self.hub:
                headers["Link"] = f'<{self.hub}>; rel="hub", <{self.feed_url}>; rel="self"'
            return web.Response(body=body, headers=headers)
        if path.endswith(".pdf"):
            return web.Response(
                body=b"%PDF-1.4\n% not an article\n", headers={"Content-Type": "application/pdf"}
            )
        if path.startswith("/news/") and path.endswith(".html"):
            slug = path.removeprefix("/news/").removesuffix(".html")
            try:
                page = self.site.page(slug)
            except KeyError:
                raise web.HTTPNotFound() from None
            return web.Response(text=render_page(self.site, page, self.base), content_type="text/html")
        raise web.HTTPNotFound()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner, self.base = await serve_loopback(app)
        return self.base

    @property
    def feed_url(self) -> str:
        return f"{self.base}/feed.xml"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
