"""Pure risk scoring: checklist definitions as versioned data, and the engine.

Public API::

    registry = load_registry()                      # once, at start-up
    definitions = registry.default_set()            # or registry.definition_set(...)
    history = History.reported(incident)            # + .with_stored(...) later
    assessment = assess(incident, history, definitions, judgements)
    body = assessment.to_dict()                     # the contract's `assessment` object
    reproduce(body, incident, history, judgements, registry)

The incident schema and the item vocabulary come from ``app.contract`` below; nothing
here imports storage or HTTP.
"""

from app.scoring.digest import inputs_digest
from app.scoring.engine import assess
from app.scoring.history import (
    ChildHistory,
    History,
    LinkedVictim,
    PerpetratorHistory,
    StoredIncident,
    StoredMaracReferral,
    VictimHistory,
)
from app.scoring.judgement import Judgement, JudgementError
from app.scoring.registry import (
    DefinitionError,
    DefinitionRegistry,
    DefinitionSet,
    UnknownDefinitionError,
    load_registry,
)
from app.scoring.reproduce import Difference, Reproduction, compare, reproduce
from app.scoring.results import Assessment

__all__ = [
    "Assessment",
    "ChildHistory",
    "DefinitionError",
    "DefinitionRegistry",
    "DefinitionSet",
    "Difference",
    "History",
    "Judgement",
    "JudgementError",
    "LinkedVictim",
    "PerpetratorHistory",
    "Reproduction",
    "StoredIncident",
    "StoredMaracReferral",
    "UnknownDefinitionError",
    "VictimHistory",
    "assess",
    "compare",
    "inputs_digest",
    "load_registry",
    "reproduce",
]
