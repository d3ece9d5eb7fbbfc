"""The public archive of sent editions, and its RSS feed. No per-reader data: pages are
built from the edition's stories, never from a reader's copy."""

from __future__ import annotations

from email.utils import format_datetime
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from digest.editions import edition_view
from digest.store import Edition, EditionStatus
from digest.web.forms import BadRequest

router = APIRouter()
ARCHIVE_PAGE_SIZE = 50


def _sent(request: Request) -> list[Edition]:
    services = request.app.state.services
    with services.factory() as session:
        return list(session.scalars(
            select(Edition).where(Edition.status == EditionStatus.SENT)
            .order_by(Edition.send_at.desc(), Edition.id.desc()).limit(ARCHIVE_PAGE_SIZE)))


@router.get("/archive")
def archive(request: Request) -> Response:
    return request.app.state.templates.TemplateResponse(request, "archive.html", {"editions": _sent(request)})


@router.get("/archive/{edition_id}")
def archived_edition(request: Request, edition_id: int) -> Response:
    services = request.app.state.services
    with services.factory() as session:
        edition = session.get(Edition, edition_id)
        if edition is None or edition.status != EditionStatus.SENT:
            raise BadRequest(404, "Not in the archive", "There is no sent edition with that number.")
        view = edition_view(session, edition)
    return request.app.state.templates.TemplateResponse(request, "archive_edition.html", {"edition": view})


@router.get("/archive.rss")
def archive_rss(request: Request) -> Response:
    settings = request.app.state.services.settings
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = f"{settings.sender_name}: featured stories"
    ET.SubElement(channel, "link").text = f"{settings.base_url}/archive"
    ET.SubElement(channel, "description").text = "Past editions of the featured-stories email."
    for edition in _sent(request):
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = edition.subject
        ET.SubElement(item, "link").text = f"{settings.base_url}/archive/{edition.id}"
        ET.SubElement(item, "guid", isPermaLink="true").text = f"{settings.base_url}/archive/{edition.id}"
        ET.SubElement(item, "pubDate").text = format_datetime(edition.finished_at or edition.send_at)
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(rss, encoding="utf-8")
    return Response(body, media_type="application/rss+xml; charset=utf-8")
