"""Editions: what goes out, to whom it may go, and when.

The only writer of `editions.status` (lifecycle: one table of moves) and of an edition's
story list and curation. Newsletters are recurring schedules whose editions beat creates
ahead of time so editors can curate them; one-off editions are made by hand.

- `create`: a one-off edition; parse a send time; find and list editions
- `edit`: change an edition's subject, send time, limits or newsletter before it goes
- `lifecycle`: the state machine (schedule, claim, finish, pause, cancel, reopen, …)
- `newsletters`, `schedules`: recurring digests (create, change, pause, archive), cron in
  IANA zones, occurrences → editions, a schedule in words and its next sends
- `branding`: a newsletter's brand (logo, colours, font, footer, reply-to, language) as
  stored, and the brand a one-reader message (confirmation, welcome) takes
- `triggers`: newsletters sent by their stories (an alert when N new stories have arrived,
  at most every M minutes, held K minutes for editors); `decide` is the pure rule
- `selector`: which stories (pure), and freezing the list at release
- `variants`: per-reader lists at send time (no story twice to one reader)
- `curation`: an editor's pins, exclusions, order, headlines, note
- `content`: an edition as readers see it (an EditionView for digest.mail)
- `preview`: as a reader would get it; a test send
- `ab`: subject A/B tests (the second subject, the share, the wait; `decide` is the rule)
"""

from digest.editions import ab, lifecycle, tallies
from digest.editions.content import edition_view, load_edition_view, primary_story_ids
from digest.editions.create import (
    MAX_STORIES_LIMIT,
    AlreadySent,
    duplicate_edition,
    SUBJECT_MAX_CHARS,
    EditionError,
    EditionNotFound,
    InvalidEdition,
    NewsletterNotFound,
    clean_subject,
    create_edition,
    find_newsletter,
    get_edition,
    list_editions,
    parse_send_at,
)
from digest.editions.curation import (
    EDITABLE,
    CurationError,
    EditionFrozen,
    curate,
    editable_edition,
    override,
    reorder,
    set_note,
)
from digest.editions.branding import newsletter_brand, reader_brand, set_brand
from digest.editions.edit import KEEP, EditionChanges, EditionEdit, edit_edition
from digest.editions.lifecycle import LifecycleError, is_auto_paused
from digest.editions.newsletters import (
    DEFAULT_SUBJECT,
    STATE_ACTIONS,
    NewsletterArchived,
    NewsletterChanges,
    NewsletterError,
    SlugTaken,
    change_state,
    create_newsletter,
    edit_newsletter,
    get_newsletter,
    last_editions,
    list_newsletters,
    newsletter_state,
    next_editions,
    upcoming_count,
)
from digest.editions.preview import (
    CLIP_WARNING_BYTES,
    PREVIEW_READER,
    SAMPLE_TOKENS,
    TEST_SUBJECT_PREFIX,
    brand_preview,
    clip_warning,
    preview_edition,
    send_test,
)
from digest.editions.schedules import (
    ScheduleError,
    check_cron,
    check_zone,
    local_instant,
    next_sends,
    occurrences,
    render_subject,
    schedule_editions,
    schedule_in_words,
    schedule_newsletter,
)
from digest.editions.selector import (
    Candidate,
    edition_picks,
    explain_order,
    freeze_stories,
    select_for_edition,
    select_stories,
)
from digest.editions.triggers import (
    TriggerState,
    decide,
    sends_in_words,
    trigger_editions,
    trigger_in_words,
)
from digest.editions.variants import SPARE_STORIES, choose, live_candidates, reader_history

__all__ = [
    "ab", "tallies",
    "AlreadySent", "duplicate_edition",
    # newsletters: change, pause, resume, archive; their schedules in words
    "DEFAULT_SUBJECT", "STATE_ACTIONS", "NewsletterArchived", "NewsletterChanges", "change_state", "edit_newsletter",
    "last_editions", "newsletter_state", "next_editions", "upcoming_count", "next_sends", "render_subject", "schedule_in_words", "schedule_newsletter",
    "EDITABLE", "MAX_STORIES_LIMIT", "PREVIEW_READER", "SAMPLE_TOKENS", "SPARE_STORIES", "SUBJECT_MAX_CHARS", "TEST_SUBJECT_PREFIX",
    "Candidate", "CurationError", "EditionError", "EditionFrozen", "EditionNotFound", "InvalidEdition", "LifecycleError", "NewsletterError",
    "ScheduleError", "SlugTaken", "check_cron", "check_zone", "choose", "clean_subject", "create_edition",
    "create_newsletter", "curate", "edition_picks", "edition_view", "editable_edition", "explain_order", "freeze_stories",
    "get_edition", "get_newsletter", "is_auto_paused", "lifecycle", "list_editions", "list_newsletters",
    "live_candidates", "load_edition_view", "local_instant", "occurrences", "override", "parse_send_at",
    "preview_edition", "primary_story_ids", "reader_history", "reorder", "schedule_editions",
    "select_for_edition", "select_stories", "send_test", "set_note",
    # a newsletter's brand
    "newsletter_brand", "reader_brand", "set_brand", "brand_preview",
    # the preview's warning before Gmail clips
    "CLIP_WARNING_BYTES", "clip_warning",
    # newsletters sent by their stories
    "TriggerState", "decide", "sends_in_words", "trigger_editions", "trigger_in_words",
    # editing an edition before it goes
    "KEEP", "EditionChanges", "EditionEdit", "NewsletterNotFound", "edit_edition", "find_newsletter",
]
