"""A newsletter's brand over real HTTP (`digest serve`, the real database): `PATCH
/api/v1/newsletters/{id}` with `brand` (answers the newsletter with it; a refused value is a
422 naming the field, a colour's with its measured contrast, and changes nothing), the
Brand section of the editor's newsletter page (each error at its field, the live preview's
JSON) and the accent on that newsletter's archive page. One audit row a change."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.editions import create_newsletter
from digest.store import AuditEntry, Newsletter
from tests.support.factories import make_user
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR, PASSWORD, csrf_token, signed_in

pytestmark = pytest.mark.integration
BRAND = {"logo_url": "https://cdn.example/logo.png", "logo_width": 180, "accent_color": "#0b5394",
         "link_color": "#5b2a86", "font": "verdana", "footer_text": "Reader-funded since 1921.",
         "reply_to": "desk@news.example.com", "language": "fr-CA"}


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[httpx.Client]:
    with live.factory.begin() as session:
        user = staff.create_user(session, "script@example.org", "editor", PASSWORD)
        _, token = staff.create_api_token(session, user, "brand")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=20) as client:
        yield client


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


def morning(live: Stack) -> int:
    with live.factory.begin() as session:
        return create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                                 allowed_topics=TOPICS).id


def audit_rows(live: Stack) -> list[AuditEntry]:
    with live.factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "newsletter.brand")))


def stored_brand(live: Stack, newsletter_id: int) -> dict[str, object]:
    with live.factory() as session:
        newsletter = session.get_one(Newsletter, newsletter_id)
        return {name: getattr(newsletter, f"brand_{name}") for name in BRAND}


# ------------------------------------------------------------------ the API


def test_api_sets_the_brand_and_answers_the_newsletter_with_it(live: Stack, api: httpx.Client) -> None:
    newsletter_id = morning(live)
    assert api.get(f"/newsletters/{newsletter_id}").json()["brand"] == dict.fromkeys(BRAND)

    answer = api.patch(f"/newsletters/{newsletter_id}", json={"brand": BRAND})
    assert answer.status_code == 200, answer.text
    assert answer.json()["brand"] == BRAND and answer.json()["slug"] == "morning"
    assert stored_brand(live, newsletter_id) == BRAND
    (row,) = audit_rows(live)
    assert (row.via, row.target) == ("api", f"newsletter:{newsletter_id}")
    assert row.detail is not None and row.detail["accent_color"] == "#0b5394" and row.detail["accent_color_was"] is None

    # A field left out stays; null goes back to the default; a name change and a brand together.
    both = api.patch(f"/newsletters/{newsletter_id}", json={"name": "Mornings", "brand": {"font": None}})
    assert both.status_code == 200
    assert both.json()["name"] == "Mornings" and both.json()["brand"] == {**BRAND, "font": None}


@pytest.mark.parametrize(("brand", "field", "words"), [
    ({"accent_color": "#ffcc00"}, "accent_color", "accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1"),
    ({"link_color": "#999999"}, "link_color", "link_color #999999 is 2.8:1 on white; needs 4.5:1"),
    ({"logo_url": "http://cdn.example/logo.png"}, "logo_url", "https"),
    ({"reply_to": "desk at news"}, "reply_to", "not a valid email address"),
    ({"font": "Comic Sans MS"}, "font", "georgia"),
    ({"logo_width": 2000}, "logo_width", "16 to 536"),
])
def test_a_refused_brand_value_is_a_422_naming_the_field_and_changes_nothing(
        live: Stack, api: httpx.Client, brand: dict[str, object], field: str, words: str) -> None:
    newsletter_id = morning(live)

    refused = api.patch(f"/newsletters/{newsletter_id}", json={"name": "Changed", "brand": brand})
    assert refused.status_code == 422, refused.text
    assert list(refused.json()["fields"]) == [field] and words in refused.json()["fields"][field]
    assert words in refused.json()["error"]
    assert api.get(f"/newsletters/{newsletter_id}").json()["name"] == "Morning"  # nothing else changed either
    assert stored_brand(live, newsletter_id) == dict.fromkeys(BRAND) and not audit_rows(live)


def test_a_brand_value_of_the_wrong_type_or_an_unknown_key_is_a_422_naming_it(live: Stack, api: httpx.Client) -> None:
    newsletter_id = morning(live)

    wrong_type = api.patch(f"/newsletters/{newsletter_id}", json={"brand": {"logo_width": "wide"}})
    assert wrong_type.status_code == 422 and wrong_type.json()["error"].startswith("brand.logo_width")
    unknown = api.patch(f"/newsletters/{newsletter_id}", json={"brand": {"colour": "#000000"}})
    assert unknown.status_code == 422 and "brand.colour" in unknown.json()["error"]


# ------------------------------------------------------------------ the editor's page


def test_the_brand_section_shows_each_error_at_its_field_then_saves(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    page = f"/editor/newsletters/{newsletter_id}"
    form = {**{k: str(v) for k, v in BRAND.items()}, "accent_color": "#ffcc00", "logo_url": "http://x.example/l.png"}

    refused = editor.post(f"{page}/brand", data={"csrf_token": csrf_token(editor.get(page).text), **form})
    assert refused.status_code == 400
    text = unescape(refused.text)
    assert ('<p class="field-error" id="accent_color-error">accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1</p>'
            in text)
    assert 'id="logo_url-error">logo_url must be an https://' in text
    assert 'id="accent_color" name="accent_color" type="text" maxlength="7" value="#ffcc00"' in text  # kept as typed
    assert 'aria-describedby="accent-hint accent_color-error" aria-invalid="true"' in text
    assert stored_brand(live, newsletter_id) == dict.fromkeys(BRAND)

    saved = editor.post(f"{page}/brand", data={"csrf_token": csrf_token(editor.get(page).text),
                                               **{k: str(v) for k, v in BRAND.items()}})
    assert saved.status_code == 303 and saved.headers["location"] == f"{page}?done=branded"
    assert stored_brand(live, newsletter_id) == BRAND
    (row,) = audit_rows(live)
    assert row.via == "web"
    shown = unescape(editor.get(saved.headers["location"]).text)
    assert "Brand saved." in shown and 'value="#0b5394"' in shown and '<option value="verdana" selected>' in shown
    # The preview frames hold the digest in the saved brand, and a dark one.
    assert "#0b5394" in shown and 'lang="fr-CA"' in shown and "@media all" in shown


def test_the_live_preview_answers_the_typed_brand_or_its_errors(live: Stack, editor: httpx.Client) -> None:
    newsletter_id = morning(live)
    address = f"/editor/newsletters/{newsletter_id}/brand/preview"

    good = editor.get(address, params={"accent_color": "#0b5394", "language": "ar", "footer_text": "Hi"})
    assert good.status_code == 200 and good.json()["errors"] == {}
    assert "#0b5394" in good.json()["html"] and 'dir="rtl"' in good.json()["html"]
    assert "@media all" in good.json()["dark_html"] and "Hi" in good.json()["text"]
    bad = editor.get(address, params={"accent_color": "#ffcc00"})
    assert bad.status_code == 200 and bad.json()["errors"] == {
        "accent_color": "accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1"}
    assert "#ffcc00" not in bad.json()["html"]  # the saved (default) brand meanwhile
    assert editor.get("/editor/newsletters/999999/brand/preview").status_code == 404


# ------------------------------------------------------------------ reader pages


def test_the_newsletters_archive_page_takes_its_accent(live: Stack, api: httpx.Client, web: str) -> None:
    newsletter_id = morning(live)
    assert api.patch(f"/newsletters/{newsletter_id}", json={"brand": {"accent_color": "#0b5394"}}).status_code == 200

    with httpx.Client(base_url=web, timeout=20) as reader:
        branded = reader.get("/archive/newsletters/morning").text
        plain = reader.get("/archive").text
    assert ":root { --accent: #0b5394; }" in branded
    assert "--accent: #0b5394" not in plain
