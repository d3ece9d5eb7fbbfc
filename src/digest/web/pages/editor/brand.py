"""A newsletter's brand on its page: what the Brand section shows (each error at its field)
and its live preview (desktop, phone, dark, plain text), redrawn by /static/brand-form.js
from /editor/newsletters/{id}/brand/preview as the editor types. Without script the page
shows the same after each save (the form posts to the newsletter pages' /brand)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from digest.editions import brand_preview, get_newsletter, newsletter_brand
from digest.mail import BRAND_FIELDS, FONTS, BrandError, check_brand
from digest.store import Newsletter
from digest.web.deps import EditorUser, services_of
from digest.web.forms import Form

router = APIRouter(prefix="/editor")
FIELD_MAX_CHARS = 2048  # the longest brand value (a logo's address); more is cut before checking


def brand_values(newsletter: Newsletter) -> dict[str, str]:
    """The form's values: the stored brand, "" for a default."""
    stored = newsletter_brand(newsletter).as_json()
    return {name: "" if stored[name] is None else str(stored[name]) for name in BRAND_FIELDS}


def brand_context(session: Session, newsletter: Newsletter, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None) -> dict[str, Any]:
    """What the Brand section shows: the values (typed, or stored), the errors at their
    fields, the fonts to choose from, and the preview of the typed brand where it is valid
    (of the stored one where it is not)."""
    values = values if values is not None else brand_values(newsletter)
    return {"brand_values": values, "brand_errors": errors or {}, "fonts": list(FONTS),
            "brand_preview": _preview(session, newsletter.id, values)}


def _preview(session: Session, newsletter_id: int, values: dict[str, str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    try:
        brand = check_brand(values)
    except BrandError as exc:
        errors, brand = exc.fields, None
    return {**brand_preview(session, newsletter_id, brand), "errors": errors}


def read_brand_form(form: Form) -> dict[str, str]:
    return {name: form.get(name)[:FIELD_MAX_CHARS] for name in BRAND_FIELDS}


@router.get("/newsletters/{newsletter_id}/brand/preview")
def brand_preview_json(request: Request, user: EditorUser, newsletter_id: int) -> Response:
    """The live preview of the typed brand: {html, dark_html, text, errors}; never an error
    status for a bad value, the errors are what it shows."""
    values = {name: request.query_params.get(name, "")[:FIELD_MAX_CHARS] for name in BRAND_FIELDS}
    with services_of(request).factory() as session:
        get_newsletter(session, newsletter_id)  # 404 for none
        return JSONResponse(_preview(session, newsletter_id, values))
