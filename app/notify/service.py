"""Creating and ending subscriptions (shared by the admin API and the CLI)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.notify import repository
from app.notify.models import Subscription
from app.notify.secrets import new_secret, seal

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class SubscriptionSpecError(ValueError):
    """A subscription that cannot be made (the message says why)."""


@dataclass(frozen=True)
class Created:
    subscription: Subscription
    secret: str  # shown once


def check_url(settings: Settings, url: str) -> None:
    """HTTPS, or plain HTTP to this machine in development and test."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise SubscriptionSpecError("the webhook URL needs a host")
    if parts.scheme == "https":
        return
    local = parts.hostname in LOCAL_HOSTS
    if parts.scheme == "http" and local and settings.environment != "production":
        return
    raise SubscriptionSpecError(
        "the webhook URL must be https (http only to localhost in development and test)"
    )


def create_subscription(
    session: Session,
    settings: Settings,
    *,
    agency: str,
    url: str,
    area: str | None,
    school_urn: str | None,
    label: str,
    created_by: str,
) -> Created:
    check_url(settings, url)
    if agency == "school" and not school_urn:
        raise SubscriptionSpecError("a school's subscription names its school URN")
    if agency != "school" and school_urn:
        raise SubscriptionSpecError("only a school's subscription names a school URN")
    secret = new_secret()
    sub = repository.add_subscription(
        session,
        {
            "agency": agency,
            "area": area,
            "school_urn": school_urn,
            "channel": "webhook",
            "url": url,
            "secret_encrypted": seal(settings, secret),  # SecretKeyMissing in production
            "label": label,
            "active": True,
            "created_at": utcnow(),
            "created_by": created_by,
        },
    )
    return Created(sub, secret)


def delete_subscription(session: Session, subscription_id: uuid.UUID) -> bool:
    """End a subscription (kept, inactive, for its notifications' history)."""
    sub = repository.get_subscription(session, subscription_id)
    if sub is None or not sub.active:
        return False
    sub.active = False
    sub.deleted_at = utcnow()
    session.flush()
    return True
