"""Settings: one place, clear errors that name the variable, no silent production defaults."""

from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.settings import Settings, load_settings


def test_plain_postgresql_url_uses_psycopg3() -> None:
    cfg = Settings(_env_file=None, database_url="postgresql://u@h:5432/db")  # type: ignore[call-arg]
    assert cfg.database_url == "postgresql+psycopg://u@h:5432/db"


def test_environment_variables_with_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_FROM_NAME", "Back Care Weekly")
    assert load_settings(_env_file=None).from_name == "Back Care Weekly"


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NEWSLETTER_POSTAL_ADDRESS=1 Main St\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().postal_address == "1 Main St"


def test_unknown_provider_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_PROVIDER"):
        load_settings(_env_file=None, provider="carrier-pigeon")


def test_missing_secret_key_names_the_variable() -> None:
    cfg = load_settings(_env_file=None)
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is not set"):
        cfg.check_for_sending()


def test_sending_for_real_needs_a_postal_address() -> None:
    cfg = load_settings(
        _env_file=None, secret_key="k", provider="sendgrid", sendgrid_api_key="SG.x"
    )
    with pytest.raises(ConfigError, match="NEWSLETTER_POSTAL_ADDRESS"):
        cfg.check_for_sending()


def test_outbox_sending_needs_no_postal_address() -> None:
    load_settings(_env_file=None, secret_key="k").check_for_sending()


def test_production_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        load_settings(_env_file=None, environment="production", postal_address="x")


def test_old_secret_keys_follow_the_current_one() -> None:
    cfg = load_settings(_env_file=None, secret_key="new", old_secret_keys=["old"])
    assert cfg.secret_keys == ["new", "old"]


def test_dotenv_saved_with_a_utf8_bom_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Notepad and PowerShell write a BOM before the first variable's name.
    (tmp_path / ".env").write_bytes(
        b"\xef\xbb\xbfNEWSLETTER_POSTAL_ADDRESS=1 Main St\r\nNEWSLETTER_FROM_NAME=Back Care\r\n"
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_settings()
    assert (cfg.postal_address, cfg.from_name) == ("1 Main St", "Back Care")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_dotenv_in_utf16_is_refused_naming_the_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    (tmp_path / ".env").write_bytes("NEWSLETTER_POSTAL_ADDRESS=1 Main St\n".encode(codec))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\.env: looks like UTF-16.*; save it as UTF-8"):
        load_settings()
