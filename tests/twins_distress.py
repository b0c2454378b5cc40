"""Plain NumPy twins of kernels/distress.py: dense matrices and whole-array rounds.

They follow the rules of the module docstring of ``kernels.distress``, not its loops: the
interbank claims become a dense impact matrix and each round is a few array operations, so
the kernels and the twins agree to rounding, not bit for bit.
"""

from __future__ import annotations

import numpy as np

UNDISTRESSED, DISTRESSED, INACTIVE = 0, 1, 2


def impact_matrix_twin(capital, owe_indptr, owe_creditor, owe_amount, capped):
    """Dense W (n, n): W[i, j] = Σ amounts i owes j / E_j, capped per listed claim."""
    n = capital.shape[0]
    debtor = np.repeat(np.arange(n), np.diff(owe_indptr))
    weight = owe_amount / capital[owe_creditor]
    if capped:
        weight = np.minimum(weight, 1.0)
    w = np.zeros((n, n))
    np.add.at(w, (debtor, owe_creditor), weight)
    return w


def debtrank_twin(
    first_round_loss,
    capital,
    owe_indptr,
    owe_creditor,
    owe_amount,
    variant_linear,
    capped,
    tol,
    max_rounds,
):
    """Return h, contagion_loss, defaulted, rounds, hit_cap."""
    w = impact_matrix_twin(capital, owe_indptr, owe_creditor, owe_amount, capped)
    h0 = np.clip(first_round_loss / capital, 0.0, 1.0)
    h = h0.copy()
    rounds = 0
    hit_cap = False
    if variant_linear:
        increase = h.copy()
        active = bool((h > 0).any())
        while active:
            if rounds == max_rounds:
                hit_cap = True
                break
            new = np.minimum(1.0, h + w.T @ increase)
            increase = new - h
            h = new
            rounds += 1
            active = bool(increase.max() > tol)
    else:
        state = np.where(h > 0, DISTRESSED, UNDISTRESSED)
        while (state == DISTRESSED).any():
            if rounds == max_rounds:
                hit_cap = True
                break
            distressed = state == DISTRESSED
            h = np.minimum(1.0, h + w.T @ np.where(distressed, h, 0.0))
            state = np.where(distressed, INACTIVE, state)
            state = np.where((state == UNDISTRESSED) & (h > 0), DISTRESSED, state)
            rounds += 1
    return h, (h - h0) * capital, h >= 1.0, rounds, hit_cap


def price_twin(sold, impact, depth, exponential):
    x = impact * sold / depth
    return np.exp(-x) if exponential else np.maximum(0.0, 1.0 - x)


def fire_sale_twin(
    capital,
    liabilities,
    holdings,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
):
    """Return loss (n,), sold (n, C), price_change (C,), rounds, hit_cap."""
    equity = capital.astype(float)
    assets = equity + liabilities
    remaining = holdings.astype(float)
    sold = np.zeros_like(remaining)
    price = np.ones(holdings.shape[1])
    loss = np.zeros(holdings.shape[0])
    rounds = 0
    hit_cap = False
    while True:
        marketable = remaining @ price
        sale = np.minimum(marketable, assets - equity / target)
        sells = (marketable > 0) & (equity < threshold * assets) & (sale > tol * assets)
        if not sells.any():
            break
        if rounds == max_rounds:
            hit_cap = True
            break
        safe = np.where(sells, marketable, 1.0)
        fraction = np.where(sells, np.where(sale < marketable, sale / safe, 1.0), 0.0)
        assets = assets - np.where(sells, sale, 0.0)
        q = fraction[:, None] * remaining
        remaining = remaining - q
        sold += q
        new = price_twin(sold.sum(axis=0), impact, depth, exponential)
        round_loss = remaining @ (price - new)
        equity = equity - round_loss
        assets = assets - round_loss
        loss += round_loss
        price = new
        rounds += 1
    return loss, sold, price - 1.0, rounds, hit_cap
