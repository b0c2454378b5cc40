"""Loss metrics merged block by block in bounded memory.

Each loss series (system, each institution, each institution type, each exposure class) is a
column. Per block the accumulator merges:

- count, mean and sum of squared deviations (Chan et al.'s parallel update), for EL and SD;
- the largest ``k = ⌈(1 − min level)·paths⌉ + 1`` losses seen so far, which is all the exact
  VaR and ES estimators need, so memory grows with the tail, not with the paths;
- each full block's own VaR, ES and SD, whose spread gives batch-means standard errors;
- default counts for the institutions' default probabilities (binomial standard errors).

Estimators, for n paths and level α: VaR is the order statistic L₍⌈nα⌉₎; ES is
VaR + Σ (L − VaR)⁺ / (n(1 − α)) (Rockafellar–Uryasev), which stays right when the loss
distribution has atoms (no default at all on most paths).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    scope: str  # "system" | "institution" | "type" | "class"
    name: str


def tail_rank(n: int, level: float) -> int:
    """1-based ascending rank of the VaR order statistic, ⌈nα⌉, robust to n·α rounding."""
    return max(1, min(n, math.ceil(n * level - 1e-9)))


def var_es_from_descending(top: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES per column from the largest losses sorted in descending order.

    ``top`` has shape (k, S) with k ≥ n − ⌈nα⌉ + 1 rows: the largest losses of n paths.
    """
    position = n - tail_rank(n, level)
    var = top[position]
    excess = np.clip(top[: position + 1] - var, 0.0, None).sum(axis=0)
    return var, var + excess / (n * (1.0 - level))


class LossAccumulator:
    """Merge loss columns block by block; see the module docstring for the estimators."""

    def __init__(
        self, columns: Sequence[Column], levels: Sequence[float], paths: int, block_size: int
    ):
        self.columns = list(columns)
        self.levels = [float(level) for level in levels]
        self.paths = paths
        self.block_size = block_size
        width = len(self.columns)
        self.keep = min(paths, math.ceil((1.0 - min(self.levels)) * paths) + 1)
        self.count = 0
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.top = np.empty((0, width))
        self.block_var: list[np.ndarray] = []
        self.block_es: list[np.ndarray] = []
        self.block_sd: list[np.ndarray] = []

    def add(self, losses: np.ndarray) -> None:
        """Merge one block's losses, shape (n, S), columns in ``self.columns`` order."""
        n = losses.shape[0]
        block_mean = losses.mean(axis=0)
        block_m2 = ((losses - block_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = block_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + block_m2 + delta**2 * (self.count * n / total)
        self.count = total

        merged = np.concatenate([self.top, losses])
        if merged.shape[0] > self.keep:
            merged = np.partition(merged, merged.shape[0] - self.keep, axis=0)[-self.keep :]
        self.top = merged

        if n == self.block_size and n > 1:
            descending = -np.sort(-losses, axis=0)
            estimates = [var_es_from_descending(descending, n, level) for level in self.levels]
            self.block_var.append(np.array([v for v, _ in estimates]))
            self.block_es.append(np.array([e for _, e in estimates]))
            self.block_sd.append(np.sqrt(block_m2 / (n - 1)))

    def _batch_se(self, estimates: list[np.ndarray]) -> np.ndarray | None:
        """Batch-means standard error, scaled from block size to the whole run."""
        if len(estimates) < 2:
            return None
        stacked = np.stack(estimates)
        return stacked.std(axis=0, ddof=1) * math.sqrt(self.block_size / self.count)

    def rows(self) -> list[dict]:
        """Summary rows: el, sd, and var/es at each level, for each column."""
        n = self.count
        variance = self.m2 / (n - 1) if n > 1 else np.zeros_like(self.m2)
        sd = np.sqrt(variance)
        el_se = np.sqrt(variance / n)
        sd_se = self._batch_se(self.block_sd)
        descending = -np.sort(-self.top, axis=0)
        var_se = self._batch_se(self.block_var)
        es_se = self._batch_se(self.block_es)
        rows = []
        for s, column in enumerate(self.columns):
            base = {"scope": column.scope, "name": column.name}
            rows.append(
                {
                    **base,
                    "metric": "el",
                    "level": None,
                    "value": float(self.mean[s]),
                    "std_error": float(el_se[s]),
                }
            )
            rows.append(
                {
                    **base,
                    "metric": "sd",
                    "level": None,
                    "value": float(sd[s]),
                    "std_error": _pick(sd_se, s),
                }
            )
            for j, level in enumerate(self.levels):
                var, es = var_es_from_descending(descending[:, s : s + 1], n, level)
                rows.append(
                    {
                        **base,
                        "metric": "var",
                        "level": level,
                        "value": float(var[0]),
                        "std_error": _pick(var_se, (j, s)),
                    }
                )
                rows.append(
                    {
                        **base,
                        "metric": "es",
                        "level": level,
                        "value": float(es[0]),
                        "std_error": _pick(es_se, (j, s)),
                    }
                )
        return rows


def _pick(array: np.ndarray | None, index) -> float | None:
    return None if array is None else float(array[index])


def probability_rows(
    scope: str, names: Sequence[str], hits: np.ndarray, n: int, metric: str
) -> list[dict]:
    """Rows for probabilities estimated as hits / n, with binomial standard errors."""
    rows = []
    for name, count in zip(names, hits, strict=True):
        p = float(count) / n
        rows.append(
            {
                "scope": scope,
                "name": name,
                "metric": metric,
                "level": None,
                "value": p,
                "std_error": math.sqrt(p * (1.0 - p) / n),
            }
        )
    return rows
