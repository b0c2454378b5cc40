"""Throughput and memory of the loss kernels next to baselines.

Prints the Markdown tables quoted in the README's performance section:

    python benchmarks/loss_kernels.py [--quick]

Engines, all on one thread and on the same synthetic books (benchmarks/portfolios.py): the
fast kernel and the reference kernel through ``stress.engine.simulate_block``; a dense,
vectorised NumPy implementation of the same model (below); and ``creditriskengine``'s
multi-factor Gaussian copula when that package is installed. Every engine row is measured in a
fresh process (multiprocessing, 'spawn'), so its peak RSS is its own: warm-up call, paths per
timing calibrated to about ``--seconds``, then the median of ``--repeats`` timings.

Then the fast path and the reference kernel on the 10 000-obligor book with the financing
mechanics added (``portfolios.mechanics_data``: vehicles, revenue dependencies, lines to
funds), the fast path through ``stress.engine.simulate`` on 1 and 2 threads, and the peak RSS of
``ai-stress run`` at 10⁶ and 10⁷ paths, which should not grow with the number of paths.

``--quick`` is a smoke test of well under a minute: no 100 000-obligor book, one 10⁵-path
``ai-stress run`` instead of 10⁶ and 10⁷, short timings, and the engine rows in this process
(no fresh interpreter per row, so no RSS column).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

# Every engine row runs on one thread, so BLAS (dense NumPy, creditriskengine) gets one thread
# too. It reads these when NumPy loads: set them before the import, here and in the spawned
# children, which import this file first.
os.environ.update(
    dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")
)

# Spawned children import this file by path; portfolios.py sits next to it.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

import numpy as np
import portfolios
from _machine import machine
from scipy import special

from stress.compile import Portfolio, compile_scenario
from stress.engine import Block, simulate, simulate_block
from stress.scenario import validate_data
from stress.tomlwrite import dumps

SEED = 20250805
SIZES = (1_000, 10_000, 100_000)
COPULAS = ("gaussian", "t")
ENGINES = ("fast path", "reference kernel", "dense NumPy", "creditriskengine")
MECHANICS_ENGINES = ("fast path", "reference kernel")
# Dense engines materialise (batch × obligors) arrays: cap a batch at 10⁷ elements (80 MB per
# float64 array), i.e. 1 000 paths up to 10 000 obligors, so they are neither memory-bound nor
# starved of vectorisation.
DENSE_BATCH = 1_000
DENSE_ELEMENTS = 10_000_000
THREAD_BOOK = 10_000
THREAD_BLOCK = 10_000
THREAD_MIN_PATHS = 200_000
CLI_BOOK = 1_000
CLI_BLOCK = 10_000
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # set at the top


def log(message: str) -> None:
    """Progress on stderr, so that stdout is only the Markdown to paste."""
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """High-water resident set size of this process so far, in MiB.

    VmHWM of /proc/self/status, not ``ru_maxrss``: Linux carries the RSS a process had when it
    was forked over ``exec`` into its ``ru_maxrss``, so a child started from this (large)
    process would report at least the parent's size. ``ru_maxrss`` is the fallback elsewhere.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def dense_batch(n_obligors: int) -> int:
    return max(1, min(DENSE_BATCH, DENSE_ELEMENTS // n_obligors))


# --------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------


class DenseNumpy:
    """The model of the kernels written as dense array operations, one batch of paths at a time.

    Per batch of ``n`` paths: factors ``Y = mean + z Aᵀ`` (n × K) and, for the t copula, a
    scale ``s = sqrt(ν / W)`` per path; latent variables ``Y Lᵀ + b ε`` (n × O) with one
    normal per obligor and path; defaults ``latent · s < threshold``; then one matrix product
    of the 0/1 default matrix with a per-obligor table (O × (2 + C + I)) whose columns are 1
    (default count), EAD·LGD (system loss), EAD·LGD per class and share·EAD·LGD per
    institution. Fixed LGDs and exposures on named obligors only, as in the benchmark books.

    Parameters
    ----------
    portfolio : Portfolio
        A compiled benchmark book.
    batch : int
        Paths per batch.
    """

    def __init__(self, portfolio: Portfolio, batch: int):
        p = portfolio
        if p.pool_ids or np.any(p.exposure_lgd_kind != 0) or np.any(p.exposure_target_kind != 0):
            raise ValueError("dense NumPy handles fixed LGDs on named obligors only")
        n_obligors, n_classes = len(p.obligor_ids), len(p.class_names)
        n_institutions = len(p.institution_ids)
        loss = p.exposure_ead * p.exposure_lgd_p1
        table = np.zeros((n_obligors, 2 + n_classes + n_institutions))
        table[:, 0] = 1.0
        np.add.at(table[:, 1], p.exposure_target, loss)
        np.add.at(table, (p.exposure_target, 2 + p.exposure_class), loss)
        holder = np.repeat(np.arange(n_institutions), np.diff(p.holding_indptr))
        np.add.at(
            table,
            (p.exposure_target[p.holding_exposure], 2 + n_classes + holder),
            p.holding_share * loss[p.holding_exposure],
        )
        self.table = table
        self.n_classes = n_classes
        self.mean = p.factor_mean
        self.factor_loading_t = np.ascontiguousarray(p.factor_loading.T)
        self.loadings_t = np.ascontiguousarray(p.obligor_loadings.T)
        self.idio = p.obligor_idio
        self.threshold = p.obligor_threshold
        self.dof = p.dof
        self.batch = batch
        self.latent = np.empty((batch, n_obligors))
        self.noise = np.empty((batch, n_obligors))

    def simulate(self, paths: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """All outputs of ``paths`` paths: system, class and institution losses, defaults."""
        out = np.empty((paths, self.table.shape[1]))
        for start in range(0, paths, self.batch):
            b = min(self.batch, paths - start)
            latent, noise = self.latent[:b], self.noise[:b]
            factors = self.mean + rng.standard_normal((b, self.mean.shape[0])) @ (
                self.factor_loading_t
            )
            np.matmul(factors, self.loadings_t, out=latent)
            rng.standard_normal(out=noise)
            noise *= self.idio
            latent += noise
            if self.dof > 0.0:
                latent *= np.sqrt(self.dof / rng.chisquare(self.dof, b))[:, None]
            # The 0/1 defaults go straight into the noise buffer as float64 for the product.
            np.less(latent, self.threshold, out=noise)
            np.matmul(noise, self.table, out=out[start : start + b])
        c = self.n_classes
        return {
            "n_defaults": out[:, 0],
            "system_loss": out[:, 1],
            "class_loss": out[:, 2 : 2 + c],
            "institution_loss": out[:, 2 + c :],
        }


def creditriskengine_version() -> str | None:
    if importlib.util.find_spec("creditriskengine") is None:
        return None
    return importlib.metadata.version("creditriskengine")


def creditriskengine_runner(portfolio: Portfolio, batch: int) -> Callable[[int, int], np.ndarray]:
    """``simulate_multi_factor`` on the book: correlated factors folded into the loadings.

    It draws independent factors Z, so loadings ``a`` on factors ``Y = A Z`` become ``Aᵀa``;
    its idiosyncratic weight ``sqrt(1 − |Aᵀa|²) = sqrt(1 − aᵀRa)`` is then the book's. It
    returns the system loss only and builds (paths × obligors) arrays in one go, so it is
    called on batches of the dense-NumPy size, each with its own seed.
    """
    from creditriskengine.portfolio.copula import simulate_multi_factor

    p = portfolio
    if not np.all(p.exposure_target == np.arange(len(p.obligor_ids))):
        raise ValueError("needs one exposure per obligor, in obligor order")
    pds = special.ndtr(p.obligor_threshold)  # Gaussian: the thresholds are Φ⁻¹(PD)
    loadings = p.obligor_loadings @ p.factor_loading

    def run(paths: int, repeat: int) -> np.ndarray:
        parts = []
        for j, start in enumerate(range(0, paths, batch)):
            n = min(batch, paths - start)
            parts.append(
                simulate_multi_factor(
                    pds, p.exposure_lgd_p1, p.exposure_ead, loadings, n, seed=1_000 * repeat + j
                )
            )
        return np.concatenate(parts)

    return run


def engine_runner(engine: str, portfolio: Portfolio) -> Callable[[int, int], np.ndarray]:
    """``run(paths, repeat)`` -> system loss per path; every repeat draws fresh paths."""
    if engine in ("fast path", "reference kernel"):
        kernel = "fast" if engine == "fast path" else "reference"

        def run(paths: int, repeat: int) -> np.ndarray:
            return simulate_block(portfolio, SEED, Block(repeat, 0, paths), kernel).system_loss

        return run
    batch = dense_batch(len(portfolio.obligor_ids))
    if engine == "dense NumPy":
        dense = DenseNumpy(portfolio, batch)

        def run(paths: int, repeat: int) -> np.ndarray:
            rng = np.random.default_rng((SEED, repeat))
            return dense.simulate(paths, rng)["system_loss"]

        return run
    return creditriskengine_runner(portfolio, batch)


def timed(run: Callable[[int, int], np.ndarray], paths: int, repeat: int):
    """Wall seconds, CPU seconds of this process, and the system losses of one run."""
    started, started_cpu = time.perf_counter(), time.process_time()
    losses = run(paths, repeat)
    return time.perf_counter() - started, time.process_time() - started_cpu, losses


def two_figures(x: float) -> int:
    """Round up to two significant figures, so paths per timing read as round numbers."""
    magnitude = 10 ** max(0, math.floor(math.log10(max(x, 1.0))) - 1)
    return int(math.ceil(x / magnitude) * magnitude)


def measure_engine(engine: str, portfolio: Portfolio, seconds: float, repeats: int) -> dict:
    """Calibrate paths per timing, then time ``repeats`` runs (in a fresh process but --quick).

    Returns paths per timing, the timings, CPU ÷ wall time, the mean loss and its standard
    error over all timed paths, and the RSS high-water mark after imports and loading the book
    (``idle_mb``) and at the end.
    """
    if engine == "creditriskengine":
        # Its import (pandas, statsmodels) is not the engine's working memory.
        import creditriskengine.portfolio.copula  # noqa: F401
    idle = peak_rss_mb()
    run = engine_runner(engine, portfolio)
    n_obligors = len(portfolio.obligor_ids)
    timed(run, max(1, 10_000 // n_obligors), 0)  # warm-up: JIT cache load, BLAS start-up
    # Grow by 4× until a run takes a tenth of the target, then rescale until a run at full
    # size is near the target: small runs mispredict large ones (page faults on fresh
    # buffers, caches).
    paths = max(1, 100_000 // n_obligors)
    while True:
        elapsed, _, _ = timed(run, paths, 0)
        if elapsed >= seconds / 10:
            break
        paths *= 4
    for _ in range(3):
        paths = max(1, round(paths * seconds / elapsed))
        elapsed, _, _ = timed(run, paths, 0)
        if 0.7 * seconds <= elapsed <= 1.4 * seconds:
            break
    paths = two_figures(paths * seconds / elapsed)
    times, busy, total, total_sq = [], [], 0.0, 0.0
    for r in range(1, repeats + 1):
        elapsed, cpu, losses = timed(run, paths, r)
        times.append(elapsed)
        busy.append(cpu / elapsed)
        total += float(losses.sum())
        total_sq += float(np.square(losses).sum())
    n = paths * repeats
    mean = total / n
    return {
        "paths": paths,
        "times": times,
        "seconds": statistics.median(times),
        "cpu_ratio": statistics.median(busy),
        "mean_loss": mean,
        "loss_se": math.sqrt(max(total_sq / n - mean * mean, 0.0) / n),
        "idle_mb": idle,
        "peak_mb": peak_rss_mb(),
    }


def measure_threads(portfolio: Portfolio, min_paths: int, min_seconds: float, repeats: int) -> dict:
    """``simulate(..., threads=T)`` for T = 1 and 2, interleaved; wall and CPU seconds."""
    simulate(portfolio, 2 * THREAD_BLOCK, SEED, THREAD_BLOCK, threads=2, kernel="fast")
    started = time.perf_counter()
    simulate(portfolio, 2 * THREAD_BLOCK, SEED, THREAD_BLOCK, threads=1, kernel="fast")
    rate = 2 * THREAD_BLOCK / (time.perf_counter() - started)
    # At least min_paths and min_seconds on one thread, in whole pairs of blocks so that two
    # threads get the same work.
    pair = 2 * THREAD_BLOCK
    paths = max(min_paths, math.ceil(min_seconds * rate / pair) * pair)
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    # Interleaved, so that drift in the machine's load hits both thread counts alike.
    for _ in range(repeats):
        for threads in (1, 2):
            started, started_cpu = time.perf_counter(), time.process_time()
            simulate(portfolio, paths, SEED, THREAD_BLOCK, threads=threads, kernel="fast")
            times[threads].append(time.perf_counter() - started)
            cpu[threads].append(time.process_time() - started_cpu)
    return {"paths": paths, "times": times, "cpu": cpu}


def in_fresh_process(function: Callable, *args: Any) -> Any:
    """Call ``function(*args)`` in a new spawned interpreter, so its ru_maxrss is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(function, *args).result()


def in_this_process(function: Callable, *args: Any) -> Any:
    """``--quick``: skip the ~2 s start-up of a fresh interpreter per row; no RSS then."""
    result = function(*args)
    if isinstance(result, dict) and "peak_mb" in result:
        result.update(idle_mb=None, peak_mb=None)
    return result


# --------------------------------------------------------------------------------------
# ai-stress run
# --------------------------------------------------------------------------------------


def ai_stress_command() -> list[str]:
    """The ``ai-stress`` script of this interpreter, else ``python -m stress`` (the same)."""
    script = Path(sys.executable).parent / "ai-stress"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stress"]


# Runs a command and writes its peak RSS (KiB on Linux) to the file named by argv[1]. It is a
# small process (~10 MB): ru_maxrss of a child starts at its parent's RSS at fork (see
# peak_rss_mb), so ``ai-stress run`` is started from it, not from this process, and the
# launcher has waited for that one child only, so RUSAGE_CHILDREN is the child's own figure.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def measure_cli(scenario: Path, paths: int, out: Path, threads: int, env: dict) -> dict:
    """Run ``ai-stress run`` through ``LAUNCHER``; its peak RSS, times and output size."""
    command = [
        *ai_stress_command(),
        "run",
        str(scenario),
        "--paths",
        str(paths),
        "--block-size",
        str(CLI_BLOCK),
        "--threads",
        str(threads),
        "--out",
        str(out),
        "--overwrite",
    ]
    log_file = out.parent / f"{out.name}.log"
    rss_file = out.parent / f"{out.name}.rss"
    started = time.perf_counter()
    with open(log_file, "wb") as sink:
        code = subprocess.call(
            [sys.executable, "-c", LAUNCHER, str(rss_file), *command],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{log_file.read_text()}")
    manifest = json.loads((out / "manifest.json").read_text())
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(out)  # 10⁷ paths are about a gigabyte of Parquet
    return {
        "paths": paths,
        "peak_mb": int(rss_file.read_text()) / 1024.0,
        "wall_s": wall,
        "simulate_s": manifest["timings"]["simulate_s"],
        "output_mb": size / 2**20,
    }


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def count(n: int) -> str:
    return f"{n:,}"


def engine_table(rows: list[dict]) -> list[str]:
    lines = [
        "| obligors | copula | engine | paths per timing | median s | CPU ÷ wall | paths/s "
        "| obligor-paths/s | fast path ÷ engine | peak RSS MB | engine Δ RSS MB "
        "| mean loss ÷ EL |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fast = {(r["obligors"], r["copula"]): r for r in rows if r["engine"] == "fast path"}
    for r in rows:
        head = f"| {count(r['obligors'])} | {r['copula']} | {r['label']} |"
        if "skipped" in r:
            lines.append(f"{head} {r['skipped']} | | | | | | | | |")
            continue
        rate = r["paths"] / r["seconds"]
        base = fast.get((r["obligors"], r["copula"]))
        ratio = "" if base is None else f"{base['paths'] / base['seconds'] / rate:,.1f}×"
        el = r["expected_loss"]
        if r["peak_mb"] is None:
            memory = "— | —"
        else:
            memory = f"{r['peak_mb']:,.0f} | {r['peak_mb'] - r['idle_mb']:,.0f}"
        lines.append(
            f"{head} {count(r['paths'])} | {r['seconds']:.3f} | {r['cpu_ratio']:.2f} | "
            f"{rate:,.0f} | "
            f"{rate * r['obligors'] / 1e6:,.1f} M | {ratio} | {memory} | "
            f"{r['mean_loss'] / el:.3f} ± {r['loss_se'] / el:.3f} |"
        )
    return lines


def mechanics_table(rows: list[dict], plain: list[dict]) -> list[str]:
    """Fast path ÷ reference kernel on the book with and without the financing mechanics."""
    lines = [
        "| obligors | copula | book | fast paths/s | reference paths/s | fast ÷ reference "
        "| CPU ÷ wall (fast, reference) |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]

    def row(copula: str, label: str, fast: dict, reference: dict) -> str:
        rate, base = fast["paths"] / fast["seconds"], reference["paths"] / reference["seconds"]
        return (
            f"| {count(THREAD_BOOK)} | {copula} | {label} | {rate:,.0f} | {base:,.0f} | "
            f"{rate / base:,.1f}× | {fast['cpu_ratio']:.2f}, {reference['cpu_ratio']:.2f} |"
        )

    for copula in COPULAS:
        found = {
            (label, r["engine"]): r
            for label, group in (("plain", plain), ("with mechanics", rows))
            for r in group
            if r["copula"] == copula
            and r.get("obligors", THREAD_BOOK) == THREAD_BOOK
            and "skipped" not in r
        }
        for label in ("plain", "with mechanics"):
            fast = found.get((label, "fast path"))
            reference = found.get((label, "reference kernel"))
            if fast and reference:
                lines.append(row(copula, label, fast, reference))
    return lines


def thread_table(rows: list[dict]) -> list[str]:
    lines = [
        "| obligors | copula | paths | 1 thread s | 2 threads s | speed-up "
        "| speed-up, fastest runs | CPU s ÷ wall s, 2 threads |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        one, two = statistics.median(r["times"][1]), statistics.median(r["times"][2])
        best = min(r["times"][1]) / min(r["times"][2])
        busy = statistics.median(c / t for c, t in zip(r["cpu"][2], r["times"][2], strict=True))
        lines.append(
            f"| {count(THREAD_BOOK)} | {r['copula']} | {count(r['paths'])} | {one:.3f} | "
            f"{two:.3f} | {one / two:.2f}× | {best:.2f}× | {busy:.2f} |"
        )
    return lines


def cli_table(rows: list[dict]) -> list[str]:
    lines = [
        "| paths | peak RSS MB | ratio to first | wall s | simulate s | paths/s | Parquet MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["peak_mb"] / rows[0]["peak_mb"]
        lines.append(
            f"| {count(r['paths'])} | {r['peak_mb']:,.0f} | {ratio:.3f} | {r['wall_s']:.1f} | "
            f"{r['simulate_s']:.1f} | {r['paths'] / r['simulate_s']:,.0f} | "
            f"{r['output_mb']:,.0f} |"
        )
    return lines


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def print_thread_scaling(paths: int, seconds: float, repeats: int) -> None:
    """The 1- against 2-thread table alone, in this process."""
    rows = []
    for copula in COPULAS:
        log(f"building the {THREAD_BOOK:,}-obligor {copula} book")
        portfolio = compile_scenario(validate_data(portfolios.scenario_data(THREAD_BOOK, copula)))
        rows.append({"copula": copula, **measure_threads(portfolio, paths, seconds, repeats)})
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("\n".join([*thread_table(rows), "", f"Load average at the end: {load}."]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test in under a minute: no 100 000-obligor book, 10⁵ instead of 10⁶ and 10⁷ "
        "paths for ai-stress run, short timings, engine rows in this process (no RSS)",
    )
    parser.add_argument("--seconds", type=float, help="target seconds per timing [1.0; quick 0.05]")
    parser.add_argument("--repeats", type=int, help="timings per row, median taken [5; quick 3]")
    parser.add_argument(
        "--threads-only",
        action="store_true",
        help="only the fast path on 1 and 2 threads, 10 000-obligor books (about two minutes)",
    )
    args = parser.parse_args()
    quick = args.quick
    seconds = args.seconds or (0.05 if quick else 1.0)
    repeats = args.repeats or (3 if quick else 5)
    sizes = SIZES[:2] if quick else SIZES
    thread_paths, thread_seconds = (2 * THREAD_BLOCK, 0.0) if quick else (THREAD_MIN_PATHS, 1.2)
    cli_paths = (10**5,) if quick else (10**6, 10**7)
    isolate = in_this_process if quick else in_fresh_process
    # ai-stress run as a user runs it: without the one-BLAS-thread setting of the engine rows.
    cli_env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    cre_version = creditriskengine_version()

    command = f"python benchmarks/loss_kernels.py {' '.join(sys.argv[1:])}".rstrip()
    print("\n".join([f"Command: `{command}`", *machine(), ""]), flush=True)
    if args.threads_only:
        print_thread_scaling(thread_paths, thread_seconds, repeats)
        return

    rows: list[dict] = []
    thread_rows: list[dict] = []
    mechanics_rows: list[dict] = []
    for n_obligors in sizes:
        for copula in COPULAS:
            log(f"building the {n_obligors:,}-obligor {copula} book")
            portfolio = compile_scenario(
                validate_data(portfolios.scenario_data(n_obligors, copula))
            )
            expected = portfolios.book(n_obligors).expected_loss
            for engine in ENGINES:
                row = {"obligors": n_obligors, "copula": copula, "engine": engine}
                row["label"] = engine
                if engine == "creditriskengine":
                    row["label"] = f"creditriskengine {cre_version or ''}".rstrip()
                    if cre_version is None:
                        rows.append({**row, "skipped": "not installed"})
                        continue
                    if copula == "t":
                        rows.append({**row, "skipped": "no t copula (Gaussian only)"})
                        continue
                log(f"  {engine}")
                result = isolate(measure_engine, engine, portfolio, seconds, repeats)
                rows.append({**row, **result, "expected_loss": expected})
            if n_obligors == THREAD_BOOK:
                log(f"building the {n_obligors:,}-obligor {copula} book with mechanics")
                mechanics = compile_scenario(
                    validate_data(portfolios.mechanics_data(n_obligors, copula))
                )
                for engine in MECHANICS_ENGINES:
                    log(f"  {engine}, with mechanics")
                    result = isolate(measure_engine, engine, mechanics, seconds, repeats)
                    mechanics_rows.append({"copula": copula, "engine": engine, **result})
                log("  fast path on 1 and 2 threads")
                result = isolate(measure_threads, portfolio, thread_paths, thread_seconds, repeats)
                thread_rows.append({"copula": copula, **result})

    cli_rows = []
    with tempfile.TemporaryDirectory(prefix="ai-stress-bench-") as tmp:
        scenario = Path(tmp) / f"bench-{CLI_BOOK}.toml"
        scenario.write_text(dumps(portfolios.scenario_data(CLI_BOOK, "gaussian")))
        for paths in cli_paths:
            log(f"ai-stress run, {paths:,} paths")
            out_dir = Path(tmp) / f"run-{paths}"
            cli_rows.append(measure_cli(scenario, paths, out_dir, os.cpu_count() or 1, cli_env))

    batch_note = ", ".join(f"{dense_batch(n):,} at {n:,} obligors" for n in sizes)
    where = "all in this process (--quick)" if quick else "each row in a fresh process"
    out = [
        f"Engines on one thread, {where}; median of {repeats} timings of about {seconds:g} s "
        "each, after a warm-up call.",
        "",
        *engine_table(rows),
        "",
        "- fast path, reference kernel: `stress.engine.simulate_block(..., kernel=...)` on one "
        "block holding all the paths of a timing.",
        "- dense NumPy: `DenseNumpy` in benchmarks/loss_kernels.py, one normal per obligor and "
        f"path; paths per batch: {batch_note} (≤ 10⁷ latent variables); BLAS on 1 thread.",
        "- creditriskengine: `creditriskengine.portfolio.copula.simulate_multi_factor` with the "
        "factor correlation folded into the loadings (exact for the Gaussian copula), called "
        "on batches of the dense-NumPy size; it returns the system loss only (no class or "
        "institution losses), so it does less work per path than the other engines.",
        "- peak RSS: high-water RSS (VmHWM) of the row's own process; engine Δ: peak minus the "
        "high-water mark after imports and loading the book, i.e. what the warm-up (JIT cache "
        "load) and the timings added.",
        "- CPU ÷ wall: CPU seconds of the process over wall seconds, median over the timings; "
        "below about 0.95 the engine did not have a core to itself (this machine is shared), "
        "and its rate is understated.",
        "- mean loss ÷ EL: mean system loss over all timed paths ± its standard error, divided "
        "by Σ PD·EAD·LGD; about 1 when the engine simulates the book's model.",
        "",
        f"The {THREAD_BOOK:,}-obligor book with the financing mechanics "
        "(`portfolios.mechanics_data`: "
        f"{portfolios.N_VEHICLES} vehicles with non-renewal, recovery on a factor, a guarantee "
        f"and {len(portfolios.TRANCHES)} tranches each; {portfolios.N_DEPENDENCIES} revenue "
        f"dependencies; {len(portfolios.LINES)} lines to funds), against the plain book above:",
        "",
        *mechanics_table(mechanics_rows, rows),
        "",
        f"Fast path through `stress.engine.simulate` (block size {THREAD_BLOCK:,}), median of "
        f"{repeats}, 1 and 2 threads interleaved; the fastest-runs ratio is the least disturbed "
        "by other load, and CPU ÷ wall well below 2 means the second core was not all ours:",
        "",
        *thread_table(thread_rows),
        "",
        f"Peak RSS of `ai-stress run` (fast kernel, {CLI_BOOK:,}-obligor Gaussian book, block "
        f"size {CLI_BLOCK:,}, {os.cpu_count()} threads): `ru_maxrss` of the process, read as "
        "RUSAGE_CHILDREN by a small launcher that started it and nothing else; wall s is the "
        "whole command, simulate s its simulation loop (manifest `timings`):",
        "",
        *cli_table(cli_rows),
        "",
        "Load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + ".",
        "",
        "Reproduce: `python benchmarks/loss_kernels.py`" + (" (without --quick)" if quick else ""),
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
