"""The vector intrinsics of kernels/simd.py against scalar Python, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from kernels._jit import jit
from kernels.simd import (
    LANES,
    STOP_CHECK,
    WIDE,
    WIDTH,
    propagate_row,
    propagate_wide_row,
    scatter_terms,
)


@jit
def _propagate_rows(out, h, by_indptr, index, weight, push, first_check):
    for j in range(h.shape[0]):
        for col0 in range(0, h.shape[1], WIDTH):
            start, stop = by_indptr[j], by_indptr[j + 1]
            propagate_row(out, h, j, start, stop, index, weight, push, col0, first_check[j])


@jit
def _propagate_wide_rows(out, h, by_indptr, index, weight, push, first_check):
    for j in range(h.shape[0]):
        for col0 in range(0, h.shape[1], WIDE):
            start, stop = by_indptr[j], by_indptr[j + 1]
            propagate_wide_row(out, h, j, start, stop, index, weight, push, col0, first_check[j])


# (jitted caller, paths per call) of each width of propagate_row.
ROW_KERNELS = {"narrow": (_propagate_rows, WIDTH), "wide": (_propagate_wide_rows, WIDE)}


@jit
def _scatter(sums, start, stop, slot, weight, rows, row, col0):
    scatter_terms(sums, start, stop, slot, weight, rows, row, col0)


def propagate_row_twin(h_j, start, stop, index, weight, push):
    """One row, path by path, as kernels.distress._propagate's gather adds it up."""
    out = np.empty_like(h_j)
    for b in range(h_j.shape[0]):
        sums = [0.0] * LANES
        for t in range(start, stop):
            # The last (stop − start) mod LANES terms go to the first sums, as the others.
            sums[(t - start) % LANES] += float(weight[t]) * float(push[index[t], b])
        total = (sums[0] + sums[1]) + (sums[2] + sums[3])
        out[b] = min(1.0, h_j[b] + total)
    return out


@pytest.mark.parametrize("kernel", ROW_KERNELS)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("index_dtype", [np.int64, np.uint32])  # uint32: DebtRank's debtors
def test_propagate_row_matches_scalar_sums(kernel, seed, index_dtype):
    rows, width = ROW_KERNELS[kernel]
    rng = np.random.default_rng(seed)
    n, batch = 60, 2 * width
    # Row lengths 0 … 41 cover every remainder mod LANES and several early-stop checks.
    lengths = rng.integers(0, 42, n)
    lengths[:5] = [0, 1, 2, 3, 4]
    by_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    index = rng.integers(0, n, by_indptr[-1]).astype(index_dtype)
    weight = rng.uniform(0.0, 0.2, by_indptr[-1])
    push = np.where(rng.random((n, batch)) < 0.3, 0.0, rng.uniform(0.0, 1.0, (n, batch)))
    h = rng.uniform(0.0, 1.0, (n, batch))
    h[7] = 1.0  # saturated on every path: kept as is
    h[8, :width] = 1.0  # saturated on the first group only
    # Where the checks start changes no result: before the row, inside it (on and off a
    # group boundary), past its end.
    first_check = by_indptr[:-1] + rng.integers(-3, 45, n)
    expected = np.array(
        [
            propagate_row_twin(h[j], by_indptr[j], by_indptr[j + 1], index, weight, push)
            for j in range(n)
        ]
    )
    for checks in (by_indptr[:-1], first_check, by_indptr[1:] + 5):
        out = np.full_like(h, np.nan)
        rows(out, h, by_indptr, index, weight, push, checks)
        np.testing.assert_array_equal(out, expected)
    assert (out == 1.0).any() and (out < 1.0).any()


@pytest.mark.parametrize("kernel", ROW_KERNELS)
def test_propagate_row_stops_early_once_every_path_reaches_one(kernel):
    # Rows 0 and 1: the first STOP_CHECK groups of terms take every path past 1; the terms
    # after them read row 2, whose pushes are negative (outside the kernels' contract, on
    # purpose): added, they would pull the sums below 0. Then the same with one path short
    # of 1 at the check: nothing stops, on any path of the group.
    rows, width = ROW_KERNELS[kernel]
    head = STOP_CHECK * LANES
    length = 3 * head
    by_indptr = np.array([0, length, 2 * length, 2 * length], dtype=np.int64)
    from_start = by_indptr[:-1]
    index = np.tile(np.where(np.arange(length) < head, 0, 2), 2).astype(np.int64)
    weight = np.full(2 * length, 0.5)
    push = np.ones((3, width))
    push[2] = -100.0
    h = np.zeros((3, width))
    h[2] = 0.5
    one_path_short = push.copy()
    out = np.empty_like(h)
    rows(out, h, by_indptr, index, weight, push, from_start)
    np.testing.assert_array_equal(out[:2], 1.0)
    np.testing.assert_array_equal(out[2], 0.5)
    # One path whose head pushes 0: no early stop on rows 0 and 1, every term counts.
    one_path_short[0, 3] = 0.0
    rows(out, h, by_indptr, index, weight, one_path_short, from_start)
    assert out[1, 3] < 0.0 and (np.delete(out[1], 3) < 0.0).all()


@pytest.mark.parametrize("kernel", ROW_KERNELS)
def test_propagate_row_checks_first_after_one_chunk_then_from_first_check(kernel):
    # Rows of 4·head terms (head = STOP_CHECK groups): terms on push row 0 take every path
    # past 1, those on row 1 are negative (outside the kernels' contract, on purpose: added,
    # they pull the sums below 0), those on row 2 are small.
    # Row 0: small head, saturating second head, negative rest; checks from one term into
    # the third head, rounded down to its start: it stops right after the second head.
    # Row 1: the same, checks from two groups into the third head: its first check after
    # the first head finds nothing, the next comes after negative terms and it never stops.
    # Row 2: saturating head, negative rest, checks from the row's end: the check after the
    # first head stops it all the same.
    rows, width = ROW_KERNELS[kernel]
    head = STOP_CHECK * LANES
    length = 4 * head
    t = np.arange(length)
    small_then_full = np.where(t < head, 2, np.where(t < 2 * head, 0, 1))
    full_then_negative = np.where(t < head, 0, 1)
    index = np.concatenate([small_then_full, small_then_full, full_then_negative])
    by_indptr = np.arange(4, dtype=np.int64) * length
    weight = np.full(3 * length, 0.5)
    push = np.ones((3, width))
    push[1] = -100.0
    push[2] = 0.01
    h = np.zeros((3, width))
    first_check = by_indptr[:-1] + np.array([2 * head + 1, 2 * head + 2 * LANES, length])
    out = np.empty_like(h)
    rows(out, h, by_indptr, index.astype(np.int64), weight, push, first_check)
    np.testing.assert_array_equal(out[0], 1.0)
    assert (out[1] < 0.0).all()
    np.testing.assert_array_equal(out[2], 1.0)


def test_scatter_terms_matches_scalar_updates():
    rng = np.random.default_rng(5)
    rows = rng.uniform(0.0, 1.0, (6, 2 * WIDTH))
    sums = rng.uniform(0.0, 1.0, (9, 2 * WIDTH))
    slot = rng.integers(0, 9, 30).astype(np.int64)
    weight = rng.uniform(0.0, 1.0, 30)
    expected = sums.copy()
    for k in range(3, 27):
        for b in range(WIDTH, 2 * WIDTH):
            expected[slot[k], b] += weight[k] * rows[4, b]
    _scatter(sums, 3, 27, slot, weight, rows, 4, WIDTH)
    np.testing.assert_array_equal(sums, expected)
