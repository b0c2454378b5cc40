"""Plain-NumPy twin of ``kernels.clearing.clear_fictitious_default``, on a dense matrix.

The same algorithm written the obvious way: everybody is re-tested for default every round
(the kernel tests only the creditors of defaulters), sums are matrix products and the
linear systems go to ``numpy.linalg.solve``. The two agree to rounding.

Like the kernel, it first sweeps the clearing map from everybody paying in full while the
sweeps find defaulters (``kernels.clearing._sweep``), with the same margin, and starts the
rounds by solving the set they found.
"""

from __future__ import annotations

import numpy as np

from kernels.clearing import SCREEN_CONTRACTION, SCREEN_ROUNDING, SWEEPS


def clear_fictitious_default_twin(
    external_assets, liabilities, external_liabilities, alpha, beta, senior_external
):
    """Greatest clearing vector; ``liabilities[i, j]`` is what i owes j.

    Returns payments, received, contagion_loss, defaulted (each (n,)) and the rounds.
    """
    e = np.asarray(external_assets, dtype=float)
    big_l = np.asarray(liabilities, dtype=float)
    x = np.asarray(external_liabilities, dtype=float)
    owed = big_l.sum(axis=1)
    obligations = owed + x
    pool = owed if senior_external else obligations
    ahead = x if senior_external else np.zeros_like(x)

    assets = big_l.sum(axis=0)

    def share(received):
        value = alpha * e - ahead + beta * received
        return np.divide(value, pool, out=np.zeros_like(value), where=(value > 0) & (pool > 0))

    paid = np.ones(len(e))  # share of its interbank debt each institution pays
    in_default = e + assets < obligations
    # The sweeps, while they find defaulters; κ as kernels.clearing.contraction.
    kappa = beta * np.max(
        np.divide(owed, pool, out=np.zeros_like(owed), where=pool > 0), initial=0.0
    )
    if in_default.any() and kappa <= SCREEN_CONTRACTION:
        paid = np.where(in_default, share(assets), 1.0)
        relative = np.divide(
            big_l, pool[:, None], out=np.zeros_like(big_l), where=pool[:, None] > 0
        )
        upstream = relative.T @ assets
        margin = SCREEN_ROUNDING / (1.0 - kappa) * (e + assets + obligations + upstream)
        for _ in range(SWEEPS):
            received = big_l.T @ paid
            new = ~in_default & (e + received - obligations < -margin)
            in_default |= new
            paid = np.where(in_default, share(received), 1.0)
            if not new.any():
                break
    solve_first = in_default.any()
    rounds = 0
    while True:
        if not solve_first:
            received = big_l.T @ paid
            new = ~in_default & (e + received < obligations)
            if not new.any():
                break
            in_default |= new
        solve_first = False
        rounds += 1
        members = np.flatnonzero(in_default & (pool > 0))
        solvent = (~in_default).astype(float)
        rhs = alpha * e - ahead + beta * (big_l.T @ solvent)
        paid[in_default] = 0.0
        # Members with a positive value pay; the set grows until nobody else gets one.
        positive = rhs[members] > 0
        while positive.any():
            j = members[positive]
            matrix = np.diag(pool[j]) - beta * big_l[np.ix_(j, j)].T
            paid[j] = np.linalg.solve(matrix, rhs[j])
            value = rhs[members] + beta * big_l[np.ix_(j, members)].T @ paid[j]
            grow = ~positive & (value > 0)
            if not grow.any():
                break
            positive |= grow

    received = big_l.T @ paid
    payments = np.where(in_default, alpha * e + beta * received, obligations)
    defaulted = payments < obligations * (1 - 1e-12)
    unpaid = big_l.T @ (1 - paid)
    costs = (1 - alpha) * e + (1 - beta) * received
    contagion_loss = unpaid + np.where(defaulted, costs, 0.0)
    return payments, received, contagion_loss, defaulted, rounds
