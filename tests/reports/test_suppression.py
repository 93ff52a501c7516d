"""Small-number suppression: every count below 5 hidden, and no hidden count recoverable
from the totals, by subtraction along a line or by combining lines (a rank test that
does not share the code under test's shortcuts: it solves the published equations)."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from app.reports.suppression import HIDDEN, Relation, derived, suppress, suppress_table


def _solve_hidden(
    table: dict[str, dict[str, object]], total_row: dict[str, object], columns: list[str]
) -> dict[tuple[str, str], Fraction]:
    """What an attacker gets from the published table: every hidden cell that the row and
    column equations fix, by exact Gauss-Jordan elimination over the rationals."""
    grid = {(r, c): v for r, row in table.items() for c, v in row.items()}
    grid.update({("*", c): v for c, v in total_row.items()})
    names = [*table, "*"]
    equations: list[list[tuple[tuple[str, str], int]]] = []
    for r in names:
        equations.append([((r, c), 1) for c in columns] + [((r, "total"), -1)])
    for c in [*columns, "total"]:
        equations.append([((r, c), 1) for r in table] + [(("*", c), -1)])
    unknown = sorted(k for k, v in grid.items() if v == HIDDEN)
    index = {k: i for i, k in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    for eq in equations:
        row = [Fraction(0)] * (len(unknown) + 1)
        for cell, coef in eq:
            if cell in index:
                row[index[cell]] += coef
            else:
                row[-1] -= coef * int(grid[cell])  # type: ignore[arg-type]
        rows.append(row)
    # Reduced row echelon form.
    pivots: list[int] = []
    r = 0
    for col in range(len(unknown)):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        rows[r] = [x / rows[r][col] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                rows[i] = [a - rows[i][col] * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(col)
        r += 1
    solved = {}
    for i, col in enumerate(pivots):
        others = [j for j in range(len(unknown)) if j != col and rows[i][j] != 0]
        if not others:
            solved[unknown[col]] = rows[i][-1]
    return solved


def test_counts_below_five_are_hidden_and_a_lone_hidden_cell_takes_a_partner() -> None:
    values = {"a": 7, "b": 5, "c": 3, "total": 15}
    shown = suppress(values, [Relation(("a", "b", "c"), "total")])
    assert shown == {"a": 7, "b": HIDDEN, "c": HIDDEN, "total": 15}
    zero = suppress({"a": 9, "b": 0, "c": 6, "t": 15}, [Relation(("a", "b", "c"), "t")])
    assert zero["b"] == HIDDEN  # a zero is hidden too
    assert zero["c"] == HIDDEN  # 15 - 9 would give it away
    assert suppress({"x": 5, "y": 12}) == {"x": 5, "y": 12}


def test_a_hidden_total_hides_a_part_too() -> None:
    shown = suppress({"a": 2, "b": 1, "t": 3}, [Relation(("a", "b"), "t")])
    assert shown == {"a": HIDDEN, "b": HIDDEN, "t": HIDDEN}


@pytest.mark.parametrize("seed", range(60))
def test_no_hidden_cell_of_a_table_can_be_worked_out(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 (test data, not a secret)
    columns = [f"c{i}" for i in range(rng.randint(2, 5))]
    rows = {
        f"m{i:02d}": {c: rng.choice([0, 1, 2, 3, 4, 5, 6, 9, 14, 30]) for c in columns}
        for i in range(rng.randint(2, 12))
    }
    table, total_row = suppress_table(rows, columns)
    for r, row in rows.items():  # every primary cell hidden, every shown cell true
        for c, v in row.items():
            assert table[r][c] == (HIDDEN if v < 5 else v) or table[r][c] == HIDDEN
            if table[r][c] != HIDDEN:
                assert table[r][c] == v
    for line in [*table.values(), total_row]:
        hidden = sum(1 for v in line.values() if v == HIDDEN)
        assert hidden != 1
    for c in [*columns, "total"]:
        column = [table[r][c] for r in table] + [total_row[c]]
        assert sum(1 for v in column if v == HIDDEN) != 1
    assert _solve_hidden(table, total_row, columns) == {}


def test_a_bridge_between_two_hidden_groups_is_hidden_or_broken() -> None:
    # Two blocks of small counts joined through one row: the equations of both blocks
    # together would fix the joining cells if only two per line were hidden.
    columns = ["a", "b", "c", "d"]
    rows = {
        "r1": {"a": 1, "b": 2, "c": 20, "d": 30},
        "r2": {"a": 3, "b": 4, "c": 25, "d": 35},
        "r3": {"a": 40, "b": 9, "c": 1, "d": 45},
        "r4": {"a": 50, "b": 55, "c": 2, "d": 3},
    }
    table, total_row = suppress_table(rows, columns)
    assert _solve_hidden(table, total_row, columns) == {}


def test_derived_figures_are_withheld_with_their_counts() -> None:
    assert derived(0.31, 12, 40) == 0.31
    assert derived(0.5, HIDDEN, 40) == HIDDEN


def test_every_combination_of_a_small_line_is_protected() -> None:
    for a, b, c in itertools.product([0, 3, 5, 8], repeat=3):
        shown = suppress({"a": a, "b": b, "c": c, "t": a + b + c}, [Relation(("a", "b", "c"), "t")])
        assert sum(1 for v in shown.values() if v == HIDDEN) != 1
