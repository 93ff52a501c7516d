"""Sign-ins through the OpenID Connect provider that have started and not yet come back.

The state, the PKCE code verifier and the nonce stay on the server between the redirect to
the provider and its callback; the browser carries the state in the URL (as OAuth 2.0 has
it) and a random binding in a short-lived cookie, of which only SHA-256 digests are stored.
A pending sign-in is used once: the callback deletes it, and a second callback with the same
state finds nothing. Nothing here is logged: these values are secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.models import OidcPendingSignIn
from app.db import utcnow

# How long the person has to sign in at the provider and come back.
PENDING_LIFETIME = timedelta(minutes=10)
MAX_NEXT_LENGTH = 500


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingSignIn:
    code_verifier: str
    nonce: str
    next_path: str


def save_pending(
    session: Session,
    *,
    state: str,
    browser: str,
    code_verifier: str,
    nonce: str,
    next_path: str,
    now: datetime | None = None,
) -> None:
    """Store a sign-in that has started; sign-ins left unfinished are removed on the way."""
    now = now or utcnow()
    session.execute(delete(OidcPendingSignIn).where(OidcPendingSignIn.expires_at <= now))
    session.add(
        OidcPendingSignIn(
            state_hash=_digest(state),
            browser_hash=_digest(browser),
            code_verifier=code_verifier,
            nonce=nonce,
            next_path=next_path if len(next_path) <= MAX_NEXT_LENGTH else "/ui/",
            created_at=now,
            expires_at=now + PENDING_LIFETIME,
        )
    )
    session.flush()


def take_pending(
    session: Session, *, state: str, browser: str | None, now: datetime | None = None
) -> PendingSignIn | None:
    """The pending sign-in of this state, removed so that it cannot be used again.

    None when there is none, when it has expired, or when the browser is not the one that
    started it (a callback link passed to someone else signs nobody in).
    """
    if not state or len(state) > 200:
        return None
    now = now or utcnow()
    row = session.scalar(
        select(OidcPendingSignIn).where(OidcPendingSignIn.state_hash == _digest(state))
    )
    if row is None:
        return None
    found = PendingSignIn(row.code_verifier, row.nonce, row.next_path)
    expires_at, browser_hash = row.expires_at, row.browser_hash
    # Whoever deletes the row uses it: of two callbacks at once, one finds it gone.
    taken = session.execute(
        delete(OidcPendingSignIn)
        .where(OidcPendingSignIn.id == row.id)
        .execution_options(synchronize_session=False)
    )
    session.expunge(row)
    if int(taken.rowcount or 0) != 1:  # type: ignore[attr-defined]
        return None
    if expires_at <= now:
        return None
    if browser is None or not hmac.compare_digest(_digest(browser), browser_hash):
        return None
    return found
