"""The committed OpenAPI document matches the app, and the app matches its document."""

from __future__ import annotations

from app.cli import OPENAPI_PATH, openapi_document


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


# Schemathesis against the running service, every check and phase, on both databases:
# tests/contract/test_schemathesis.py.
