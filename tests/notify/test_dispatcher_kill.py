"""A real ``triage notify run`` process killed with SIGKILL, then another started in its
place: nothing is lost, and nothing is sent twice except what the dead one had POSTed of
its batch without recording it yet (with the same ``webhook-id``, so the receiver can
deduplicate it).

Each dispatcher is ``app.cli.main(["notify", "run"])`` in a process of its own, imported
ahead of time (a standby) so that the test does not wait for the application to load, and
run with a two-second lease (``TRIAGE_NOTIFY_LEASE_SECONDS``), so that the dead one's batch
comes back within the test rather than after the default lease. Their output goes to
``dispatcher-N.log`` in the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit.chain import seal_all, verify
from app.audit.models import AuditEvent
from app.flags.overdue import sweep
from app.notify.models import Notification
from tests.notify.receiver import Receiver
from tests.notify.support import Env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BATCH = 4
LEASE_SECONDS = 2
DEADLINE_SECONDS = 60  # only a hung process gets near it


# The standby builds the `notify run` command of app/ops/cli.py (not the whole `triage`
# parser, which also imports the classifier's scikit-learn: seconds more on a busy two-core
# machine), then runs it when a line arrives on its stdin (and exits if stdin closes).
STANDBY = (
    "import argparse, sys\n"
    "from app.ops import cli\n"
    "parser = argparse.ArgumentParser(prog='triage')\n"
    "cli.register(parser.add_subparsers(required=True))\n"
    "if sys.stdin.readline():\n"
    "    args = parser.parse_args(['notify', 'run'])\n"
    "    sys.exit(args.func(args))\n"
)


@contextlib.contextmanager
def dispatcher_process(
    env: Env, log: Path, **settings: object
) -> Iterator[subprocess.Popen[bytes]]:
    """A standby dispatcher on the test's database, output to ``log``; ``go`` starts it.
    Killed (if still alive) however the test ends."""
    variables = {
        "TRIAGE_DATABASE_URL": env.db.url,
        "TRIAGE_ENVIRONMENT": "test",
        "TRIAGE_LOG_LEVEL": "INFO",
        "TRIAGE_NOTIFY_BATCH_SIZE": str(BATCH),
        "TRIAGE_NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
        "TRIAGE_NOTIFY_POLL_SECONDS": "0.1",
        "TRIAGE_NOTIFY_TIMEOUT_SECONDS": "2",
    }
    variables.update({f"TRIAGE_NOTIFY_{k.upper()}": str(v) for k, v in settings.items()})
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", STANDBY],
            cwd=ROOT,
            env={**os.environ, **variables},
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            assert process.stdin is not None
            process.stdin.close()


def go(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.write(b"run\n")
    process.stdin.flush()


def wait_until(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the dispatcher exited before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.05)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()  # SIGKILL: no handler runs, no transaction is finished
    process.wait(10)


def outbox(env: Env) -> list[Notification]:
    with env.db.unit(read_only=True) as s:
        return list(s.scalars(select(Notification)))


def backlog(env: Env, incidents: int) -> list[Notification]:
    """``incidents`` intakes (reported a week ago) and the overdue notices of their flags,
    written now so that the dispatchers' own sweeps find nothing more."""
    for _ in range(incidents):
        env.post_incident()
    sweep(env.db)
    return outbox(env)


def all_delivered(env: Env) -> Callable[[], bool]:
    return lambda: {n.status for n in outbox(env)} == {"delivered"}


def disclosed(env: Env) -> Counter[str]:
    """Notification id -> how many ``disclose`` events the dispatchers wrote for it."""
    with env.db.unit(read_only=True) as s:
        details = s.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.operation == "disclose", AuditEvent.principal_id == "system:notify"
            )
        ).all()
    return Counter(d["notification_id"] for d in details)


def assert_audit_chain_verifies(env: Env) -> None:
    with env.db.unit() as s:
        seal_all(s)
        result = verify(s)
    assert result.ok, result


def assert_deduplicable(receiver: Receiver) -> None:
    """Each request's webhook-id names the notification in its body; repeats are identical."""
    bodies: dict[str, bytes] = {}
    for r in receiver.received:
        assert r["id"] == f"msg_{r['body']['data']['notification_id']}"
        assert bodies.setdefault(r["id"], r["raw"]) == r["raw"]


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_repeats_only_its_unrecorded_posts(
    env: Env, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    receiver.delay = 0.2  # a batch takes about a second: the kill lands inside one
    first_log, second_log = tmp_path / "dispatcher-1.log", tmp_path / "dispatcher-2.log"
    with (
        dispatcher_process(env, first_log) as first,
        dispatcher_process(env, second_log) as second,
    ):
        rows = backlog(env, incidents=3)
        total = len(rows)
        assert total > 3 * BATCH
        go(first)
        # The first batch settled and the second under way.
        wait_until(lambda: len(receiver.ids()) > BATCH + 1, first, first_log, "a batch")
        kill(first)
        # Claimed by the dead dispatcher and never settled: its lease moved next_attempt_at
        # past created_at (the receiver answers 2xx, so nothing was put back for a retry).
        leased = {
            f"msg_{n.id}"
            for n in outbox(env)
            if n.status == "pending" and n.next_attempt_at > n.created_at
        }
        assert 0 < len(leased) <= BATCH
        time.sleep(receiver.delay + 0.2)  # a POST in flight at the kill reaches the receiver
        before = Counter(receiver.ids())
        assert max(before.values()) == 1
        assert len(before) < total  # killed mid-backlog
        go(second)
        wait_until(all_delivered(env), second, second_log, "every notification delivered")
        kill(second)

    final = outbox(env)
    assert len(final) == total  # no sweep wrote more
    assert {(n.status, n.attempts) for n in final} == {("delivered", 1)}
    received = Counter(receiver.ids())
    assert set(received) == {f"msg_{n.id}" for n in final}  # nothing lost
    repeated = {i for i, count in received.items() if count > 1}
    assert max(received.values()) <= 2
    # Only what the dead dispatcher had POSTed of its batch but not recorded (outcomes are
    # recorded a batch at a time) comes twice: at most a batch.
    assert repeated <= leased & set(before)
    assert_deduplicable(receiver)
    # One delivery recorded per notification: none was sent twice by the dispatchers.
    assert disclosed(env) == Counter({str(n.id): 1 for n in final})
    assert_audit_chain_verifies(env)


def test_a_dispatcher_killed_while_the_receiver_is_down_leaves_all_to_the_next(
    env: Env, tmp_path: Path
) -> None:
    receiver = Receiver()  # not started: its port refuses connections
    receiver.secret = env.subscribe("csc", receiver.url)["secret"]
    retrying = {"BACKOFF_BASE_SECONDS": 0.2, "BACKOFF_MAX_SECONDS": 0.5, "MAX_ATTEMPTS": 50}

    def attempts() -> int:
        return sum(n.attempts for n in outbox(env))

    first_log, second_log = tmp_path / "dispatcher-1.log", tmp_path / "dispatcher-2.log"
    try:
        with (
            dispatcher_process(env, first_log, **retrying) as first,
            dispatcher_process(env, second_log, **retrying) as second,
        ):
            total = len(backlog(env, incidents=1))
            go(first)
            wait_until(
                lambda: min(n.attempts for n in outbox(env)) >= 1, first, first_log, "retries"
            )
            kill(first)
            assert {(n.status, n.last_error_kind) for n in outbox(env)} == {
                ("pending", "connecterror")
            }
            tried = attempts()
            go(second)
            # Down a while longer (the new dispatcher retries too), then up.
            wait_until(lambda: attempts() > tried, second, second_log, "a retry by the second")
            receiver.start()
            wait_until(all_delivered(env), second, second_log, "every notification delivered")
            kill(second)
    finally:
        receiver.stop()

    final = outbox(env)
    assert {n.status for n in final} == {"delivered"}
    assert all(n.attempts >= 2 for n in final)
    # Nothing reached the receiver while it was down, so each came exactly once.
    assert sorted(receiver.ids()) == sorted(f"msg_{n.id}" for n in final)
    assert total == len(final)
    assert_deduplicable(receiver)
    assert disclosed(env) == Counter({str(n.id): 1 for n in final})
    assert_audit_chain_verifies(env)
