"""Service settings, read from the environment with the ``TRIAGE_`` prefix.

Outside development the service refuses to start without an explicit database URL and
credentials configured, so that a production deployment can never fall back to the
embedded demo database or demo keys.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.db import DatabaseLimits

# Where alembic.ini, migrations/, models/ and var/ live: the checkout, or TRIAGE_HOME
# when the package is installed elsewhere (the container sets it).
ROOT = Path(os.environ.get("TRIAGE_HOME") or Path(__file__).resolve().parent.parent)
DEFAULT_SQLITE_URL = f"sqlite:///{ROOT / 'var' / 'triage.db'}"
# Connections beyond the admitted requests: readiness probe, metrics, audit sealer, spare.
RESERVED_CONNECTIONS = 4

# An email address as the service accepts one (a subscription's mailbox, the sender): a
# dot-atom local part and a domain of at least two labels, the last not numeric. No quoted
# local parts, comments, display names or address literals, and so never a CR, LF, comma or
# angle bracket that could reach a header.
EMAIL_ADDRESS_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
EMAIL_ADDRESS_MAX_LENGTH = 254  # RFC 5321 §4.5.3.1.3: a path of 256 octets, less the <>
EmailAddress = Annotated[
    str, StringConstraints(pattern=EMAIL_ADDRESS_PATTERN, max_length=EMAIL_ADDRESS_MAX_LENGTH)
]


def is_email_address(value: str) -> bool:
    return len(value) <= EMAIL_ADDRESS_MAX_LENGTH and bool(
        re.fullmatch(EMAIL_ADDRESS_PATTERN, value)
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = None
    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON outside development

    # Request limits.
    max_body_bytes: int = 1_048_576
    idempotency_retention_days: int = Field(default=7, ge=7)

    # Load shedding (per process): at most this many requests do work at once (each holds
    # at most one worker thread and one database connection); up to `max_queued_requests`
    # more wait at most `queue_timeout_seconds` for a turn; the rest are answered 503 with
    # Retry-After at once. /livez, /readyz and /metrics are never queued.
    max_concurrent_requests: int = Field(default=16, ge=1, le=256)
    max_queued_requests: int = Field(default=64, ge=0)
    queue_timeout_seconds: float = Field(default=2.0, gt=0)
    retry_after_seconds: int = Field(default=2, ge=1)

    # Database waits, all bounded (a wait that runs out is a 503, never a hang).
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_lock_timeout_ms: int = Field(default=5_000, ge=1)
    db_statement_timeout_ms: int = Field(default=30_000, ge=1)
    db_idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=1)

    # Background upkeep (app/ops/maintenance.py): how often pending audit events are sealed
    # (PostgreSQL) and SQLite's write-ahead log is checkpointed.
    maintenance_interval_seconds: float = Field(default=1.0, gt=0, le=60)

    # API keys are looked up once per key and then remembered this long (revoking a key
    # through this process forgets it at once; other processes within this time).
    api_key_cache_seconds: float = Field(default=10.0, ge=0)

    # Credentials. Outside development at least one of these must be configured:
    # API keys created with `triage keys create`, or a JWT identity provider.
    api_keys_configured: bool = False
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_path: str | None = None  # a JWKS file shipped with the deployment
    jwt_jwks_json: str | None = None  # or the JWKS itself
    jwt_algorithms: list[str] = ["RS256", "ES256", "PS256"]
    jwt_leeway_seconds: int = 30

    # Write rate limit per principal (requests per minute); 0 disables it. With a Redis URL
    # the window is shared by every process and replica, else each process keeps its own.
    write_rate_per_minute: int = 120
    redis_url: str | None = None

    # Scoring and flag definitions active by default and per area ("E09000018=dash-ric@2").
    victim_checklist: str = "dash-ric@2"
    police_checklist: str = "dash-police@2"
    child_checklist: str = "child-risk@2"
    flag_rules: str = "default-flags@2"
    area_overrides: dict[str, dict[str, str]] = {}

    # Flag due-time policy.
    non_school_days: list[str] = []  # ISO dates (holidays, INSET days)
    non_working_days: list[str] = []  # bank holidays

    # Retention: years until review, per category.
    review_years_standard: int = 6
    review_years_high: int = 10

    # Optional trained classifier: directory `models/NAME/VERSION`.
    classifier_path: str | None = None
    # None: the model's own operating threshold (from its manifest).
    classifier_threshold: float | None = Field(default=None, gt=0, lt=1)
    classifier_may_raise_level: bool = False

    # Docs are served in development; in production only if asked.
    expose_docs: bool | None = None

    # OpenTelemetry tracing (app/ops/tracing.py): off unless an OTLP/HTTP traces endpoint
    # is given (e.g. http://otel-collector:4318/v1/traces). Spans of each request and its
    # SQL statements, sampled at this ratio (parent-based), named by route template; no
    # path parameters, query strings or bound values.
    tracing_endpoint: str | None = None
    tracing_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    tracing_service_name: str = "da-triage"

    # The browser screens (/ui): a session ends after this long without a request, and
    # in any case this long after sign-in.
    ui_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    ui_session_hours: int = Field(default=10, ge=1, le=24)
    # The session cookie is Secure (HTTPS only) unless this says otherwise; None: Secure
    # outside development and test.
    ui_secure_cookie: bool | None = None
    # Sign-in with an API key on a form: development and test only unless enabled.
    ui_api_key_sign_in: bool | None = None

    # Sign-in to the screens through the force's OpenID Connect provider (authorization
    # code flow with PKCE): on when the issuer and the client id are set. The provider's
    # configuration is read from `{issuer}/.well-known/openid-configuration`; the ID token
    # must carry the same `triage_*` claims as a JWT (docs/oidc.md).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None  # none: a public client (PKCE alone)
    oidc_redirect_url: str | None = None  # https://triage.example/ui/sign-in/oidc/callback
    oidc_scopes: str = "openid"  # space-separated; must include openid
    oidc_algorithms: list[str] = ["RS256", "ES256", "PS256"]
    oidc_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # A screen session signed in this way ends when the ID token expires (else after
    # `ui_session_hours`, like any session).
    oidc_session_until_token_expiry: bool = False

    # Notifications (app/notify): the Fernet key webhook secrets are stored under (required
    # in production to create or deliver webhook subscriptions), and the dispatcher's
    # delivery policy: a timeout per POST, exponential backoff with full jitter between
    # `notify_backoff_base_seconds` and `notify_backoff_max_seconds`, and a retry budget
    # after which a notification is failed (dead-lettered). A dispatcher claims
    # `notify_batch_size` due notifications at a time and leases them for
    # `notify_lease_seconds` (None: `notify_timeout_seconds * notify_batch_size + 30`, so the
    # slowest batch ends before its lease): a dispatcher that dies leaves its batch to be
    # sent again when the lease runs out. A lease shorter than a batch can take lets another
    # dispatcher send a row still being sent: more duplicates, nothing lost.
    # `notify_poll_seconds`: how long an idle dispatcher waits before looking again.
    notify_secret_key: SecretStr | None = None
    notify_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    notify_max_attempts: int = Field(default=8, ge=1, le=50)
    notify_backoff_base_seconds: float = Field(default=2.0, ge=0)
    notify_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    notify_batch_size: int = Field(default=20, ge=1, le=500)
    notify_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    notify_lease_seconds: float | None = Field(default=None, gt=0, le=86_400)

    # The address the service is reached at by its users, e.g.
    # `https://triage.example.police.uk`: with it, the links in notifications (webhooks and
    # emails) are absolute; without it they are relative (`/ui/flags/{id}`).
    public_base_url: str | None = None

    # Email notifications (SMTP): off without `smtp_host` (an email subscription is refused,
    # and one made earlier fails with `smtp_not_configured`). STARTTLS unless switched off;
    # a login only with both the user name and the password. Each SMTP exchange is bounded
    # by `notify_timeout_seconds` per network operation.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: EmailAddress | None = None
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or DEFAULT_SQLITE_URL

    @property
    def database_limits(self) -> DatabaseLimits:
        # One connection per admitted request, plus the probes and the audit sealer.
        return DatabaseLimits(
            pool_size=self.max_concurrent_requests + RESERVED_CONNECTIONS,
            pool_timeout_seconds=self.db_pool_timeout_seconds,
            lock_timeout_ms=self.db_lock_timeout_ms,
            statement_timeout_ms=self.db_statement_timeout_ms,
            idle_in_transaction_timeout_ms=self.db_idle_in_transaction_timeout_ms,
            sqlite_busy_timeout_ms=self.sqlite_busy_timeout_ms,
            sqlite_background_checkpoint=True,
        )

    @property
    def notify_lease(self) -> timedelta:
        if self.notify_lease_seconds is not None:
            return timedelta(seconds=self.notify_lease_seconds)
        return timedelta(seconds=self.notify_timeout_seconds * self.notify_batch_size + 30)

    @property
    def json_logs(self) -> bool:
        if self.log_json is not None:
            return self.log_json
        return self.environment == "production"

    @property
    def ui_session_idle(self) -> timedelta:
        return timedelta(minutes=self.ui_session_idle_minutes)

    @property
    def ui_cookie_secure(self) -> bool:
        if self.ui_secure_cookie is not None:
            return self.ui_secure_cookie
        return self.environment not in ("development", "test")

    @property
    def ui_key_sign_in(self) -> bool:
        if self.ui_api_key_sign_in is not None:
            return self.ui_api_key_sign_in
        return self.environment != "production"

    @property
    def docs_enabled(self) -> bool:
        if self.expose_docs is not None:
            return self.expose_docs
        return self.environment != "production"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @field_validator("jwt_algorithms", "oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        # RFC 8725 §3.1-3.2: never `none`, and no HMAC with an asymmetric key set.
        allowed = {
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
            "EdDSA",
        }  # fmt: skip
        bad = sorted(set(value) - allowed)
        if bad or not value:
            raise ValueError("only asymmetric JWT algorithms may be configured: " + ", ".join(bad))
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("the OpenID Connect scopes must include openid")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or "?" in value
            or "#" in value
            or parts.username is not None
            or any(c.isspace() for c in value)
        ):
            raise ValueError(
                "TRIAGE_PUBLIC_BASE_URL must be an absolute http(s) URL without a query, "
                "fragment or credentials, e.g. https://triage.example.police.uk"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _smtp_complete(self) -> Settings:
        if not self.smtp_host:
            return self
        if not self.smtp_from:
            raise ValueError("email notifications (TRIAGE_SMTP_HOST) need TRIAGE_SMTP_FROM")
        if bool(self.smtp_username) != bool(self.smtp_password):
            raise ValueError("set both TRIAGE_SMTP_USERNAME and TRIAGE_SMTP_PASSWORD, or neither")
        if self.environment == "production" and self.smtp_username and not self.smtp_starttls:
            raise ValueError("in production an SMTP login needs STARTTLS (TRIAGE_SMTP_STARTTLS)")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise ValueError("set both TRIAGE_OIDC_ISSUER and TRIAGE_OIDC_CLIENT_ID, or neither")
        if self.oidc_enabled:
            if not self.oidc_redirect_url:
                raise ValueError("OpenID Connect sign-in needs TRIAGE_OIDC_REDIRECT_URL")
            if self.environment == "production" and not all(
                (url or "").startswith("https://")
                for url in (self.oidc_issuer, self.oidc_redirect_url)
            ):
                raise ValueError("in production the OIDC issuer and redirect URL must be https")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            missing = []
            if not self.database_url:
                missing.append("TRIAGE_DATABASE_URL")
            jwt_ready = bool(
                self.jwt_issuer and self.jwt_audience and (self.jwt_jwks_path or self.jwt_jwks_json)
            )
            if not (self.api_keys_configured or jwt_ready):
                missing.append(
                    "credentials (TRIAGE_API_KEYS_CONFIGURED=true after `triage keys create`, "
                    "or TRIAGE_JWT_ISSUER, TRIAGE_JWT_AUDIENCE and TRIAGE_JWT_JWKS_PATH)"
                )
            if missing:
                raise ValueError("refusing to start in production without: " + "; ".join(missing))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
