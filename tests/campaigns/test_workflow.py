"""The campaign state machine: every legal move works and is logged, every other is a 409."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns import workflow
from campaigns.models import Campaign, CampaignLog, CampaignStatus
from newsletter import db
from newsletter.errors import StateError

S = CampaignStatus
LEGAL = {
    (S.DRAFT, S.SCHEDULED),
    (S.DRAFT, S.SENDING),
    (S.DRAFT, S.CANCELLED),
    (S.SCHEDULED, S.DRAFT),
    (S.SCHEDULED, S.SENDING),
    (S.SCHEDULED, S.PAUSED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SENDING, S.SENT),
    (S.SENDING, S.PAUSED),
    (S.SENDING, S.CANCELLED),
    (S.SENDING, S.FAILED),
    (S.PAUSED, S.SCHEDULED),
    (S.PAUSED, S.SENDING),
    (S.PAUSED, S.CANCELLED),
    (S.FAILED, S.SENDING),
    (S.FAILED, S.CANCELLED),
}
ILLEGAL = sorted(set(product(S, S)) - LEGAL)


@pytest.fixture(scope="module")
def wf_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('wf') / 'wf.db'}"
    engine = db.get_engine(url)
    db.upgrade(engine)
    yield engine
    db.dispose_engine(url)


def _campaign(engine: Engine, status: CampaignStatus) -> Campaign:
    with db.session_scope(engine) as session:
        campaign = Campaign(subject="Weekly", status=status)
        session.add(campaign)
    return campaign


def test_the_table_is_exactly_the_documented_one() -> None:
    table = {(a, b) for a, targets in workflow.TRANSITIONS.items() for b in targets}
    assert table == LEGAL


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transition_changes_state_and_logs_who_and_why(
    wf_engine: Engine, current: CampaignStatus, target: CampaignStatus
) -> None:
    campaign = _campaign(wf_engine, current)
    with db.session_scope(wf_engine) as session:
        fresh = session.get(Campaign, campaign.id)
        assert fresh is not None
        workflow.transition(session, campaign=fresh, to=target, actor="cli:ann", reason="why")
    with Session(wf_engine) as session:
        stored = session.get(Campaign, campaign.id)
        logs = session.exec(select(CampaignLog).where(CampaignLog.campaign_id == campaign.id)).all()
    assert stored is not None and stored.status == target
    assert [(entry.from_status, entry.to_status, entry.actor, entry.reason) for entry in logs] == [
        (current.value, target.value, "cli:ann", "why")
    ]


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transition_is_a_state_error_and_changes_nothing(
    wf_engine: Engine, current: CampaignStatus, target: CampaignStatus
) -> None:
    campaign = _campaign(wf_engine, current)
    with Session(wf_engine) as session:
        fresh = session.get(Campaign, campaign.id)
        assert fresh is not None
        with pytest.raises(StateError) as caught:
            workflow.transition(session, campaign=fresh, to=target, actor="cli", reason="x")
        session.commit()
        logs = session.exec(select(CampaignLog).where(CampaignLog.campaign_id == campaign.id)).all()
        assert session.get(Campaign, campaign.id).status == current  # type: ignore[union-attr]
    assert str(caught.value) == (
        f"campaign {campaign.id} cannot go from {current.value} to {target.value}"
    )
    assert logs == []


def test_sending_sets_started_at_once_and_sent_sets_finished_at(wf_engine: Engine) -> None:
    campaign = _campaign(wf_engine, S.SCHEDULED)
    with db.session_scope(wf_engine) as session:
        c = session.get(Campaign, campaign.id)
        assert c is not None
        workflow.transition(session, campaign=c, to=S.SENDING, actor="t")
        first_start = c.started_at
        workflow.transition(session, campaign=c, to=S.PAUSED, actor="t")
        workflow.transition(session, campaign=c, to=S.SENDING, actor="t")
        assert c.started_at == first_start and c.finished_at is None
        workflow.transition(session, campaign=c, to=S.SENT, actor="t")
    with Session(wf_engine) as session:
        stored = session.get(Campaign, campaign.id)
    assert stored is not None and stored.started_at is not None and stored.finished_at is not None


def test_failing_keeps_the_reason_as_the_error(wf_engine: Engine) -> None:
    campaign = _campaign(wf_engine, S.SENDING)
    with db.session_scope(wf_engine) as session:
        c = session.get(Campaign, campaign.id)
        assert c is not None
        workflow.transition(session, campaign=c, to=S.FAILED, actor="t", reason="provider 401")
    with Session(wf_engine) as session:
        assert session.get(Campaign, campaign.id).error == "provider 401"  # type: ignore[union-attr]


def test_a_stale_copy_loses_the_race_instead_of_overwriting(engine: Engine, tmp_path: Path) -> None:
    campaign = _campaign(engine, S.SENDING)
    with Session(engine, expire_on_commit=False) as api, Session(engine) as sender:
        paused = api.get(Campaign, campaign.id)
        stale = sender.get(Campaign, campaign.id)
        assert paused is not None and stale is not None
        workflow.transition(api, campaign=paused, to=S.PAUSED, actor="api:ops")
        api.commit()
        with pytest.raises(
            StateError, match="changed while going from sending to sent; it is now paused"
        ):
            workflow.transition(sender, campaign=stale, to=S.SENT, actor="scheduler")
        sender.rollback()
    with Session(engine) as session:
        assert session.get(Campaign, campaign.id).status == S.PAUSED  # type: ignore[union-attr]
