"""The console's sending options of a campaign (web/console/sending_options.py, issue 16):
local-time waves, a subject test and its winner, a resend to non-openers; the refusals
(a viewer, a missing CSRF token, a room's error as one line); and the reader's time zone
on the person page. SQLite only: the rooms are tested on both databases in tests/campaigns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns import subject_tests
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, CampaignStatus
from newsletter import audit, db
from newsletter.accounts import Role
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.conftest import make_settings
from tests.support.console import (
    EDITOR,
    VIEWER,
    add_users_cheaply,
    csrf_of,
    sign_in,
)
from tests.support.delivery import add_subscribers, make_campaign

ZONES = {"user1@example.com": "Asia/Tokyo", "user2@example.com": "America/New_York"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    """Ten active readers, two of them with a time zone (the list's is UTC)."""
    root = tmp_path_factory.mktemp("console-sending")
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {EDITOR: Role.editor, VIEWER: Role.viewer})
    add_subscribers(engine, 10)
    with Session(engine) as session:
        for reader in session.exec(select(Subscriber).where(Subscriber.email.in_(ZONES))):  # type: ignore[attr-defined]
            reader.timezone = ZONES[reader.email]
            session.add(reader)
        session.commit()
    yield engine, settings
    db.dispose_engine(settings.database_url)


def _campaign(engine: Engine, status: CampaignStatus = CampaignStatus.DRAFT) -> int:
    with Session(engine) as session:
        return make_campaign(session, status=status).id or 0


def _sent(engine: Engine, settings: Settings) -> int:
    cid = _campaign(engine, CampaignStatus.SCHEDULED)
    with Session(engine) as session:
        send_campaign(session, settings=settings, campaign_id=cid, preflight=False)
    return cid


def _audited(engine: Engine, campaign_id: int) -> str:
    """The action of the audit log's newest entry about the campaign, by the editor."""
    with Session(engine) as session:
        entries = audit.recent(session, limit=500).entries
    return next(e.action for e in entries if e.target_id == str(campaign_id) and e.actor == EDITOR)


def _post(client: httpx.Client, cid: int, path: str, **data: object) -> httpx.Response:
    token = csrf_of(client, f"/admin/campaigns/{cid}/sending")
    return client.post(f"/admin/campaigns/{cid}/sending/{path}", data={"csrf_token": token, **data})


def test_the_editor_links_to_the_sending_options(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    page = editor.get(f"/admin/campaigns/{cid}")
    assert f'href="/admin/campaigns/{cid}/sending"' in page.text


def test_local_time_form_schedules_one_wave_per_zone_instant_shown_in_the_list_zone(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    done = _post(editor, cid, "local-time", local_time="07:00", late="next-day", on="2030-06-03")
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/campaigns/{cid}/sending?done=local"
    html = editor.get(done.headers["location"]).text
    assert "Scheduled at each reader&#39;s local time" in html
    # 07:00 on 3 June 2030 in Tokyo (+9), UTC (the list's, 8 readers), New York (EDT, -4).
    for zone, instant, readers in (
        ("Asia/Tokyo", "2030-06-02 22:00 UTC", 1),
        ("UTC", "2030-06-03 07:00 UTC", 8),
        ("America/New_York", "2030-06-03 11:00 UTC", 1),
    ):
        row = html.split(f"<td>{zone}</td>", 1)[1].split("</tr>", 1)[0]
        assert instant in row
        assert f"<td>{readers} " in row
    assert html.count(">queued</span>") == 3


def test_subject_test_form_creates_the_variants_shown_with_their_human_figures(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    done = _post(
        editor,
        cid,
        "subject-test",
        subject_a="Five stretches",
        subject_b="Your back in five minutes",
        subject_c="",
        preheader_a="For sciatica",
        sample="30",
        wait_hours="2",
        metric="opens",
    )
    assert done.status_code == 303
    html = editor.get(done.headers["location"]).text
    assert "30 % sample" in html and "winner by human\n    opens 2.0 h" in html
    assert "Five stretches<br>" in html and "Your back in five minutes<br>" in html
    assert html.count("For sciatica</span>") == 2  # one preheader goes with every subject
    assert "Choose this winner" not in html  # the sample is not sent yet
    assert _audited(shared[0], cid) == "campaign.subject_test"


def _with_test(editor: httpx.Client, cid: int) -> httpx.Response:
    return _post(
        editor, cid, "subject-test", subject_a="One", subject_b="Two",
        sample="30", wait_hours="2", metric="opens",
    )  # fmt: skip


def test_a_campaign_with_a_subject_test_offers_no_local_time_form_but_says_why(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the form was offered and its send was a dead-end 409 page."""
    cid = _campaign(shared[0])
    html = editor.get(_with_test(editor, cid).headers["location"]).text
    assert "/sending/local-time" not in html
    assert "Remove the test to send at each reader's local time." in html


def test_a_subject_test_removed_before_its_sample_gives_the_forms_back(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    _with_test(editor, cid)
    done = _post(editor, cid, "subject-test/remove")
    assert done.status_code == 303
    html = editor.get(done.headers["location"]).text
    assert "Subject test removed: the campaign goes out with its own subject." in html
    assert "/sending/local-time" in html and 'name="subject_a"' in html
    assert _audited(shared[0], cid) == "campaign.subject_test_removed"


def test_a_winner_is_chosen_by_hand_once_the_sample_is_sent(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine)
    with Session(engine) as session:
        subject_tests.create_test(
            session,
            campaign_id=cid,
            subjects=["Alpha", "Beta"],
            sample_percent=40,
            wait=timedelta(hours=4),
            actor="test",
        )
        session.commit()
        send_campaign(session, settings=settings, campaign_id=cid, preflight=False)
    page = editor.get(f"/admin/campaigns/{cid}/sending").text
    assert page.count("Choose this winner") == 2
    assert "vs B: no difference to test" in page  # the z-test's wording: 0 % against 0 %
    done = _post(editor, cid, "subject-test/winner", label="B")
    assert done.status_code == 303
    html = editor.get(done.headers["location"]).text
    assert "Winner: <strong>B</strong> (chosen by editor@example.com" in html
    assert "Choose this winner" not in html
    assert _audited(engine, cid) == "campaign.subject_test_winner"


def test_a_refused_subject_test_is_one_line_on_its_form_with_everything_typed_kept(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    refused = _post(
        editor, cid, "subject-test", subject_a="Same", subject_b="Same", subject_c="Third",
        preheader_b="Only B", sample=35, wait_hours=12, metric="opens",
    )  # fmt: skip
    assert refused.status_code == 400
    line = "The subjects must be different and not empty."  # no API field prefix
    assert f'role="alert" id="test-error">{line}</p>' in refused.text
    for typed in ('value="Same"', 'value="Third"', 'value="Only B"', 'value="35"', 'value="12"'):
        assert typed in refused.text
    assert '<option value="opens" selected>' in refused.text
    assert 'aria-invalid="true" aria-describedby="test-hint test-error"' in refused.text
    assert "Traceback" not in refused.text


@pytest.mark.parametrize(
    ("sample", "wait_hours", "line"),
    [
        ("", "12", "The sample is a whole number, 1 to 99 (% of the audience)."),
        ("abc", "12", "The sample is a whole number, 1 to 99 (% of the audience)."),
        ("35", "", "The wait is a whole number of hours, 1 to 720."),
        ("35", "2.5", "The wait is a whole number of hours, 1 to 720."),
    ],
)
def test_an_empty_or_unreadable_sample_or_wait_is_refused_not_taken_as_the_default(
    editor: httpx.Client, shared: tuple[Engine, Settings], sample: str, wait_hours: str, line: str
) -> None:
    cid = _campaign(shared[0])
    refused = _post(
        editor, cid, "subject-test", subject_a="One", subject_b="Two",
        sample=sample, wait_hours=wait_hours, metric="opens",
    )  # fmt: skip
    assert refused.status_code == 400
    assert f'role="alert" id="test-error">{line}</p>' in refused.text
    assert 'value="One"' in refused.text and 'value="Two"' in refused.text
    assert f'name="sample" type="number" min="1" max="99" value="{sample}"' in refused.text
    assert f'name="wait_hours" type="number" min="1" max="720" value="{wait_hours}"' in (
        refused.text
    )


@pytest.mark.parametrize(
    ("after_days", "line"),
    [
        ("", "The resend waits a whole number of days, 1 to 60."),
        ("1.5", "The resend waits a whole number of days, 1 to 60."),
        ("61", "The resend waits 1 hour to 60 days after the send."),
    ],
)
def test_an_empty_unreadable_or_too_long_resend_wait_is_refused_with_the_subject_kept(
    editor: httpx.Client, shared: tuple[Engine, Settings], after_days: str, line: str
) -> None:
    cid = _sent(*shared)
    refused = _post(editor, cid, "resend", subject="Did you miss it?", after_days=after_days)
    assert refused.status_code == 400
    assert f'role="alert" id="resend-error">{line}</p>' in refused.text
    assert 'value="Did you miss it?"' in refused.text
    assert f'name="after_days" type="number" min="1" max="60" value="{after_days}"' in (
        refused.text
    )


@pytest.mark.parametrize(
    ("subject", "line"),
    [
        ("", "A resend needs a subject of 1 to 300 characters."),
        (
            " WEEKLY ",
            "A resend needs a new subject: it goes to readers who did not open this one.",
        ),
    ],
)
def test_an_empty_or_unchanged_resend_subject_is_refused_on_its_form(
    editor: httpx.Client, shared: tuple[Engine, Settings], subject: str, line: str
) -> None:
    """A marketer's review: empty was a page of its own; the own subject went through."""
    cid = _sent(*shared)
    refused = _post(editor, cid, "resend", subject=subject, after_days="3")
    assert refused.status_code == 400
    assert f'role="alert" id="resend-error">{line}</p>' in refused.text
    assert 'name="after_days" type="number" min="1" max="60" value="3"' in refused.text


def test_an_empty_local_time_is_refused_on_its_form(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    refused = _post(editor, cid, "local-time", local_time="", on="", late="now")
    assert refused.status_code == 400
    line = "Give a time of day as HH:MM (24-hour), such as 07:00."
    assert f'role="alert" id="local-error">{line}</p>' in refused.text
    assert '<input type="radio" name="late" value="now" checked>' in refused.text


def test_alike_subjects_mark_only_the_second_of_them(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the valid Subject A and the empty optional C were flagged too."""
    cid = _campaign(shared[0])
    refused = _post(
        editor, cid, "subject-test", subject_a="Same", subject_b="same ", subject_c="",
        sample="20", wait_hours="4", metric="clicks",
    ).text  # fmt: skip
    flagged = re.findall(r'name="(\w+)"[^>]*aria-invalid="true"', refused)
    assert flagged == ["subject_b"]


def test_a_refused_resend_keeps_the_subject_typed(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _sent(*shared)
    refused = _post(editor, cid, "resend", subject="Did you\r\nBcc: x@evil.example", after_days=5)
    assert refused.status_code == 400
    assert 'role="alert" id="resend-error">' in refused.text
    assert (
        'value="Did you&#13;&#10;Bcc: x@evil.example"' in refused.text or "Did you" in refused.text
    )
    assert 'value="5"' in refused.text


@pytest.mark.parametrize(
    ("on", "line"),
    [
        ("2020-01-01", "2020-01-01 is in the past; pick today or a later date."),
        ("9999-12-31", "9999-12-31 is too far ahead; pick a date within ten years."),
    ],
)
def test_a_local_time_date_in_the_past_or_too_far_ahead_is_refused_in_one_line(
    editor: httpx.Client, shared: tuple[Engine, Settings], on: str, line: str
) -> None:
    cid = _campaign(shared[0])
    refused = _post(editor, cid, "local-time", local_time="23:59", late="now", on=on)
    assert refused.status_code == 400
    assert f'role="alert" id="local-error">{line}</p>' in refused.text
    assert f'value="{on}"' in refused.text and 'value="23:59"' in refused.text
    assert '<input type="radio" name="late" value="now" checked>' in refused.text
    with Session(shared[0]) as session:
        assert session.get(Campaign, cid).status == CampaignStatus.DRAFT  # nothing planned


def test_resend_form_on_a_sent_campaign_shows_the_resend(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _sent(*shared)
    before = editor.get(f"/admin/campaigns/{cid}/sending").text
    assert 'name="after_days"' in before
    done = _post(editor, cid, "resend", subject="In case you missed it", after_days="3")
    assert done.status_code == 303
    html = editor.get(done.headers["location"]).text
    assert "<dt>Subject</dt><dd>In case you missed it</dd>" in html
    assert "counted when it is due" in html
    assert 'name="after_days"' not in html  # once per campaign
    assert _audited(shared[0], cid) == "campaign.resend"


def test_a_resend_cancelled_before_it_is_due_gives_the_form_back(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: once requested, a resend could not be taken back."""
    cid = _sent(*shared)
    _post(editor, cid, "resend", subject="In case you missed it", after_days="3")
    done = _post(editor, cid, "resend/cancel")
    assert done.status_code == 303
    html = editor.get(done.headers["location"]).text
    assert "Resend cancelled: nobody gets it." in html and 'name="after_days"' in html
    assert _audited(shared[0], cid) == "campaign.resend_cancelled"


def test_a_viewer_reads_the_options_but_every_change_is_refused(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    with httpx.Client(base_url=str(editor.base_url), follow_redirects=False) as viewer:
        sign_in(viewer, VIEWER)
        page = viewer.get(f"/admin/campaigns/{cid}/sending")
        assert page.status_code == 200
        assert "Schedule by local time" not in page.text
        token = csrf_of(viewer, f"/admin/campaigns/{cid}/sending")
        for path, data in (
            ("local-time", {"local_time": "07:00"}),
            ("subject-test", {"subject_a": "A", "subject_b": "B"}),
            ("subject-test/winner", {"label": "A"}),
            ("resend", {"subject": "Again"}),
        ):
            response = viewer.post(
                f"/admin/campaigns/{cid}/sending/{path}", data={"csrf_token": token, **data}
            )
            assert response.status_code == 403, path


def test_a_post_without_the_csrf_token_is_refused(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _campaign(shared[0])
    response = editor.post(
        f"/admin/campaigns/{cid}/sending/local-time", data={"local_time": "07:00"}
    )
    assert response.status_code == 403
    assert "security token" in response.text


def test_the_person_page_shows_the_reader_time_zone_or_the_list_one(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    with Session(shared[0]) as session:
        ids = {
            s.email: s.id
            for s in session.exec(
                select(Subscriber).where(
                    Subscriber.email.in_(["user1@example.com", "user3@example.com"])
                )
            )  # type: ignore[attr-defined]
        }
    zoned = editor.get(f"/admin/subscribers/{ids['user1@example.com']}").text
    assert "<dt>Time zone</dt><dd>Asia/Tokyo</dd>" in zoned
    unzoned = editor.get(f"/admin/subscribers/{ids['user3@example.com']}").text
    assert "<dt>Time zone</dt><dd>not given: the list&#39;s (UTC)</dd>" in unzoned
