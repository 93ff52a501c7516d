"""Fixtures for the people tests (invented test data only; see factories.py)."""

from __future__ import annotations

import pytest

from tests.conftest import KeyMaker


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def auditor(make_key: KeyMaker) -> dict[str, str]:
    return make_key("auditor")
