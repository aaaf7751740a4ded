"""The significance indication of a subject test: the pooled two-proportion z-test."""

from __future__ import annotations

import pytest

from campaigns.reports.variants import VariantFigures, compare, two_proportion_z


def test_the_two_proportion_z_test_matches_the_textbook():
    # p1 = 0.15, p2 = 0.25, pooled 0.2: z = -0.10 / sqrt(0.2 * 0.8 * 2/200) = -2.5
    z, p = two_proportion_z(30, 200, 50, 200)  # type: ignore[misc]
    assert z == pytest.approx(-2.5)
    assert p == pytest.approx(0.012419, abs=1e-6)
    assert two_proportion_z(0, 100, 0, 100) is None


def figures(label: str, sends: int, clicks: int) -> VariantFigures:
    return VariantFigures(label, label, sends, clicks, clicks, 0.0, 0.0)


def test_a_clear_difference_is_called_significant_and_a_small_one_chance():
    clear = compare(figures("A", 1000, 80), figures("B", 1000, 40), "clicks")
    assert clear.significant and clear.note.startswith("significant at 5%")
    noise = compare(figures("A", 1000, 44), figures("B", 1000, 40), "clicks")
    assert not noise.significant and "could be chance" in noise.note
    few = compare(figures("A", 20, 3), figures("B", 20, 0), "clicks")
    assert not few.significant and few.note.startswith("too few clicks to tell")
