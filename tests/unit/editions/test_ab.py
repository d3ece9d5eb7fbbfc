"""The subject test's rule, pure: the higher unique human click rate wins; too few clicks
or a tie send the first subject; and the checks on what an editor asks for."""

from __future__ import annotations

import pytest

from digest.editions.ab import (
    ALTERNATIVE,
    AUDIENCE_TOO_SMALL,
    FIRST,
    HIGHER_CLICK_RATE,
    MIN_HUMAN_CLICKS,
    TIE,
    TOO_FEW_CLICKS,
    Arm,
    InvalidAbTest,
    check_ab,
    decide,
    split_size,
    too_small,
)
from digest.errors import http_status


def test_the_higher_unique_rate_wins_whichever_subject_it_is() -> None:
    first, second = Arm(sent=30, clicks=4, unique_clicks=3), Arm(sent=30, clicks=12, unique_clicks=9)
    assert decide(first, second).winner == ALTERNATIVE
    assert decide(second, first).winner == FIRST
    decision = decide(first, second)
    assert decision.code == HIGHER_CLICK_RATE
    assert "30.0%" in decision.reason and "10.0%" in decision.reason and "second" in decision.reason


def test_rates_not_counts_decide_when_the_halves_differ_in_size() -> None:
    # 9 of 100 (9 %) against 5 of 50 (10 %): fewer clicks, the better rate.
    assert decide(Arm(100, 12, 9), Arm(50, 6, 5)).winner == ALTERNATIVE


def test_unique_clicks_not_repeated_ones_make_the_rate() -> None:
    # One reader clicking 20 times is one clicking copy.
    assert decide(Arm(30, 20, 1), Arm(30, 3, 3)).winner == ALTERNATIVE


def test_fewer_than_ten_human_clicks_in_all_send_the_first_subject() -> None:
    decision = decide(Arm(50, 0, 0), Arm(50, MIN_HUMAN_CLICKS - 1, MIN_HUMAN_CLICKS - 1))
    assert (decision.winner, decision.code) == (FIRST, TOO_FEW_CLICKS)
    assert "9 human clicks" in decision.reason
    assert decide(Arm(50, 0, 0), Arm(50, MIN_HUMAN_CLICKS, MIN_HUMAN_CLICKS)).code == HIGHER_CLICK_RATE
    assert decide(Arm(0, 0, 0), Arm(0, 0, 0)).code == TOO_FEW_CLICKS


def test_equal_rates_are_a_tie_compared_exactly() -> None:
    assert decide(Arm(40, 6, 6), Arm(40, 8, 6)).code == TIE
    assert decide(Arm(20, 5, 5), Arm(40, 10, 10)).code == TIE  # 25 % each, sizes differ
    # 1/3 against 2/6 is a tie; 333/1000 against 1/3 is not, whatever a float rounds to.
    assert decide(Arm(3, 1, 1), Arm(6, 9, 2)).winner == FIRST and decide(Arm(3, 1, 1), Arm(6, 9, 2)).code == TIE
    assert decide(Arm(1000, 333, 333), Arm(3, 1, 1)).winner == ALTERNATIVE


def test_an_arm_that_sent_nothing_has_a_rate_of_nothing() -> None:
    assert decide(Arm(0, 10, 0), Arm(10, 1, 1)).winner == ALTERNATIVE


def test_the_test_takes_an_even_share_and_refuses_an_audience_too_small() -> None:
    assert split_size(300, 20) == 60 and split_size(300, 5) == 14 and split_size(9, 50) == 4
    assert split_size(3, 50) == 0 and split_size(1, 50) == 0
    decision = too_small(3, 50)
    assert (decision.winner, decision.code) == (FIRST, AUDIENCE_TOO_SMALL)


@pytest.mark.parametrize(("alternative", "share", "wait", "field"), [
    ("Same subject", None, None, "ab_subject"),
    ("  Same   subject ", None, None, "ab_subject"),
    ("", None, None, "ab_subject"),
    ("Other\nBcc: x@example.org", None, None, "ab_subject"),
    ("Other", 0, None, "ab_share"),
    ("Other", 51, None, "ab_share"),
    ("Other", 10, 0, "ab_wait"),
    ("Other", 10, 1441, "ab_wait"),
    (None, 10, None, "ab_subject"),
])
def test_bad_tests_are_refused_naming_the_field(alternative: str | None, share: int | None, wait: int | None,
                                                field: str) -> None:
    with pytest.raises(InvalidAbTest) as caught:
        check_ab("Same subject", alternative, share, wait)
    assert field in caught.value.fields and http_status(caught.value) == 422


def test_a_good_test_and_its_defaults() -> None:
    assert check_ab("Subject", None, None, None) is None
    plan = check_ab("Subject", "  Another  one ", None, None)
    assert plan is not None and (plan.alternative, plan.share, plan.wait_minutes) == ("Another one", 20, 60)
    plan = check_ab("Subject", "Other", 50, 1440)
    assert plan is not None and (plan.share, plan.wait_minutes) == (50, 1440)
