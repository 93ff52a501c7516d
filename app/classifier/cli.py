"""``triage synth | train | evaluate | monitor``: the classifier's command line."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.classifier.artifact import ArtifactError, load_artifact
from app.classifier.data import DataFormatError, fairness_groups, read_jsonl


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _progress() -> bool:
    """Long work reports progress (app/progress.py: a bar on a terminal, lines elsewhere)."""
    return True


def _write_json(path: str | None, body: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        _out(f"wrote {path}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("synth", help="generate synthetic incidents with outcomes (JSONL)")
    p.add_argument("--n", type=int, default=50_000, help="number of incidents")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    p.add_argument(
        "--out", required=True, help="output .jsonl file (a .meta.json is written beside)"
    )
    p.add_argument(
        "--drift", type=float, default=0.0, help="shift unknown rates and history (monitor demos)"
    )
    p.set_defaults(func=synth_command)

    p = subparsers.add_parser("train", help="train, calibrate and save a classifier and scorecard")
    p.add_argument("--data", required=True, help="training data (JSONL: incident + outcome)")
    p.add_argument("--out", required=True, help="artifact directory, models/NAME/VERSION")
    p.add_argument("--name", help="model name (default: the parent directory's name)")
    p.add_argument("--version", help="model version (default: the directory's name)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split and the model")
    p.add_argument(
        "--flag-rate",
        type=float,
        help="share of incidents to flag (default: as the checklist's high level)",
    )
    p.add_argument(
        "--group-by", default="auto", help="protected_group | victim_ethnicity | victim_sex | auto"
    )
    p.add_argument(
        "--scorecard-max-conditions",
        type=int,
        default=20,
        help="most conditions the learned scorecard may use (default 20)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the model card plots")
    p.set_defaults(func=train_command)

    p = subparsers.add_parser(
        "evaluate", help="compare a model with the DASH count and checklist levels"
    )
    p.add_argument("--model", required=True, help="artifact directory")
    p.add_argument("--data", required=True, help="evaluation data (JSONL: incident + outcome)")
    p.add_argument(
        "--group-by",
        default="auto",
        help="fairness groups: protected_group | victim_ethnicity | victim_sex | auto",
    )
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.set_defaults(func=evaluate_command)

    p = subparsers.add_parser("monitor", help="compare recent incidents with the training data")
    p.add_argument("--model", required=True, help="artifact directory")
    p.add_argument("--data", required=True, help="recent incidents (JSONL; outcomes not needed)")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 3 when any feature moved")
    p.set_defaults(func=monitor_command)


def synth_command(args: argparse.Namespace) -> int:
    from app.classifier.synth import SYNTHETIC_NOTICE, GeneratorParameters, generate

    out = Path(args.out)
    result = generate(
        args.n, args.seed, out, GeneratorParameters(drift=args.drift), progress=_progress()
    )
    _out(SYNTHETIC_NOTICE)
    _out(f"wrote {result.n} incidents to {out} (and {out}.meta.json)")
    _out(f"base rate (repeat within 12 months): {100 * result.base_rate:.1f}%")
    for group, rate in result.group_base_rates.items():
        _out(f"  synthetic group {group}: {100 * rate:.1f}%")
    _out(f"oracle AUC (true probabilities): {result.oracle_auc:.4f}")
    _out(f"DASH count AUC: {result.dash_count_auc:.4f}")
    return 0


def train_command(args: argparse.Namespace) -> int:
    from app.classifier.train import TrainConfig, train

    out = Path(args.out)
    name = args.name or out.parent.name
    version = args.version or out.name
    if not name or not version:
        _err("give --name and --version, or --out models/NAME/VERSION")
        return 2
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        # Said at once, before any work: the plots are the last step.
        _err(
            "error: the model card's plots need matplotlib: "
            "`.venv/bin/pip install -e '.[train]' -c constraints.txt`, or pass --no-plots"
        )
        return 2
    start = time.perf_counter()
    try:
        dataset = read_jsonl(args.data, progress=_progress())
        manifest = train(
            dataset,
            out,
            TrainConfig(
                name=name,
                version=version,
                seed=args.seed,
                flag_rate=args.flag_rate,
                group_by=args.group_by,
                progress=_progress(),
                plots=not args.no_plots,
                scorecard_k_max=args.scorecard_max_conditions,
                scorecard_k_min=min(6, args.scorecard_max_conditions),
            ),
        )
    except (DataFormatError, ValueError) as exc:
        _err(f"error: {exc}")
        return 2
    m = manifest["metrics"]["models"]
    if manifest["training_data"]["synthetic"]:
        _out("SYNTHETIC training data: this model is NOT FOR OPERATIONAL USE")
    _out(f"wrote {out} ({manifest['model']['kind']}, sha256 {manifest['model']['sha256'][:16]}...)")
    for cand, body in manifest["candidates"].items():
        _out(
            f"  {cand:20} calibration-split AUC {body['calibration_split_auc']:.4f}   "
            f"test AUC {body['test']['auc']:.4f}   test ECE {body['test']['ece']:.4f}"
        )
    _out(
        f"test split: classifier AUC {m['classifier']['overall']['auc']:.4f}, "
        f"scorecard AUC {m['scorecard']['overall']['auc']:.4f} "
        f"({manifest['scorecard']['conditions']} conditions), "
        f"DASH count AUC {m['dash_count']['overall']['auc']:.4f}"
    )
    if manifest["metrics"].get("oracle_auc") is not None:
        _out(f"oracle AUC on the test split: {manifest['metrics']['oracle_auc']:.4f}")
    _out(f"training took {time.perf_counter() - start:.1f} s")
    return 0


def _load(model_dir: str) -> Any:
    try:
        return load_artifact(model_dir)
    except ArtifactError as exc:
        _err(f"refused: {exc}")
        return None


def evaluate_command(args: argparse.Namespace) -> int:
    from app.classifier.evaluate import baselines_of, compare, format_report
    from app.classifier.features import FEATURE_INDEX, feature_matrix
    from app.classifier.scorecard import score_points_matrix

    model = _load(args.model)
    if model is None:
        return 2
    try:
        dataset = read_jsonl(args.data, progress=_progress())
    except DataFormatError as exc:
        _err(f"error: {exc}")
        return 2
    x = feature_matrix((r.incident, None) for r in dataset.records)
    y = np.array([r.outcome.repeat_incident_12m for r in dataset.records if r.outcome], dtype=int)
    true_p = [r.outcome.true_probability if r.outcome else None for r in dataset.records]
    group_by, groups = fairness_groups(dataset, args.group_by)
    _, sc_p = score_points_matrix(model.scorecard, x, FEATURE_INDEX)
    report = compare(
        y,
        model.predict_proba(x),
        model.threshold,
        sc_p,
        float(model.manifest["scorecard"]["threshold"]),
        baselines_of(dataset),
        model.manifest["baselines"],
        groups,
        float(model.manifest["training_data"]["base_rate"]),
        None if any(t is None for t in true_p) else np.array(true_p, dtype=float),
    )
    report["model"] = {"name": model.name, "version": model.version, "sha256": model.sha256}
    report["data"] = {"sha256": dataset.sha256, "synthetic": dataset.synthetic}
    if model.synthetic or dataset.synthetic:
        _out("SYNTHETIC data or model: figures describe the pipeline, NOT real-world performance")
    _out(f"model {model.name} {model.version} ({model.kind}); data {Path(args.data).name}")
    _out(format_report(report, group_by))
    _write_json(args.json, report)
    return 0


def monitor_command(args: argparse.Namespace) -> int:
    from app.classifier.features import feature_matrix
    from app.classifier.monitor import drift_report, format_drift

    model = _load(args.model)
    if model is None:
        return 2
    try:
        dataset = read_jsonl(args.data, require_outcome=False, progress=_progress())
    except DataFormatError as exc:
        _err(f"error: {exc}")
        return 2
    x = feature_matrix((r.incident, None) for r in dataset.records)
    report = drift_report(model.manifest["training_profile"], x, model.predict_proba(x))
    _out(f"model {model.name} {model.version}; recent data {Path(args.data).name}")
    _out(format_drift(report))
    _write_json(args.json, report)
    if args.fail_on_drift and report["moved"]:
        return 3
    return 0
