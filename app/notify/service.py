"""Creating and ending subscriptions (shared by the admin API and the CLI)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from app.config import Settings, is_email_address
from app.db import utcnow
from app.notify import repository
from app.notify.models import Subscription
from app.notify.secrets import new_secret, seal

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class SubscriptionSpecError(ValueError):
    """A subscription that cannot be made (the message says why)."""


class EmailNotConfigured(Exception):
    """An email subscription on a service without SMTP (``TRIAGE_SMTP_HOST``)."""


@dataclass(frozen=True)
class Created:
    subscription: Subscription
    secret: str | None  # a webhook's, shown once; an email subscription has none


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


def _target(
    settings: Settings, channel: str, url: str | None, email: str | None
) -> tuple[dict[str, str | None], str | None]:
    """The subscription's target columns for its channel, and a new webhook's secret.
    Messages never repeat the value refused."""
    if channel == "webhook":
        if email is not None:
            raise SubscriptionSpecError("a webhook subscription takes a url, not an email")
        if url is None:
            raise SubscriptionSpecError("a webhook subscription needs its url")
        check_url(settings, url)
        secret = new_secret()
        sealed = seal(settings, secret)  # SecretKeyMissing in production without the key
        return {"url": url, "email": None, "secret_encrypted": sealed}, secret
    if channel == "email":
        if url is not None:
            raise SubscriptionSpecError("an email subscription takes an email, not a url")
        if email is None or not is_email_address(email):
            raise SubscriptionSpecError("an email subscription needs a valid email address")
        if not settings.email_enabled:
            raise EmailNotConfigured(
                "email notifications are off on this service (set TRIAGE_SMTP_HOST and "
                "TRIAGE_SMTP_FROM to subscribe by email)"
            )
        return {"url": None, "email": email, "secret_encrypted": None}, None
    raise SubscriptionSpecError("the channel is webhook or email")


def create_subscription(
    session: Session,
    settings: Settings,
    *,
    agency: str,
    channel: str = "webhook",
    url: str | None = None,
    email: str | None = None,
    area: str | None,
    school_urn: str | None,
    label: str,
    created_by: str,
) -> Created:
    if agency == "school" and not school_urn:
        raise SubscriptionSpecError("a school's subscription names its school URN")
    if agency != "school" and school_urn:
        raise SubscriptionSpecError("only a school's subscription names a school URN")
    target, secret = _target(settings, channel, url, email)
    sub = repository.add_subscription(
        session,
        {
            "agency": agency,
            "area": area,
            "school_urn": school_urn,
            "channel": channel,
            **target,
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
