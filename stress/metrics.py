"""Loss metrics, exact and in memory that does not grow with the number of paths.

Each loss series (system, each institution, each institution type, each exposure class) is a
column. Exact quantiles cannot be had in one pass in bounded memory, so a run makes two:

1. :meth:`LossAccumulator.add`, block by block as they are simulated: count, mean and sum of
   squared deviations (Chan et al.'s parallel update) for EL and SD; a histogram of each
   column on a fixed logarithmic grid up to its largest possible loss, with the count and
   the sum of the losses in every bin; and each full block's own VaR, ES and SD, whose spread
   gives batch-means standard errors.
2. :meth:`LossAccumulator.refine`, over the same blocks read back from the run's Parquet
   parts: the histogram says which bin holds the VaR order statistic of each column and level,
   and only the losses in that bin are kept, as distinct values with counts.

VaR is then the exact order statistic L₍⌈nα⌉₎ and ES = VaR + Σ (L − VaR)⁺ / (n(1 − α))
(Rockafellar–Uryasev), which stays right when the loss distribution has atoms (no default on
most paths): the bins above the VaR bin contribute their sums and counts, the VaR bin its
exact values. Memory is the histogram (fixed) plus one bin per column and level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Log-spaced bins from 1e-15 × the column's largest possible loss up to it: about 0.4 %
# relative width, so a VaR bin holds a small share of the paths. Bin 0 holds exact zeros.
BINS = 8192
DYNAMIC_RANGE = 1e15


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


class LogGrid:
    """Bin index of losses on each column's logarithmic grid (0 for a loss of exactly 0)."""

    def __init__(self, maximum: np.ndarray):
        top = np.where(maximum > 0.0, maximum, 1.0) * (1.0 + 1e-9)
        self.log_lower = np.log(top / DYNAMIC_RANGE)
        self.inverse_width = BINS / math.log(DYNAMIC_RANGE)

    def index(self, losses: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            scaled = (np.log(losses) - self.log_lower) * self.inverse_width
        bins = np.clip(np.floor(scaled), 0, BINS - 1).astype(np.int64) + 1
        bins[losses <= 0.0] = 0
        return bins


class LossAccumulator:
    """Merge loss columns block by block; see the module docstring for the estimators.

    Parameters
    ----------
    columns:
        What each column of the loss matrices is.
    levels:
        VaR and ES levels.
    block_size:
        Paths per full block; only full blocks enter batch-means standard errors.
    maximum:
        (S,) largest possible loss of each column (e.g. Σ EAD), the top of its grid.
    """

    def __init__(
        self,
        columns: Sequence[Column],
        levels: Sequence[float],
        block_size: int,
        maximum: np.ndarray,
    ):
        self.columns = list(columns)
        self.levels = [float(level) for level in levels]
        self.block_size = block_size
        width = len(self.columns)
        self.grid = LogGrid(np.asarray(maximum, dtype=np.float64))
        self.count = 0
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.bin_count = np.zeros((width, BINS + 1), dtype=np.int64)
        self.bin_sum = np.zeros((width, BINS + 1))
        self.block_mean: list[np.ndarray] = []
        self.block_var: list[np.ndarray] = []
        self.block_es: list[np.ndarray] = []
        self.block_sd: list[np.ndarray] = []
        self._targets: dict[tuple[int, int], list[np.ndarray]] | None = None

    # ---- pass 1 ---------------------------------------------------------------------

    def add(self, losses: np.ndarray) -> None:
        """Merge one block's losses, shape (n, S), columns in ``self.columns`` order."""
        n, width = losses.shape
        block_mean = losses.mean(axis=0)
        block_m2 = ((losses - block_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = block_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + block_m2 + delta**2 * (self.count * n / total)
        self.count = total

        flat = (self.grid.index(losses) + np.arange(width) * (BINS + 1)).ravel()
        size = width * (BINS + 1)
        self.bin_count += np.bincount(flat, minlength=size).reshape(width, BINS + 1)
        self.bin_sum += np.bincount(flat, weights=losses.ravel(), minlength=size).reshape(
            width, BINS + 1
        )

        if n == self.block_size and n > 1:
            descending = -np.sort(-losses, axis=0)
            estimates = [var_es_from_descending(descending, n, level) for level in self.levels]
            self.block_var.append(np.array([v for v, _ in estimates]))
            self.block_es.append(np.array([e for _, e in estimates]))
            self.block_sd.append(np.sqrt(block_m2 / (n - 1)))
            self.block_mean.append(block_mean)

    # ---- pass 2 ---------------------------------------------------------------------

    def _locate(self, s: int, level: float) -> tuple[int, int]:
        """The bin holding column s's VaR order statistic, and its rank within that bin."""
        rank = tail_rank(self.count, level)
        cumulative = np.cumsum(self.bin_count[s])
        b = int(np.searchsorted(cumulative, rank))
        before = int(cumulative[b - 1]) if b > 0 else 0
        return b, rank - before

    def needs_refining(self) -> bool:
        """Whether a second pass is needed: some VaR lies in a bin of non-zero losses."""
        return any(
            self._locate(s, level)[0] > 0 for s in range(len(self.columns)) for level in self.levels
        )

    def refine(self, losses: np.ndarray) -> None:
        """Second pass: keep the losses of one block that fall in a VaR bin."""
        if self._targets is None:
            self._targets = {
                (s, b): []
                for s in range(len(self.columns))
                for level in self.levels
                for b in [self._locate(s, level)[0]]
                if b > 0
            }
        bins = self.grid.index(losses)
        for (s, b), kept in self._targets.items():
            values = losses[bins[:, s] == b, s]
            if values.size:
                kept.append(values)

    def _var_es(self, s: int, level: float) -> tuple[float, float]:
        b, within = self._locate(s, level)
        n = self.count
        above = slice(b + 1, None)
        if b == 0:
            var = 0.0
            bin_excess = 0.0
        else:
            if self._targets is None:
                raise RuntimeError("VaR needs the second pass (refine) over every block")
            kept = self._targets[(s, b)]
            values = np.sort(np.concatenate(kept)) if kept else np.empty(0)
            if values.size != self.bin_count[s, b]:
                raise RuntimeError(
                    f"{self.columns[s]}: the second pass saw {values.size} losses in bin {b}, "
                    f"the first {self.bin_count[s, b]}: the data read back differ"
                )
            var = float(values[within - 1])
            bin_excess = float(np.clip(values - var, 0.0, None).sum())
        excess = float(self.bin_sum[s, above].sum() - self.bin_count[s, above].sum() * var)
        return var, var + (excess + bin_excess) / (n * (1.0 - level))

    # ---- results --------------------------------------------------------------------

    def _batch_se(self, estimates: list[np.ndarray]) -> np.ndarray | None:
        """Batch-means standard error, scaled from block size to the whole run."""
        if len(estimates) < 2:
            return None
        stacked = np.stack(estimates)
        return stacked.std(axis=0, ddof=1) * math.sqrt(self.block_size / self.count)

    def ratio(
        self, numerator: Column, denominator: Column, level: float | None = None
    ) -> tuple[float, float | None]:
        """(R, standard error) of R = numerator ÷ denominator of EL (``level`` None) or of ES
        at ``level``: NaN if the denominator is not > 0.

        The error is batch means on the linearised ratio (delta method): R − R̂ ≈ (N − R̂ D) / D,
        so it is the spread of the full blocks' own N_b − R̂ D_b, scaled from block size to
        the run, over D; None with fewer than two full blocks, as for SD, VaR and ES.
        """
        s, t = self.columns.index(numerator), self.columns.index(denominator)
        if level is None:
            top, bottom = float(self.mean[s]), float(self.mean[t])
            blocks = [(m[s], m[t]) for m in self.block_mean]
        else:
            j = self.levels.index(level)
            top, bottom = self._var_es(s, level)[1], self._var_es(t, level)[1]
            blocks = [(es[j, s], es[j, t]) for es in self.block_es]
        if not bottom > 0.0:
            return float("nan"), None
        r = top / bottom
        spread = self._batch_se([np.array([a - r * b]) for a, b in blocks])
        return r, None if spread is None else float(spread[0]) / bottom

    def rows(self) -> list[dict]:
        """Summary rows: el, sd, and var/es at each level, for each column."""
        n = self.count
        variance = self.m2 / (n - 1) if n > 1 else np.zeros_like(self.m2)
        sd = np.sqrt(variance)
        el_se = np.sqrt(variance / n)
        sd_se = self._batch_se(self.block_sd)
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
                    "std_error": float(el_se[s]) if n > 1 else None,  # none from one path
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
                var, es = self._var_es(s, level)
                rows.append(
                    {
                        **base,
                        "metric": "var",
                        "level": level,
                        "value": var,
                        "std_error": _pick(var_se, (j, s)),
                    }
                )
                rows.append(
                    {
                        **base,
                        "metric": "es",
                        "level": level,
                        "value": es,
                        "std_error": _pick(es_se, (j, s)),
                    }
                )
        return rows


def summarise(
    columns: Sequence[Column],
    levels: Sequence[float],
    block_size: int,
    maximum: np.ndarray,
    blocks: Sequence[np.ndarray],
) -> list[dict]:
    """Both passes over loss matrices held in memory (tests, notebooks, small studies)."""
    accumulator = LossAccumulator(columns, levels, block_size, maximum)
    for losses in blocks:
        accumulator.add(losses)
    if accumulator.needs_refining():
        for losses in blocks:
            accumulator.refine(losses)
    return accumulator.rows()


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
                "std_error": math.sqrt(p * (1.0 - p) / n) if n > 1 else None,
            }
        )
    return rows


class InstitutionStats:
    """Per-institution second-round statistics merged block by block.

    Means (with standard errors) of each loss component, default and distress probabilities
    (binomial standard errors), and the distribution of the number of defaulting
    institutions per path.
    """

    COMPONENTS = ("first_round", "contagion", "fire_sale")

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        width = len(self.names)
        self.count = 0
        self.sums = {c: np.zeros(width) for c in self.COMPONENTS}
        self.squares = {c: np.zeros(width) for c in self.COMPONENTS}
        self.defaults = np.zeros(width, dtype=np.int64)
        self.distress = np.zeros(width, dtype=np.int64)
        self.default_counts = np.zeros(width + 1, dtype=np.int64)
        self.rounds_capped = 0

    def add(self, components: dict[str, np.ndarray], defaulted, distressed, rounds_capped=0):
        self.count += defaulted.shape[0]
        for name, values in components.items():
            self.sums[name] += values.sum(axis=0)
            self.squares[name] += (values * values).sum(axis=0)
        self.defaults += defaulted.sum(axis=0)
        self.distress += distressed.sum(axis=0)
        self.default_counts += np.bincount(defaulted.sum(axis=1), minlength=len(self.names) + 1)
        self.rounds_capped += rounds_capped

    def rows(self) -> list[dict]:
        n = self.count
        rows = []
        for component in self.COMPONENTS:
            rows += mean_rows(
                "institution",
                self.names,
                self.sums[component],
                self.squares[component],
                n,
                f"el_{component}",
            )
        rows += probability_rows("institution", self.names, self.defaults, n, "p_default")
        rows += probability_rows("institution", self.names, self.distress, n, "p_distress")
        number = np.arange(len(self.names) + 1)
        rows += mean_rows(
            "institutions",
            ["all"],
            [(number * self.default_counts).sum()],
            [(number**2 * self.default_counts).sum()],
            n,
            "expected_defaults",
        )
        at_least = np.cumsum(self.default_counts[::-1])[::-1]
        rows += probability_rows(
            "institutions", [str(k) for k in number[1:]], at_least[1:], n, "p_defaults_at_least"
        )
        return rows


def mean_rows(scope: str, names: Sequence[str], sums, squares, n: int, metric: str) -> list[dict]:
    """Rows for means estimated from per-path sums and sums of squares (standard errors of
    the mean)."""
    mean = np.asarray(sums, dtype=np.float64) / n
    variance = np.maximum(np.asarray(squares) / n - mean**2, 0.0) * n / max(n - 1, 1)
    return [
        {
            "scope": scope,
            "name": name,
            "metric": metric,
            "level": None,
            "value": float(m),
            "std_error": math.sqrt(v / n) if n > 1 else None,
        }
        for name, m, v in zip(names, mean, variance, strict=True)
    ]


class MechanicsStats:
    """How losses travel through the financing mechanics, merged block by block.

    Per vehicle: the probabilities that the lessee defaults, that the lease is not renewed,
    and that the asset is hit (either), and the expected guarantee paid. Per institution that
    borrows through lines (a fund, a BDC): the expected loss it passes on to its lenders,
    min(first-round loss − capital, Σ EAD of the lines)⁺.
    """

    def __init__(self, vehicle_ids: Sequence[str], borrowers: Sequence[str]):
        self.vehicle_ids = list(vehicle_ids)
        self.borrowers = list(borrowers)
        self.count = 0
        width = len(self.vehicle_ids)
        self.lessee = np.zeros(width, dtype=np.int64)
        self.non_renewal = np.zeros(width, dtype=np.int64)
        self.hit = np.zeros(width, dtype=np.int64)
        self.paid = np.zeros((2, width))
        self.passed = np.zeros((2, len(self.borrowers)))

    def add(
        self,
        lessee_defaulted: np.ndarray,
        non_renewed: np.ndarray,
        paid: np.ndarray,
        passed_on: np.ndarray,
    ) -> None:
        """One block: (n, V) event flags and guarantee payments, (n, F) losses passed on."""
        self.count += paid.shape[0]
        self.lessee += lessee_defaulted.sum(axis=0)
        self.non_renewal += non_renewed.sum(axis=0)
        self.hit += (lessee_defaulted | non_renewed).sum(axis=0)
        self.paid += [paid.sum(axis=0), (paid * paid).sum(axis=0)]
        self.passed += [passed_on.sum(axis=0), (passed_on * passed_on).sum(axis=0)]

    def rows(self) -> list[dict]:
        n, names = self.count, self.vehicle_ids
        return (
            probability_rows("vehicle", names, self.lessee, n, "p_lessee_default")
            + probability_rows("vehicle", names, self.non_renewal, n, "p_non_renewal")
            + probability_rows("vehicle", names, self.hit, n, "p_asset_hit")
            + mean_rows("vehicle", names, *self.paid, n, "el_guarantee_paid")
            + mean_rows("institution", self.borrowers, *self.passed, n, "el_passed_on")
        )


def amplification_level(levels: Sequence[float]) -> float:
    """The ES level of the tail amplification: 99 % if the run has it, else its highest."""
    return 0.99 if 0.99 in levels else max(levels)


def amplification_rows(accumulator: LossAccumulator, level: float) -> list[dict]:
    """Contagion amplification: total ÷ first-round loss over all institutions, in mean and
    in the tail (ES at ``level`` of the total over ES of the first round), each with its
    batch-means standard error (``LossAccumulator.ratio``). A ratio whose first-round loss is
    0 (no credit loss on any path, or none in the tail) is undefined and has no row."""
    total = Column("institutions", "total")
    first_round = Column("institutions", "first_round")
    rows = []
    for metric, at in (("amplification", None), ("amplification_tail", level)):
        value, error = accumulator.ratio(total, first_round, at)
        if math.isnan(value):
            continue
        rows.append(
            {
                "scope": "institutions",
                "name": "all",
                "metric": metric,
                "level": at,
                "value": value,
                "std_error": error,
            }
        )
    return rows
