"""Per-path building blocks shared by the loss kernels."""

from __future__ import annotations

import math

import numpy as np

from kernels._jit import jit

# Keep in step with stress/compile.py.
TARGET_OBLIGOR = 0
TARGET_POOL = 1
TARGET_TRANCHE = 2
TARGET_INSTITUTION = 3
LGD_FIXED = 0
LGD_BETA = 1
LGD_COLLATERAL = 2

_SQRT_HALF = math.sqrt(0.5)


@jit
def normal_cdf(x):
    """Φ(x) via erfc, accurate in the far lower tail where 1 + erf would cancel."""
    return 0.5 * math.erfc(-x * _SQRT_HALF)


@jit
def systematic(loadings, row, factors, path):
    """a·Y for one obligor or pool (``loadings[row]``) on one path (``factors[path]``)."""
    acc = 0.0
    for j in range(factors.shape[1]):
        acc += loadings[row, j] * factors[path, j]
    return acc


@jit
def row_pointers(rows, n):
    """CSR row pointers of items whose rows are ``rows`` (values in 0 .. n − 1)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(rows.shape[0]):
        indptr[rows[k] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    return indptr


@jit
def creditor_major_order(owe_indptr, owe_creditor):
    """The claims, listed CSR by debtor, re-listed by creditor: (by_indptr, position).

    Claim k of the debtor-major list is entry ``position[k]`` of the creditor-major one, and
    creditor c's entries are ``by_indptr[c]:by_indptr[c + 1]``, in ascending debtor order
    (listing order for a repeated pair): sums over a creditor's debtors then run in the order
    of a debtor-major scatter.
    """
    n = owe_indptr.shape[0] - 1
    by_indptr = row_pointers(owe_creditor, n)
    fill = by_indptr[:n].copy()
    position = np.empty(owe_creditor.shape[0], dtype=np.int64)
    for k in range(owe_creditor.shape[0]):
        c = owe_creditor[k]
        position[k] = fill[c]
        fill[c] += 1
    return by_indptr, position


@jit
def collateral_lgd(base, sensitivity, factor_value):
    """LGD rising as the collateral factor falls, clipped to [0, 1]."""
    value = base - sensitivity * factor_value
    return min(1.0, max(0.0, value))


@jit
def lgd_draw(rng, kind, p1, p2, factor, factors, path):
    """The LGD of one defaulted exposure on an obligor (draws only for Beta LGDs)."""
    if kind == LGD_BETA:
        return rng.beta(p1, p2)
    if kind == LGD_COLLATERAL:
        return collateral_lgd(p1, p2, factors[path, factor])
    return p1


@jit
def lgd_mean(kind, p1, p2, factor, factors, path):
    """The conditional mean LGD given the factors, used for exposures on granular pools.

    Per-name LGD noise averages out across a pool's defaults, so a pool carries its
    conditional mean: the Beta mean, or the collateral-linked value on the path.
    """
    if kind == LGD_BETA:
        return p1 / (p1 + p2)
    if kind == LGD_COLLATERAL:
        return collateral_lgd(p1, p2, factors[path, factor])
    return p1


@jit
def aggregate_path(
    path,
    exposure_loss,
    exposure_target_kind,
    exposure_class,
    holding_indptr,
    holding_exposure,
    holding_share,
    out_system,
    out_class,
    out_institution,
):
    """Sum one path's exposure losses into system, class and institution totals.

    Lines to institutions count in their class and for their holders but not in the system
    total: they pass on part of a fund's loss, which the system total already holds once.
    ``out_class[path]`` and ``out_institution[path]`` are overwritten, not accumulated, so
    output buffers need no zeroing.
    """
    total = 0.0
    for c in range(out_class.shape[1]):
        out_class[path, c] = 0.0
    for e in range(exposure_loss.shape[0]):
        if exposure_target_kind[e] != TARGET_INSTITUTION:
            total += exposure_loss[e]
        out_class[path, exposure_class[e]] += exposure_loss[e]
    out_system[path] = total
    for i in range(out_institution.shape[1]):
        acc = 0.0
        for h in range(holding_indptr[i], holding_indptr[i + 1]):
            acc += holding_share[h] * exposure_loss[holding_exposure[h]]
        out_institution[path, i] = acc
