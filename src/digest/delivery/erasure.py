"""A reader forgotten everywhere digest keeps them: digest.readers erases what it owns (the
address, name, choices, notices; a hash stays on the suppression list), and the ledger drops
the errors that quote the address, retention the reader's monthly summaries. The reader's own "forget me" and staff's erase both
come here, so neither can leave the address behind."""

from __future__ import annotations

from sqlalchemy.orm import Session

from digest.delivery import ledger, retention
from digest.readers import RequestContext, erase
from digest.store import Subscriber


def erase_reader(session: Session, subscriber: Subscriber, ctx: RequestContext) -> None:
    erase(session, subscriber, ctx)
    ledger.forget_errors(session, subscriber.id)
    retention.forget_reader(session, subscriber.id)
