"""The reader's own data, behind their signed preferences link: "Download my data" (JSON)
and "Delete my data" (confirmed once more on a page of its own, then erased as
``newsletter subscribers erase`` does).

Both are POSTs, so a link scanner that opens every URL in an email can neither download
nor delete, and both are rate-limited per subscriber in the database
(``NEWSLETTER_MY_DATA_LIMIT_PER_HOUR``). They work whatever the subscription's state:
someone who left may still see or erase what we hold.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse

from campaigns.tracking import subject_access
from subscribers import lifecycle
from web.deps import PagesDep, PreferencesLinkDep, SessionDep, my_data_rate_limit
from web.responses import NO_STORE, page

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)


@router.post(
    "/preferences/{token}/data",
    response_class=JSONResponse,
    dependencies=[Depends(my_data_rate_limit)],
    summary="Download everything stored about the link's subscriber, as JSON",
)
def download_my_data(subscriber_id: PreferencesLinkDep, session: SessionDep) -> JSONResponse:
    """:func:`campaigns.tracking.subject_access.subject_access`, as a file to save."""
    data = subject_access.subject_access(session, subscriber_id=subscriber_id)
    headers = {**NO_STORE, "Content-Disposition": 'attachment; filename="my-data.json"'}
    return JSONResponse(data, headers=headers)


@router.get("/preferences/{token}/delete")
def delete_my_data_form(
    token: str, subscriber_id: PreferencesLinkDep, session: SessionDep, pages: PagesDep
) -> HTMLResponse:
    """The second step: what goes and what stays, and one button. Nothing changes yet."""
    subscriber = lifecycle.get_subscriber(session, subscriber_id=subscriber_id)
    return page(pages.delete_data(subscriber, token=token))


@router.post("/preferences/{token}/delete", dependencies=[Depends(my_data_rate_limit)])
def delete_my_data(
    subscriber_id: PreferencesLinkDep, session: SessionDep, pages: PagesDep
) -> HTMLResponse:
    subject_access.erase_subscriber(session, subscriber_id=subscriber_id)
    return page(pages.data_deleted())
