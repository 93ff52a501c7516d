"""One application per module for the admin tests (see tests/auth/scenario.py)."""

from tests.auth import scenario

client = scenario.client
module_app = scenario.module_app
