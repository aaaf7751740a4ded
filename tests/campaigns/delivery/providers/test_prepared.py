"""Prepared / made_for: a batch made ahead is sent as made, and making it never raises."""

from __future__ import annotations

import pytest

from campaigns.delivery.providers.base import Prepared, made_for
from newsletter.errors import ProviderRejected
from tests.support.delivery import recipient


def _refuse() -> list[str]:
    raise ProviderRejected("over 30 MB")


def test_making_keeps_the_error_instead_of_raising_it():
    batch = [recipient(1)]
    prepared = Prepared.making(batch, _refuse)
    assert isinstance(prepared.error, ProviderRejected) and prepared.made is None


def test_made_for_raises_the_kept_error():
    batch = [recipient(1)]
    with pytest.raises(ProviderRejected, match="30 MB"):
        made_for(Prepared.making(batch, _refuse), batch, lambda: ["made again"])


def test_made_for_the_same_recipients_gives_what_was_made():
    batch = [recipient(1)]
    prepared = Prepared.making(batch, lambda: ["made ahead"])
    assert made_for(prepared, batch, lambda: ["made again"]) == ["made ahead"]


def test_made_for_other_recipients_makes_it_again():
    prepared = Prepared.making([recipient(1)], lambda: ["made ahead"])
    assert made_for(prepared, [recipient(1)], lambda: ["made again"]) == ["made again"]


def test_made_for_nothing_prepared_makes_it():
    assert made_for(None, [recipient(1)], lambda: ["made again"]) == ["made again"]
