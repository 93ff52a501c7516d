"""Notifications: the outbox written with the flag change, subscriptions, the dispatcher
against a real local receiver that verifies Standard Webhooks signatures, receipts."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.flags.models import Flag
from app.flags.overdue import sweep
from app.notify import dispatcher
from tests.conftest import example_incident
from tests.flags.api_helpers import incident_at
from tests.notify.receiver import Receiver
from tests.notify.support import SCHOOL_URN, Env, MakeEnv, personal_values


def test_an_intake_writes_outbox_rows_for_matching_subscriptions_only(
    env: Env, receiver: Receiver
) -> None:
    env.subscribe("csc", receiver.url)
    env.subscribe("school", receiver.url, school_urn=SCHOOL_URN)
    env.subscribe("school", receiver.url, school_urn="999999")  # another school: nothing
    env.subscribe("csc", receiver.url, area="E09000099")  # another area: nothing
    body = example_incident()
    incident_id = env.post_incident(body)
    rows = env.notifications()
    with env.db.unit(read_only=True) as s:
        flags = {
            f.id: f
            for f in s.scalars(select(Flag).where(Flag.incident_id == uuid.UUID(incident_id)))
        }
    expected = [f for f in flags.values() if f.agency in ("csc", "school")]
    assert expected, "the example incident raises flags for children's services and a school"
    assert len(rows) == len(expected)
    assert {r.flag_id for r in rows} == {f.id for f in expected}
    assert {r.kind for r in rows} == {"raised"}
    assert {r.status for r in rows} == {"pending"}
    for r in rows:
        data = r.payload["data"]
        flag = flags[r.flag_id]
        assert data["flag_id"] == str(flag.id)
        assert data["agency"] == flag.agency
        assert data["links"] == {"api": f"/v1/flags/{flag.id}", "screen": f"/ui/flags/{flag.id}"}
        assert set(data) == {
            "notification_id", "flag_id", "flag_type", "agency", "subject_role", "status",
            "due_at", "links",
        }  # fmt: skip
    text_of_payloads = str([r.payload for r in rows])
    for value in personal_values():
        assert value not in text_of_payloads, value


def test_a_rolled_back_intake_writes_no_notification(
    env: Env, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.subscribe("csc", receiver.url)

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the process fails after the outbox rows were written")

    # Called after the flags and their notifications are written, before the commit.
    monkeypatch.setattr("app.intake.orchestrator.insert_queue_row", fail)
    r = env.client.post(
        "/v1/incidents", json=incident_at("2026-11-20T22:31:00Z"), headers=env.keys["submitter"]
    )
    assert r.status_code == 500
    assert env.notifications() == []
    with env.db.unit(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Flag)) == 0


def test_delivered_signed_once_with_a_disclosure_each(env: Env, receiver: Receiver) -> None:
    created = env.subscribe("csc", receiver.url)
    receiver.secret = created["secret"]
    assert created["secret"].startswith("whsec_")
    env.post_incident()
    rows = env.notifications()
    result = env.dispatch()
    assert result.delivered == len(rows) > 0
    assert sorted(receiver.ids()) == sorted(f"msg_{r.id}" for r in rows)
    assert {n.status for n in env.notifications()} == {"delivered"}
    assert env.dispatch().claimed == 0  # nothing is sent twice
    with env.db.unit(read_only=True) as s:
        disclosed = s.execute(
            text(
                "SELECT record_ids, recipients FROM audit_events "
                "WHERE operation = 'disclose' AND principal_id = 'system:notify'"
            )
        ).all()
    assert len(disclosed) == len(rows)
    assert all("agency:csc" in str(recipients) for _ids, recipients in disclosed)
    # The secret is never listed again.
    listed = env.client.get("/v1/admin/subscriptions", headers=env.keys["admin"]).json()
    assert "secret" not in listed[0]
    for body in receiver.bodies():
        for value in personal_values():
            assert value not in body


def test_receiver_down_then_up_is_delivered_after_a_retry(env: Env) -> None:
    down = Receiver()  # not started: the port refuses connections
    created = env.subscribe("csc", down.url)
    down.secret = created["secret"]
    env.post_incident()
    first = env.dispatch()
    assert first.retried == first.claimed > 0
    assert first.delivered == 0
    assert {n.last_error_kind for n in env.notifications()} == {"connecterror"}
    down.start()
    try:
        second = env.dispatch()
    finally:
        down.stop()
    assert second.delivered == first.claimed
    assert {(n.status, n.attempts) for n in env.notifications()} == {("delivered", 2)}


def test_server_errors_are_retried_then_failed(env: Env, receiver: Receiver) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    receiver.status = 500
    env.post_incident()
    outcomes = [env.dispatch() for _ in range(env.settings.notify_max_attempts)]
    assert outcomes[0].retried > 0
    assert outcomes[-1].failed == outcomes[0].retried
    rows = env.notifications()
    assert {(n.status, n.attempts, n.last_error_kind) for n in rows} == {
        ("failed", env.settings.notify_max_attempts, "http_500")
    }
    assert env.dispatch().claimed == 0  # the dead letter is not tried again
    flag_id = rows[0].flag_id
    shown = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"]).json()
    assert shown["notification_status"] == "failed"
    metrics = env.client.get("/metrics").text
    assert f'triage_notifications{{status="failed"}} {float(len(rows))}' in metrics


def test_a_wrong_secret_is_rejected_by_the_receiver(env: Env, receiver: Receiver) -> None:
    env.subscribe("csc", receiver.url)
    receiver.secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # not it
    env.post_incident()
    result = env.dispatch()
    assert result.delivered == 0
    assert receiver.rejected == result.claimed > 0
    assert {n.last_error_kind for n in env.notifications()} == {"http_401"}


def test_a_status_change_is_notified_and_acknowledged_by_the_agency_only(
    env: Env, receiver: Receiver
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    env.post_incident()
    env.dispatch()
    flag_id = env.notifications()[0].flag_id
    flag = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"])
    assert flag.status_code == 200, flag.text
    r = env.client.patch(
        f"/v1/flags/{flag_id}",
        json={"status": "acknowledged"},
        headers={**env.keys["csc"], "If-Match": flag.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    changed = [n for n in env.notifications() if n.kind == "status_changed"]
    assert len(changed) == 1
    assert changed[0].payload["data"]["status"] == "acknowledged"
    env.dispatch()
    nid = changed[0].id
    assert (
        env.client.post(f"/v1/notifications/{nid}/ack", headers=env.keys["school"]).status_code
        == 404
    )
    ack = env.client.post(f"/v1/notifications/{nid}/ack", headers=env.keys["csc"])
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "acknowledged"
    # The flag shows the least advanced of its notifications: raised was delivered only.
    shown = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"]).json()
    assert shown["notification_status"] == "delivered"
    for n in [n for n in env.notifications() if n.flag_id == flag_id and n.kind == "raised"]:
        env.client.post(f"/v1/notifications/{n.id}/ack", headers=env.keys["csc"])
    shown = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"]).json()
    assert shown["notification_status"] == "acknowledged"


def test_subscriptions_refuse_plain_http_to_other_hosts_and_need_a_school(env: Env) -> None:
    admin = env.keys["admin"]
    for body in (
        {"agency": "csc", "url": "http://receiver.example/hook"},
        {"agency": "school", "url": "https://receiver.example/hook"},
        {"agency": "csc", "url": "https://receiver.example/hook", "school_urn": SCHOOL_URN},
    ):
        r = env.client.post("/v1/admin/subscriptions", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
    r = env.client.post(
        "/v1/admin/subscriptions",
        json={"agency": "csc", "url": "https://x.example/h"},
        headers=env.keys["csc"],
    )
    assert r.status_code == 403
    created = env.subscribe("csc", "https://receiver.example/hook")
    gone = env.client.delete(f"/v1/admin/subscriptions/{created['id']}", headers=admin)
    assert gone.status_code == 204
    assert env.client.get("/v1/admin/subscriptions", headers=admin).json() == []


def test_two_dispatchers_on_postgresql_deliver_each_notification_once(
    env: Env, receiver: Receiver, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has one dispatcher")
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    for _ in range(5):
        env.post_incident()
    env.settings = env.settings.model_copy(update={"notify_batch_size": 3})
    total = len(env.notifications())
    delivered: list[int] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        n = 0
        while True:
            r = env.dispatch()
            n += r.delivered
            if r.claimed == 0:
                break
        delivered.append(n)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(delivered) == total > 4
    ids = receiver.ids()
    assert len(ids) == total
    assert len(set(ids)) == total
    assert {n.status for n in env.notifications()} == {"delivered"}


def test_the_overdue_sweep_announces_each_overdue_flag_once(env: Env, receiver: Receiver) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    env.post_incident()  # reported a week ago: its flags are overdue already
    raised = len(env.notifications())
    with env.db.unit(read_only=True) as s:
        due = s.scalars(select(Flag.id).where(Flag.agency == "csc", Flag.due_at < func.now())).all()
    first = dispatcher.run_once(env.db, env.settings, sweep=sweep)
    overdue = [n for n in env.notifications() if n.kind == "overdue"]
    assert len(due) > 0
    assert sorted(n.flag_id for n in overdue) == sorted(due)
    assert first.delivered == raised + len(due)
    assert {b["type"] for b in (r["body"] for r in receiver.received)} == {
        "flag.raised",
        "flag.overdue",
    }
    again = dispatcher.run_once(env.db, env.settings, sweep=sweep)
    assert again.claimed == 0  # announced once
    with env.db.unit(read_only=True) as s:
        noticed = s.scalars(
            select(Flag.id).where(Flag.agency == "csc", Flag.overdue_noticed_at.is_not(None))
        ).all()
    assert sorted(noticed) == sorted(due)  # every agency's overdue flags are marked, once


def test_a_receiver_slower_than_the_timeout_is_retried(env: Env, receiver: Receiver) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    receiver.delay = 1.0
    env.settings = env.settings.model_copy(update={"notify_timeout_seconds": 0.2})
    env.post_incident()
    result = env.dispatch()
    assert result.retried == result.claimed > 0
    assert {n.last_error_kind for n in env.notifications()} == {"timeout"}
    receiver.delay = 0
    assert env.dispatch().delivered == result.claimed


def _expire_leases(env: Env) -> None:
    """As if the lease had run out (it lasts timeout * batch + 30 s)."""
    with env.db.unit() as s:
        s.execute(text("UPDATE notifications SET next_attempt_at = created_at"))


def test_a_dispatcher_killed_mid_batch_loses_nothing(
    env: Env, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    env.post_incident()
    total = len(env.notifications())
    real_record = dispatcher.record
    calls = 0

    def record_then_die(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # killed after the second POST, before recording it
            raise KeyboardInterrupt
        return real_record(*args, **kwargs)

    monkeypatch.setattr(dispatcher, "record", record_then_die)
    with pytest.raises(KeyboardInterrupt):
        env.dispatch()
    monkeypatch.setattr(dispatcher, "record", real_record)
    assert env.dispatch().claimed == 0  # the rest are leased to the dead dispatcher
    _expire_leases(env)
    again = env.dispatch()
    assert again.delivered == total - 1
    assert {n.status for n in env.notifications()} == {"delivered"}
    # At least once: the one sent but not recorded came twice, with one webhook-id.
    ids = receiver.ids()
    assert len(ids) == total + 1
    assert len(set(ids)) == total


def test_webhooks_carry_absolute_links_under_the_public_base_url(
    make_env: MakeEnv, receiver: Receiver
) -> None:
    env = make_env(public_base_url="https://triage.example.police.uk/")  # the slash is dropped
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    env.post_incident()
    rows = env.notifications()
    assert env.dispatch().delivered == len(rows) > 0
    sent = {r["body"]["data"]["flag_id"]: r["body"]["data"]["links"] for r in receiver.received}
    for row in rows:
        flag_id = row.payload["data"]["flag_id"]
        assert sent[flag_id] == {
            "api": f"https://triage.example.police.uk/v1/flags/{flag_id}",
            "screen": f"https://triage.example.police.uk/ui/flags/{flag_id}",
        }
        # Stored relative: the address is the deployment's, applied when sent.
        assert row.payload["data"]["links"]["api"] == f"/v1/flags/{flag_id}"
