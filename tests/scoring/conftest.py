from __future__ import annotations

import pytest

from app.scoring import DefinitionRegistry, DefinitionSet, load_registry


@pytest.fixture(scope="session")
def registry() -> DefinitionRegistry:
    return load_registry()


@pytest.fixture(scope="session")
def definitions(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.default_set()


@pytest.fixture(scope="session")
def area_definitions(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.definition_set(("dash-ric@local-example", "dash-police@1"))
