"""Editor pages under /editor: the dashboard, stories, feeds, newsletters, editions, the
sign-up box for the publisher's pages, API tokens and readers (the last read-only for ops), and (for admins) staff accounts.

Plain server-rendered forms: every change is one POST, checked for CSRF, done through
digest.actions (the same call the JSON API and the command line make, audited there),
then redirected (303) back to the page it came from. Bad input comes back as the page with
the message and a 4xx status; a frozen edition is a 409, never a 500.
"""

from digest.web.pages.editor import (
    brand,
    dashboard,
    editions,
    embed,
    feeds,
    newsletters,
    reader_import,
    reader_profile,
    readers,
    stories,
    tokens,
    users,
)
from digest.web.pages.editor.common import cancel_question, when

routers = (dashboard.router, stories.router, feeds.router, brand.router,
           newsletters.router, editions.router, embed.router,
           tokens.router,
           users.router,
           # /editor/readers/import and /export.csv before /editor/readers/{reader_id}
           reader_import.router, readers.router, reader_profile.router)

__all__ = ["cancel_question", "routers", "when"]
