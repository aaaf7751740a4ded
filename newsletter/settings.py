"""Every setting the service reads, in one place.

Values come from environment variables prefixed ``NEWSLETTER_`` or from a ``.env`` file.
Doors build one :class:`Settings` at start-up and pass it down; rooms never read the
environment themselves, so a test can hand them any configuration it likes.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsletter.errors import ConfigError
from newsletter.text import utf16_encoding

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SENDGRID_MAX_BATCH = 1000  # SendGrid v3 Mail Send: at most 1000 personalizations per request

ProviderName = Literal["outbox", "sendgrid", "smtp"]


class Settings(BaseSettings):
    # "utf-8-sig": a .env saved by Notepad or PowerShell starts with a byte-order mark,
    # which plain "utf-8" glued to the first variable's name (so it was silently unset).
    model_config = SettingsConfigDict(
        env_prefix="NEWSLETTER_", env_file=".env", env_file_encoding="utf-8-sig", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'newsletter.db'}")

    # Delivery
    provider: ProviderName = "outbox"
    outbox_dir: Path = Field(default_factory=lambda: Path.cwd() / "outbox")
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_batch_size: int = Field(default=SENDGRID_MAX_BATCH, ge=1, le=SENDGRID_MAX_BATCH)
    sendgrid_sandbox: bool = False
    sendgrid_timeout_seconds: float = Field(default=30.0, gt=0)
    sendgrid_webhook_public_key: str | None = None
    sendgrid_webhook_tolerance_seconds: int = Field(default=600, gt=0)
    allow_unsigned_webhooks: bool = False
    webhook_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    smtp_url: str | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Messages per SMTP batch: one ledger commit each, and the most a crash can resend.
    smtp_batch_size: int = Field(default=100, ge=1, le=1000)
    # PEM file of CAs to trust for the SMTP server's certificate (a private CA); None: system's.
    smtp_ca_file: Path | None = None
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    send_rate_per_second: float = Field(default=0.0, ge=0, description="0 means unthrottled")
    send_concurrency: int = Field(default=1, ge=1, le=32)
    retry_max_attempts: int = Field(default=6, ge=1)
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=60.0, ge=0)

    # Identity and compliance
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = None
    old_secret_keys: list[str] = Field(default_factory=list)
    from_email: str = "newsletter@example.com"
    from_name: str = "Pain Relief Weekly"
    reply_to: str | None = None
    postal_address: str | None = None
    newsletter_name: str = "Pain Relief Weekly"
    list_id_domain: str = "newsletter.example.com"
    brand_color: str = "#1f5f8b"
    disclaimer: str = (
        "This newsletter is for information only and is not medical advice. "
        "See a physician at once if you have red-flag symptoms such as loss of bladder "
        "or bowel control, numbness in the groin, or weakness that gets worse."
    )
    consent_text: str = (
        "Yes, send me the weekly Pain Relief newsletter by email. "
        "I can unsubscribe at any time with one click."
    )
    consent_version: str = "2026-11-v1"
    # Where the privacy notice lives: linked from the sign-up form and every email's footer
    # (GDPR Art. 13: tell people how their data is used when it is collected).
    privacy_notice_url: str | None = None
    topics_consent_text: str = (
        "Optionally, tailor my newsletter to the topics I choose. I understand that my "
        "choices may reveal something about my health and agree that they are stored for "
        "this purpose only; I can change or erase them at any time."
    )
    topics_consent_version: str = "2026-11-topics-v1"

    # Subscribers
    confirm_token_max_age_days: int = Field(default=7, ge=1)
    unsubscribe_token_max_age_days: int = Field(default=365, ge=60)
    pending_expiry_days: int = Field(default=7, ge=1)
    confirmation_resend_minutes: int = Field(default=15, ge=0)
    welcome_email: bool = True
    soft_bounce_limit: int = Field(default=3, ge=1)
    # Topics a subscriber may choose: snippet category slug -> label shown on the
    # preferences page. An empty choice means "everything".
    topics: dict[str, str] = Field(
        default_factory=lambda: {
            "back-pain": "Back pain",
            "sciatica": "Sciatica",
            "leg-cramps": "Leg cramps",
        }
    )
    max_pause_weeks: int = Field(default=12, ge=1, le=52)
    form_max_bytes: int = Field(default=16 * 1024, ge=1024, description="largest form body")

    # --- The web door's defences (issues 12 and 13; the web engineer's block) ---
    # Sign-ups per client IP in a sliding window, one count in the database shared by every
    # worker and instance. The window is an hour unless told otherwise (tests shorten it).
    signup_limit_per_hour: int = Field(default=10, ge=1, description="sign-ups per IP per window")
    signup_limit_window_seconds: int = Field(default=3600, ge=1)
    # Proxies whose X-Forwarded-For is believed: IPs or CIDRs, comma-separated or a JSON
    # list. None by default: the TCP peer is the client, whatever headers claim.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The sign-up form's proof of work (the ALTCHA protocol): on unless set to off. A
    # browser tries up to ``max_number`` PBKDF2 derivations of ``cost`` iterations each
    # (about half that on average); a solution is accepted once, before it expires.
    signup_challenge: bool = True
    signup_challenge_max_number: int = Field(default=2000, ge=1, le=10_000_000)
    signup_challenge_cost: int = Field(default=2000, ge=1, le=1_000_000)
    signup_challenge_expiry_seconds: int = Field(default=1800, ge=60)
    # "Download my data" and "Delete my data" behind a preferences link, per subscriber.
    my_data_limit_per_hour: int = Field(default=10, ge=1)

    # Content
    templates_dir: Path | None = None
    snippets_per_issue: int = Field(default=5, ge=1, le=20)
    max_per_category: int = Field(default=2, ge=1)
    summary_max_chars: int = Field(default=280, ge=40)
    fill_with_resent: bool = False
    claims_words: list[str] = Field(
        default_factory=lambda: ["cure", "cures", "guaranteed", "miracle", "100% effective"]
    )
    html_size_limit_bytes: int = 102 * 1024
    tracking_budget_bytes_per_link: int = 300

    # Preflight's fetch of every image and link (issue 13): "off" for offline use (tests,
    # the demo). Each request has its own timeout, at most `concurrency` run at once, and
    # all of them share one deadline, after which the rest are reported as not checked.
    preflight_fetch: bool = True
    preflight_fetch_timeout_seconds: float = Field(default=5.0, gt=0)
    preflight_fetch_concurrency: int = Field(default=8, ge=1, le=32)
    preflight_fetch_deadline_seconds: float = Field(default=30.0, gt=0)

    # --- Fetching URLs that others named (issue 12 point 8; the feeds engineer's block) ---
    # A feed fetched by URL may be at most this large: its Content-Length is checked before
    # the body is read, then the bytes as they arrive (a 200 MB feed once took 4.2 GB).
    feed_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # One clock for a whole feed fetch (connect, redirects, TLS, headers and every byte),
    # so a server that trickles a byte every few seconds cannot hold an import for ever.
    fetch_deadline_seconds: float = Field(default=30.0, gt=0)
    # Feed fetches and preflight's fetch refuse hosts that resolve to loopback, private,
    # link-local or other non-public addresses (a feed can name http://169.254.169.254/
    # or the database's host: SSRF). On for feeds on an intranet, and for tests.
    fetch_allow_private: bool = False

    # Scheduling
    timezone: str = "America/New_York"
    assemble_cron: str = "0 6 * * mon"
    send_weekday: int = Field(default=1, ge=0, le=6, description="0=Monday")
    send_time: str = "09:00"
    require_approval: bool = False
    misfire_grace_seconds: int = Field(default=6 * 3600, ge=1)
    lease_seconds: int = Field(default=30, ge=3)
    dispatch_interval_seconds: int = Field(default=60, ge=1, description="due-campaign check")
    housekeeping_cron: str = "30 3 * * *"
    job_run_retention_days: int = Field(default=90, ge=1)

    @field_validator("database_url")
    @classmethod
    def _psycopg3(cls, value: str) -> str:
        # SQLAlchemy reads plain postgresql:// as psycopg2; production runs psycopg 3.
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        """Comma-separated text or a list; each entry must be an IP address or a CIDR."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [item.strip() for item in text.split(",") if item.strip()]
        if isinstance(value, list):
            for item in value:
                ipaddress.ip_network(str(item).strip(), strict=False)  # ValueError: refused
            return [str(item).strip() for item in value]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secret_keys(self) -> list[str]:
        """The current key first, then old ones that still verify (rotation)."""
        return [self.require("secret_key"), *self.old_secret_keys]

    def require(self, name: str) -> str:
        """Return a setting that this operation cannot do without, or fail naming it."""
        value = getattr(self, name)
        if value in (None, ""):
            raise ConfigError(f"NEWSLETTER_{name.upper()} is not set; it is required here")
        return str(value)

    def check_for_sending(self) -> None:
        """Refuse to send for real without what the law and the provider need."""
        self.require("secret_key")
        if self.provider != "outbox":
            self.require("postal_address")
        if self.provider == "sendgrid":
            self.require("sendgrid_api_key")
        if self.provider == "smtp":
            self.require("smtp_url")

    def check_for_production(self) -> None:
        if self.environment == "production":
            self.require("secret_key")
            self.require("postal_address")


def _check_env_file(path: object) -> None:
    """Refuse a UTF-16 ``.env`` by name: read as UTF-8 its variables are silently lost."""
    if not path:
        return
    try:
        head = Path(str(path)).read_bytes()[:4096]
    except OSError:
        return  # none there: pydantic-settings reads nothing either
    encoding = utf16_encoding(head)
    if encoding is not None:
        raise ConfigError(f"{path}: looks like {encoding}; save it as UTF-8")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's validation errors into one clear ConfigError."""
    _check_env_file(overrides.get("_env_file", Settings.model_config.get("env_file")))
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        problems = "; ".join(
            f"NEWSLETTER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from err
    settings.check_for_production()
    return settings
