from __future__ import annotations

import pytest

from app.scoring import DefinitionRegistry, DefinitionSet, load_registry


@pytest.fixture(scope="session")
def registry() -> DefinitionRegistry:
    return load_registry()


V1 = (("dash-ric@1", "dash-police@1"), "child-risk@1")
V2 = (("dash-ric@2", "dash-police@2"), "child-risk@2")


@pytest.fixture(scope="session", params=["v1", "v2"])
def definitions(registry: DefinitionRegistry, request: pytest.FixtureRequest) -> DefinitionSet:
    """Both shipped versions: what version 2 left as it was must hold in both (docs/rules.md
    "Everything not named here is as in version 1")."""
    victim, child = V1 if request.param == "v1" else V2
    return registry.definition_set(victim, child)


@pytest.fixture(scope="session")
def definitions_v1(registry: DefinitionRegistry) -> DefinitionSet:
    """Version 1 only: for what version 2 changed (the default set is version 2)."""
    return registry.definition_set(*V1)


@pytest.fixture(scope="session")
def definitions_v2(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.default_set()


@pytest.fixture(scope="session")
def area_definitions(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.definition_set(("dash-ric@local-example", "dash-police@1"))
