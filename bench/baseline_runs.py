"""What the micro-benchmarks share to compare this tree with a git revision in one run.

``bench/whatif_micro.py`` and ``bench/flags_micro.py`` measure their steps in subprocesses,
one on this tree's code and one on a revision's (exported to a temporary directory),
taking turns in alternating order so that neither always runs first on a noisy machine,
and print each step's medians and ratio, also as a multiple of ``orjson.loads`` timed in
the same pass (steadier when the machine's speed changes between the two trees' turns).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

Times = dict[str, list[float]]  # step name -> one figure per pass
REFERENCE = "orjson.loads"


def interleaved(steps: dict[str, Callable[[], object]], repeats: int, per: int) -> Times:
    """CPU µs of each step per item (``per`` items a pass), one figure per pass, the steps
    taking turns within each of ``repeats`` passes."""
    times: Times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.process_time()
            step()
            times[name].append((time.process_time() - started) / per * 1e6)
    return times


def export(root: Path, revision: str, into: Path) -> Path:
    """The tree of ``revision`` (its ``app`` and ``bench``) written under ``into``."""
    archive = subprocess.run(  # noqa: S603 - git, a revision named on the command line
        ["git", "-C", str(root), "archive", "--format=tar", revision, "app", "bench"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    for name in ("models", "app/scoring/definitions"):  # data the loaders read, if not in app
        source = root / name
        if source.exists() and not (into / name).exists():
            (into / name).symlink_to(source)
    return into


def run_child(root: Path, script: Path, env_var: str, arguments: Sequence[str]) -> Times:
    """``script --measure …`` on ``root``'s code in a subprocess (``env_var`` names the
    tree to the script): ``root``'s own copy of the script if it has one, else ``script``
    (a revision from before the script). The script prints its times as JSON, last."""
    own = root / "bench" / script.name
    out = subprocess.run(  # noqa: S603 - this interpreter, a benchmark script
        [sys.executable, str(own if own.exists() else script), *arguments],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, env_var: str(root)},
        cwd=root,
    ).stdout
    result: Times = json.loads(out.splitlines()[-1])
    return result


def alternate(
    baseline: Path, this: Path, rounds: int, measure: Callable[[Path], Times]
) -> dict[str, Times]:
    """``measure`` on both trees ``rounds`` times each, neither always first."""
    collected: dict[str, Times] = {"baseline": {}, "this": {}}
    trees = [("baseline", baseline), ("this", this)]
    for round_ in range(rounds):
        for label, root in trees if round_ % 2 == 0 else trees[::-1]:
            for name, values in measure(root).items():
                collected[label].setdefault(name, []).extend(values)
    return collected


def print_ratios(
    collected: dict[str, Times], names: Sequence[str], revision: str, unit: str
) -> None:
    """Each step's medians on both trees, their ratio and the ratio of ``orjson.loads``
    multiples (each pass divided by the reference timed in the same pass)."""
    width = max(len(unit), *(len(n) for n in names))
    print(f"{unit:{width}} {revision:>10} {'this tree':>10} {'ratio':>7} {'ratio/orjson':>13}")
    for name in names:
        before = statistics.median(collected["baseline"][name])
        after = statistics.median(collected["this"][name])
        multiples = [
            statistics.median(
                value / reference
                for value, reference in zip(
                    collected[tree][name], collected[tree][REFERENCE], strict=True
                )
            )
            for tree in ("baseline", "this")
        ]
        print(
            f"{name:{width}} {before:10.1f} {after:10.1f} {after / before:7.2f} "
            f"{multiples[1] / multiples[0]:13.2f}"
        )


def parser(description: str) -> argparse.ArgumentParser:
    """The options every micro-benchmark takes (a script adds its own)."""
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--templates", type=int, default=300)
    options.add_argument("--repeats", type=int, default=15)
    options.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    options.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    options.add_argument("--measure", metavar="ROWS", help=argparse.SUPPRESS)
    return options


def main(
    args: argparse.Namespace,
    *,
    root: Path,
    build_rows: Callable[[int], list[Any]],
    measure: Callable[[list[Any]], Times],
    child: Callable[[Path, Path], Times],
    names: Sequence[str],
    unit: str,
    rows_are: str,
) -> int:
    """A micro-benchmark's run: as the ``--measure`` subprocess, measure the rows given and
    print the times as JSON; alone, measure this tree; with ``--baseline REV``, both trees
    in turn (``child`` runs one tree's subprocess on the rows file) and the ratios."""
    if args.measure:
        print(json.dumps(measure(json.loads(Path(args.measure).read_text("utf-8")))))
        return 0
    rows = build_rows(args.templates)
    print(f"{len(rows)} {rows_are}; load average {os.getloadavg()[0]:.2f}")
    if args.baseline is None:
        times = measure(rows)
        width = max(len(n) for n in names)
        for name in names:
            print(f"{name:{width}} {statistics.median(times[name]):8.1f} µs")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.json"
        rows_file.write_text(json.dumps(rows), "utf-8")
        base = export(root, args.baseline, Path(tmp) / "baseline")
        collected = alternate(base, root, args.rounds, lambda tree: child(tree, rows_file))
    print_ratios(collected, names, args.baseline, unit)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0
