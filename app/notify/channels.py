"""How a notification reaches its subscriber: a signed webhook, or an email.

Each sender returns None when the receiver took the message (a 2xx; an SMTP server's
acceptance of the message), else a short error kind (``http_500``, ``timeout``,
``smtp_451``, ``smtp_refused``…), never a receiver's or server's own text. The dispatcher
treats every channel alike: delivered, or retried with backoff until the budget runs out.

An email carries the webhook's content in words and nothing more: the flag's type, agency,
subject role, status and due time, its id and links; no names, dates of birth or free
text. Its ``Message-ID`` is made from the notification id, so a mailbox that receives it
twice (delivery is at least once) can tell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from app.config import Settings
from app.db import utcnow


@dataclass(frozen=True)
class Delivery:
    """A claimed notification, with what its channel needs to send it."""

    id: uuid.UUID
    flag_id: uuid.UUID
    agency: str
    channel: str  # webhook | email
    target: str  # the webhook's URL, or the mailbox
    secret: str | None  # the webhook's signing secret (an email subscription has none)
    payload: dict[str, Any]  # as sent: links absolute under TRIAGE_PUBLIC_BASE_URL
    body: bytes  # the payload's JSON
    attempts: int


def send(item: Delivery, settings: Settings, http: httpx.Client) -> str | None:
    """Send one notification by its subscription's channel."""
    if item.channel == "email":
        return send_email(item, settings)
    return send_webhook(item, http)


def send_webhook(item: Delivery, client: httpx.Client) -> str | None:
    """POST the body, signed per Standard Webhooks (``webhook-id`` from the notification id)."""
    if item.secret is None:  # the subscriptions table holds every webhook to a secret
        return "no_secret"
    now = utcnow()
    msg_id = f"msg_{item.id}"
    signature = Webhook(item.secret).sign(msg_id, now, item.body.decode("utf-8"))
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    try:
        reply = client.post(item.target, content=item.body, headers=headers)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError as exc:
        return type(exc).__name__.lower()[:64]
    if 200 <= reply.status_code < 300:
        return None
    return f"http_{reply.status_code}"


EVENT_WORDS = {
    "flag.raised": ("Flag raised", "A flag for your agency has been raised."),
    "flag.status_changed": ("Flag status changed", "A flag for your agency changed status."),
    "flag.needs_review": (
        "Flag to review",
        "A later assessment marked a flag for your agency for review.",
    ),
    "flag.overdue": ("Flag overdue", "A flag for your agency is past its due time."),
}


def _due_words(due_at: str) -> str:
    due = dt.datetime.fromisoformat(due_at).astimezone(dt.UTC)
    return due.strftime("%Y-%m-%d %H:%M UTC")


def email_text(payload: Mapping[str, Any], public_base_url: str | None) -> tuple[str, str]:
    """The subject and the plain-text body of a notification's email, from its payload
    (as sent: links absolute when the service has a public base URL)."""
    data = payload["data"]
    title, opening = EVENT_WORDS.get(payload["type"], ("Flag notice", "A flag changed."))
    due = _due_words(data["due_at"])
    subject = f"{title}: {data['flag_type']} (due {due})"
    ack = f"/v1/notifications/{data['notification_id']}/ack"
    where = ""
    if public_base_url is None:
        where = "\n(The links are relative to the triage service's address.)"
    else:
        ack = public_base_url + ack
    lines = [
        opening,
        "",
        f"Flag type:     {data['flag_type']}",
        f"Agency:        {data['agency']}",
        f"About:         {data['subject_role']}",
        f"Status:        {data['status']}",
        f"Due:           {due}",
        f"Flag id:       {data['flag_id']}",
        f"Notification:  {data['notification_id']}",
        "",
        f"Open the flag: {data['links']['screen']}",
        f"In the API:    {data['links']['api']}{where}",
        "",
        "This message names no one and carries no case details: sign in to see what your",
        "agency is entitled to (what you open is recorded). To confirm receipt, POST to",
        f"{ack} with your agency's key.",
    ]
    return subject, "\n".join(lines) + "\n"


def email_message(item: Delivery, settings: Settings) -> EmailMessage:
    subject, text = email_text(item.payload, settings.public_base_url)
    message = EmailMessage()
    message["From"] = settings.smtp_from or ""
    message["To"] = item.target
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{item.id}@triage>"
    message["X-Triage-Notification-Id"] = str(item.id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message.set_content(text)
    return message


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    code = next(iter(recipients.values()))[0] if recipients else 0
    return _smtp_code(code)


def _smtp_code(code: int) -> str:
    return f"smtp_{code}" if 200 <= code <= 599 else "smtp_error"


def _exchange(settings: Settings, host: str, message: EmailMessage, to: str) -> dict[str, Any]:
    """Connect, STARTTLS (unless switched off), log in when configured, send; the refused
    recipients. A fault after the message was accepted (at QUIT) does not undo it."""
    smtp = smtplib.SMTP(host, settings.smtp_port, timeout=settings.notify_timeout_seconds)
    try:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        return dict(smtp.send_message(message, from_addr=settings.smtp_from, to_addrs=[to]))
    finally:
        with contextlib.suppress(OSError):  # smtplib's errors are OSErrors too
            smtp.quit()
        smtp.close()


def send_email(item: Delivery, settings: Settings) -> str | None:
    """One message to the subscription's mailbox, in one SMTP exchange; every network
    operation is bounded by ``notify_timeout_seconds``."""
    if not settings.smtp_host or not settings.smtp_from:
        return "smtp_not_configured"
    message = email_message(item, settings)
    try:
        refused = _exchange(settings, settings.smtp_host, message, item.target)
    # smtplib's errors are OSErrors: the most particular first.
    except smtplib.SMTPRecipientsRefused as exc:
        return _refused(exc.recipients)
    except smtplib.SMTPResponseException as exc:  # sender, data, login or greeting refused
        return _smtp_code(exc.smtp_code)
    except smtplib.SMTPNotSupportedError:  # no STARTTLS (or no AUTH) offered
        return "smtp_not_supported"
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib turns a reply that timed out into a disconnection (raised while the
        # TimeoutError is handled, so it is the context).
        return "smtp_timeout" if isinstance(exc.__context__, TimeoutError) else "smtp_disconnected"
    except smtplib.SMTPException:
        return "smtp_error"
    except TimeoutError:
        return "smtp_timeout"
    except ConnectionRefusedError:
        return "smtp_refused"
    except ssl.SSLError:
        return "smtp_tls"
    except OSError as exc:
        return f"smtp_{type(exc).__name__.lower()}"[:64]
    return _refused(refused) if refused else None
