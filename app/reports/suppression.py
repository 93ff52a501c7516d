"""Small-number suppression for published counts.

**Primary**: a count below :data:`THRESHOLD` (5) is shown as ``"<5"``, zero included (an
exact zero tells a reader that nobody in a small group was affected, and a mix of shown
zeros and hidden ones would point at the hidden ones).

**Secondary**: a table's totals would give a hidden cell away (total 12, shown cells 7
and 5: the third is 0). Each *relation* — a set of cells whose values are tied by one
equation, such as a row's cells and the row's total — must therefore hide either none of
its cells or at least two. While some relation hides exactly one, the smallest cell it
still shows (a cell before a total; ties by position) is hidden too, and the check starts
again; a cell hidden for one relation can expose another, so this runs to a fixed point.
That is the usual "at least two per line" rule of official statistics; it defeats
recovery by subtraction along any one line. It is not always enough when lines combine (in
a table with row and column totals, a hidden cell can be the only link between two groups
of hidden cells, and the equations of several lines then fix its value), so each hidden
cell is then checked against *all* the equations together: a cell is recoverable exactly
when its unit vector lies in the row space of the equations over the hidden cells (a rank
test). A recoverable cell gets a neighbour hidden too, and both steps run again until no
hidden cell is recoverable. Bounds (counts are never negative) can still narrow a hidden
cell to a range; the ranges of cells hidden in pairs are at least as wide as the smaller
cell, which is the protection published tables ordinarily give.

Rates, medians and other figures derived from counts are not published when any count
they are made from is hidden (:func:`derived`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

THRESHOLD = 5
HIDDEN = "<5"

K = TypeVar("K", bound=Hashable)

Shown = int | str  # a count, or HIDDEN


@dataclass(frozen=True)
class Relation(Generic[K]):
    """Cells tied by one equation (``parts`` sum to ``total``)."""

    parts: tuple[K, ...]
    total: K | None = None

    @property
    def cells(self) -> tuple[K, ...]:
        return self.parts if self.total is None else (*self.parts, self.total)


def hidden_cells(values: Mapping[K, int], relations: Iterable[Relation[K]]) -> set[K]:
    """The cells to hide: those below the threshold, then enough others that no hidden
    cell can be worked out from the shown cells and the relations."""
    relations = list(relations)
    hidden = {k for k, v in values.items() if v < THRESHOLD}
    order = {k: i for i, k in enumerate(values)}

    def pick(relation: Relation[K]) -> K | None:
        """The smallest part the relation still shows (a total only if it must)."""
        shown = [c for c in relation.cells if c not in hidden]
        if not shown:
            return None
        return min(shown, key=lambda c: (c == relation.total, values[c], order[c]))

    while True:
        changed = True
        while changed:  # at least two hidden in every relation that hides any
            changed = False
            for relation in relations:
                if sum(1 for c in relation.cells if c in hidden) == 1:
                    chosen = pick(relation)
                    if chosen is not None:
                        hidden.add(chosen)
                        changed = True
        exposed = recoverable(hidden, relations)
        if not exposed:
            return hidden
        # Hide one more cell on a line through the first recoverable one, and check again.
        first = min(exposed, key=order.__getitem__)
        options = [c for r in relations if first in r.cells if (c := pick(r)) is not None]
        if not options:
            return hidden  # every cell on its lines is hidden already
        hidden.add(min(options, key=lambda c: (values[c], order[c])))


def recoverable(hidden: set[K], relations: Sequence[Relation[K]]) -> set[K]:
    """The hidden cells whose value the relations fix, given every shown cell."""
    cells = sorted(hidden, key=repr)
    if not cells:
        return set()
    column = {c: i for i, c in enumerate(cells)}
    rows = []
    for relation in relations:
        row = np.zeros(len(cells))
        for c in relation.parts:
            if c in column:
                row[column[c]] += 1
        if relation.total is not None and relation.total in column:
            row[column[relation.total]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    equations = np.array(rows)
    rank = np.linalg.matrix_rank(equations)
    found = set()
    for c, i in column.items():
        unit = np.zeros(len(cells))
        unit[i] = 1
        if np.linalg.matrix_rank(np.vstack([equations, unit])) == rank:
            found.add(c)
    return found


def suppress(values: Mapping[K, int], relations: Iterable[Relation[K]] = ()) -> dict[K, Shown]:
    """``values`` as published: each hidden cell is ``"<5"``."""
    hidden = hidden_cells(values, relations)
    return {k: (HIDDEN if k in hidden else v) for k, v in values.items()}


def suppress_table(
    rows: Mapping[str, Mapping[str, int]], columns: Sequence[str]
) -> tuple[dict[str, dict[str, Shown]], dict[str, Shown]]:
    """A table with a total for each row (key ``"total"``) and a total row (the column
    sums): the cells, the row totals, the column totals and the grand total suppressed
    together. Returns (rows with their ``"total"``, the total row)."""
    values: dict[tuple[str, str], int] = {}
    relations: list[Relation[tuple[str, str]]] = []
    for r, row in rows.items():
        for c in columns:
            values[(r, c)] = int(row.get(c, 0))
        values[(r, "total")] = sum(values[(r, c)] for c in columns)
        relations.append(Relation(tuple((r, c) for c in columns), (r, "total")))
    for c in [*columns, "total"]:
        values[("*", c)] = sum(values[(r, c)] for r in rows)
        relations.append(Relation(tuple((r, c) for r in rows), ("*", c)))
    relations.append(Relation(tuple(("*", c) for c in columns), ("*", "total")))
    shown = suppress(values, relations)
    table = {r: {c: shown[(r, c)] for c in [*columns, "total"]} for r in rows}
    return table, {c: shown[("*", c)] for c in [*columns, "total"]}


def derived(value: float | None, *counts: Shown) -> float | str | None:
    """A rate or median made from ``counts``: withheld (``"<5"``) when any of them is."""
    if any(c == HIDDEN for c in counts):
        return HIDDEN
    return value
