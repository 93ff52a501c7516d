"""API keys: random secrets stored only as a SHA-256 digest."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.principal import AGENCIES, ROLES
from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow

ROLE_CHECK = "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")"


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        CheckConstraint(
            "agency IS NULL OR agency IN (" + ", ".join(f"'{a}'" for a in AGENCIES) + ")",
            name="agency",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    prefix: Mapped[str] = mapped_column(String(24), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))
    areas: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    source_system: Mapped[str | None] = mapped_column(String(64))
    # A school key's schools (URNs): it sees only flags about their pupils. NULL on keys
    # made before keys named their schools; a school key with none sees nothing.
    schools: Mapped[list[str] | None] = mapped_column(PortableJSON)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScreenSession(Base):
    """A signed-in session of the browser screens (``/ui``), held only on the server.

    The browser holds an opaque random token in an HttpOnly cookie; only its SHA-256 is
    stored. The principal is kept as it was at sign-in; a session made with an API key is
    checked against that key on every request (revoked or expired → signed out).
    """

    __tablename__ = "screen_sessions"
    __table_args__ = (
        CheckConstraint(ROLE_CHECK, name="role"),
        CheckConstraint("method IN ('api_key', 'oidc')", name="method"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    # The key signed in with (api_key sessions): revoking the key ends the session.
    key_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    principal_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))
    areas: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    schools: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    label: Mapped[str] = mapped_column(String(100), default="")
    csrf_token: Mapped[str] = mapped_column(String(64))
    # The purpose chosen on screen, recorded with every view (a code, never free text).
    purpose: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OidcPendingSignIn(Base):
    """A sign-in through the OpenID Connect provider, from its start until the callback.

    Held on the server, never in the browser: the ``state`` (only its SHA-256), the PKCE
    code verifier, the nonce the ID token must carry and where to go afterwards. A browser
    binding (only its SHA-256; the value is in a short-lived cookie) ties the callback to the
    browser that started it. Used once (the callback deletes the row) and only within ten
    minutes.
    """

    __tablename__ = "oidc_pending_sign_ins"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
