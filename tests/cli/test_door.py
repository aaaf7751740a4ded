"""The command door itself: layering, `scheduler run` as its own process, `serve`'s options."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter import db, leases
from newsletter.settings import PROJECT_ROOT

NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
CLI_DIR = PROJECT_ROOT / "cli"
OTHER_DOORS = {"web", "scheduler"}
FRAMEWORKS = {"fastapi", "starlette", "apscheduler"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def cli_files() -> list[Path]:
    files = sorted(CLI_DIR.rglob("*.py"))
    assert len(files) >= 9, files  # __init__, output, context and the command groups
    return files


@pytest.mark.parametrize("path", cli_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_the_cli_imports_no_other_door_and_no_web_or_scheduler_framework(path: Path) -> None:
    roots = {name.split(".")[0] for name in imported_modules(path)}
    assert roots.isdisjoint(OTHER_DOORS | FRAMEWORKS), roots & (OTHER_DOORS | FRAMEWORKS)


@pytest.mark.parametrize("path", cli_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_cli_module_is_under_400_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) < 400


def test_the_directory_room_imports_no_door_and_not_campaigns() -> None:
    roots = {
        name.split(".")[0] for name in imported_modules(PROJECT_ROOT / "subscribers/directory.py")
    }
    assert roots.isdisjoint({"cli", "web", "scheduler", "campaigns", "typer", "fastapi"})


def base_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=f"sqlite:///{tmp_path / 'door.db'}",
        NEWSLETTER_OUTBOX_DIR=str(tmp_path / "outbox"),
        NEWSLETTER_SECRET_KEY="door-test-secret-0123456789",
        NEWSLETTER_POSTAL_ADDRESS="Pain Relief Weekly, 1 Main Street, Springfield",
        NEWSLETTER_TIMEZONE="UTC",
        NEWSLETTER_LEASE_SECONDS="3",
    )
    env.update(values)
    return env


def newsletter(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NEWSLETTER, *args],
        cwd=tmp_path,
        env=base_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_scheduler_run_becomes_python_m_scheduler_in_the_same_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'door.db'}"
    engine = db.get_engine(url)
    db.upgrade(engine)
    proc = subprocess.Popen(
        [NEWSLETTER, "scheduler", "run"],
        cwd=tmp_path,
        env=base_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while (lease := leases.current(engine)) is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        assert lease is not None, "the scheduler never took its lease"
        assert lease.holder.split(":")[1] == str(proc.pid)  # exec kept the process id
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        assert cmdline == [sys.executable.encode(), b"-m", b"scheduler"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        db.dispose_engine(url)
    assert leases.current(engine) is None


def test_scheduler_run_with_bad_settings_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = newsletter(tmp_path, "scheduler", "run", "--once", NEWSLETTER_PROVIDER="pigeon")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: invalid settings: NEWSLETTER_PROVIDER")
    assert result.stderr.count("\n") == 1


def test_scheduler_run_with_a_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    assert newsletter(tmp_path, "scheduler", "run", "--twice").returncode == 2


@pytest.mark.parametrize(
    "args", [["--port", "eighty"], ["--workers", "0"], ["--host"], ["--bogus"]]
)
def test_serve_rejects_bad_options_with_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = newsletter(tmp_path, "serve", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = newsletter(tmp_path, "serve", "--port", "0", NEWSLETTER_DATABASE_URL=url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: cannot reach the database")
    assert result.stderr.count("\n") == 1


def test_serve_leaves_forwarded_headers_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn must not rewrite the client from X-Forwarded-For: web/clients.py decides
    # whom to believe, from NEWSLETTER_TRUSTED_PROXIES only.
    import uvicorn
    from typer.testing import CliRunner

    from cli import app

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert seen["proxy_headers"] is False
