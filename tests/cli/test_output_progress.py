"""The bar both ``campaigns send`` paths show (cli/output.py ``send_progress``), as printed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from campaigns.delivery.send_report import SendProgress
from cli import output


def _terminal(monkeypatch: pytest.MonkeyPatch, *, is_terminal: bool = True) -> Console:
    console = Console(
        file=io.StringIO(), record=True, force_terminal=is_terminal, width=120, color_system=None
    )
    monkeypatch.setattr(output, "out", console)
    return console


def _last_frame(console: Console) -> str:
    """What the terminal shows at the end: each redraw starts again at ``campaign 7``."""
    return "campaign 7 " + console.export_text().rsplit("campaign 7 ", 1)[-1].rstrip("\n")


def _progress(sent: int, skipped: int = 0, failed: int = 0, *, total: int = 10) -> SendProgress:
    return SendProgress(
        campaign_id=7, total=total, sent=sent, skipped=skipped, failed=failed, elapsed=2.0
    )


def test_the_bar_shows_its_first_status_until_the_first_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _terminal(monkeypatch)
    with output.send_progress(7, status="workers"):
        pass
    assert " 0/? workers " in _last_frame(console)


def test_the_bar_shows_done_of_total_and_the_counts_after_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _terminal(monkeypatch)
    with output.send_progress(7, status="starting") as show:
        show(_progress(sent=6, skipped=1, failed=1))
    line = _last_frame(console)
    assert " 8/10 sent 6  skipped 1  failed 1  3/s " in line
    assert "starting" not in line


def test_the_rate_is_whole_messages_per_second_with_thousands_separators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _terminal(monkeypatch)
    with output.send_progress(7, status="starting") as show:
        show(_progress(sent=25_000, total=30_000))
    assert "  12,500/s " in _last_frame(console)


def test_the_bar_prints_nothing_when_stdout_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _terminal(monkeypatch, is_terminal=False)
    with output.send_progress(7, status="starting") as show:
        show(_progress(sent=6))
    assert console.export_text() == ""


def test_the_bar_of_a_json_send_prints_nothing_even_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = _terminal(monkeypatch)
    with output.send_progress(7, status="starting", shown=False) as show:
        assert show is None  # the send reports no progress to anyone
    assert console.export_text() == ""
