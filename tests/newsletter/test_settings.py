"""Settings: one place, clear errors that name the variable, no silent production defaults."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("sqlite:///var/lib/newsletter.db", "sqlite:///var/lib/newsletter.db"),
        ("sqlite://", "sqlite://"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        (" postgresql://u@h/db ", "postgresql+psycopg://u@h/db"),
    ],
)
def test_sqlite_and_postgresql_urls_are_accepted(url: str, stored: str) -> None:
    assert load_settings(_env_file=None, database_url=url).database_url == stored


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://x", "mysql:// is not supported"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2:// is not supported"),
        ("oracle+oracledb://u:secret@h/db", "oracle+oracledb:// is not supported"),
        ("http://example.com/db", "http:// is not supported"),
        ("", "not a database URL"),
        ("newsletter.db", "not a database URL"),
        ("::::", "not a database URL"),
    ],
)
def test_an_unsupported_database_url_is_one_config_error_naming_the_variable(
    url: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None, database_url=url)
    message = str(raised.value)
    assert message.startswith(f"invalid settings: NEWSLETTER_DATABASE_URL: {reason}; use sqlite")
    assert "\n" not in message and "secret" not in message


def test_a_list_setting_that_is_not_json_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_TOPICS", "back-pain")
    with pytest.raises(ConfigError, match=r"^invalid settings: NEWSLETTER_TOPICS: not valid JSON"):
        load_settings(_env_file=None)


FIELDS = sorted(Settings.model_fields)
ENV_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)


@pytest.mark.parametrize("field", FIELDS)
def test_any_value_of_any_setting_loads_or_is_one_config_error(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever text an environment variable holds, loading gives settings or one
    ConfigError naming a variable: never another exception (a traceback at the doors)."""

    @settings(max_examples=15, deadline=None, derandomize=True, database=None)
    @given(value=st.one_of(st.sampled_from(["", "-1", "[1,", "{}", "nan", "x" * 300]), ENV_TEXT))
    def check(value: str) -> None:
        with monkeypatch.context() as env:
            env.setenv(f"NEWSLETTER_{field.upper()}", value)
            try:
                load_settings(_env_file=None)
            except ConfigError as error:
                assert "NEWSLETTER_" in str(error)
                assert "\n" not in str(error)

    check()


DURATIONS = [n for n in FIELDS if n.endswith(("_seconds", "_minutes", "_days", "_weeks"))]


@pytest.mark.parametrize("field", DURATIONS)
def test_a_duration_over_100_years_is_a_config_error(field: str) -> None:
    """10**20 minutes loaded fine, then overflowed timedelta in a sign-up."""
    for value in (10**20, float("inf")):
        with pytest.raises(ConfigError, match=rf"NEWSLETTER_{field.upper()}: "):
            load_settings(_env_file=None, **{field: value})


def test_durations_up_to_100_years_still_load() -> None:
    cfg = load_settings(
        _env_file=None, confirmation_resend_minutes=100 * 365 * 24 * 60, max_pause_weeks=52
    )
    assert cfg.confirmation_resend_minutes == 52_560_000
    assert "confirmation_resend_minutes" in DURATIONS and len(DURATIONS) >= 10


def test_sending_is_inline_unless_told_otherwise() -> None:
    assert Settings(_env_file=None).sender == "inline"  # type: ignore[call-arg]


def test_queue_mode_on_sqlite_is_one_line_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, database_url="sqlite:///x.db", sender="queue")
    assert "NEWSLETTER_SENDER" in str(err.value) and "PostgreSQL" in str(err.value)
    assert "\n" not in str(err.value)
