"""Optional trained classifier and learned points scorecard for repeat domestic abuse.

The checklist stays the visible basis of every decision (see the domain brief); this package
adds an optional, calibrated and explained probability that can raise attention but never
lower a checklist level. Modules:

- ``features``: one feature pipeline for training and serving (incident + history -> row).
- ``data``: the JSON Lines training format (incident + outcome) and its loader.
- ``synth``: the documented synthetic generator (``triage synth``).
- ``baselines``: the DASH count and default checklist levels, computed here for comparison.
- ``metrics``: AUC, Brier, ECE, operating points and per-group error rates.
- ``scorecard``: a sparse integer points model learned FasterRisk-style, and its evaluator.
- ``train``: model comparison, calibration and artifact writing (``triage train``).
- ``artifact``: verified loading (sha256, library versions, skops allow-list) and explanations.
- ``policy``: how the classifier is combined with the checklist level.
- ``monitor``: population stability and answer-profile drift (``triage monitor``).
"""
