"""Notifications: the outbox written with the flag change, subscriptions, the dispatcher
against a real local receiver that verifies Standard Webhooks signatures, receipts."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.flags.models import Flag
from app.flags.overdue import sweep
from app.notify import channels, dispatcher
from app.notify.models import Notification
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
    assert total > 2
    real_send = channels.send
    calls = 0

    def send_then_die(*args: Any, **kwargs: Any) -> str | None:
        nonlocal calls
        calls += 1
        if calls == 3:  # killed after two POSTs, before recording them
            raise KeyboardInterrupt
        return real_send(*args, **kwargs)

    monkeypatch.setattr(channels, "send", send_then_die)
    with pytest.raises(KeyboardInterrupt):
        env.dispatch()
    monkeypatch.setattr(channels, "send", real_send)
    assert {n.status for n in env.notifications()} == {"pending"}  # nothing recorded
    assert env.dispatch().claimed == 0  # all leased to the dead dispatcher
    _expire_leases(env)
    again = env.dispatch()
    assert again.delivered == total
    assert {(n.status, n.attempts) for n in env.notifications()} == {("delivered", 1)}
    # At least once: the two sent but not recorded came twice, each with one webhook-id.
    ids = receiver.ids()
    assert len(ids) == total + 2
    assert len(set(ids)) == total


def _queue(env: Env, **params: Any) -> list[dict[str, Any]]:
    r = env.client.get("/v1/queue", params=params, headers=env.keys["triage"])
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _ack_raised(env: Env) -> None:
    for n in env.notifications():
        if n.kind == "raised":
            r = env.client.post(f"/v1/notifications/{n.id}/ack", headers=env.keys["csc"])
            assert r.status_code == 200, r.text


def test_every_answer_that_shows_a_flag_shows_its_notification_status(
    env: Env, receiver: Receiver
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    now = utcnow().isoformat()
    r = env.client.post("/v1/incidents", json=incident_at(now), headers=env.keys["submitter"])
    assert r.status_code == 201, r.text
    incident_id = r.json()["incident_id"]
    answered = {f["id"]: f for f in r.json()["flags"]}
    csc = {i for i, f in answered.items() if f["agency"] == "csc"}
    assert csc
    assert len(csc) < len(answered)
    assert {i: f["notification_status"] for i, f in answered.items()} == {
        i: "pending" if i in csc else None for i in answered
    }
    env.dispatch()
    listed = env.client.get("/v1/flags", headers=env.keys["csc"]).json()["items"]
    assert {f["id"]: f["notification_status"] for f in listed} == dict.fromkeys(csc, "delivered")
    read = env.client.get(f"/v1/incidents/{incident_id}", headers=env.keys["triage"]).json()
    assert {f["id"]: f["notification_status"] for f in read["flags"]} == {
        i: "delivered" if i in csc else None for i in answered
    }
    flag_id = sorted(csc)[0]
    etag = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"]).headers["ETag"]
    changed = env.client.patch(
        f"/v1/flags/{flag_id}",
        json={"status": "acknowledged"},
        headers={**env.keys["csc"], "If-Match": etag},
    )
    assert changed.json()["notification_status"] == "pending"  # its status_changed notice
    stale = env.client.patch(
        f"/v1/flags/{flag_id}",
        json={"status": "in_progress"},
        headers={**env.keys["csc"], "If-Match": etag},
    )
    assert stale.status_code == 412
    assert stale.json()["current"]["notification_status"] == "pending"
    # A revision: the flags it keeps show their notices, the new notices pending.
    revised = incident_at(now, reference=read["incident"]["source"]["reference"])
    again = env.client.post(
        f"/v1/incidents/{incident_id}/revisions", json=revised, headers=env.keys["submitter"]
    )
    assert again.status_code == 201, again.text
    statuses = {f["id"]: f["notification_status"] for f in again.json()["flags"]}
    assert statuses[flag_id] == "pending"
    assert {statuses[i] for i in csc - {flag_id}} <= {"delivered"}


def test_the_queue_shows_flags_whose_notice_failed_or_went_unacknowledged(
    env: Env, receiver: Receiver
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    overdue_id = env.post_incident()  # reported a week ago: its flags are past due
    fresh = env.client.post(
        "/v1/incidents", json=incident_at(utcnow().isoformat()), headers=env.keys["submitter"]
    )
    assert fresh.status_code == 201, fresh.text
    fresh_id = fresh.json()["incident_id"]
    with env.db.unit(read_only=True) as s:
        late_csc = s.scalar(
            select(func.count()).where(
                Flag.incident_id == uuid.UUID(overdue_id),
                Flag.agency == "csc",
                Flag.due_at < func.now(),
            )
        )
    assert late_csc
    env.dispatch()  # delivered, but nobody has acknowledged them
    rows = {r["incident_id"]: r for r in _queue(env)}
    assert rows[overdue_id]["notification_problems"] == late_csc
    assert rows[fresh_id]["notification_problems"] == 0  # delivered, not yet due
    assert [r["incident_id"] for r in _queue(env, notification_problem="true")] == [overdue_id]
    flagged = env.client.get(
        "/v1/flags", params={"notification_problem": "true"}, headers=env.keys["triage"]
    ).json()["items"]
    assert len(flagged) == late_csc
    assert {f["incident_id"] for f in flagged} == {overdue_id}
    _ack_raised(env)
    assert _queue(env, notification_problem="true") == []
    assert {r["incident_id"] for r in _queue(env, notification_problem="false")} == {
        overdue_id,
        fresh_id,
    }
    # A failed notice is a problem whether or not the flag is due.
    receiver.status = 500
    flag_id = env.client.get(
        "/v1/flags", params={"incident_id": fresh_id, "agency": "csc"}, headers=env.keys["csc"]
    ).json()["items"][0]["id"]
    etag = env.client.get(f"/v1/flags/{flag_id}", headers=env.keys["csc"]).headers["ETag"]
    env.client.patch(
        f"/v1/flags/{flag_id}",
        json={"status": "acknowledged"},
        headers={**env.keys["csc"], "If-Match": etag},
    )
    for _ in range(env.settings.notify_max_attempts):
        env.dispatch()
    rows = {r["incident_id"]: r for r in _queue(env, notification_problem="true")}
    assert list(rows) == [fresh_id]
    assert rows[fresh_id]["notification_problems"] == 1


def test_dead_letters_are_listed_to_admins_and_requeued_by_api_and_cli(
    env: Env,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = env.subscribe("csc", receiver.url)
    receiver.secret = created["secret"]
    receiver.status = 500
    env.post_incident()
    for _ in range(env.settings.notify_max_attempts):
        env.dispatch()
    admin = env.keys["admin"]
    listed = env.client.get("/v1/admin/notifications", headers=admin)
    assert listed.status_code == 200, listed.text
    dead = listed.json()
    assert dead["total"] == len(dead["items"]) == len(env.notifications()) > 1
    assert {(d["agency"], d["attempts"], d["last_error_kind"]) for d in dead["items"]} == {
        ("csc", env.settings.notify_max_attempts, "http_500")
    }
    assert env.client.get("/v1/admin/notifications", headers=env.keys["csc"]).status_code == 403
    # One, by the API; then the rest, by the CLI; the receiver is back.
    receiver.status = 204
    first = dead["items"][0]["id"]
    r = env.client.post(f"/v1/admin/notifications/{first}/retry", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"requeued": [first]}
    again = env.client.post(f"/v1/admin/notifications/{first}/retry", headers=admin)
    assert again.status_code == 409  # pending now, not failed
    assert env.dispatch().delivered == 1
    monkeypatch.setenv("TRIAGE_DATABASE_URL", env.db.url)
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "test")
    get_settings.cache_clear()
    try:
        assert main(["notify", "failed"]) == 0
        assert f"{dead['total'] - 1} failed" in capsys.readouterr().out
        assert main(["notify", "retry", "--subscription", created["id"]]) == 0
        assert f"requeued {dead['total'] - 1}" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    assert env.dispatch().delivered == dead["total"] - 1
    assert {n.status for n in env.notifications()} == {"delivered"}
    with env.db.unit(read_only=True) as s:
        requeues = (
            s.execute(
                text("SELECT principal_id FROM audit_events WHERE record_type = 'notification'")
            )
            .scalars()
            .all()
        )
    assert len(requeues) == 2
    assert requeues[1].startswith("cli:")


def test_outcomes_are_recorded_together_a_batch_at_a_time(
    env: Env, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    receiver.status = 500
    env.post_incident()
    total = len(env.notifications())
    units: list[int] = []
    real_record = dispatcher.record

    def counted(database: Database, settings: Settings, attempts: Any) -> list[str]:
        units.append(len(attempts))
        return real_record(database, settings, attempts)

    monkeypatch.setattr(dispatcher, "record", counted)
    first = env.dispatch()
    assert units == [total]  # one unit of work for the batch
    assert first.retried == total
    receiver.status = 204  # the retries are due at once (no backoff in these tests)
    monkeypatch.setattr(dispatcher, "RECORD_WITHIN", dt.timedelta(0))
    second = env.dispatch()
    assert second.delivered == total
    assert units[1:] == [1] * total  # recorded as they go once the oldest is due
    with env.db.unit(read_only=True) as s:
        disclosed = s.scalars(
            select(AuditEvent.occurred_at).where(AuditEvent.operation == "disclose")
        ).all()
        delivered = s.scalars(select(Notification.delivered_at)).all()
    assert sorted(disclosed) == sorted(delivered)  # each at the time of its POST


def test_notify_run_logs_as_the_service_does(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.subscribe("csc", Receiver().url)  # never started: each POST is refused
    env.post_incident()
    capsys.readouterr()
    monkeypatch.setenv("TRIAGE_DATABASE_URL", env.db.url)
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "test")
    monkeypatch.setenv("TRIAGE_LOG_JSON", "true")
    get_settings.cache_clear()
    try:
        assert main(["notify", "run", "--once"]) == 0
    finally:
        get_settings.cache_clear()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    attempts = [x for x in lines if x["event"] == "notification_attempt"]
    assert len(attempts) == len(env.notifications()) > 0
    assert {(x["outcome"], x["error_kind"], x["level"]) for x in attempts} == {
        ("retried", "connecterror", "info")
    }


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
