"""BatchResult: the typed per-recipient answer, and its shortcut for a whole-batch answer."""

from __future__ import annotations

from campaigns.delivery.providers.base import BatchResult


def test_one_answer_names_the_id_when_all_were_accepted_under_it():
    result = BatchResult(request_ids=True)
    result.accept([1, 2, 3], "request-1")
    assert result.one_answer() == (True, "request-1")


def test_one_answer_is_false_after_a_second_request_id():
    result = BatchResult(request_ids=True)
    result.accept([1, 2], "request-1")
    result.accept([3], "request-2")
    assert result.one_answer() == (False, None)


def test_one_answer_is_false_when_anyone_was_rejected_deferred_or_put_off():
    for mark in ("reject", "defer", "postpone", "bounce"):
        result = BatchResult()
        result.accept([1, 2], "id")
        if mark == "reject":
            result.reject([3], "no")
        elif mark == "defer":
            result.defer([3], "busy")
        elif mark == "postpone":
            result.postpone(3, "451 try later")
        else:
            result.bounce(3, "550 unknown", "550 5.1.1 unknown")
        assert result.one_answer() == (False, None), mark


def test_statuses_never_set_read_as_empty_and_set_ones_as_given():
    result = BatchResult()
    result.accept([1], "m1")
    result.defer([2], "busy")
    assert result.rejected == {} and result.transient == {} and result.bounced == {}
    assert result.accepted == {1: "m1"} and result.deferred == {2: "busy"}
    assert result.has(result.statuses[2].status) and result.settled
