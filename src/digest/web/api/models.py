"""The API's request bodies: typed, and bounded by the columns that keep them, so input the
database cannot take is a 422 naming the field, never a failed INSERT."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from digest.readers import CSV_UPLOAD_MAX_BYTES

# Input the database cannot take is refused here (422), not at the INSERT (a 503): no NUL
# (PostgreSQL cannot store it; and pydantic will not match a pattern against a string
# holding a lone surrogate, which no driver can encode), no id or count past its column.
NO_NUL = r"^[^\x00]*$"
ID_MAX = 2**63 - 1  # BIGINT ids (SQLite INTEGER)
INT_MAX = 2**31 - 1  # INTEGER columns
Text = Annotated[str, Field(pattern=NO_NUL)]

# Text that fits the VARCHAR(n) column keeping it: longer is a 422 naming the field.
Text64 = Annotated[str, Field(pattern=NO_NUL, max_length=64)]
Text100 = Annotated[str, Field(pattern=NO_NUL, max_length=100)]
Text120 = Annotated[str, Field(pattern=NO_NUL, max_length=120)]
Text200 = Annotated[str, Field(pattern=NO_NUL, max_length=200)]
Text300 = Annotated[str, Field(pattern=NO_NUL, max_length=300)]
Text320 = Annotated[str, Field(pattern=NO_NUL, max_length=320)]
Text500 = Annotated[str, Field(pattern=NO_NUL, max_length=500)]
Text2048 = Annotated[str, Field(pattern=NO_NUL, max_length=2048)]
Id = Annotated[int, Field(le=ID_MAX)]
PathId = Annotated[int, Path(ge=-ID_MAX, le=ID_MAX)]  # past BIGINT either way: a 422, not an overflow in the driver
QueryText = Annotated[str | None, Query(pattern=NO_NUL)]


class StoryIn_(BaseModel):
    url: Text2048
    title: Text500
    summary: Text = ""
    body: Text = ""
    published_at: Text64 | None = None
    topics: list[Text64] = []
    image_url: Text2048 | None = None
    image_width: int | None = Field(None, ge=1, le=20000, description="the image's width in pixels, if known")
    image_height: int | None = Field(None, ge=1, le=20000, description="its height; the email sets a height "
                                                                       "only when both are known")
    author: Text200 | None = None
    featured: bool = False


class StoryPatch(BaseModel):
    featured: bool | None = None
    pinned: bool | None = None
    status: Text | None = None


class IngestRequest(BaseModel):
    url: str = Field(description="http(s) URL of an RSS/Atom feed, a JSON list or an article", pattern=NO_NUL)


class NewsletterIn(BaseModel):
    slug: Text64
    name: Text120
    cron: Text100 | None = Field(None, description="five-field cron in `timezone`; null: sent by its stories alone "
                                                   "(then `trigger_stories` is needed)")
    timezone: Text64 = "UTC"
    topics: list[Text64] | None = None
    max_stories: int = 5
    min_stories: int = 1
    subject_template: Text300 = "{{ newsletter }}: {{ weekday }} {{ date }}"
    sender_name: Text120 | None = None
    subscribe_existing: bool = Field(False, description="Subscribe the active readers whose topics match")
    window_hours: int = Field(48, description="stories published this long before a send qualify")
    local_time: bool = Field(False, description="deliver at the schedule's hour in each reader's own zone")
    new_editions: Literal["scheduled", "draft"] = Field(
        "scheduled", description="what the schedule makes: editions that go by themselves, or drafts to schedule")
    trigger_stories: int | None = Field(None, description="an edition when this many new qualifying stories have "
                                                          "arrived since the last one; null or 0: no story trigger")
    trigger_every_minutes: int = Field(60, description="at most one story-triggered edition in this many minutes")
    trigger_hold_minutes: int = Field(0, description="a story-triggered edition goes this long after it is made")


class BrandPatch(BaseModel):
    """Each field given is changed, one left out stays; null (or "") goes back to the default.
    A colour must read at 4.5:1 on white (422 with the measured ratio otherwise)."""

    model_config = ConfigDict(extra="forbid")

    logo_url: Text2048 | None = Field(None, description="https only; shown in the masthead instead of the name")
    logo_width: int | None = Field(None, description="the logo's width in pixels, 16 to 536 (default 200)")
    accent_color: Text | None = Field(None, description="#rrggbb: kicker, dateline rule, button", max_length=7)
    link_color: Text | None = Field(None, description="#rrggbb: headlines and footer links", max_length=7)
    font: Text64 | None = Field(None, description="georgia, times, arial, helvetica, verdana, tahoma, "
                                                  "trebuchet or system")
    footer_text: Text | None = Field(None, description="plain text above the postal address", max_length=500)
    reply_to: Text | None = Field(None, description="the Reply-To address of its mail", max_length=320)
    language: Text | None = Field(None, description="a language tag (en, fr-CA, ar); sets lang and dir",
                                  max_length=35)


class NewsletterPatch(BaseModel):
    """Each field given is changed; one left out stays as it is (null: no sender name, every
    topic, no cron, no story trigger). `brand`: its fields given are changed (see BrandPatch)."""

    name: Text120 | None = None
    sender_name: Text120 | None = None
    cron: Text100 | None = None
    timezone: Text64 | None = None
    topics: list[Text64] | None = None
    max_stories: int | None = None
    min_stories: int | None = None
    window_hours: int | None = None
    subject_template: Text300 | None = None
    local_time: bool | None = None
    new_editions: Literal["scheduled", "draft"] | None = None
    utm_tags: bool | None = Field(None, description="click redirects add utm_source=digest, utm_medium=email, "
                                                    "utm_campaign=<slug> to story links")
    engagement_order: bool | None = Field(None, description="stories no editor pinned go by their topics' recent "
                                                            "human click-through in this newsletter (off by default)")
    click_history: bool | None = Field(None, description="remember the clicks of readers who consent "
                                                         "(\"Remember which stories I click\"); off by default")
    open_pixel: bool | None = Field(None, description="a 1x1 image counts opens per edition (no reader identity); "
                                                      "unreliable: Apple Mail loads every image, many clients none")
    trigger_stories: int | None = Field(None, description="null or 0: no story trigger")
    trigger_every_minutes: int | None = None
    trigger_hold_minutes: int | None = None
    brand: BrandPatch | None = None


class EditionIn(BaseModel):
    subject: Text300
    at: str | None = Field(None, description="ISO 8601; naive times are read in `tz`; default now",
                           pattern=NO_NUL, max_length=64)
    tz: Text64 | None = None
    topics: list[Text64] | None = None
    max_stories: int = 5
    window_hours: int = 48
    draft: bool = True
    newsletter_id: Id | None = Field(None, description="a one-off for this newsletter's readers; default: every "
                                                        "active reader")
    ab_subject: Text300 | None = Field(None, description="a second subject to test against `subject`")
    ab_share: int | None = Field(None, description="percent of the audience in the subject test, 1-50 (default 20)",
                                 le=INT_MAX, ge=-INT_MAX)
    ab_wait: int | None = Field(None, description="minutes before the test is decided, 1-1440 (default 60)",
                                le=INT_MAX, ge=-INT_MAX)


class EditionPatch(BaseModel):
    """Each field given is changed; one left out stays as it is. `note` alone changes only
    the note; with any other field everything given changes in one go."""

    note: Text | None = None
    subject: Text300 | None = None
    send_at: str | None = Field(None, description="ISO 8601; naive times are read in `tz`; a time that has passed: "
                                                  "now", pattern=NO_NUL, max_length=64)
    tz: Text64 | None = Field(None, description="IANA zone of a naive `send_at`")
    max_stories: int | None = None
    window_hours: int | None = None
    newsletter_id: Id | None = Field(None, description="a one-off's newsletter; null: every active reader")
    ab_subject: Text300 | None = Field(None, description="the subject test's second subject; null: no test")
    ab_share: int | None = Field(None, description="percent of the audience in the subject test, 1-50",
                                 le=INT_MAX, ge=-INT_MAX)
    ab_wait: int | None = Field(None, description="minutes before the subject test is decided, 1-1440",
                                le=INT_MAX, ge=-INT_MAX)


class CurationIn(BaseModel):
    story_id: Id
    action: str = Field(description="pin, exclude or clear", pattern=NO_NUL)
    position: int | None = Field(None, le=INT_MAX)


class OverrideIn(BaseModel):
    story_id: Id
    headline: Text500 | None = None
    summary: Text | None = None


class OrderIn(BaseModel):
    story_ids: list[Id]


class TestSendIn(BaseModel):
    email: Text320
    as_email: Text320 | None = Field(None, description="Send the copy this reader would get (links stay test links)")


class TokenIn(BaseModel):
    name: Text100 = "api"


class ImportIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    csv: str = Field(description="the file's text: digest's CSV (a header line with an email column, and optionally "
                                 "name and topics, split on ; or ,) or another service's export (see `from`)",
                     pattern=NO_NUL, max_length=CSV_UPLOAD_MAX_BYTES)
    from_: Literal["mailchimp", "substack", "ghost", "listmonk", "beehiiv", "csv", "json"] | None = Field(
        None, alias="from", description="whose export the file is; left out: told from its header row")
    confirmed: bool = Field(False, description="digest's CSV: import as active readers (consent gathered "
                                               "elsewhere); otherwise pending")
    status: Literal["subscribed", "pending", "unsubscribed", "cleaned", "bounced", "blocklisted", "complained"] | None = Field(
        None, description="the status of rows whose file gives none")
    file_name: Text200 | None = Field(None, description="the file's name, kept in each imported reader's consent record")
    send_confirmations: bool = Field(False, description="mail a confirmation to each pending reader now")


class FeedIn(BaseModel):
    url: Text2048
    every_minutes: int = Field(15, description="poll this often (1 to 1440)")
    topics: list[Text64] = Field(default_factory=list, description="topics every story of the feed gets")
    category_topics: dict[Text100, Text64] = Field(
        default_factory=dict, description="feed category -> topic; when set, unmapped categories are not topics")
    featured: bool = Field(False, description="every story of the feed is featured")
    featured_categories: list[Text100] = Field(default_factory=list,
                                               description="categories whose stories are featured")
    poll: bool = Field(True, description="poll it once now; the answer's `poll` says how it went")


class FeedPatch(BaseModel):
    """Each field given is changed; one left out stays as it is."""

    url: Text2048 | None = None
    every_minutes: int | None = None
    topics: list[Text64] | None = None
    category_topics: dict[Text100, Text64] | None = None
    featured: bool | None = None
    featured_categories: list[Text100] | None = None
