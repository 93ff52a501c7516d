"""Test database fixtures: every database test runs on SQLite and, when
``TRIAGE_TEST_POSTGRES_URL`` is set, on PostgreSQL too (the same tests, parametrised).

Per backend, one database at head serves the whole run (``migrated_database``). Each test
runs inside an outer transaction that is rolled back at the end; the app's sessions join
it through savepoints, so a request's "commit" only releases a savepoint and tests never
share state. Tests that need real commits and separate connections (concurrency, fault
injection) use ``fresh_database`` instead: a new database per test, dropped afterwards.

Migrating takes a second or so, so each worker runs the migrations once per backend, into
a template, and every new database (``TempDatabase``: ``migrated_database``,
``fresh_database``, the servers' databases) is a copy of it: ``CREATE DATABASE ...
TEMPLATE`` on PostgreSQL, SQLite's backup API. The migrations themselves are still run on
both backends by every worker, and from base to head and back by
``scripts/migration_check.py`` and tests/ops/test_migrations_with_data.py.

Under pytest-xdist (``-n 2``) each worker is a process of its own with its own session:
its own migrated databases (PostgreSQL names carry the worker id and a random suffix,
SQLite files live in the worker's ``tmp_path_factory``), its own servers on ports the
kernel picked. Redis (``TRIAGE_TEST_REDIS_URL``) is shared and never flushed: every key a
test writes is its own (the rate limit hashes a principal made up for the test), and no
test asserts on keys it did not write. Tests marked ``exclusive`` have the machine to
themselves while they run (``tests/support/machine.py``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _pytest.nodeid import NodeId
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.config import Settings
from app.db import Database, get_database
from app.main import create_app
from app.ops.migrations import upgrade_to_head
from tests.support.machine import MachineLock

POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
DATA = Path(__file__).parent / "data"
# "gw0", "gw1", ... under pytest-xdist; "main" in a run without workers.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


# --------------------------------------------------------------------------- databases


def _create_postgres_database(prefix: str, template: str | None = None) -> str:
    assert POSTGRES_URL is not None
    name = f"{prefix}_{WORKER}_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
    admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(url: str) -> None:
    assert POSTGRES_URL is not None
    name = make_url(url).database
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# Per backend, the database migrated to head that new databases are copied from: a SQLite
# file, or the name of a PostgreSQL database nobody may connect to (so that it can always
# be copied). Made on first use in each worker and removed at the end of its session
# (``pytest_unconfigure``), with whatever else ``_TEMPLATE_LEFTOVERS`` names.
_TEMPLATES: dict[str, str] = {}
_TEMPLATE_LEFTOVERS: list[str] = []  # SQLite directories and PostgreSQL URLs


def _template(backend: str) -> str:
    if backend in _TEMPLATES:
        return _TEMPLATES[backend]
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix=f"triage-template-{WORKER}-")
        _TEMPLATE_LEFTOVERS.append(directory)
        path = str(Path(directory) / "template.db")
        upgrade_to_head(f"sqlite:///{path}")
        _TEMPLATES[backend] = path
    else:
        assert POSTGRES_URL is not None
        url = _create_postgres_database("triage_template")
        _TEMPLATE_LEFTOVERS.append(url)
        upgrade_to_head(url)
        name = str(make_url(url).database)
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        admin.dispose()
        _TEMPLATES[backend] = name
    return _TEMPLATES[backend]


def _drop_templates() -> None:
    _TEMPLATES.clear()
    while _TEMPLATE_LEFTOVERS:
        leftover = _TEMPLATE_LEFTOVERS.pop()
        if leftover.startswith("postgresql"):
            _drop_postgres_database(leftover)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


class TempDatabase:
    """A brand-new database at head (a copy of the worker's template, see ``_template``),
    removed on ``drop()``."""

    def __init__(self, backend: str, directory: Path, prefix: str = "triage_test") -> None:
        self.backend = backend
        template = _template(backend)
        if backend == "sqlite":
            path = directory / (prefix + ".db")
            source, target = sqlite3.connect(template), sqlite3.connect(path)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
            self.url = f"sqlite:///{path}"
        else:
            self.url = _create_postgres_database(prefix, template=template)

    def drop(self) -> None:
        if self.backend == "postgres":
            _drop_postgres_database(self.url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    temp = TempDatabase(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    database = Database(temp.url)
    yield database
    database.dispose()
    temp.drop()


@pytest.fixture
def fresh_database(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A database of its own for tests that commit for real (concurrency, faults)."""
    temp = TempDatabase(backend, tmp_path)
    database = Database(temp.url)
    yield database
    database.dispose()
    temp.drop()


@pytest.fixture
def connection(migrated_database: Database) -> Iterator[Connection]:
    conn = migrated_database.engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    s = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield s
    s.close()


# --------------------------------------------------------------------------- application


@pytest.fixture
def settings(migrated_database: Database) -> Settings:
    return Settings(environment="test", database_url=migrated_database.url)


def build_app(settings: Settings, database: Database, connection: Connection | None) -> FastAPI:
    app = create_app(settings, database)
    if connection is not None:
        joined = Database.joined(database, connection)

        async def _test_database() -> Database:
            return joined

        app.dependency_overrides[get_database] = _test_database
    return app


@pytest.fixture
def app(settings: Settings, migrated_database: Database, connection: Connection) -> FastAPI:
    return build_app(settings, migrated_database, connection)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


# --------------------------------------------------------------------------- credentials


KeyMaker = Callable[..., dict[str, str]]


@pytest.fixture
def make_key(session: Session) -> KeyMaker:
    """Create an API key inside the test transaction; returns ready request headers."""

    def _make(role: str, **kwargs: Any) -> dict[str, str]:
        if role == "submitter":
            kwargs.setdefault("source_system", "force-a-records")
        if role in ("triage", "agency"):
            kwargs.setdefault("areas", ["E09000018"])
        issued = create_key(session, role=role, **kwargs)  # type: ignore[arg-type]
        session.commit()
        return {"Authorization": f"Bearer {issued.secret}", "X-Purpose": "triage"}

    return _make


@pytest.fixture
def submitter(make_key: KeyMaker) -> dict[str, str]:
    return make_key("submitter")


# --------------------------------------------------------------------------- test data


def example_incident() -> dict[str, Any]:
    """The contract's example incident (invented data; see tests/data/README.md)."""
    data: dict[str, Any] = json.loads((DATA / "incident.example.json").read_text("utf-8"))
    return copy.deepcopy(data)


@pytest.fixture
def incident() -> dict[str, Any]:
    return example_incident()


@pytest.fixture
def make_key_fresh() -> Callable[..., dict[str, str]]:
    """Create and commit a key in a ``fresh_database`` (real commits)."""

    def _make(database: Database, role: str = "submitter", **kwargs: Any) -> dict[str, str]:
        if role == "submitter":
            kwargs.setdefault("source_system", "force-a-records")
        if role in ("triage", "agency"):
            kwargs.setdefault("areas", ["E09000018"])
        with database.session() as s:
            issued = create_key(s, role=role, **kwargs)  # type: ignore[arg-type]
            s.commit()
        return {"Authorization": f"Bearer {issued.secret}", "X-Purpose": "triage"}

    return _make


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the PostgreSQL half is mandatory: fail fast if it cannot run."""
    if os.environ.get("TRIAGE_REQUIRE_POSTGRES") != "1":
        return
    if not POSTGRES_URL:
        pytest.exit("TRIAGE_REQUIRE_POSTGRES=1 but TRIAGE_TEST_POSTGRES_URL is not set", 2)
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        pytest.exit(f"PostgreSQL is required but unreachable: {type(exc).__name__}", 2)


# --------------------------------------------------------------------------- workers

MACHINE = pytest.StashKey[MachineLock]()


def pytest_configure(config: pytest.Config) -> None:
    """On an xdist worker, open the run's machine lock. A worker's ``--basetemp`` is a
    directory in the run's base temp (``.../pytest-N/popen-gw0``), whose parent is shared
    by the run's workers and by no other run."""
    basetemp = config.getoption("basetemp", None)
    if "PYTEST_XDIST_WORKER" in os.environ and basetemp:
        config.stash[MACHINE] = MachineLock(Path(basetemp).parent)


# The order the run hands tests to the workers (``--no-loadscope-reorder`` keeps it): the
# longest first, so that no worker is left with a two-minute test while the other has
# finished; the tests that want the machine to themselves last, as one group on one worker,
# so that they wait once for the other worker's current (short) test, not behind a long one.
# Measured before: an exclusive test waited 70 s for a schemathesis run to end.
def _run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("exclusive"):
        return 4
    if item.nodeid.startswith("tests/contract/"):  # schemathesis, the intake fuzz
        return 0
    if item.nodeid.startswith("tests/browser/"):
        return 1
    if item.get_closest_marker("xdist_group") or item.get_closest_marker("slow"):
        return 2
    return 3


def _group(item: pytest.Item) -> str | None:
    if item.get_closest_marker("exclusive"):
        return "exclusive"
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the tests for the workers (``_run_order``; the sort is stable, so a module's
    tests stay together and its module-scoped fixtures start once per worker), and make
    ``xdist_group`` work again under ``--dist loadgroup``: pytest-xdist (3.8) tells the
    scheduler a test's group by appending ``@group`` to its node id through
    ``item._nodeid``, which pytest 9 no longer reads (the id lives in ``item._id``), so the
    groups were silently ignored and a group's module-scoped servers were started on both
    workers. Does what xdist means to do, once, on the workers. Every ``exclusive`` test is
    in the group ``exclusive``."""
    if not getattr(config.option, "loadgroup", False):
        return
    items.sort(key=_run_order)
    for item in items:
        group = _group(item)
        if group is None or item.nodeid.rfind("@") > item.nodeid.rfind("]"):
            continue  # no group, or xdist has named it already
        item._id = NodeId.parse(f"{item.nodeid}@{group}")  # type: ignore[attr-defined]
        if not item.nodeid.endswith(f"@{group}"):
            warnings.warn(
                pytest.PytestWarning("xdist_group cannot be applied: tests will not be grouped"),
                stacklevel=1,
            )
            return


def pytest_unconfigure(config: pytest.Config) -> None:
    _drop_templates()
    if MACHINE in config.stash:
        config.stash[MACHINE].close()
        del config.stash[MACHINE]


HELD = pytest.StashKey[contextlib.ExitStack]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown under the machine lock: exclusively for ``exclusive`` tests,
    shared for the others. Without workers there is nothing to share the machine with.
    Consecutive exclusive tests keep the lock from one to the next, so the other worker
    cannot start a test in between that the next one would then wait for."""
    machine = item.config.stash.get(MACHINE, None)
    if machine is None:
        return (yield)
    if item.get_closest_marker("exclusive") is None:
        with machine.shared():
            return (yield)
    held = item.config.stash.get(HELD, None)
    if held is None:
        held = contextlib.ExitStack()
        held.enter_context(machine.exclusive())
        item.config.stash[HELD] = held
    try:
        return (yield)
    finally:
        if nextitem is None or nextitem.get_closest_marker("exclusive") is None:
            del item.config.stash[HELD]
            held.close()


# --------------------------------------------------------------------------- redis

REDIS_URL = os.environ.get("TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (a database of its own); skipped where none runs, required in CI."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("TRIAGE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"Redis is required but unreachable at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    finally:
        client.close()
    return REDIS_URL
