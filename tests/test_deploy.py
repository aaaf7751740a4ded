"""deploy/: the systemd units and the example environment file ops copy from."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import scheduler
from campaigns import weekly_plan
from newsletter.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "newsletter.env.example"


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / name)
    return parser["Service"]


def test_every_variable_in_the_example_env_file_is_a_setting() -> None:
    names = re.findall(r"^#?\s*NEWSLETTER_([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)
    assert len(names) > 20
    assert [n for n in names if n.lower() not in Settings.model_fields] == []


def test_the_example_env_file_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("NEWSLETTER_")]:
        monkeypatch.delenv(key)
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    assert (settings.environment, settings.timezone) == ("production", "America/New_York")
    weekly_plan.zone(settings)
    weekly_plan.send_clock(settings)
    scheduler.assembly_trigger(settings)
    scheduler.housekeeping_trigger(settings)


def test_the_scheduler_unit_runs_the_service_and_lets_sigterm_finish_a_batch() -> None:
    service = unit("newsletter-scheduler.service")
    assert service["ExecStart"].endswith("/.venv/bin/newsletter scheduler run")
    assert service["EnvironmentFile"] == "/etc/newsletter/newsletter.env"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 2 * Settings.model_fields[
        "sendgrid_timeout_seconds"
    ].get_default(call_default_factory=True)
    assert service["Restart"] == "on-failure"
    assert service["StateDirectory"] == "newsletter"  # /var/lib/newsletter: the outbox


def test_the_web_unit_leaves_forwarded_headers_to_the_app() -> None:
    """uvicorn's proxy headers are on by default; web/clients.py decides whom to believe."""
    args = unit("newsletter-web.service")["ExecStart"].split()
    assert "--no-proxy-headers" in args
    assert "--proxy-headers" not in args
    assert not [a for a in args if a.startswith("--forwarded-allow-ips")]


def test_the_units_pass_systemd_analyze(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    names = ["newsletter-scheduler.service", "newsletter-web.service"]
    for name in names:  # outside /etc: verify reads the files as given
        shutil.copy(DEPLOY / name, tmp_path / name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if line and "is not executable: No such file or directory" not in line  # not installed
    ]
    assert problems == []


def test_the_worker_unit_runs_newsletter_worker_and_lets_sigterm_finish_a_block() -> None:
    service = unit("newsletter-worker@.service")
    assert "/.venv/bin/newsletter worker " in service["ExecStart"]
    assert service["EnvironmentFile"] == "/etc/newsletter/newsletter.env"
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
