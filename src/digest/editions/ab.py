"""Subject A/B tests: an edition's second subject, who gets which, and the decision; the
only writer of `ab_tests`.

An edition with a test is planned like any other, but its delivery rows are written with
no subject (`variant` NULL), which the claim never takes: they wait in the database, not
in the broker. At release `share` % of them, picked at random, get subject 1 (the
edition's own) or 2 (the alternative), half each, and go out at once; `wait_minutes`
later the decision (digest.actions.ab_tests, on beat's tick) gives the rest the winner's
number and enqueues them. `decide` is the rule, pure: the higher unique human click rate
(clicking copies over copies sent) wins; fewer than MIN_HUMAN_CLICKS human clicks in all,
or equal rates, and the first subject goes, with the reason as a code and in words.

Deciding is one conditional UPDATE (`decided_at IS NULL`): two beats, or a task run twice,
record one decision, and only the one that recorded it releases the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from digest.editions.create import InvalidEdition, clean_subject
from digest.errors import Unprocessable
from digest.store import AbTest, Delivery, DeliveryStatus, Edition, EditionStatus

AB_SHARE_MIN_PERCENT = 1
# At most half the audience in the test: the point is that the rest get the better subject.
AB_SHARE_MAX_PERCENT = 50
AB_SHARE_DEFAULT_PERCENT = 20
AB_WAIT_MIN_MINUTES = 1
AB_WAIT_MAX_MINUTES = 1440  # a day: later, the rest get yesterday's news
AB_WAIT_DEFAULT_MINUTES = 60
MIN_HUMAN_CLICKS = 10  # below this in all, the rates say nothing: the first subject goes
FIRST, ALTERNATIVE = 1, 2

# Reason codes (programs read these; people read `reason`).
HIGHER_CLICK_RATE = "higher_click_rate"
TOO_FEW_CLICKS = "too_few_clicks"
TIE = "tie"
AUDIENCE_TOO_SMALL = "audience_too_small"


class InvalidAbTest(InvalidEdition, Unprocessable):
    """A subject test the rules refuse (the API's 422); `fields` names ab_subject, ab_share
    or ab_wait."""

    default_code = "invalid_ab_test"


@dataclass(frozen=True)
class AbPlan:
    """A checked test as an editor asked for it."""

    alternative: str
    share: int
    wait_minutes: int


@dataclass(frozen=True)
class Arm:
    """One subject's numbers in the test: copies sent, human clicks, unique clicking copies."""

    sent: int
    clicks: int
    unique_clicks: int

    @property
    def rate(self) -> float:
        return self.unique_clicks / self.sent if self.sent else 0.0

    @property
    def exact_rate(self) -> Fraction:
        """Compared exactly: 1/3 and 2/6 are a tie, 333/1000 and 1/3 are not."""
        return Fraction(self.unique_clicks, self.sent) if self.sent else Fraction(0)


@dataclass(frozen=True)
class Decision:
    winner: int
    code: str
    reason: str


def check_ab(subject: str, alternative: str | None, share: int | None, wait_minutes: int | None) -> AbPlan | None:
    """The test asked for, checked (None: no test). Every bad field is reported together,
    named `ab_subject`, `ab_share` and `ab_wait`."""
    if alternative is None:
        if share is not None or wait_minutes is not None:
            raise InvalidAbTest("a subject test needs its second subject", field="ab_subject")
        return None
    errors: dict[str, str] = {}
    try:
        alternative = clean_subject(alternative)
        if alternative == " ".join(subject.split()):
            errors["ab_subject"] = "the second subject must differ from the first"
    except InvalidEdition as exc:
        errors["ab_subject"] = f"second subject: {exc.message}"
    share = AB_SHARE_DEFAULT_PERCENT if share is None else share
    if not AB_SHARE_MIN_PERCENT <= share <= AB_SHARE_MAX_PERCENT:
        errors["ab_share"] = (f"the test's share must be between {AB_SHARE_MIN_PERCENT} and "
                              f"{AB_SHARE_MAX_PERCENT} % of the audience")
    wait_minutes = AB_WAIT_DEFAULT_MINUTES if wait_minutes is None else wait_minutes
    if not AB_WAIT_MIN_MINUTES <= wait_minutes <= AB_WAIT_MAX_MINUTES:
        errors["ab_wait"] = (f"the test's wait must be between {AB_WAIT_MIN_MINUTES} and "
                             f"{AB_WAIT_MAX_MINUTES} minutes")
    if errors:
        raise InvalidAbTest("; ".join(errors.values()), fields=errors)
    return AbPlan(alternative, share, wait_minutes)


def get_ab(session: Session, edition_id: int) -> AbTest | None:
    return session.get(AbTest, edition_id)


def set_ab(session: Session, edition_id: int, plan: AbPlan | None) -> None:
    """Start, change or (None) drop an edition's test; the caller has checked that the
    edition is still a draft or scheduled."""
    found = session.get(AbTest, edition_id)
    if plan is None:
        if found is not None:
            session.execute(delete(AbTest).where(AbTest.edition_id == edition_id))
            session.expire_all()
        return
    if found is None:
        session.add(AbTest(edition_id=edition_id, alternative=plan.alternative, share=plan.share,
                           wait_minutes=plan.wait_minutes, test_size=0, sent_1=0, sent_2=0, clicks_1=0, clicks_2=0,
                           unique_1=0, unique_2=0))
    else:
        found.alternative, found.share, found.wait_minutes = plan.alternative, plan.share, plan.wait_minutes
    session.flush()


def copy_ab(session: Session, source_id: int, copy_id: int) -> None:
    """A duplicate edition tests the same subjects (undecided: it has not gone out)."""
    found = session.get(AbTest, source_id)
    if found is not None:
        set_ab(session, copy_id, AbPlan(found.alternative, found.share, found.wait_minutes))


def split_size(planned: int, share: int) -> int:
    """How many readers get the test: `share` % of those planned, rounded down to an even
    number so the two subjects go to as many readers each."""
    return (planned * share // 100) // 2 * 2


def start(session: Session, edition_id: int, size: int, decide_at: datetime) -> None:
    """At release: the test is `size` readers and its decision is due at `decide_at`."""
    session.execute(update(AbTest).where(AbTest.edition_id == edition_id)
                    .values(test_size=size, decide_at=decide_at).execution_options(synchronize_session=False))


def decide(first: Arm, alternative: Arm, min_clicks: int = MIN_HUMAN_CLICKS) -> Decision:
    """The rule: the higher unique human click rate wins; fewer than `min_clicks` human
    clicks in all, or equal rates, and the first subject goes. Rates are compared exactly
    (cross-multiplied), not as rounded floats."""
    total = first.clicks + alternative.clicks
    if total < min_clicks:
        return Decision(FIRST, TOO_FEW_CLICKS,
                        f"too few clicks to tell: {total} human click{'s' if total != 1 else ''} in all, "
                        f"{min_clicks} needed; the first subject goes to the rest")
    left, right = first.exact_rate, alternative.exact_rate
    if left == right:
        return Decision(FIRST, TIE, f"a tie: both subjects at {first.rate:.1%} unique human click rate; "
                                    "the first subject goes to the rest")
    winner, loser, number = (first, alternative, FIRST) if left > right else (alternative, first, ALTERNATIVE)
    name = "first" if number == FIRST else "second"
    return Decision(number, HIGHER_CLICK_RATE,
                    f"the {name} subject had the higher unique human click rate: {winner.rate:.1%} "
                    f"({winner.unique_clicks} of {winner.sent}) against {loser.rate:.1%} "
                    f"({loser.unique_clicks} of {loser.sent})")


def too_small(planned: int, share: int) -> Decision:
    """An audience whose test share holds fewer than two readers: no test, the first subject."""
    return Decision(FIRST, AUDIENCE_TOO_SMALL,
                    f"no test: {share} % of {planned} reader{'s' if planned != 1 else ''} is fewer than the two "
                    "a test needs; everyone gets the first subject")


def record_decision(session: Session, edition_id: int, decision: Decision, arms: tuple[Arm, Arm],
                    now: datetime) -> bool:
    """Write the decision and the numbers it saw; True only for the one call (of any number
    racing) that made it."""
    first, alternative = arms
    result = session.execute(
        update(AbTest).where(AbTest.edition_id == edition_id, AbTest.decided_at.is_(None))
        .values(decided_at=now, winner_variant=decision.winner, reason_code=decision.code,
                reason=decision.reason[:500], sent_1=first.sent, sent_2=alternative.sent, clicks_1=first.clicks,
                clicks_2=alternative.clicks, unique_1=first.unique_clicks, unique_2=alternative.unique_clicks)
        .execution_options(synchronize_session=False))
    return (result.rowcount or 0) == 1


def due_tests(session: Session, now: datetime) -> list[int]:
    """Sending editions whose test is due and undecided. A paused edition's test waits for
    its resume (its test copies may not all be out: deciding then would judge on part of
    them); a cancelled one's is never decided (send-missing makes it sending again)."""
    return list(session.scalars(
        select(AbTest.edition_id).join(Edition, Edition.id == AbTest.edition_id)
        .where(AbTest.decided_at.is_(None), AbTest.decide_at <= now, Edition.status == EditionStatus.SENDING)
        .order_by(AbTest.decide_at)))


def decided_with_held(session: Session) -> list[tuple[int, int]]:
    """(edition, winner) of sending editions whose test is decided and that still hold rows
    with no subject: rows requeued by send-missing after a cancel, or a decision whose
    release did not commit. Their release is idempotent."""
    held = select(Delivery.id).where(Delivery.edition_id == AbTest.edition_id, Delivery.variant.is_(None),
                                     Delivery.status == DeliveryStatus.QUEUED).exists()
    return [(row.edition_id, row.winner_variant) for row in session.execute(
        select(AbTest.edition_id, AbTest.winner_variant).join(Edition, Edition.id == AbTest.edition_id)
        .where(AbTest.decided_at.is_not(None), Edition.status == EditionStatus.SENDING, held))]


def decide_at_for(test: AbTest, now: datetime, minute_seconds: float) -> datetime:
    return now + timedelta(seconds=test.wait_minutes * minute_seconds)


def subject_of(edition: Edition, test: AbTest | None, variant: int) -> str:
    """The subject a copy of `variant` carries."""
    return test.alternative if test is not None and variant == ALTERNATIVE else edition.subject
