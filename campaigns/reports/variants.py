"""A subject test's figures: each variant's sends, human unique opens and clicks, and a
two-proportion z-test against the best other variant, so nobody crowns noise.

Only people count. An event with ``machine=True`` (an open by a privacy proxy, a click by a
link scanner) never does, whatever its kind (campaigns.tracking.events). A person's click
counts as an open too: they cannot click what they did not open (Mailchimp counts the same).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.models import Delivery, DeliveryStatus, TrackingEvent
from campaigns.tracking.events import EventKind
from campaigns.variant_models import VariantDelivery

SIGNIFICANCE = 0.05  # the usual 5 % level: below it, the difference is unlikely to be chance
MIN_EXPECTED = 5  # the normal approximation wants at least 5 successes and failures per side

_delivery = Delivery.__table__
_event = TrackingEvent.__table__
_variant = VariantDelivery.__table__
HUMAN_OPEN_KINDS = (EventKind.OPENED.value, EventKind.CLICKED.value)


@dataclass(frozen=True)
class Comparison:
    """This variant against ``versus`` on the test's metric."""

    versus: str
    z: float | None
    p_value: float | None
    significant: bool
    note: str


@dataclass(frozen=True)
class VariantFigures:
    label: str
    subject: str
    sends: int
    human_opens: int  # unique: deliveries with at least one human open or click
    human_clicks: int  # unique: deliveries with at least one human click
    open_rate: float  # of sends
    click_rate: float  # of sends
    comparison: Comparison | None = None

    def count(self, metric: str) -> int:
        return self.human_clicks if metric == "clicks" else self.human_opens

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """(z, two-sided p-value) of the pooled two-proportion z-test; None if undefined.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2), and
    p-value = erfc(|z| / sqrt 2) = 2 (1 - Phi(|z|)). Source: NIST/SEMATECH e-Handbook of
    Statistical Methods, 7.3.3 ("whether two processes produce the same proportion").
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread <= 0:
        return None  # both 0 % or both 100 %: no difference to test
    z = (x1 / n1 - x2 / n2) / math.sqrt(spread)
    return z, math.erfc(abs(z) / math.sqrt(2))


def compare(mine: VariantFigures, other: VariantFigures, metric: str) -> Comparison:
    """``mine`` against ``other`` on ``metric`` (clicks | opens)."""
    x1, n1, x2, n2 = mine.count(metric), mine.sends, other.count(metric), other.sends
    result = two_proportion_z(x1, n1, x2, n2)
    if result is None:
        return Comparison(other.label, None, None, False, "no difference to test")
    z, p = result
    small = min(x1, n1 - x1, x2, n2 - x2) < MIN_EXPECTED
    significant = p < SIGNIFICANCE and not small
    if small:
        note = f"too few {metric} to tell (fewer than {MIN_EXPECTED} on a side)"
    elif significant:
        note = f"significant at {SIGNIFICANCE:.0%} (p = {p:.4f})"
    else:
        note = f"not significant (p = {p:.4f}): could be chance"
    return Comparison(other.label, round(z, 4), round(p, 6), significant, note)


def _by_label(session: Session, statement: sa.Select) -> dict[str, int]:
    return {label: int(n) for label, n in session.execute(statement)}


def variant_figures(
    session: Session, *, campaign_id: int, subjects: dict[str, str], metric: str
) -> list[VariantFigures]:
    """Figures per variant label (``subjects``: label -> subject), each compared with the
    best other variant on ``metric``."""
    sends = _by_label(
        session,
        sa.select(_variant.c.label, sa.func.count())
        .select_from(_variant.join(_delivery, _delivery.c.id == _variant.c.delivery_id))
        .where(
            _variant.c.campaign_id == campaign_id,
            _delivery.c.status == DeliveryStatus.SENT.value,
        )
        .group_by(_variant.c.label),
    )

    def human(kinds: tuple[str, ...]) -> dict[str, int]:
        return _by_label(
            session,
            sa.select(_variant.c.label, sa.func.count(sa.distinct(_event.c.delivery_id)))
            .select_from(_event.join(_variant, _variant.c.delivery_id == _event.c.delivery_id))
            .where(
                _event.c.campaign_id == campaign_id,
                _event.c.kind.in_(kinds),
                _event.c.machine.is_(False),
            )
            .group_by(_variant.c.label),
        )

    opens, clicks = human(HUMAN_OPEN_KINDS), human((EventKind.CLICKED.value,))
    rows = []
    for label, subject in sorted(subjects.items()):
        n = sends.get(label, 0)
        o, c = opens.get(label, 0), clicks.get(label, 0)
        rate = lambda x, n=n: round(x / n, 6) if n else 0.0  # noqa: E731
        rows.append(VariantFigures(label, subject, n, o, c, rate(o), rate(c)))
    return [_with_comparison(row, rows, metric) for row in rows]


def _with_comparison(
    row: VariantFigures, rows: list[VariantFigures], metric: str
) -> VariantFigures:
    others = [r for r in rows if r.label != row.label]
    if not others:
        return row
    best = max(others, key=lambda r: (r.count(metric) / r.sends if r.sends else 0.0, r.label))
    return replace(row, comparison=compare(row, best, metric))


def leader(rows: list[VariantFigures], metric: str) -> VariantFigures:
    """The variant with the highest rate on ``metric``; a tie goes to the earlier label."""
    return max(rows, key=lambda r: (r.count(metric) / r.sends if r.sends else 0.0, -ord(r.label)))
