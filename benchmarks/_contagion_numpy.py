"""Dense NumPy baselines of the contagion kernels, one path at a time (benchmarks/contagion.py).

The straightforward way to write the models: the interbank liabilities as a dense (n, n)
matrix ``L`` (``L[i, j]``: what i owes j), a matrix-vector product per round, and the rules of
kernels/clearing.py and kernels/distress.py as whole-array expressions. No sparsity, no active
sets, no linear solves.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RTOL = 1e-12  # kernels.clearing.DEFAULT_RTOL: p < (1 − rtol) p̄ is a default


class DenseClearing:
    """Greatest clearing vector by Picard iteration from p̄ downwards.

    Pari passu (Eisenberg–Noe, Rogers–Veraart): Π = L / p̄ by row and

        p ← p̄ where e + Πᵀp ≥ p̄, else α e + β Πᵀp

    which for α = β = 1 is p ← min(p̄, e + Πᵀp). Senior external creditors: the interbank
    payments q = l̄ φ with Π^IB = L / l̄ by row,

        q ← l̄ where e + Π^IBᵀq ≥ p̄, else max(0, α e + β Π^IBᵀq − x).

    Both stop once no payment moves by more than ``tol`` (absolute, in currency).

    Parameters
    ----------
    liabilities : (n, n) float64
        L, zero diagonal.
    external_liabilities : (n,) float64
        x.
    alpha, beta : float
    senior_external : bool
    tol : float
    max_iter : int
    """

    def __init__(
        self,
        liabilities: np.ndarray,
        external_liabilities: np.ndarray,
        alpha: float,
        beta: float,
        senior_external: bool,
        tol: float = 1e-12,
        max_iter: int = 1_000_000,
    ):
        self.interbank_liabilities = liabilities.sum(axis=1)
        self.interbank_assets = liabilities.sum(axis=0)
        self.obligations = self.interbank_liabilities + external_liabilities
        self.external_liabilities = external_liabilities
        pool = self.interbank_liabilities if senior_external else self.obligations
        # Nobody holds the debt of an institution whose pool is 0: its row of Π is 0.
        scale = np.divide(1.0, pool, out=np.zeros_like(pool), where=pool > 0)
        self.relative_t = np.ascontiguousarray((liabilities * scale[:, None]).T)
        self.pool = pool
        self.alpha, self.beta, self.senior = alpha, beta, senior_external
        self.tol, self.max_iter = tol, max_iter

    def clear(self, external_assets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(payments, contagion loss, defaulted, iterations) of one path, as the kernel's."""
        e, pbar, alpha, beta = external_assets, self.obligations, self.alpha, self.beta
        paid = self.pool.copy()  # p (pari passu) or q (senior), from the top
        iterations = 0
        while True:
            iterations += 1
            received = self.relative_t @ paid
            solvent = e + received >= pbar
            value = alpha * e + beta * received
            if self.senior:
                new = np.where(solvent, self.pool, np.maximum(value - self.external_liabilities, 0))
            else:
                new = np.where(solvent, pbar, value)
            step = np.max(np.abs(new - paid))
            paid = new
            if step < self.tol or iterations == self.max_iter:
                break
        received = self.relative_t @ paid
        payments = np.where(e + received >= pbar, pbar, alpha * e + beta * received)
        defaulted = payments < pbar * (1.0 - DEFAULT_RTOL)
        loss = self.interbank_assets - received
        loss += np.where(defaulted, (1.0 - alpha) * e + (1.0 - beta) * received, 0.0)
        return payments, loss, defaulted, iterations


class DenseDebtRank:
    """DebtRank with a dense impact matrix W = L / E by column (capped at 1 if asked).

    ``single_pass`` (Battiston et al. 2012): every round the Distressed pass their h,
    h ← min(1, h + Wᵀ(h · distressed)), then turn Inactive, and the Undistressed whose h rose
    turn Distressed. ``linear`` (Bardoscia et al. 2015): h ← min(1, h + WᵀΔh) with Δh the
    increase actually taken in the previous round (h(0) in the first), until max Δh ≤ tol.

    Parameters
    ----------
    liabilities : (n, n) float64
    capital : (n,) float64, > 0
    linear, capped : bool
    tol : float
    max_rounds : int
    """

    def __init__(
        self,
        liabilities: np.ndarray,
        capital: np.ndarray,
        linear: bool,
        capped: bool,
        tol: float = 1e-12,
        max_rounds: int = 10_000,
    ):
        weight = liabilities / capital[None, :]
        if capped:
            weight = np.minimum(weight, 1.0)
        self.weight_t = np.ascontiguousarray(weight.T)
        self.capital = capital
        self.linear, self.tol, self.max_rounds = linear, tol, max_rounds

    def run(self, first_round_loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(contagion loss, defaulted, rounds) of one path, as the kernel's."""
        h0 = np.clip(first_round_loss / self.capital, 0.0, 1.0)
        h = h0.copy()
        rounds = 0
        if self.linear:
            increase = h0.copy()
            while rounds < self.max_rounds and np.max(increase) > 0.0:
                new = np.minimum(1.0, h + self.weight_t @ increase)
                increase = new - h
                h = new
                rounds += 1
                if np.max(increase) <= self.tol:
                    break
        else:
            distressed = h > 0.0
            undistressed = ~distressed
            while rounds < self.max_rounds and distressed.any():
                h = np.minimum(1.0, h + self.weight_t @ np.where(distressed, h, 0.0))
                distressed = undistressed & (h > 0.0)
                undistressed &= ~distressed
                rounds += 1
        return (h - h0) * self.capital, h >= 1.0, rounds
