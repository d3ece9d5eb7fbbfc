"""The public archive of sent editions, all of them or one newsletter's, and their RSS feeds.
No per-reader data: pages are built from the edition's stories, never from a reader's copy."""

from __future__ import annotations

from collections import defaultdict
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions import edition_view, list_newsletters, newsletter_brand
from digest.mail import reader_page_accent
from digest.store import Edition, EditionStatus, EditionStory, Newsletter, Story
from digest.web.deps import services_of
from digest.web.forms import BadRequest

router = APIRouter()
ARCHIVE_PAGE_SIZE = 50


def _sent(session: Session, newsletter_id: int | None = None) -> list[Edition]:
    query = select(Edition).where(Edition.status == EditionStatus.SENT)
    if newsletter_id is not None:
        query = query.where(Edition.newsletter_id == newsletter_id)
    return list(session.scalars(query.order_by(Edition.send_at.desc(), Edition.id.desc()).limit(ARCHIVE_PAGE_SIZE)))


def _newsletter(session: Session, slug: str) -> Newsletter:
    newsletter = session.scalar(select(Newsletter).where(Newsletter.slug == slug))
    if newsletter is None:
        raise BadRequest(404, "Not in the archive", "There is no newsletter with that name.")
    return newsletter


def _headlines(session: Session, editions: list[Edition]) -> dict[int, list[str]]:
    """Each edition's headlines, in order, as most readers got them: one query for all."""
    limits = {e.id: e.max_stories for e in editions}
    found: dict[int, list[str]] = defaultdict(list)
    for edition_id, title in session.execute(
            select(EditionStory.edition_id, Story.title).join(Story, Story.id == EditionStory.story_id)
            .where(EditionStory.edition_id.in_(list(limits)), EditionStory.pulled_at.is_(None))
            .order_by(EditionStory.edition_id, EditionStory.position)):
        if len(found[edition_id]) < limits[edition_id]:
            found[edition_id].append(title)
    return found


def _page(request: Request, newsletter: Newsletter | None, editions: list[Edition],
          newsletters: list[Newsletter]) -> Response:
    return request.app.state.templates.TemplateResponse(request, "archive.html", {
        "editions": editions, "newsletter": newsletter, "newsletters": newsletters,
        "accent": reader_page_accent(newsletter_brand(newsletter)) if newsletter else None})


@router.get("/archive")
def archive(request: Request) -> Response:
    with services_of(request).factory() as session:
        return _page(request, None, _sent(session), list_newsletters(session, active_only=True))


# Before /archive/newsletters/{slug}, which would take "morning.rss" for a slug.
@router.get("/archive/newsletters/{slug}.rss")
def newsletter_rss(request: Request, slug: str) -> Response:
    with services_of(request).factory() as session:
        newsletter = _newsletter(session, slug)
        editions = _sent(session, newsletter.id)
        return _rss(request, newsletter, editions, _headlines(session, editions))


@router.get("/archive/newsletters/{slug}")
def newsletter_archive(request: Request, slug: str) -> Response:
    with services_of(request).factory() as session:
        newsletter = _newsletter(session, slug)
        return _page(request, newsletter, _sent(session, newsletter.id), [])


@router.get("/archive/{edition_id}")
def archived_edition(request: Request, edition_id: int) -> Response:
    with services_of(request).factory() as session:
        edition = session.get(Edition, edition_id)
        # A reader opens "view in browser" from their copy while the rest are still going out.
        if edition is None or edition.status not in (EditionStatus.SENT, EditionStatus.SENDING, EditionStatus.PAUSED):
            raise BadRequest(404, "Not in the archive", "There is no sent edition with that number.")
        view = edition_view(session, edition)
    accent = reader_page_accent(view.brand) if edition.newsletter_id is not None else None
    return request.app.state.templates.TemplateResponse(request, "archive_edition.html",
                                                        {"edition": view, "accent": accent})


def _rss(request: Request, newsletter: Newsletter | None, editions: list[Edition],
         headlines: dict[int, list[str]]) -> Response:
    settings = services_of(request).settings
    name = newsletter.name if newsletter else "featured stories"
    link = f"{settings.base_url}/archive" + (f"/newsletters/{newsletter.slug}" if newsletter else "")
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = f"{settings.sender_name}: {name}"
    ET.SubElement(channel, "link").text = link
    ET.SubElement(channel, "description").text = f"Past editions of {settings.sender_name}'s {name} by email."
    for edition in editions:
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = edition.subject
        ET.SubElement(item, "link").text = f"{settings.base_url}/archive/{edition.id}"
        ET.SubElement(item, "guid", isPermaLink="true").text = f"{settings.base_url}/archive/{edition.id}"
        ET.SubElement(item, "pubDate").text = format_datetime(edition.finished_at or edition.send_at)
        # The edition's headlines, as plain text lines: what a feed reader shows under the title.
        ET.SubElement(item, "description").text = "\n".join(headlines.get(edition.id, [])) or edition.subject
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(rss, encoding="utf-8")
    return Response(body, media_type="application/rss+xml; charset=utf-8")


@router.get("/archive.rss")
def archive_rss(request: Request) -> Response:
    with services_of(request).factory() as session:
        editions = _sent(session)
        return _rss(request, None, editions, _headlines(session, editions))
