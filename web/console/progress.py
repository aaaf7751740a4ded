"""Live progress of a send in the console, however it was started (console, API, CLI or
scheduler): ``GET /admin/campaigns/{id}/progress`` is a page with the numbers (reload it
without JavaScript), and ``.../progress/stream`` the same numbers as Server-Sent Events
(text/event-stream, WHATWG HTML 9.2), one ``progress`` event about every
``console_progress_interval_seconds`` and a last ``done`` event once the campaign is
sent, cancelled or failed. ``web/static/console.js`` updates the page from the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from campaigns.live import LiveProgress, live_progress
from newsletter import db
from web.console.deps import CurrentUser, render
from web.deps import EngineDep, SessionDep, SettingsDep

router = APIRouter(prefix="/campaigns")
# The stream closes on its own after this long; EventSource reconnects if still wanted.
MAX_STREAM_SECONDS = 3600


@router.get("/{campaign_id}/progress")
def progress_page(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> HTMLResponse:
    progress = live_progress(session, settings=settings, campaign_id=campaign_id)
    return render(
        request,
        "console/campaign_progress.html.j2",
        title=f"Campaign {campaign_id}: progress",
        p=progress,
    )


def _event(name: str, progress: LiveProgress) -> str:
    return f"event: {name}\ndata: {json.dumps(progress.to_dict())}\n\n"


@router.get("/{campaign_id}/progress/stream")
def progress_stream(
    campaign_id: int,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> StreamingResponse:
    """Server-Sent Events; NotFound before the stream starts for an unknown campaign."""

    def read() -> LiveProgress:
        with db.session_scope(engine) as session:
            return live_progress(session, settings=settings, campaign_id=campaign_id)

    first = read()
    interval = settings.console_progress_interval_seconds

    async def events() -> AsyncIterator[str]:
        progress = first
        waited = 0.0
        yield f"retry: {int(interval * 1000)}\n\n"
        while True:
            yield _event("progress", progress)
            if progress.finished:
                yield _event("done", progress)
                return
            if waited > MAX_STREAM_SECONDS or await request.is_disconnected():
                return
            await asyncio.sleep(interval)
            waited += interval
            progress = await run_in_threadpool(read)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
