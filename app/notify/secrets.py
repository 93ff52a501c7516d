"""Webhook secrets: made here, shown once, kept encrypted (Fernet) so they can sign.

The key is ``TRIAGE_NOTIFY_SECRET_KEY`` (a Fernet key: ``Fernet.generate_key()``). Without
it, development and test use :data:`DEVELOPMENT_KEY`, which is published in this file and
so protects nothing; production refuses to create a webhook subscription, or to deliver,
without a key of its own.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken

from app.config import Settings

# Published, hence no protection at all: development and test only.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(b"da-triage: development only key!")
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes


class SecretKeyMissing(Exception):
    """Production without ``TRIAGE_NOTIFY_SECRET_KEY``: nothing is signed or stored."""


def cipher(settings: Settings) -> Fernet:
    key = settings.notify_secret_key
    if key is not None:
        return Fernet(key.get_secret_value().encode("ascii"))
    if settings.environment == "production":
        raise SecretKeyMissing("set TRIAGE_NOTIFY_SECRET_KEY (a Fernet key) to use webhooks")
    return Fernet(DEVELOPMENT_KEY)


def new_secret() -> str:
    """A webhook secret as Standard Webhooks writes it: ``whsec_`` and base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def seal(settings: Settings, secret: str) -> str:
    return cipher(settings).encrypt(secret.encode("ascii")).decode("ascii")


def unseal(settings: Settings, token: str) -> str:
    try:
        return cipher(settings).decrypt(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise SecretKeyMissing("the webhook secret does not open with this key") from exc
