"""``/api/campaigns/{id}/subject-test`` and ``/resend`` (issue 16), as ``newsletter
campaigns subject-test`` and ``campaigns resend`` do; changes are logged as ``api:<token>``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from campaigns import resends, subject_tests
from web.api.common import CHANGE, NOT_FOUND, CampaignId
from web.deps import ActorDep, SessionDep

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

Line = Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")


class SubjectTestRequest(BaseModel):
    """2 or 3 subjects (and one preheader for all, or one each) for a sample of the audience."""

    subjects: list[str] = Field(min_length=2, max_length=3, examples=[["Stretch A", "Stretch B"]])
    preheaders: list[str] = Field(default_factory=list, max_length=3)
    sample_percent: int = Field(default=20, ge=1, le=99)
    wait_seconds: int = Field(default=4 * 3600, ge=60, le=30 * 86400)
    metric: Literal["clicks", "opens"] = "clicks"


class WinnerRequest(BaseModel):
    label: Literal["A", "B", "C"]


class ResendRequest(BaseModel):
    subject: str = Line
    after_seconds: int = Field(default=3 * 86400, ge=3600, le=60 * 86400)


@router.post(
    "/{campaign_id}/subject-test",
    status_code=201,
    responses=CHANGE,
    summary="Give a draft or scheduled campaign a subject test (sent with the campaign)",
)
def create_subject_test(
    campaign_id: CampaignId, body: SubjectTestRequest, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    return subject_tests.create_test(
        session,
        campaign_id=campaign_id,
        subjects=body.subjects,
        preheaders=body.preheaders,
        sample_percent=body.sample_percent,
        wait=timedelta(seconds=body.wait_seconds),
        metric=body.metric,
        actor=actor,
    )


@router.get(
    "/{campaign_id}/subject-test",
    responses=NOT_FOUND,
    summary="The subject test: variants, human opens and clicks, z-test, winner",
)
def show_subject_test(campaign_id: CampaignId, session: SessionDep) -> dict[str, Any]:
    return subject_tests.show_test(session, campaign_id=campaign_id)


@router.delete(
    "/{campaign_id}/subject-test",
    status_code=204,
    responses=CHANGE,
    summary="Remove the subject test before its sample is sent (409 once it has been)",
)
def remove_subject_test(campaign_id: CampaignId, session: SessionDep, actor: ActorDep) -> None:
    subject_tests.remove_test(session, campaign_id=campaign_id, actor=actor)


@router.post(
    "/{campaign_id}/subject-test/winner",
    responses=CHANGE,
    summary="Choose the winner by hand once the sample is sent; the rest gets it",
)
def choose_subject_test_winner(
    campaign_id: CampaignId, body: WinnerRequest, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    return subject_tests.choose_winner(
        session, campaign_id=campaign_id, label=body.label, actor=actor
    )


@router.delete(
    "/{campaign_id}/resend",
    status_code=204,
    responses=CHANGE,
    summary="Cancel the resend before it is due (409 once it has been made a campaign)",
)
def cancel_resend(campaign_id: CampaignId, session: SessionDep, actor: ActorDep) -> None:
    resends.cancel_resend(session, campaign_id=campaign_id, actor=actor)


@router.post(
    "/{campaign_id}/resend",
    status_code=201,
    responses=CHANGE,
    summary="Resend a sent campaign to those who did not open it (once per campaign)",
)
def request_resend(
    campaign_id: CampaignId, body: ResendRequest, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    return resends.request_resend(
        session,
        campaign_id=campaign_id,
        subject=body.subject,
        after=timedelta(seconds=body.after_seconds),
        actor=actor,
    )
