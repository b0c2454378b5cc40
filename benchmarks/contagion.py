"""Per-path cost of the contagion kernels next to a dense NumPy baseline, and of a whole run.

Prints Markdown tables:

    python benchmarks/contagion.py [--quick] [--sizes N ...] [--variants V ...]
        [--algorithms I ...] [--no-run]

Networks of 50, 200 and 500 institutions: each ordered pair (i, j), i ≠ j, is a claim with
probability 0.2, of size U(0.5, 2); external assets 10 + U(0, 5); capital 10 % of total assets
(external assets + claims held); external liabilities the balancing item, total assets −
capital − claims owed. That item is negative for the institutions that owe much more than
they hold (a few at 50 institutions, about half at 500). Clipping it at 0 alone would leave
capital = total assets − claims owed, often negative: insolvent before any loss, and no
DebtRank (which divides by capital). So a clipped institution's external assets are raised
until the sheet balances with x = 0 and capital still 10 % of total assets,
e = claims owed / 0.9 − claims held. The network table counts them.

First-round losses per path, in currency, taken off the external assets: a set of
institutions fails (loses capital × U(1, 1.5), at most its external assets), the others lose
capital × U(0, c). An institution can fail only if its capital is below its external assets
(at 500 institutions not all can), so the failing set is drawn among those, each with the
probability that makes the expected share of all institutions failing 5 % ("mild", c = 0.2)
or 20 % ("harsh", c = 0.5). The same seeded paths go to every engine.

Engines, one thread (BLAS too), in this process, each after a warm-up call, timed in
alternation: each repeat a kernel timing then a baseline timing, each at least ``--seconds``;
times are medians over the repeats and NumPy ÷ kernel the median of the repeats' own ratios,
so that a slow spell of the machine falls on both sides of a ratio:

- kernels: ``kernels.clearing.clear_paths`` (Eisenberg–Noe pari passu, external creditors
  senior, Rogers–Veraart α = 0.9, β = 0.8) and ``kernels.distress.debtrank_paths_prepared``
  (single_pass, linear; capped, tol 1e-12, max_rounds 10 000) over a block of paths, its
  weights made once per network (``debtrank_network``), as the engine makes them once per
  block and the baseline its dense weight matrix once per network;
- baseline: benchmarks/_contagion_numpy.py, dense Picard iteration from p̄ down to a change
  below 1e-12 (clearing) and dense W matrix-vector rounds (DebtRank), path by path, on a
  prefix of the kernel's block; its outputs are held against the kernel's on those paths.

Then ``ai-stress run`` on a 50-institution scenario with this network, each institution
holding one loan (PD 5 %) on its own obligor, with Eisenberg–Noe contagion.

``--quick``: 50 and 200 institutions only, 3 repeats, smaller blocks, one timed run.
``--sizes``, ``--variants``, ``--algorithms`` (indices into ALGORITHMS): a subset of the rows,
on the same networks and paths as the full run; ``--no-run``: without the ``ai-stress run``.
For iterating on one kernel, e.g. ``--sizes 500 --variants harsh --algorithms 2 --no-run``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# One thread for everything, so BLAS (the baseline's matrix-vector products) gets one too. It
# reads these when NumPy loads: set them before the import.
os.environ.update(
    dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")
)


import numpy as np
import pyarrow.parquet as pq
from _contagion_numpy import DenseClearing, DenseDebtRank
from _machine import machine

from kernels.clearing import clear_fictitious_default, clear_paths, network_totals
from kernels.distress import debtrank_network, debtrank_paths_prepared
from stress.tomlwrite import dumps

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # set at the top
SEED = 20250805
SIZES = (50, 200, 500)
DENSITY = 0.2
CAPITAL_RATIO = 0.1
DEBTRANK_TOL = 1e-12
DEBTRANK_MAX_ROUNDS = 10_000
AGREEMENT = 1e-8  # largest |kernel − baseline| of payments and contagion losses accepted
TARGET_RATIO = 10.0  # the issue: at 500 institutions, ≥ 10× the NumPy implementation
TARGET_RUN_MS = 0.5  # the issue: a whole run ≤ 0.5 ms per path
RUN_INSTITUTIONS = 50
RUN_PATHS = 20_000
RUN_PD = 0.05
RUN_LGD = 0.45
RUN_LOADING = 0.4


@dataclass(frozen=True)
class Variant:
    name: str
    fail_share: float  # expected share of all institutions failing in the first round
    partial: float  # the others lose capital × U(0, partial)


VARIANTS = (Variant("mild", 0.05, 0.2), Variant("harsh", 0.20, 0.5))


@dataclass(frozen=True)
class Algorithm:
    name: str
    clearing: bool
    alpha: float = 1.0
    beta: float = 1.0
    senior: bool = False
    linear: bool = False


ALGORITHMS = (
    Algorithm("Eisenberg–Noe", True),
    Algorithm("EN, external senior", True, senior=True),
    Algorithm("Rogers–Veraart 0.9/0.8", True, alpha=0.9, beta=0.8),
    Algorithm("DebtRank single_pass", False),
    Algorithm("DebtRank linear", False, linear=True),
)


def log(message: str) -> None:
    """Progress on stderr, so that stdout is only the Markdown to paste."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Network and paths
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    liabilities: np.ndarray  # (n, n) dense: [i, j] is what i owes j
    owe_indptr: np.ndarray
    owe_creditor: np.ndarray
    owe_amount: np.ndarray
    external_assets: np.ndarray
    external_liabilities: np.ndarray
    capital: np.ndarray
    raised: int  # institutions whose external assets were raised to keep x ≥ 0

    @property
    def size(self) -> int:
        return self.capital.shape[0]


def build_network(n: int) -> Network:
    rng = np.random.default_rng([SEED, n])
    linked = rng.random((n, n)) < DENSITY
    np.fill_diagonal(linked, False)
    liabilities = np.where(linked, rng.uniform(0.5, 2.0, (n, n)), 0.0)
    external_assets = 10.0 + rng.uniform(0.0, 5.0, n)
    held, owed = liabilities.sum(axis=0), liabilities.sum(axis=1)
    # x = (1 − r)(e + held) − owed ≥ 0 needs e ≥ owed / (1 − r) − held.
    floor = owed / (1.0 - CAPITAL_RATIO) - held
    raised = int(np.count_nonzero(floor > external_assets))
    external_assets = np.maximum(external_assets, floor)
    total = external_assets + held
    capital = CAPITAL_RATIO * total
    external_liabilities = np.maximum(total - capital - owed, 0.0)  # rounding only
    rows = [np.flatnonzero(liabilities[i]) for i in range(n)]
    return Network(
        liabilities=liabilities,
        owe_indptr=np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64),
        owe_creditor=np.concatenate(rows).astype(np.int64),
        owe_amount=np.concatenate([liabilities[i, r] for i, r in enumerate(rows)]),
        external_assets=external_assets,
        external_liabilities=external_liabilities,
        capital=capital,
        raised=raised,
    )


def can_fail(net: Network) -> np.ndarray:
    """Institutions that fail when they lose more than their capital out of external assets."""
    return net.capital < net.external_assets


def failing_probability(net: Network, variant: Variant) -> float:
    return min(1.0, variant.fail_share * net.size / max(1, np.count_nonzero(can_fail(net))))


def first_round_losses(net: Network, variant: Variant, paths: int, index: int) -> np.ndarray:
    """(paths, n) losses of external assets, as described in the module docstring."""
    rng = np.random.default_rng([SEED, net.size, index])
    shape = (paths, net.size)
    fails = (rng.random(shape) < failing_probability(net, variant)) & can_fail(net)
    partial = net.capital * rng.uniform(0.0, variant.partial, shape)
    failing = net.capital * rng.uniform(1.0, 1.5, shape)
    return np.minimum(np.where(fails, failing, partial), net.external_assets)


# --------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------


class KernelRun:
    """The kernel on the first ``paths`` paths of the pool, into preallocated outputs."""

    def __init__(self, net: Network, algorithm: Algorithm, losses: np.ndarray):
        self.net, self.algorithm, self.losses = net, algorithm, losses
        self.external = np.ascontiguousarray(net.external_assets - losses)
        self.payments = np.zeros_like(losses)
        self.contagion = np.zeros_like(losses)
        self.defaulted = np.zeros(losses.shape, dtype=np.bool_)
        self.prepare()

    def prepare(self) -> None:
        """What a run makes once per network, outside the timing: DebtRank's weights."""
        net = self.net
        self.network = None
        if not self.algorithm.clearing:
            self.network = debtrank_network(
                net.capital, net.owe_indptr, net.owe_creditor, net.owe_amount, True
            )

    def __call__(self, paths: int) -> None:
        net, a = self.net, self.algorithm
        if a.clearing:
            clear_paths(
                self.external[:paths],
                net.owe_indptr,
                net.owe_creditor,
                net.owe_amount,
                net.external_liabilities,
                a.alpha,
                a.beta,
                a.senior,
                self.payments[:paths],
                self.contagion[:paths],
                self.defaulted[:paths],
            )
        else:
            debtrank_paths_prepared(
                self.losses[:paths],
                self.network,
                a.linear,
                DEBTRANK_TOL,
                DEBTRANK_MAX_ROUNDS,
                self.contagion[:paths],
                self.defaulted[:paths],
            )


class BaselineRun(KernelRun):
    """The dense NumPy baseline, path by path; also counts its iterations (rounds)."""

    def __init__(self, net: Network, algorithm: Algorithm, losses: np.ndarray):
        super().__init__(net, algorithm, losses)
        self.iterations = np.zeros(losses.shape[0], dtype=np.int64)

    def prepare(self) -> None:
        """The dense matrices, once per network, outside the timing."""
        net, a = self.net, self.algorithm
        if a.clearing:
            self.clearing = DenseClearing(
                net.liabilities, net.external_liabilities, a.alpha, a.beta, a.senior
            )
        else:
            self.debtrank = DenseDebtRank(
                net.liabilities, net.capital, a.linear, True, DEBTRANK_TOL, DEBTRANK_MAX_ROUNDS
            )

    def __call__(self, paths: int) -> None:
        for p in range(paths):
            if self.algorithm.clearing:
                payments, loss, defaulted, its = self.clearing.clear(self.external[p])
                self.payments[p] = payments
            else:
                loss, defaulted, its = self.debtrank.run(self.losses[p])
            self.contagion[p], self.defaulted[p], self.iterations[p] = loss, defaulted, its


def fictitious_default_rounds(net: Network, algorithm: Algorithm, external: np.ndarray) -> float:
    """Mean rounds (linear solves of the growing default set) of ``clear_paths``'s algorithm
    per path, untimed: the kernel's path-by-path entry point returns them."""
    totals = network_totals(
        net.owe_indptr, net.owe_creditor, net.owe_amount, net.external_liabilities
    )
    n = net.size
    payments, received, loss = np.empty(n), np.empty(n), np.empty(n)
    defaulted = np.empty(n, dtype=np.bool_)
    rounds = [
        clear_fictitious_default(
            row,
            net.owe_indptr,
            net.owe_creditor,
            net.owe_amount,
            net.external_liabilities,
            *totals,
            algorithm.alpha,
            algorithm.beta,
            algorithm.senior,
            payments,
            received,
            loss,
            defaulted,
        )
        for row in external
    ]
    return float(np.mean(rounds))


@dataclass
class Timing:
    seconds_per_path: float
    paths: int  # paths per call
    calls: int  # calls per timing
    cpu_ratio: float  # CPU seconds ÷ wall seconds, median over the timings


def plan_timing(
    run: Callable[[int], None], pool: int, min_paths: int, seconds: float
) -> tuple[int, int]:
    """(paths per call, calls per timing) for timings of at least ``seconds``.

    A warm-up call (JIT cache load, first-touch of the outputs), a 10-path probe to choose
    ``paths`` (at least ``min_paths``, at most ``pool``) and ``calls``, and one full-size
    call to correct the choice.
    """
    run(min(pool, 2))
    started = time.perf_counter()
    run(min(pool, 10))
    per_path = (time.perf_counter() - started) / min(pool, 10)
    paths = min(pool, max(min_paths, math.ceil(seconds / per_path)))
    started = time.perf_counter()
    run(paths)
    per_path = (time.perf_counter() - started) / paths
    return paths, max(1, math.ceil(1.1 * seconds / (per_path * paths)))


def timed(run: Callable[[int], None], paths: int, calls: int) -> tuple[float, float]:
    """(seconds per path, CPU ÷ wall) of ``calls`` calls of ``run(paths)``."""
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        run(paths)
    elapsed = time.perf_counter() - started
    return elapsed / (calls * paths), (time.process_time() - started_cpu) / elapsed


def time_side_by_side(
    kernel: KernelRun, baseline: BaselineRun, pool: int, options: argparse.Namespace
) -> tuple[Timing, Timing, float]:
    """Kernel and baseline timings, alternating: ``options.repeats`` pairs, each a kernel
    timing then a baseline timing of at least ``options.seconds``. Returns the two Timings
    (medians) and the median over the pairs of baseline ÷ kernel, so that a slow spell of this
    shared machine falls on both sides of a ratio rather than on one engine's timings."""
    k_paths, k_calls = plan_timing(kernel, pool, options.block, options.seconds)
    b_paths, b_calls = plan_timing(baseline, k_paths, options.baseline_paths, options.seconds)
    pairs = [
        (timed(kernel, k_paths, k_calls), timed(baseline, b_paths, b_calls))
        for _ in range(options.repeats)
    ]
    k_times, k_busy = zip(*(k for k, _ in pairs), strict=True)
    b_times, b_busy = zip(*(b for _, b in pairs), strict=True)
    return (
        Timing(statistics.median(k_times), k_paths, k_calls, statistics.median(k_busy)),
        Timing(statistics.median(b_times), b_paths, b_calls, statistics.median(b_busy)),
        statistics.median(b / k for (k, _), (b, _) in pairs),
    )


def measure(
    net: Network,
    variant: Variant,
    algorithm: Algorithm,
    losses: np.ndarray,
    options: argparse.Namespace,
) -> dict:
    kernel = KernelRun(net, algorithm, losses)
    baseline = BaselineRun(net, algorithm, losses)
    k, b, ratio = time_side_by_side(kernel, baseline, losses.shape[0], options)
    m = b.paths
    rounds = (
        fictitious_default_rounds(net, algorithm, kernel.external[:m])
        if algorithm.clearing
        else None
    )
    differences = [np.max(np.abs(kernel.contagion[:m] - baseline.contagion[:m]))]
    if algorithm.clearing:
        differences.append(np.max(np.abs(kernel.payments[:m] - baseline.payments[:m])))
    return {
        "n": net.size,
        "variant": variant.name,
        "algorithm": algorithm.name,
        "kernel": k,
        "baseline": b,
        "ratio": ratio,
        "fail_first": float(np.mean(np.sum(losses[: k.paths] > net.capital, axis=1))),
        "defaults": float(np.mean(np.sum(kernel.defaulted[: k.paths], axis=1))),
        "iterations": float(np.mean(baseline.iterations[:m])),
        "rounds": rounds,
        "max_diff": float(max(differences)),
        "flags_differing": int(np.count_nonzero(kernel.defaulted[:m] != baseline.defaulted[:m])),
    }


# --------------------------------------------------------------------------------------
# ai-stress run
# --------------------------------------------------------------------------------------


def run_scenario(net: Network) -> dict:
    """The network as a scenario: each institution's external assets are one loan it holds
    whole (EAD = those assets, LGD 45 %) on an obligor of its own with PD 5 %, loading 0.4 on
    one factor; ``external_assets`` = 0 and the external liabilities are left to balance."""
    names = [f"inst_{i:03d}" for i in range(net.size)]
    institutions = {}
    for i, name in enumerate(names):
        debtors = np.flatnonzero(net.liabilities[:, i])
        institutions[name] = {
            "type": "bank",
            "capital": float(net.capital[i]),
            "holdings": {f"loan_{i:03d}": 1.0},
            "external_assets": 0.0,
            "claims": {names[j]: float(net.liabilities[j, i]) for j in debtors},
        }
    return {
        "name": f"contagion-benchmark-{net.size}",
        "description": "benchmarks/contagion.py: random interbank network, one loan each",
        "simulation": {"seed": SEED},
        "factors": {"economy": {}},
        "obligors": {
            f"obligor_{i:03d}": {"pd": RUN_PD, "loadings": {"economy": RUN_LOADING}}
            for i in range(net.size)
        },
        "exposures": {
            f"loan_{i:03d}": {
                "obligor": f"obligor_{i:03d}",
                "class": "loan",
                "ead": float(net.external_assets[i]),
                "lgd": RUN_LGD,
            }
            for i in range(net.size)
        },
        "institutions": institutions,
        "contagion": {"model": "eisenberg-noe"},
    }


def ai_stress_command() -> list[str]:
    """The ``ai-stress`` script of this interpreter, else ``python -m stress`` (the same)."""
    script = Path(sys.executable).parent / "ai-stress"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stress"]


def time_cli(scenario: Path, out: Path, paths: int, env: dict) -> dict:
    command = [*ai_stress_command(), "run", str(scenario), "--paths", str(paths)]
    command += ["--out", str(out), "--overwrite"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    manifest = json.loads((out / "manifest.json").read_text())
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    defaults = next(r["value"] for r in summary if r["metric"] == "expected_defaults")
    parquet = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    return {
        "paths": paths,
        "wall_s": wall,
        "timings": manifest["timings"],
        "threads": manifest["threads"],
        "block_size": manifest["block_size"],
        "defaults": defaults,
        "parquet_mb": parquet / 2**20,
        "command": " ".join(["ai-stress", *command[len(ai_stress_command()) :]]),
    }


def measure_cli(net: Network, runs: int) -> tuple[dict, list[dict]]:
    """A first run (may fill Numba's cache), then ``runs`` timed ones."""
    # A run as a user runs it: without the one-BLAS-thread setting of the engine rows.
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    with tempfile.TemporaryDirectory(prefix="ai-stress-contagion-") as tmp:
        scenario = Path(tmp) / "contagion.toml"
        scenario.write_text(dumps(run_scenario(net)), encoding="utf-8")
        out = Path(tmp) / "run"
        first = time_cli(scenario, out, RUN_PATHS, env)
        timed = [time_cli(scenario, out, RUN_PATHS, env) for _ in range(runs)]
        shutil.rmtree(out)
    return first, timed


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def network_table(nets: list[Network]) -> list[str]:
    lines = [
        "| institutions | claims | density | claims held, mean | external assets, mean "
        "| external assets raised | capital ÷ external assets, median | can fail "
        "| P(fail), mild | P(fail), harsh |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for net in nets:
        n, links = net.size, net.owe_amount.size
        p = [failing_probability(net, v) for v in VARIANTS]
        lines.append(
            f"| {n} | {links:,} | {links / (n * (n - 1)):.3f} | "
            f"{net.liabilities.sum(axis=0).mean():.1f} | {net.external_assets.mean():.1f} | "
            f"{net.raised} | {np.median(net.capital / net.external_assets):.2f} | "
            f"{np.count_nonzero(can_fail(net))} | {p[0]:.3f} | {p[1]:.3f} |"
        )
    return lines


def result_table(rows: list[dict]) -> list[str]:
    lines = [
        "| n | variant | algorithm | fail first / path | defaults / path | kernel µs/path "
        "| NumPy µs/path | NumPy ÷ kernel | kernel paths × calls | NumPy paths × calls "
        "| NumPy iterations / path | kernel FD rounds / path | max abs diff "
        "| default flags differing | CPU ÷ wall, kernel / NumPy |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        k, b = r["kernel"], r["baseline"]
        lines.append(
            f"| {r['n']} | {r['variant']} | {r['algorithm']} | {r['fail_first']:.1f} | "
            f"{r['defaults']:.1f} | {k.seconds_per_path * 1e6:,.1f} | "
            f"{b.seconds_per_path * 1e6:,.1f} | "
            f"{r['ratio']:,.1f}× | {k.paths} × {k.calls} | "
            f"{b.paths} × {b.calls} | {r['iterations']:.1f} | "
            f"{'—' if r['rounds'] is None else format(r['rounds'], '.1f')} | {r['max_diff']:.1e} | "
            f"{r['flags_differing']} | {k.cpu_ratio:.2f} / {b.cpu_ratio:.2f} |"
        )
    return lines


def target_lines(rows: list[dict]) -> list[str]:
    largest = max(r["n"] for r in rows)
    lines = []
    for r in rows:
        if r["n"] != largest:
            continue
        ratio = r["ratio"]
        verdict = "met" if ratio >= TARGET_RATIO else "**missed**"
        lines.append(f"- {r['variant']}, {r['algorithm']}: {ratio:,.1f}× — {verdict}")
    return lines


def cli_table(first: dict, timed: list[dict]) -> list[str]:
    lines = [
        "| run | paths | wall s | ms/path (wall) | setup s | simulate s | ms/path (simulate) "
        "| Parquet MB | bytes/path | expected defaults |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in [("first", first)] + [(f"timed {i + 1}", r) for i, r in enumerate(timed)]:
        t = r["timings"]
        lines.append(
            f"| {label} | {r['paths']:,} | {r['wall_s']:.2f} | "
            f"{r['wall_s'] / r['paths'] * 1e3:.3f} | {t['setup_s']:.2f} | "
            f"{t['simulate_s']:.2f} | {t['simulate_s'] / r['paths'] * 1e3:.3f} | "
            f"{r['parquet_mb']:.1f} | {r['parquet_mb'] * 2**20 / r['paths']:,.0f} | "
            f"{r['defaults']:.2f} |"
        )
    return lines


def run_report(first: dict, timed: list[dict]) -> list[str]:
    """The paragraph and table of the timed ``ai-stress run``s."""
    best_wall = min(r["wall_s"] / r["paths"] for r in timed) * 1e3
    median_wall = statistics.median(r["wall_s"] / r["paths"] for r in timed) * 1e3
    return [
        f"`ai-stress run` on the {RUN_INSTITUTIONS}-institution network above (each holds one "
        f"loan, EAD = its external assets, LGD {RUN_LGD:g}, on its own obligor with PD "
        f"{RUN_PD:g} and loading {RUN_LOADING:g} on one factor; `[contagion] model = "
        f'"eisenberg-noe"`), `{first["command"]}`, {first["threads"]} threads (all cores), '
        f"block size {first['block_size']:,}, in a subprocess; wall s is the whole command "
        "(start-up, imports, Numba cache load, validation, Parquet, summary), setup and "
        "simulate s from the manifest:",
        "",
        *cli_table(first, timed),
        "",
        f"Target (issue): ≤ {TARGET_RUN_MS:g} ms per path for the whole run — median "
        f"{median_wall:.3f} ms (best {best_wall:.3f} ms) per path over the timed runs: "
        f"{'met' if median_wall <= TARGET_RUN_MS else '**missed**'}.",
        "",
    ]


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="50 and 200 institutions only, 3 repeats, smaller blocks, one timed ai-stress run",
    )
    parser.add_argument("--seconds", type=float, default=0.2, help="least seconds per timing")
    parser.add_argument("--repeats", type=int, help="timings per row, median taken [5; quick 3]")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help=f"institutions, a subset of {SIZES} [all; quick 50 200]",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=[v.name for v in VARIANTS], help="stress variants [all]"
    )
    parser.add_argument(
        "--algorithms",
        nargs="+",
        type=int,
        choices=range(len(ALGORITHMS)),
        help="rows by index: "
        + ", ".join(f"{i} {a.name}" for i, a in enumerate(ALGORITHMS))
        + " [all]",
    )
    parser.add_argument(
        "--no-run", action="store_true", help="skip the timed `ai-stress run` (for iterating)"
    )
    options = parser.parse_args()
    quick = options.quick
    options.repeats = options.repeats or (3 if quick else 5)
    options.pool = 300 if quick else 1_000  # paths drawn
    # Every kernel call clears all of them, as the engine clears a block (10 000 paths by
    # default): what a call builds once for its block is spread as it is in a run.
    options.block = options.pool
    options.baseline_paths = 10 if quick else 20  # least paths per baseline call
    sizes = options.sizes or (SIZES[:2] if quick else SIZES)
    variants = [v for v in VARIANTS if options.variants is None or v.name in options.variants]
    algorithms = [
        a for i, a in enumerate(ALGORITHMS) if options.algorithms is None or i in options.algorithms
    ]
    cli_runs = 1 if quick else 3

    command = f"python benchmarks/contagion.py {' '.join(sys.argv[1:])}".rstrip()
    print("\n".join([f"Command: `{command}`", *machine(), ""]), flush=True)

    nets = [build_network(n) for n in sizes]
    rows = []
    for net in nets:
        for variant in variants:
            # The variant's index in VARIANTS seeds its paths, so a subset draws the same ones.
            losses = first_round_losses(net, variant, options.pool, VARIANTS.index(variant))
            for algorithm in algorithms:
                log(f"{net.size} institutions, {variant.name}, {algorithm.name}")
                rows.append(measure(net, variant, algorithm, losses, options))
    run_lines = []
    if not options.no_run:
        log(f"ai-stress run, {RUN_INSTITUTIONS} institutions, {RUN_PATHS:,} paths")
        run_net = next((net for net in nets if net.size == RUN_INSTITUTIONS), None)
        first, timed = measure_cli(run_net or build_network(RUN_INSTITUTIONS), cli_runs)
        run_lines = run_report(first, timed)

    worst = max(r["max_diff"] for r in rows)
    out = [
        "Networks (seed "
        f"{SEED}; claims with probability {DENSITY} per ordered pair, U(0.5, 2); external "
        "assets 10 + U(0, 5), raised where the balancing external liabilities would be "
        "negative; capital 10 % of total assets):",
        "",
        *network_table(nets),
        "",
        "- external assets raised: institutions whose external liabilities, the balancing "
        "item, came out negative (clip at 0); their external assets were raised to claims "
        "owed / 0.9 − claims held so that capital stays 10 % of total assets with x = 0.",
        "- can fail: capital < external assets, so that a first-round loss (at most the "
        "external assets) can exceed the capital; the failing set is drawn among these with "
        "P(fail), for an expected 5 % (mild) or 20 % (harsh) of all institutions.",
        "",
        f"Kernels and dense NumPy on one thread, after a warm-up call, in {options.repeats} "
        f"alternating pairs of timings of at least {options.seconds:g} s each; time per path, "
        "median over the pairs; NumPy ÷ kernel, the median of the pairs' ratios:",
        "",
        *result_table(rows),
        "",
        "- fail first: institutions per path whose first-round loss exceeds their capital; "
        "defaults: the kernel's `defaulted` per path, over the kernel's paths.",
        "- kernel paths × calls: paths per `clear_paths` / `debtrank_paths_prepared` call (all "
        f"{options.pool:,} drawn paths, as the engine clears a block) and calls per timing; "
        "each `clear_paths` call builds its network layout and, when a path needs them, the "
        "LU factors of the whole-network system, inside the timing; DebtRank's weights are "
        "made once per network (`debtrank_network`), outside it, as the engine makes them "
        "once per block and the NumPy baseline its dense weight matrix once per network. "
        "NumPy paths: a prefix of those, one path at a time.",
        "- NumPy iterations: Picard iterations until no payment moves by more than 1e-12 "
        "(clearing) or DebtRank rounds, per path. Kernel FD rounds: rounds of the "
        "fictitious-default algorithm (each a solve of the default set, itself grown by "
        "Chandrasekaran's method: GMRES, or the LU factors when everybody has defaulted), "
        "after the sweeps from full payment that find a cascade's defaulters before them, "
        "per path, on the NumPy paths.",
        "- max abs diff: over the NumPy paths, the largest |kernel − NumPy| of payments and "
        f"contagion losses (currency; accepted ≤ {AGREEMENT:g}); largest in this run "
        f"{worst:.1e} — {'within' if worst <= AGREEMENT else '**outside**'} the tolerance.",
        "- CPU ÷ wall: CPU seconds of this process over wall seconds, median over the "
        "timings; below about 0.95 the engine did not have a core to itself (the machine is "
        "shared) and its time is overstated.",
        "",
        f"Target (issue): at {max(sizes)} institutions, contagion ≥ {TARGET_RATIO:g}× the "
        "NumPy implementation per path:",
        "",
        *target_lines(rows),
        "",
        *run_lines,
        "Load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + ".",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
