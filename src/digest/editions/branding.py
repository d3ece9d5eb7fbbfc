"""A newsletter's brand as stored (the `brand_*` columns of `newsletters`) and its one
writer; the values are checked by digest.mail.brand, the only place that knows the rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions.newsletters import NewsletterArchived, get_newsletter
from digest.mail import BRAND_FIELDS, DEFAULT_BRAND, Brand, check_brand
from digest.store import Newsletter, NewsletterSubscription


def newsletter_brand(newsletter: Newsletter | None) -> Brand:
    """Its brand; the default look for none (a one-off edition, a reader with no newsletter)."""
    if newsletter is None:
        return DEFAULT_BRAND
    return Brand(**{name: getattr(newsletter, f"brand_{name}") for name in BRAND_FIELDS})


def set_brand(session: Session, ref: str | int, changes: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Apply `changes` (brand field names; None or "" for the default), every value checked
    first (BrandError names each bad one). Returns each field changed as (was, now)."""
    newsletter = get_newsletter(session, ref)
    if newsletter.archived_at is not None:
        raise NewsletterArchived(f"{newsletter.name} is archived: restore it to change it")
    before = newsletter_brand(newsletter)
    after = check_brand(changes, before)
    changed = {name: (getattr(before, name), getattr(after, name)) for name in BRAND_FIELDS
               if getattr(before, name) != getattr(after, name)}
    for name, (_, value) in changed.items():
        setattr(newsletter, f"brand_{name}", value)
    session.flush()
    return changed


def reader_brand(session: Session, subscriber_id: int) -> Brand:
    """The brand of a message to one reader outside an edition (the confirmation, the
    welcome): the first newsletter they take, by id; the default when they take none."""
    newsletter = session.scalar(
        select(Newsletter).join(NewsletterSubscription, NewsletterSubscription.newsletter_id == Newsletter.id)
        .where(NewsletterSubscription.subscriber_id == subscriber_id).order_by(Newsletter.id).limit(1))
    return newsletter_brand(newsletter)
