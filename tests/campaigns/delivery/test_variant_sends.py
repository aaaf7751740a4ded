"""The subject test's sample: drawn reproducibly, seeded by the campaign, split evenly."""

from __future__ import annotations

from collections import Counter

from campaigns.delivery.variant_sends import draw_sample, sample_rank


def test_the_sample_is_drawn_reproducibly_and_split_evenly():
    people = list(range(1, 1001))
    drawn = draw_sample(7, people, percent=20, variants=3)
    assert drawn == draw_sample(7, list(reversed(people)), percent=20, variants=3)
    assert sorted(Counter(drawn.values()).values()) == [66, 67, 67]
    assert set(draw_sample(8, people, percent=20, variants=3)) != set(drawn)  # seeded by campaign


def test_every_variant_gets_someone_from_a_small_audience():
    assert sorted(draw_sample(3, [1, 2, 3, 4], percent=10, variants=3).values()) == ["A", "B", "C"]


def test_the_sample_is_the_audience_ranked_by_the_seeded_hash():
    people = list(range(1, 201))
    first = sorted(people, key=lambda sid: sample_rank(42, sid))[:40]
    drawn = draw_sample(42, people, percent=20, variants=2)
    assert list(drawn) == first
    assert [drawn[sid] for sid in first] == ["A", "B"] * 20
