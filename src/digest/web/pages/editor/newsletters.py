"""The new-newsletter form: a recurring digest with its schedule, audience and format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from digest import actions
from digest.errors import Invalid
from digest.store import Subscriber, SubscriberStatus
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.pages.editor.common import editor_form_page, int_field, see_other

router = APIRouter(prefix="/editor")
FIELDS = ("slug", "name", "sender_name", "cron", "timezone", "max_stories", "min_stories", "subject_template")


def _newsletter_page(request: Request, values: dict[str, Any], error: str | None = None,
                     status: int = 200) -> Response:
    with services_of(request).factory() as session:
        active = session.scalar(select(func.count()).select_from(Subscriber)
                                .where(Subscriber.status == SubscriberStatus.ACTIVE)) or 0
    return editor_form_page(request, "editor/newsletter_new.html", "newsletter", values, error, status,
                            active_readers=active)


@router.get("/newsletters/new")
def new_newsletter(request: Request, user: EditorUser) -> Response:
    return _newsletter_page(request, {
        "slug": "", "name": "", "sender_name": "", "cron": "0 7 * * *", "timezone": "UTC", "topics": [],
        "max_stories": 5, "min_stories": 1, "subject_template": "{{ newsletter }}: {{ date }}",
        "subscribe_existing": False})


@router.post("/newsletters/new")
def add_newsletter(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    values: dict[str, Any] = {name: form.get(name) for name in FIELDS}
    values["topics"] = form.get_all("topics")
    values["subscribe_existing"] = form.get("subscribe_existing") == "yes"
    try:
        actions.newsletters.add_newsletter(
            services_of(request).deps(), actor(user, "web"), slug=values["slug"].strip(), name=values["name"],
            cron=values["cron"], timezone=values["timezone"].strip(), topics=values["topics"] or None,
            max_stories=int_field(form, "max_stories", 5, "Max stories"),
            min_stories=int_field(form, "min_stories", 1, "Min stories"),
            subject_template=values["subject_template"], sender_name=values["sender_name"] or None,
            subscribe_existing=values["subscribe_existing"])
    except Invalid as exc:
        return _newsletter_page(request, values, str(exc), 400)
    return see_other("/editor?done=newsletter-added")
