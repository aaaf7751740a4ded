"""BatchResult: the typed per-recipient answer, and its shortcut for a whole-batch answer."""

from __future__ import annotations

import pytest

from campaigns.delivery.providers.base import DEFERRED, BatchResult


def test_one_answer_names_the_id_when_all_were_accepted_under_it():
    result = BatchResult(request_ids=True)
    result.accept([1, 2, 3], "request-1")
    assert result.one_answer() == (True, "request-1")


def test_one_answer_is_false_after_a_second_request_id():
    result = BatchResult(request_ids=True)
    result.accept([1, 2], "request-1")
    result.accept([3], "request-2")
    assert result.one_answer() == (False, None)


@pytest.mark.parametrize(
    "mark",
    [
        lambda r: r.reject([3], "no"),
        lambda r: r.defer([3], "busy"),
        lambda r: r.postpone(3, "451 try later"),
        lambda r: r.bounce(3, "550 unknown", "550 5.1.1 unknown"),
    ],
    ids=["rejected", "deferred", "put off", "bounced"],
)
def test_one_answer_is_false_when_anyone_else_was_answered_otherwise(mark):
    result = BatchResult()
    result.accept([1, 2], "id")
    mark(result)
    assert result.one_answer() == (False, None)


def test_one_answer_is_false_when_an_acceptance_was_overwritten():
    result = BatchResult()
    result.accept([1, 2], "id")
    result.reject([2], "refused after all")
    assert result.one_answer() == (False, None) and result.accepted == {1: "id"}


def test_kinds_never_set_read_as_empty():
    result = BatchResult()
    result.accept([1], "m1")
    assert result.rejected == {} and result.transient == {} and result.bounced == {}


def test_kinds_set_read_as_given():
    result = BatchResult()
    result.accept([1], "m1")
    result.defer([2], "busy")
    assert result.accepted == {1: "m1"} and result.deferred == {2: "busy"}
    assert result.has(DEFERRED) and result.settled


def test_statuses_cannot_be_written_around_the_methods():
    result = BatchResult()
    with pytest.raises(TypeError):
        result.statuses[1] = result.statuses.get(1)  # type: ignore[index]
