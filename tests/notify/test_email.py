"""Email notifications: subscribing a mailbox, the dispatcher sending through a real local
SMTP server (aiosmtpd), what the message carries and never carries, and SMTP faults
retried, then dead-lettered, as webhook faults are."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.cli import main as triage
from app.config import get_settings
from app.ops.migrations import upgrade_to_head
from tests.notify.receiver import free_port
from tests.notify.support import SCHOOL_URN, Env, MakeEnv, personal_values

MAILBOX = "safeguarding@riverside.example.sch.uk"  # a school's role address (invented)
BASE_URL = "https://triage.example.police.uk"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, and can refuse or stall."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []  # (envelope rcpts, message)
        self.temporary_failures = 0  # answer DATA with 451 this many times first
        self.rcpt_answer = "250 OK"
        self.delay = 0.0  # seconds before answering DATA
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                return "451 4.3.0 Mailbox busy, try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def smtp_settings(port: int, **extra: Any) -> dict[str, Any]:
    # The local server offers no STARTTLS; production keeps it on (the default).
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "triage-noreply@force.example.police.uk",
        "smtp_starttls": False,
        **extra,
    }


def subscribe_school_by_email(env: Env) -> dict[str, Any]:
    return env.subscribe("school", channel="email", email=MAILBOX, school_urn=SCHOOL_URN)


def school_mailbox_notified(make_env: MakeEnv, port: int, **settings: Any) -> Env:
    """The school's mailbox subscribed through SMTP on ``port``, and an incident that
    notifies it posted (nothing dispatched yet)."""
    env = make_env(**smtp_settings(port, **settings))
    subscribe_school_by_email(env)
    env.post_incident()
    return env


def test_a_school_mailbox_gets_one_email_per_notification_with_a_link(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    env = make_env(**smtp_settings(port), public_base_url=BASE_URL + "/")
    created = subscribe_school_by_email(env)
    assert (created["channel"], created["email"], created["url"]) == ("email", MAILBOX, None)
    assert created["secret"] is None  # nothing is signed
    env.post_incident()
    rows = env.notifications()
    assert rows
    result = env.dispatch()
    assert result.delivered == len(rows)
    assert env.dispatch().claimed == 0  # nothing is sent twice
    assert len(handler.messages) == len(rows)
    by_id = {r.id: r for r in rows}
    for rcpts, message in handler.messages:
        assert rcpts == [MAILBOX]
        assert message["To"] == MAILBOX
        assert message["From"] == "triage-noreply@force.example.police.uk"
        found = re.fullmatch(r"<([0-9a-f-]{36})@triage>", message["Message-ID"])
        assert found, message["Message-ID"]
        row = by_id[next(k for k in by_id if str(k) == found.group(1))]
        assert message["X-Triage-Notification-Id"] == str(row.id)
        data = row.payload["data"]
        assert message["Subject"].startswith(f"Flag raised: {data['flag_type']} (due 20")
        text = message.get_content()
        assert f"{BASE_URL}/ui/flags/{row.flag_id}" in text
        assert f"{BASE_URL}/v1/flags/{row.flag_id}" in text
        assert f"{BASE_URL}/v1/notifications/{row.id}/ack" in text
        assert data["subject_role"] in text
        whole = message.as_string()
        for value in personal_values():
            assert value not in whole, value
    assert rows[0].payload["data"]["links"]["screen"].startswith("/ui/")  # stored relative
    with env.db.unit(read_only=True) as s:
        disclosed = s.scalars(
            select(AuditEvent).where(
                AuditEvent.operation == "disclose", AuditEvent.principal_id == "system:notify"
            )
        ).all()
    assert sorted(e.detail["notification_id"] for e in disclosed) == sorted(str(i) for i in by_id)
    assert {e.detail["channel"] for e in disclosed} == {"email"}
    assert all(e.recipients == ["agency:school"] for e in disclosed)
    listed = env.client.get("/v1/admin/subscriptions", headers=env.keys["admin"]).json()
    assert [(x["channel"], x["email"]) for x in listed] == [("email", MAILBOX)]


def test_without_a_public_base_url_the_email_says_its_links_are_relative(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    env = school_mailbox_notified(make_env, port)
    assert env.dispatch().delivered > 0
    text = handler.messages[0][1].get_content()
    assert "Open the flag: /ui/flags/" in text
    assert "relative to the triage service's address" in text


def test_a_mail_server_down_is_retried_then_dead_lettered(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    env = school_mailbox_notified(make_env, mailbox[1])
    env.settings = env.settings.model_copy(update={"smtp_port": free_port()})  # nothing there
    outcomes = [env.dispatch() for _ in range(env.settings.notify_max_attempts)]
    assert outcomes[0].retried == outcomes[0].claimed > 0
    assert outcomes[-1].failed == outcomes[0].claimed
    assert {(n.status, n.attempts, n.last_error_kind) for n in env.notifications()} == {
        ("failed", env.settings.notify_max_attempts, "smtp_refused")
    }
    assert env.dispatch().claimed == 0  # the dead letter is not tried again
    with env.db.unit(read_only=True) as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.operation == "disclose")).all()


def test_a_temporary_smtp_refusal_is_retried_then_delivered(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    env = school_mailbox_notified(make_env, port)
    handler.temporary_failures = 100
    first = env.dispatch()
    assert first.retried == first.claimed > 0
    assert {n.last_error_kind for n in env.notifications()} == {"smtp_451"}
    handler.temporary_failures = 0
    second = env.dispatch()
    assert second.delivered == first.claimed
    assert {(n.status, n.attempts, n.last_error_kind) for n in env.notifications()} == {
        ("delivered", 2, None)
    }
    assert len(handler.messages) == first.claimed


def test_smtp_faults_are_recorded_as_short_codes_never_the_server_text(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    env = school_mailbox_notified(make_env, port, notify_timeout_seconds=0.2)

    def kinds() -> set[str | None]:
        return {n.last_error_kind for n in env.notifications()}

    handler.rcpt_answer = "550 5.1.1 Mailbox unavailable"
    env.dispatch()
    assert kinds() == {"smtp_550"}
    handler.rcpt_answer = "250 OK"
    handler.delay = 0.3
    env.dispatch()
    assert kinds() == {"smtp_timeout"}
    handler.delay = 0
    # STARTTLS required (the default) by a server that does not offer it: never in clear.
    env.settings = env.settings.model_copy(update={"smtp_starttls": True})
    env.dispatch()
    assert kinds() == {"smtp_not_supported"}
    assert {n.status for n in env.notifications()} == {"failed"}
    assert handler.messages == []


def test_email_rows_fail_as_smtp_not_configured_when_smtp_is_switched_off(
    make_env: MakeEnv, mailbox: tuple[Mailbox, int]
) -> None:
    env = school_mailbox_notified(make_env, mailbox[1])
    env.settings = env.settings.model_copy(update={"smtp_host": None})
    result = env.dispatch()
    assert result.retried == result.claimed > 0
    assert {n.last_error_kind for n in env.notifications()} == {"smtp_not_configured"}


def test_an_email_subscription_is_refused_without_smtp(env: Env) -> None:
    body = {"agency": "school", "channel": "email", "email": MAILBOX, "school_urn": SCHOOL_URN}
    r = env.client.post("/v1/admin/subscriptions", json=body, headers=env.keys["admin"])
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "TRIAGE_SMTP_HOST" in r.json()["detail"]
    assert MAILBOX not in r.text


MISFITS = [
    {"channel": "email", "url": "https://hook.example/secret-path"},
    {"channel": "email", "url": "https://hook.example/secret-path", "email": MAILBOX},
    {"email": MAILBOX},  # a webhook (the default channel) with an email
    {"channel": "webhook", "email": MAILBOX, "url": "https://hook.example/secret-path"},
    {"channel": "email"},
    {"channel": "email", "email": "safeguarding at riverside.example.sch.uk"},
    {"channel": "email", "email": "a@riverside.example.sch.uk\r\nBcc: x@evil.example"},
    {"channel": "sms", "email": MAILBOX},
]


def test_a_target_that_does_not_fit_the_channel_is_a_422_that_echoes_nothing(
    make_env: MakeEnv,
) -> None:
    env = make_env(**smtp_settings(free_port()))
    for body in MISFITS:
        r = env.client.post(
            "/v1/admin/subscriptions", json={"agency": "csc", **body}, headers=env.keys["admin"]
        )
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        for fragment in ("riverside", "secret-path", "evil", "sms"):
            assert fragment not in r.text, (body, r.text)
    assert env.client.get("/v1/admin/subscriptions", headers=env.keys["admin"]).json() == []


# --------------------------------------------------------------------------- CLI


def test_cli_subscribes_a_mailbox_and_lists_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'subs.db'}"
    upgrade_to_head(url)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "test")
    create = [
        "subscriptions", "create", "--agency", "school", "--school", SCHOOL_URN,
        "--channel", "email", "--email", MAILBOX,
    ]  # fmt: skip
    get_settings.cache_clear()
    try:
        assert triage(create) == 2  # no SMTP configured
        assert "TRIAGE_SMTP_HOST" in capsys.readouterr().out
        monkeypatch.setenv("TRIAGE_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("TRIAGE_SMTP_FROM", "triage-noreply@force.example.police.uk")
        get_settings.cache_clear()
        assert triage(create) == 0
        out = capsys.readouterr().out
        assert "subscription id:" in out
        assert "secret" not in out
        assert triage(["subscriptions", "list"]) == 0
        listed = capsys.readouterr().out
        assert MAILBOX in listed
        assert "email" in listed
    finally:
        get_settings.cache_clear()
