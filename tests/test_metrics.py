"""Streaming metrics equal the same estimators on all paths at once."""

from __future__ import annotations

import numpy as np
import pytest

from stress.metrics import Column, LossAccumulator, probability_rows, summarise, tail_rank


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
    blocks = [losses[start : start + block_size] for start in range(0, 5_000, block_size)]
    columns = [Column("system", "a"), Column("class", "b")]
    maximum = np.array([losses[:, 0].max() * 1.5, 1.0])
    rows = summarise(columns, levels, block_size, maximum, blocks)
    rows = {(r["name"], r["metric"], r["level"]): r for r in rows}
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
    blocks = [np.full((100, 1), 3.0)] * 10
    rows = summarise([Column("system", "s")], [0.99], 100, np.array([10.0]), blocks)
    rows = {(r["metric"], r["level"]): r for r in rows}
    assert rows[("var", 0.99)]["value"] == 3.0
    assert rows[("es", 0.99)]["value"] == 3.0
    assert rows[("var", 0.99)]["std_error"] == 0.0


def test_batch_means_error_needs_two_full_blocks():
    blocks = [np.arange(100.0)[:, None], np.arange(50.0)[:, None]]
    rows = summarise([Column("system", "s")], [0.9], 100, np.array([100.0]), blocks)
    rows = {(r["metric"], r["level"]): r for r in rows}
    assert rows[("var", 0.9)]["std_error"] is None


def test_binomial_standard_errors():
    (row,) = probability_rows("institution", ["a"], np.array([25]), 1_000, "p_default")
    assert row["value"] == 0.025
    assert row["std_error"] == pytest.approx(np.sqrt(0.025 * 0.975 / 1_000))


def test_mostly_zero_losses_need_no_second_pass():
    losses = np.zeros((1_000, 1))
    losses[:5, 0] = [4.0, 1.0, 2.0, 3.0, 5.0]
    acc = LossAccumulator([Column("system", "s")], [0.99], 1_000, np.array([10.0]))
    acc.add(losses)
    assert not acc.needs_refining()
    rows = {(r["metric"], r["level"]): r for r in acc.rows()}
    assert rows[("var", 0.99)]["value"] == 0.0
    assert rows[("es", 0.99)]["value"] == pytest.approx(15.0 / 10.0)


def test_second_pass_must_see_the_same_data():
    rng = np.random.default_rng(1)
    losses = rng.random((1_000, 1))
    acc = LossAccumulator([Column("system", "s")], [0.9], 1_000, np.array([1.0]))
    acc.add(losses)
    acc.refine(losses[:500])
    with pytest.raises(RuntimeError, match="the data read back differ"):
        acc.rows()


def test_memory_does_not_grow_with_paths():
    """What the accumulator keeps after pass 1 is a fixed-size histogram."""
    rng = np.random.default_rng(2)
    sizes = []
    for blocks in (10, 100):
        acc = LossAccumulator([Column("system", "s")], [0.95, 0.999], 1_000, np.array([50.0]))
        for _ in range(blocks):
            acc.add(rng.exponential(size=(1_000, 1)))
        sizes.append(acc.bin_count.nbytes + acc.bin_sum.nbytes)
    assert sizes[0] == sizes[1]


def _ratio_accumulator(rng, paths, block_size, levels):
    """Loss columns (first round F, total T = F·(1 + U) + contagion jumps), in blocks."""
    first = rng.gamma(0.5, 1.0, paths) * (rng.random(paths) < 0.3)
    total = first * (1.0 + rng.random(paths)) + 2.0 * (rng.random(paths) < 0.02)
    losses = np.column_stack([first, total])
    columns = [Column("institutions", "first_round"), Column("institutions", "total")]
    accumulator = LossAccumulator(columns, levels, block_size, np.array([50.0, 200.0]))
    blocks = [losses[start : start + block_size] for start in range(0, paths, block_size)]
    for block in blocks:
        accumulator.add(block)
    if accumulator.needs_refining():
        for block in blocks:
            accumulator.refine(block)
    return accumulator, columns, losses


def test_ratio_is_the_ratio_of_the_estimates_with_a_delta_method_batch_error():
    rng = np.random.default_rng(1)
    accumulator, (first, total), losses = _ratio_accumulator(rng, 10_000, 1_000, [0.9])
    r, error = accumulator.ratio(total, first)
    assert r == pytest.approx(losses[:, 1].mean() / losses[:, 0].mean(), rel=1e-12)
    # Written out: the blocks' own N_b − R D_b, their SD over √(number of blocks), over D.
    means = losses.reshape(10, 1_000, 2).mean(axis=1)
    spread = (means[:, 1] - r * means[:, 0]).std(ddof=1) / np.sqrt(10)
    assert error == pytest.approx(spread / losses[:, 0].mean(), rel=1e-10)
    es = [_direct(losses[:, s], 0.9)[1] for s in (0, 1)]
    r_tail, _ = accumulator.ratio(total, first, 0.9)
    assert r_tail == pytest.approx(es[1] / es[0], rel=1e-12)
    # A zero denominator: no ratio, no error.
    zero = LossAccumulator([first, total], [0.9], 100, np.array([1.0, 1.0]))
    zero.add(np.zeros((100, 2)))
    value, none = zero.ratio(total, first)
    assert np.isnan(value) and none is None


@pytest.mark.parametrize("level", [None, 0.9])
def test_ratio_error_matches_the_spread_over_replications(level):
    # 300 independent runs of 20 blocks of 1 000 paths: the mean of the estimated errors
    # against the standard deviation of the ratios. Tolerance: 4 standard errors of that
    # comparison (the SD's own, sd/√(2(R − 1)), and the mean error's, added in quadrature),
    # plus the batch-means SD's known downward bias of about 1/(4(B − 1)) with B = 20.
    rng = np.random.default_rng(7)
    ratios, errors = [], []
    for _ in range(300):
        accumulator, (first, total), _ = _ratio_accumulator(rng, 20_000, 1_000, [0.9])
        r, error = accumulator.ratio(total, first, level)
        ratios.append(r)
        errors.append(error)
    spread = np.std(ratios, ddof=1)
    errors = np.array(errors)
    tolerance = 4 * np.hypot(spread / np.sqrt(2 * 299), errors.std(ddof=1) / np.sqrt(300))
    tolerance += spread / (4 * 19)
    assert abs(errors.mean() - spread) <= tolerance, (errors.mean(), spread, tolerance)
