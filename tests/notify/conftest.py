"""Fixtures of the notification tests: the service on a database of its own (real commits,
both backends), and a local webhook receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from tests.conftest import build_app
from tests.notify.receiver import Receiver
from tests.notify.support import SCHOOL_URN, Env, MakeEnv


@pytest.fixture
def make_env(
    fresh_database: Database, make_key_fresh: Callable[..., dict[str, str]]
) -> Iterator[MakeEnv]:
    """``make_env(**settings)``: the service and the dispatcher with these settings too."""
    keys = {
        "admin": make_key_fresh(fresh_database, "admin"),
        "submitter": make_key_fresh(fresh_database, "submitter"),
        "csc": make_key_fresh(fresh_database, "agency", agency="csc"),
        "school": make_key_fresh(fresh_database, "agency", agency="school", schools=[SCHOOL_URN]),
        "triage": make_key_fresh(fresh_database, "triage"),
    }
    with ExitStack() as stack:

        def make(**settings: Any) -> Env:
            app_settings = Settings(environment="test", database_url=fresh_database.url, **settings)
            app = build_app(app_settings, fresh_database, None)
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return Env(fresh_database, client, keys, **settings)

        yield make


@pytest.fixture
def env(make_env: MakeEnv) -> Env:
    return make_env()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
