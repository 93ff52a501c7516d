"""The committed OpenAPI document matches the app, and the app matches its document."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.cli import OPENAPI_PATH, openapi_document
from tests.conftest import KeyMaker


def test_committed_openapi_document_is_current() -> None:
    assert OPENAPI_PATH.read_text("utf-8") == openapi_document(), (
        "openapi/openapi.json is stale: run `.venv/bin/triage openapi`"
    )


def test_every_operation_has_a_stable_operation_id_and_documents_problems() -> None:
    import json

    doc = json.loads(openapi_document())
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("operationId"), f"{method} {path} has no operationId"
            if path.startswith("/v1"):
                assert "401" in op["responses"], f"{method} {path} does not document 401"
                problem = op["responses"]["401"]["content"]
                assert "application/problem+json" in problem


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def _checker(operation: Any, headers: dict[str, str]) -> Any:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return exercise


def test_api_never_errors_and_matches_its_schema(app: Any, make_key: KeyMaker) -> None:
    """Schemathesis, in process over ASGI, against every documented operation and role."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    keys = {role: make_key(role) for role in ("submitter", "triage", "auditor", "admin")}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 3
    for operation in operations:
        for role, headers in keys.items():
            try:
                _checker(operation, headers)()
            except Exception as exc:  # name the operation and role that failed
                raise AssertionError(f"{operation.label} as {role}: {exc}") from exc
