"""The model card (Mitchell et al. 2019 sections) and its plots, written beside the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.classifier.artifact import CARD_FILE

FloatArray = NDArray[np.float64]


def _plots(
    out: Path,
    y: NDArray[np.int_],
    p_model: FloatArray,
    p_scorecard: FloatArray,
    dash_counts: NDArray[np.int64],
    report: Mapping[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    meta = {"Software": "da-triage", "Creation Time": None}

    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    for label, score in (
        ("classifier", p_model),
        ("learned scorecard", p_scorecard),
        ("DASH count", dash_counts.astype(float)),
    ):
        fpr, tpr, _ = roc_curve(y, score)
        auc_value = report["models"][_key(label)]["overall"]["auc"]
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc_value:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC, test split")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "roc.png", metadata=meta)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    upper = float(min(1.0, max(p_model.max(), p_scorecard.max()) + 0.05))
    for label, prob in (("classifier", p_model), ("learned scorecard", p_scorecard)):
        obs, pred = calibration_curve(y, prob, n_bins=10, strategy="quantile")
        ax.plot(pred, obs, marker="o", label=label)
    ax.plot([0, upper], [0, upper], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("mean predicted probability (deciles)")
    ax.set_ylabel("observed repeat rate")
    ax.set_title("Calibration, test split")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", metadata=meta)
    plt.close(fig)

    groups = list(report["models"]["classifier"]["by_group"])
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=80)
    names = ("classifier", "scorecard", "checklist_level")
    width = 0.8 / len(names)
    for metric, ax in zip(("missed_repeat_share", "false_positive_rate"), axes, strict=True):
        for i, name in enumerate(names):
            values = [report["models"][name]["by_group"][g][metric] or 0.0 for g in groups]
            ax.bar(np.arange(len(groups)) + i * width, values, width, label=name.replace("_", " "))
        ax.set_xticks(np.arange(len(groups)) + width, groups)
        ax.set_title(
            "repeat cases not flagged" if metric.startswith("missed") else "false-positive rate"
        )
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    fig.suptitle("Error rates by group at the operating points (test split)")
    fig.tight_layout()
    fig.savefig(out / "group_error_rates.png", metadata=meta)
    plt.close(fig)


def _key(label: str) -> str:
    return {
        "classifier": "classifier",
        "learned scorecard": "scorecard",
        "DASH count": "dash_count",
    }[label]


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _f(value: Any, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if pct else f"{value:.3f}"


def write_card(
    out: Path,
    manifest: Mapping[str, Any],
    scorecard: Mapping[str, Any],
    y: NDArray[np.int_],
    p_model: FloatArray,
    p_scorecard: FloatArray,
    dash_counts: NDArray[np.int64],
    groups: Sequence[str],  # noqa: ARG001 - the report already holds the per-group figures
) -> None:
    report = manifest["metrics"]
    intercept = float(scorecard["intercept"])
    _plots(out, y, p_model, p_scorecard, dash_counts, report)
    synthetic = bool(manifest["training_data"]["synthetic"])
    m = report["models"]
    td = manifest["training_data"]
    lines: list[str] = [f"# Model card: {manifest['name']} version {manifest['version']}", ""]
    if synthetic:
        lines += [
            "> **NOT FOR OPERATIONAL USE.** Trained and evaluated on **synthetic** incidents "
            "(`triage synth`), invented from published base rates and effect sizes. Its figures "
            "say how the pipeline behaves, not how well it would predict real repeat abuse.",
            "",
        ]
    lines += [
        "## Model details",
        f"- Kind: {manifest['model']['kind']}, calibrated ({manifest['model']['calibration']}); "
        f"explanations are {'exact' if manifest['model']['additive'] else 'approximate'} "
        "per-reason log-odds contributions against a documented reference.",
        f"- Learned points scorecard `{scorecard['id']}` v{scorecard['version']} with "
        f"{len(scorecard['features'])} conditions (FasterRisk-style sparse integer points).",
        f"- Files: `model.skops` sha256 `{manifest['model']['sha256']}`; `scorecard.json` sha256 "
        f"`{manifest['scorecard']['file_sha256']}`.",
        f"- Libraries: scikit-learn {manifest['libraries']['scikit-learn']}, numpy "
        f"{manifest['libraries']['numpy']}, skops {manifest['libraries']['skops']}. The service "
        "refuses to load the model under another scikit-learn version or if a hash differs.",
        f"- Created {manifest['created_at']}. Licence: as the repository.",
        "",
        "## Intended use",
        "- Predicts a further domestic-abuse incident for the same victim within 12 months, to "
        "help a MASH triage team decide which incidents to look at first.",
        "- Advisory only. The checklist stays the visible basis of every decision: the classifier "
        "never lowers a checklist level; above the operating threshold it raises a "
        "`classifier_elevated` flag for human review, and raises the level only where an area's "
        "configuration says so.",
        "- Out of scope: any decision about an individual without human review; predicting "
        "homicide or serious harm (too rare to learn here); use on another force's population "
        "without retraining and re-validation; use after the drift monitor reports moved features "
        "without review.",
        "",
        "## Factors",
        "- Inputs: checklist answers (yes / unknown / not asked kept distinct), circumstances, "
        "relationship and separation, children, perpetrator and victim history including time "
        "since the last incident, ages, the victim's own perception of risk.",
        "- Never inputs: ethnicity, sex, and the synthetic protected attribute. They are used only "
        f"to report figures per group (here by `{manifest['fairness']['group_by']}`).",
        "- Age is an input: it is a validated predictor in this literature and a protected "
        "characteristic; a force may retrain without it.",
        "",
        "## Metrics",
        "AUC (discrimination), Brier score, ECE (10 equal-width bins; equal-mass beside it), and "
        "at the operating point the share of repeat cases not flagged and the false-positive "
        f"rate. Operating point: probability >= {manifest['operating_point']['threshold']:.4f}, "
        f"which {manifest['operating_point']['rule']} "
        f"({100 * manifest['operating_point']['flag_rate']:.1f}% of incidents).",
        "",
        "## Evaluation data",
        f"The held-out test split ({td['splits']['test']} incidents) of the training file, never "
        "used for fitting, calibration, selection or thresholds.",
        "",
        "## Training data",
        f"- {td['n']} incidents, {'SYNTHETIC' if synthetic else 'force records'}; file "
        f"`{td['file_name']}` sha256 `{td['sha256']}`; base rate {_f(td['base_rate'], True)}.",
        f"- Splits: train {td['splits']['train']}, calibration {td['splits']['calibration']}, "
        f"test {td['splits']['test']} (stratified, seed {td['seed']}).",
        "",
        "## Quantitative analyses (test split)",
        "",
        "| | AUC | Brier | ECE | ECE (equal mass) | flagged | repeat cases not flagged | FPR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("classifier", "scorecard", "dash_count", "checklist_level"):
        o = m[name]["overall"]
        lines.append(
            _row(
                name.replace("_", " "),
                _f(o["auc"]),
                _f(o.get("brier")),
                _f(o.get("ece")),
                _f(o.get("ece_equal_mass")),
                _f(o["flag_rate"], True),
                _f(o["missed_repeat_share"], True),
                _f(o["false_positive_rate"], True),
            )
        )
    if report.get("oracle_auc") is not None:
        lines += [
            "",
            f"Oracle AUC (the generator's true probabilities): {_f(report['oracle_auc'])}.",
        ]
    lines += [
        "",
        "Brier and ECE of the DASH count and levels use the repeat rate per count or level on the "
        "training data as their probability.",
        "",
        "Candidates compared (test split, calibrated):",
        "",
        "| candidate | calibration-split AUC | test AUC | test Brier | test ECE |",
        "|---|---|---|---|---|",
    ]
    for name, c in manifest["candidates"].items():
        t = c["test"]
        lines.append(
            _row(name, _f(c["calibration_split_auc"]), _f(t["auc"]), _f(t["brier"]), _f(t["ece"]))
        )
    lines += [
        "",
        f"Per group ({manifest['fairness']['group_by']}):",
        "",
        "| model | group | n | base rate | AUC | ECE | flagged | repeat cases not flagged | FPR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("classifier", "scorecard", "checklist_level"):
        for g, v in m[name]["by_group"].items():
            lines.append(
                _row(
                    name.replace("_", " "),
                    g,
                    str(v["n"]),
                    _f(v["base_rate"], True),
                    _f(v["auc"]),
                    _f(v.get("ece")),
                    _f(v["flag_rate"], True),
                    _f(v["missed_repeat_share"], True),
                    _f(v["false_positive_rate"], True),
                )
            )
    lines += [
        "",
        "![ROC](roc.png) ![Calibration](calibration.png)",
        "",
        "![Error rates by group](group_error_rates.png)",
        "",
        "## The learned scorecard",
        "",
        "| condition | points |",
        "|---|---|",
    ]
    for f in scorecard["features"]:
        lines.append(f"| {f['label']} | {f['points']:+d} |")
    lines += [
        "",
        f"Probability = 1 / (1 + exp(-(total {'-' if intercept < 0 else '+'} {abs(intercept)}) / "
        f"{scorecard['multiplier']})); "
        "the full total-to-probability table is in `scorecard.json`.",
        "",
        "## Ethical considerations",
        f"- Fairness trade-off chosen: {manifest['fairness']['trade_off']}",
        "- History features reflect past police contact, which differs between communities for "
        "reasons other than risk; a model learns that difference. Review per-group figures.",
        "- Officer DASH gradings were little better than chance in UK studies (Turner et al. "
        "2019); the models on police history reach about AUC 0.75 (Turner et al. 2022). Neither "
        "is reliable enough to decide alone.",
        "",
        "## Caveats and recommendations",
        "- Re-validate on each force's own records before any use; re-run `triage monitor` on "
        "recent incidents regularly and retrain when features move.",
        "- The outcome is police-recorded repeat abuse: unreported abuse is invisible to it.",
        "- Probabilities are calibrated on the training population only.",
    ]
    (out / CARD_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
