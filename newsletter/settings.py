"""Every setting the service reads, in one place.

Values come from environment variables prefixed ``NEWSLETTER_`` or from a ``.env`` file.
Doors build one :class:`Settings` at start-up and pass it down; rooms never read the
environment themselves, so a test can hand them any configuration it likes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from newsletter.errors import ConfigError
from newsletter.text import utf16_encoding

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SENDGRID_MAX_BATCH = 1000  # SendGrid v3 Mail Send: at most 1000 personalizations per request

ProviderName = Literal["outbox", "sendgrid", "smtp"]
SUPPORTED_DATABASES = ("sqlite", "postgresql+psycopg")
DURATION_UNITS = {"_seconds": 1, "_minutes": 60, "_days": 86_400, "_weeks": 604_800}
MAX_DURATION = 100 * 366 * 86_400  # seconds
DATABASE_URL_HELP = "use sqlite:///path/to/newsletter.db or postgresql://user@host:5432/name"


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
    # 0: unthrottled; with workers or helper processes, one limit for all of them together.
    send_rate_per_second: float = Field(default=0.0, ge=0)
    send_concurrency: int = Field(default=1, ge=1, le=32)
    # Processes sharing a large inline send, each >= min recipients (delivery.processes).
    send_processes: int = Field(default=1, ge=1, le=64)
    send_process_min_recipients: int = Field(default=100_000, ge=1)
    retry_max_attempts: int = Field(default=6, ge=1)
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=60.0, ge=0)
    # Issue 17: ``queue`` (PostgreSQL only) hands blocks of the ledger to ``newsletter worker``
    # processes (procrastinate), under one rate limit (campaigns.delivery.workers.shared_rate).
    sender: Literal["inline", "queue"] = "inline"
    # Delivery ids per queued block (one job); a killed worker costs its request in flight.
    worker_batch_size: int = Field(default=10_000, ge=1)
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    # A worker silent this long is dead: its batches go to another worker (stalled jobs).
    worker_stalled_seconds: float = Field(default=30.0, gt=0)

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
    # Topics a reader may choose: category slug -> label on the preferences page; none: all.
    topics: dict[str, str] = Field(
        default_factory=lambda: {
            "back-pain": "Back pain",
            "sciatica": "Sciatica",
            "leg-cramps": "Leg cramps",
        }
    )
    max_pause_weeks: int = Field(default=12, ge=1, le=52)
    form_max_bytes: int = Field(default=16 * 1024, ge=1024, description="largest form body")
    # Confirmation emails to one address, whatever the IP asking: a stranger typing someone
    # else's address into the form can cause at most this many.
    confirm_max_per_hour: int = Field(default=1, ge=1)
    confirm_max_per_week: int = Field(default=3, ge=1)
    # `subscribers import` refuses a larger file before reading a byte of it.
    import_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)

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

    @field_validator("*")
    @classmethod
    def _durations_fit_a_calendar(cls, value: object, info: ValidationInfo) -> object:
        """A duration (a setting named ``*_seconds``, ``*_minutes``, ``*_days`` or
        ``*_weeks``) of at most 100 years, and a number: a larger one overflows
        ``datetime.timedelta`` (or a socket timeout) where it is used, far from here."""
        unit = next((s for end, s in DURATION_UNITS.items() if info.field_name.endswith(end)), 0)
        if unit and isinstance(value, int | float) and not abs(value) * unit <= MAX_DURATION:
            raise ValueError(f"at most {MAX_DURATION // unit:,} (100 years)")
        return value

    # Trust and faults (issue 12: webhook limits, database reconnects while sending).
    # Events in one webhook request (413 beyond); the byte cap is webhook_max_bytes.
    webhook_max_events: int = Field(default=100_000, ge=1)
    # How long a sender keeps reconnecting to a database that went away mid-send before
    # it stops with one line (the campaign stays 'sending': send again to resume).
    database_reconnect_seconds: float = Field(default=60.0, ge=0)

    # --- The marketer's console (issue 14) ---
    # A console session (a signed cookie) lasts this long after sign-in.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 31)
    # Failed sign-ins allowed per client IP, and per email, in a sliding window.
    console_login_limit: int = Field(default=10, ge=1)
    console_login_window_seconds: int = Field(default=900, ge=1)
    # --- Outgoing webhooks (issue 16 point 4) and metrics (issue 17 point 2) ---
    # Endpoint URLs must be https; http://127.0.0.1 and http://localhost only when this is
    # on (tests, a receiver on the same machine), which also lets deliveries reach them.
    webhook_allow_local: bool = False
    # One delivery's whole exchange (connect, TLS, request, answer): short, so a slow
    # receiver cannot hold the deliverer (the specification asks receivers to answer fast).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # An endpoint whose deliveries have all failed for this long is disabled, with a notice.
    webhook_disable_after_days: float = Field(default=5.0, gt=0)
    # How often the scheduler delivers what is due (a delivery is tried this soon at most).
    webhook_deliver_interval_seconds: int = Field(default=5, ge=1)
    # Delivered and given-up messages (their payloads hold addresses) are deleted by the
    # nightly housekeeping after this long.
    webhook_retention_days: int = Field(default=30, ge=1)
    # /metrics needs "Authorization: Bearer <token>" when set; open otherwise.
    metrics_token: str | None = None
    # Issue 15: click redirects (/r/...) and the open pixel (/o/...); off: plain links.
    tracking: bool = True
    # Who writes the hits: a process of its own (the web process only answers), or a thread.
    tracking_writer: Literal["process", "thread"] = "process"
    # Hits are handed to the writer every so often or at so many.
    tracking_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    tracking_flush_events: int = Field(default=1000, ge=1)
    # Clicks on every link of a message within this window are a scanner's (machine).
    tracking_burst_seconds: float = Field(default=2.0, ge=0, le=60)
    # Opens by a known prefetcher this soon after sending are the prefetcher's (machine).
    tracking_prefetch_seconds: float = Field(default=10.0, ge=0, le=3600)
    utm: bool = True
    utm_source: str = Field(default="newsletter", min_length=1, max_length=100)
    utm_medium: str = Field(default="email", min_length=1, max_length=100)
    utm_campaign: str | None = Field(default=None, max_length=100)  # None: the issue's week
    # Tag only links to these domains (and their subdomains); empty: every article link.
    utm_only_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Issue 15, points 5 and 6: bounces with SMTP (VERP, the bounce mailbox, deferrals).
    # With a bounce domain, each SMTP message's envelope sender is bounces+TOKEN@<domain>.
    bounce_domain: str | None = None
    # imaps://user:password@host:993/INBOX, or imap://...?starttls=1; read by `bounces fetch`.
    bounce_imap_url: str | None = None
    bounce_processed_folder: str = "Processed"  # where read bounces are moved
    bounce_fetch_interval_seconds: int = Field(default=300, ge=10)
    # A recipient the receiving server defers (SMTP 4xx) is tried again after these waits,
    # the last one repeating, up to deferral_max_retries; then the delivery fails.
    deferral_retry_minutes: list[PositiveInt] = Field(
        default_factory=lambda: [5, 30, 120, 360], min_length=1
    )
    deferral_max_retries: int = Field(default=6, ge=1)
    # Issue 15 (the public archive): issues per /archive/ page, entries in its Atom feed.
    archive_page_size: int = Field(default=20, ge=1, le=200)
    archive_feed_entries: int = Field(default=20, ge=1, le=200)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        """SQLite, or PostgreSQL through psycopg 3: the only databases the service runs
        on (the migrations and the tests cover these two), decided here once."""
        url = value.strip()
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            raise ValueError(f"not a database URL; {DATABASE_URL_HELP}") from None
        if driver in ("postgresql", "postgres"):
            # SQLAlchemy reads plain postgresql:// as psycopg2; production runs psycopg 3.
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if driver in SUPPORTED_DATABASES:
            return url
        raise ValueError(f"{driver}:// is not supported; {DATABASE_URL_HELP}")

    @field_validator("sender")
    @classmethod
    def _queue_needs_postgresql(cls, value: str, info: ValidationInfo) -> str:
        """Workers share PostgreSQL (procrastinate, the rate bucket); SQLite stays inline."""
        if value == "queue" and str(info.data.get("database_url", "")).startswith("sqlite"):
            raise ValueError("queue needs PostgreSQL (NEWSLETTER_DATABASE_URL is SQLite)")
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

    # Issue 14 (part B, the campaign editor): how often the console's live progress
    # stream reads a send's counts, in seconds.
    console_progress_interval_seconds: float = Field(default=1.0, gt=0, le=60)

    @field_validator("utm_only_domains", mode="before")
    @classmethod
    def _domain_list(cls, value: object) -> object:
        """Comma-separated text or a JSON list of host names, kept in lower case."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            return [str(item).strip().lower().strip(".") for item in value if str(item).strip()]
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
    """Build settings, turning every way a value can be malformed into one ConfigError.

    Pydantic's validation errors name the variable (``NEWSLETTER_<FIELD>``); a list or
    mapping that is not JSON fails earlier, in pydantic-settings (SettingsError), and is
    named the same way.
    """
    _check_env_file(overrides.get("_env_file", Settings.model_config.get("env_file")))
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        problems = "; ".join(
            f"NEWSLETTER_{'_'.join(str(p) for p in e['loc']).upper()}: "
            + e["msg"].removeprefix("Value error, ")
            for e in err.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from err
    except SettingsError as err:
        field = re.search(r'field "(\w+)"', str(err))
        name = f"NEWSLETTER_{field.group(1).upper()}" if field else "a setting"
        raise ConfigError(
            f"invalid settings: {name}: not valid JSON (a list or mapping such as "
            '["a", "b"] or {"key": "value"})'
        ) from err
    settings.check_for_production()
    return settings
