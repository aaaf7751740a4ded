"""CSV import (consent proof, bad rows, encodings, idempotence) and CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from newsletter import db
from newsletter.errors import ImportProblem
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.csv_io import ImportReport, import_csv
from subscribers.export import export_subscribers
from subscribers.models import ConsentEvent, Subscriber, SuppressionReason
from subscribers.suppression import is_suppressed, suppress
from tests.conftest import make_settings
from tests.support.subscribers import make_subscriber, messages, outbox, sqlite_only


def run_import(
    session: Session, settings: Settings, data: bytes | str, *, send: bool = True
) -> ImportReport:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    report = import_csv(
        session,
        settings=settings,
        mailer=outbox(settings),
        data=raw,
        where="people.csv",
        send_confirmations=send,
    )
    session.commit()
    return report


def statuses(session: Session) -> dict[str, str]:
    return {s.email: s.status for s in session.exec(select(Subscriber))}


def test_row_with_consent_proof_becomes_active_with_the_proof_recorded(
    session: Session, settings: Settings
) -> None:
    run_import(
        session,
        settings,
        "email,name,consented_at,source,ip\n"
        "ann@example.com,Ann,2025-03-01T10:00:00Z,spring webinar,203.0.113.4\n",
    )
    subscriber = lifecycle.get_by_email(session, email="ann@example.com")
    assert (subscriber.status, subscriber.source, subscriber.name) == ("active", "import", "Ann")
    [event] = lifecycle.history(session, subscriber_id=subscriber.id)
    assert (event.to_status, event.reason, event.source, event.ip, event.detail) == (
        "active",
        "imported with consent proof",
        "import",
        "203.0.113.4",
        {
            "line": 2,
            "original_source": "spring webinar",
            "consented_at": "2025-03-01T10:00:00+00:00",
        },
    )
    assert messages(settings) == []


def test_row_without_proof_becomes_pending_and_gets_a_confirmation(
    session: Session, settings: Settings
) -> None:
    report = run_import(session, settings, "email,name\nbob@example.com,Bob\n")
    assert statuses(session) == {"bob@example.com": "pending"}
    assert (report.pending, report.confirmations_sent) == (1, 1)
    [message] = messages(settings)
    assert message["Subject"] == "Please confirm your subscription to Pain Relief Weekly"


@sqlite_only
def test_no_confirm_mail_leaves_rows_pending_silently(session: Session, settings: Settings) -> None:
    report = run_import(session, settings, "email,name\nbob@example.com,Bob\n", send=False)
    assert statuses(session) == {"bob@example.com": "pending"}
    assert (report.pending, report.confirmations_sent) == (1, 0)
    assert messages(settings) == []


def test_bad_rows_are_reported_by_line_and_good_rows_kept(
    session: Session, settings: Settings
) -> None:
    report = run_import(
        session,
        settings,
        (
            "email,name,consented_at,ip\n"
            "good@example.com,Good,,\n"
            "not-an-address,Bad,,\n"
            "\n"
            "future@example.com,,2999-01-01,\n"
            "ip@example.com,,2025-01-01,999.1.1.1\n"
            "GOOD@example.com,Again,,\n"
            "also-good@example.com,,2024-12-31,\n"
        ),
    )
    assert statuses(session) == {"good@example.com": "pending", "also-good@example.com": "active"}
    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "'not-an-address' is not a valid email address: An email address must have an @-sign."),
        (5, "consented_at '2999-01-01' is in the future"),
        (6, "ip '999.1.1.1' is not an IP address"),
        (7, "duplicate of line 2"),
    ]


@sqlite_only
def test_line_numbers_count_quoted_multi_line_cells(session: Session, settings: Settings) -> None:
    report = run_import(
        session, settings, 'email,name\nok@example.com,"Two\nLines"\nbad,x\n', send=False
    )
    assert [(p.line, p.email) for p in report.problems] == [(4, "bad")]
    assert lifecycle.get_by_email(session, email="ok@example.com").name == "Two Lines"


@sqlite_only
def test_sql_looking_values_are_only_data(session: Session, settings: Settings) -> None:
    run_import(
        session,
        settings,
        'email,name\n"robert@example.com","Robert\'); DROP TABLE subscriber;--"\n',
        send=False,
    )
    assert (
        lifecycle.get_by_email(session, email="robert@example.com").name
        == "Robert'); DROP TABLE subscriber;--"
    )


@sqlite_only
def test_utf8_bom_is_ignored(session: Session, settings: Settings) -> None:
    run_import(session, settings, "\ufeffEmail,Name\nzoe@example.com,Zoë\n".encode(), send=False)
    assert lifecycle.get_by_email(session, email="zoe@example.com").name == "Zoë"


@sqlite_only
def test_mixed_utf8_and_windows_1252_lines_both_read(session: Session, settings: Settings) -> None:
    data = (
        b"email,name\n"
        + "jose@example.com,José\n".encode()
        + "zoe@example.com,Zoë\n".encode("cp1252")
    )
    run_import(session, settings, data, send=False)
    names = {s.email: s.name for s in session.exec(select(Subscriber))}
    assert names == {"jose@example.com": "José", "zoe@example.com": "Zoë"}


@sqlite_only
def test_utf16_file_with_bom_is_read(session: Session, settings: Settings) -> None:
    run_import(
        session, settings, "email,name\r\nmia@example.com,Mía\r\n".encode("utf-16"), send=False
    )
    assert lifecycle.get_by_email(session, email="mia@example.com").name == "Mía"


@sqlite_only
def test_wrong_header_is_a_clear_error(session: Session, settings: Settings) -> None:
    with pytest.raises(ImportProblem) as caught:
        run_import(session, settings, "mail,full name\nann@example.com,Ann\n")
    assert str(caught.value) == (
        "people.csv:1: missing column 'email'; expected columns: email, name, consented_at, "
        "source, ip, timezone"
    )


@sqlite_only
def test_header_missing_entirely_says_so(session: Session, settings: Settings) -> None:
    with pytest.raises(ImportProblem, match=r"the first line looks like data: add a header"):
        run_import(session, settings, "ann@example.com,Ann\n")


@sqlite_only
def test_unknown_column_is_named(session: Session, settings: Settings) -> None:
    with pytest.raises(ImportProblem, match=r"people.csv:1: unknown column\(s\) 'phone'"):
        run_import(session, settings, "email,name,phone\nann@example.com,Ann,555\n")


@sqlite_only
def test_empty_file_is_a_clear_error(session: Session, settings: Settings) -> None:
    with pytest.raises(ImportProblem, match="the file is empty; expected a header line"):
        run_import(session, settings, b"")


@sqlite_only
def test_binary_file_is_refused(session: Session, settings: Settings) -> None:
    with pytest.raises(ImportProblem, match="not a text CSV file"):
        run_import(session, settings, b"PK\x03\x04\x00\x00binary")


def test_rerunning_the_same_file_changes_nothing(session: Session, settings: Settings) -> None:
    data = "email,name,consented_at\nann@example.com,Ann,2025-01-01\nbob@example.com,Bob,\n"
    run_import(session, settings, data)
    before = (
        statuses(session),
        len(session.exec(select(ConsentEvent)).all()),
        len(messages(settings)),
    )
    report = run_import(session, settings, data)
    after = (
        statuses(session),
        len(session.exec(select(ConsentEvent)).all()),
        len(messages(settings)),
    )
    assert before == after
    assert (report.unchanged, report.active, report.pending) == (2, 0, 0)


def test_import_never_reactivates_an_unsubscribed_subscriber(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session, "left@example.com")
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    report = run_import(
        session, settings, "email,name,consented_at\nleft@example.com,,2025-01-01\n"
    )
    assert statuses(session) == {"left@example.com": "unsubscribed"}
    assert report.unchanged == 1


def test_import_never_adds_a_suppressed_address(session: Session, settings: Settings) -> None:
    suppress(session, email="gone@example.com", reason=SuppressionReason.ERASED)
    session.commit()
    report = run_import(
        session, settings, "email,name,consented_at\nGONE@example.com,,2025-01-01\n"
    )
    assert statuses(session) == {}
    assert report.suppressed == 1


@sqlite_only
def test_report_as_dict(session: Session, settings: Settings) -> None:
    report = run_import(session, settings, "email,name\nbad,\nok@example.com,\n", send=False)
    assert report.as_dict() == {
        "rows": 2,
        "active": 0,
        "pending": 1,
        "confirmations_sent": 0,
        "unchanged": 0,
        "suppressed": 0,
        "problems": [
            {
                "line": 2,
                "email": "bad",
                "reason": "'bad' is not a valid email "
                "address: An email address must have an @-sign.",
            }
        ],
    }


def test_export_json_carries_consent_history(session: Session, settings: Settings) -> None:
    run_import(
        session,
        settings,
        "email,name,consented_at,ip\nann@example.com,Ann,2025-03-01T10:00:00+00:00,203.0.113.4\n",
    )
    [record] = json.loads(export_subscribers(session, fmt="json"))
    assert {
        k: record[k]
        for k in (
            "email",
            "name",
            "status",
            "consented_at",
            "source",
            "ip",
            "topics",
            "paused_until",
        )
    } == {
        "email": "ann@example.com",
        "name": "Ann",
        "status": "active",
        "consented_at": "2025-03-01T10:00:00+00:00",
        "source": "import",
        "ip": "203.0.113.4",
        "topics": [],
        "paused_until": None,
    }
    assert [e["reason"] for e in record["history"]] == ["imported with consent proof"]


@sqlite_only
def test_export_csv_has_a_history_column(session: Session, settings: Settings) -> None:
    make_subscriber(session, "ann@example.com")
    rows = list(csv.DictReader(io.StringIO(export_subscribers(session, fmt="csv"))))
    assert [(r["email"], r["status"]) for r in rows] == [("ann@example.com", "active")]
    assert [e["reason"] for e in json.loads(rows[0]["history"])] == ["test fixture"]


def test_export_filters_by_status(session: Session, settings: Settings) -> None:
    make_subscriber(session, "a@example.com")
    make_subscriber(session, "p@example.com", status="pending")
    records = json.loads(export_subscribers(session, fmt="json", status=lifecycle.S.PENDING))
    assert [r["email"] for r in records] == ["p@example.com"]


def test_export_then_import_elsewhere_round_trips(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    run_import(
        session,
        settings,
        "email,name,consented_at\nann@example.com,Ann,2025-01-01\nbob@example.com,Bob,\n",
        send=False,
    )
    left = make_subscriber(session, "left@example.com")
    lifecycle.unsubscribe(session, subscriber_id=left.id, source="form")
    session.commit()
    exported = export_subscribers(session, fmt="csv").encode()

    other = make_settings(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    engine = db.get_engine(other.database_url)
    db.upgrade(engine)
    try:
        with Session(engine, expire_on_commit=False) as fresh:
            report = run_import(fresh, other, exported, send=False)
            assert statuses(fresh) == {"ann@example.com": "active", "bob@example.com": "pending"}
            assert is_suppressed(fresh, email="left@example.com")
            assert (report.active, report.pending, report.suppressed, report.problems) == (
                1,
                1,
                1,
                [],
            )
    finally:
        db.dispose_engine(other.database_url)


@sqlite_only
def test_semicolon_separated_file_is_refused_with_a_hint(
    session: Session, settings: Settings
) -> None:
    with pytest.raises(ImportProblem) as caught:
        run_import(session, settings, "email;name\nann@example.com;Ann\n")
    assert str(caught.value) == (
        "people.csv:1: missing column 'email' (the columns are separated by ';'; save the file "
        "with commas); expected columns: email, name, consented_at, source, ip, timezone"
    )


@sqlite_only
def test_internationalised_domain_is_imported_in_ascii(
    session: Session, settings: Settings
) -> None:
    report = run_import(session, settings, "email,name\nann@bücher.example,Ann\n", send=False)
    assert (report.pending, report.problems) == (1, [])
    assert statuses(session) == {"ann@xn--bcher-kva.example": "pending"}


@sqlite_only
def test_refused_addresses_are_reported_by_line_and_the_good_row_kept(
    session: Session, settings: Settings
) -> None:
    overlong = "a" * 65 + "@example.com"
    report = run_import(
        session,
        settings,
        "email,name\n"
        "josé@example.com,\n"
        f"{overlong},\n"
        '"x\'; DROP TABLE subscriber;--@example.com",\n'
        "good@example.com,\n",
        send=False,
    )
    assert [(p.line, p.reason.split(":")[0]) for p in report.problems] == [
        (2, "'josé@example.com' is not a valid email address"),
        (3, "the part before the @ is too long (65 characters; at most 64)"),
        (4, '"x\'; DROP TABLE subscriber;--@example.com" is not a valid email address'),
    ]
    assert statuses(session) == {"good@example.com": "pending"}


@sqlite_only
def test_confirmation_for_an_imported_row_says_the_address_came_from_an_import(
    session: Session, settings: Settings
) -> None:
    run_import(session, settings, "email,name\nbob@example.com,Bob\n")
    [message] = messages(settings)
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "this address was in a list of readers imported by Pain Relief Weekly" in body
