"""Streaming metrics equal the same estimators on all paths at once."""

from __future__ import annotations

import numpy as np
import pytest

from stress.metrics import Column, LossAccumulator, probability_rows, tail_rank


def _direct(losses, level):
    n = losses.size
    var = np.sort(losses)[tail_rank(n, level) - 1]
    return var, var + np.clip(losses - var, 0, None).sum() / (n * (1 - level))


@pytest.mark.parametrize("block_size", [1, 7, 1_000, 5_000])
def test_streaming_equals_direct(block_size):
    rng = np.random.default_rng(0)
    # Mostly zero with a heavy tail, like credit losses, plus a column of ties.
    losses = np.column_stack(
        [rng.pareto(2.0, 5_000) * (rng.random(5_000) < 0.1), np.round(rng.random(5_000), 1)]
    )
    levels = [0.9, 0.99, 0.999]
    acc = LossAccumulator([Column("system", "a"), Column("class", "b")], levels, 5_000, block_size)
    for start in range(0, 5_000, block_size):
        acc.add(losses[start : start + block_size])
    rows = {(r["name"], r["metric"], r["level"]): r for r in acc.rows()}
    for s, name in enumerate("ab"):
        column = losses[:, s]
        assert rows[(name, "el", None)]["value"] == pytest.approx(column.mean(), rel=1e-12)
        assert rows[(name, "sd", None)]["value"] == pytest.approx(column.std(ddof=1), rel=1e-10)
        assert rows[(name, "el", None)]["std_error"] == pytest.approx(
            column.std(ddof=1) / np.sqrt(5_000), rel=1e-10
        )
        for level in levels:
            var, es = _direct(column, level)
            assert rows[(name, "var", level)]["value"] == var
            assert rows[(name, "es", level)]["value"] == pytest.approx(es, rel=1e-12)


def test_tail_rank_is_robust_to_rounding():
    assert tail_rank(200_000, 0.999) == 199_800
    assert tail_rank(1_000, 0.95) == 950
    assert tail_rank(10, 0.001) == 1


def test_es_of_an_atom_is_the_atom():
    acc = LossAccumulator([Column("system", "s")], [0.99], 1_000, 100)
    for _ in range(10):
        acc.add(np.full((100, 1), 3.0))
    rows = {(r["metric"], r["level"]): r for r in acc.rows()}
    assert rows[("var", 0.99)]["value"] == 3.0
    assert rows[("es", 0.99)]["value"] == 3.0
    assert rows[("var", 0.99)]["std_error"] == 0.0


def test_batch_means_error_needs_two_full_blocks():
    acc = LossAccumulator([Column("system", "s")], [0.9], 150, 100)
    acc.add(np.arange(100.0)[:, None])
    acc.add(np.arange(50.0)[:, None])
    rows = {(r["metric"], r["level"]): r for r in acc.rows()}
    assert rows[("var", 0.9)]["std_error"] is None


def test_binomial_standard_errors():
    (row,) = probability_rows("institution", ["a"], np.array([25]), 1_000, "p_default")
    assert row["value"] == 0.025
    assert row["std_error"] == pytest.approx(np.sqrt(0.025 * 0.975 / 1_000))
