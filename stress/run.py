"""A batch run: scenario in, run directory out (shared/SPEC.md §5).

:func:`run_scenario` is what ``ai-stress run`` calls. Everything that can be refused is
refused before a byte is written: the scenario is validated, the options checked, and the
output directory must be empty unless ``overwrite`` is asked for (and then it must hold an
ai-stress run and nothing else, :func:`run_foreign`). ``manifest.json`` is written first,
as "running"; parts are written as blocks finish; the manifest is written again last and
says whether the run completed. A failed or interrupted run keeps its whole blocks only.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import scipy

from stress import __version__
from stress import io as sio
from stress.compile import Portfolio, compile_scenario
from stress.engine import check_kernel, default_threads, iter_blocks, plan_blocks
from stress.exceptions import OptionError, OutputError
from stress.metrics import (
    Column,
    InstitutionStats,
    LossAccumulator,
    MechanicsStats,
    amplification_level,
    amplification_rows,
)
from stress.scenario import Scenario, load_scenario, shipped_scenarios
from stress.tomlwrite import dumps

RUN_FILES = ("manifest.json", "scenario.toml", "summary.parquet")
DATASETS = ("paths", "institutions", "classes", "vehicles")  # directories of block parts
# Keys every manifest.json that ai-stress writes has from the start, "running" included.
RUN_MANIFEST_KEYS = ("status", "scenario", "paths", "seed", "block_size", "command")
PART = re.compile(r"part-\d{6}\.parquet")
# Blocks of a run: each is a part file in every dataset, and the plan lists them all.
MAX_BLOCKS = 1_000_000
ESTIMATOR = "mc"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """Options of a run after defaults from the scenario are filled in."""

    paths: int
    seed: int
    block_size: int
    threads: int


@dataclass(frozen=True)
class RunResult:
    out: Path
    manifest: dict[str, Any]


def resolve_options(
    scenario: Scenario,
    paths: int | None = None,
    seed: int | None = None,
    block_size: int | None = None,
    threads: int | None = None,
) -> RunOptions:
    """Fill options from the scenario's ``[simulation]`` table and check them."""
    sim = scenario.model.simulation
    options = RunOptions(
        paths=sim.paths if paths is None else paths,
        seed=sim.seed if seed is None else seed,
        block_size=sim.block_size if block_size is None else block_size,
        threads=default_threads() if threads is None else threads,
    )
    for name, value, low in (
        ("--paths", options.paths, 1),
        ("--seed", options.seed, 0),
        ("--block-size", options.block_size, 1),
        ("--threads", options.threads, 1),
    ):
        if value < low:
            raise OptionError(f"{name}: must be at least {low} (got {value})")
    blocks = -(-options.paths // options.block_size)
    if blocks > MAX_BLOCKS:
        raise OptionError(
            f"--paths: {options.paths:,} paths in blocks of {options.block_size:,} make "
            f"{blocks:,} blocks, more than {MAX_BLOCKS:,} (a part file per block and "
            "dataset): use a larger --block-size"
        )
    return options


def prepare_output(
    out: Path,
    overwrite: bool,
    foreign: Callable[[Path], list[str]] | None = None,
    what: str = "run",
) -> None:
    """Make ``out`` ready for a new run (or sweep), or refuse without touching anything.

    ``--overwrite`` empties a directory only when everything in it is ai-stress output:
    ``foreign(out)`` (default :func:`run_foreign`) lists what is not, and anything listed
    refuses the whole directory.
    """
    try:
        _prepare_output(out, overwrite, foreign or run_foreign, what)
    except OSError as err:
        # A path the system refuses (too long, under a file, no permission): said plainly.
        raise OutputError(
            f"{out}: cannot be used as the output directory: {err.strerror}"
        ) from None


def _prepare_output(
    out: Path, overwrite: bool, foreign: Callable[[Path], list[str]], what: str
) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    if out.is_dir():
        entries = sorted(out.iterdir())
        if entries and not overwrite:
            raise OutputError(
                f"{out}: directory is not empty; pass --overwrite to replace the {what} in it "
                "or choose another --out"
            )
        others = foreign(out)
        if others:
            shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
            raise OutputError(
                f"{out}: --overwrite only replaces an ai-stress {what}, and this directory "
                f"holds {shown}; nothing was deleted"
            )
        for target in entries:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def is_temporary(name: str) -> bool:
    """A file that ai-stress writes and renames into place (``stress.io.temporary_name``)."""
    return name.startswith(".") and name.endswith(".tmp")


def written_manifest(path: Path, keys: Sequence[str]) -> bool:
    """Whether ``path`` is a JSON object with ``keys``: a manifest ai-stress wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in keys)


def output_foreign(
    folder: Path, manifest: str, keys: Sequence[str], own: Callable[[Path], list[str]]
) -> list[str]:
    """What in ``folder`` ai-stress did not write, as relative paths: everything when
    ``manifest`` is not one ai-stress wrote (it writes it first, as "running"); otherwise the
    symbolic links (ai-stress makes none) and what ``own(entry)`` lists of each other entry
    that is not a temporary file."""
    entries = sorted(folder.iterdir())
    if not written_manifest(folder / manifest, keys):
        return [f"{e.name} (no {manifest} written by ai-stress)" for e in entries[:1]] + [
            e.name for e in entries[1:]
        ]
    foreign = []
    for entry in entries:
        if entry.is_symlink():
            foreign.append(entry.name)
        elif not is_temporary(entry.name):
            foreign += own(entry)
    return foreign


def run_foreign(folder: Path) -> list[str]:
    """What in ``folder`` an ai-stress run did not write (:func:`output_foreign`): anything
    but its manifest, its files and its datasets' block parts."""
    return output_foreign(folder, "manifest.json", RUN_MANIFEST_KEYS, _run_entry_foreign)


def _run_entry_foreign(entry: Path) -> list[str]:
    name = entry.name
    if name in DATASETS and entry.is_dir():
        return [
            f"{name}/{part.name}"
            for part in sorted(entry.iterdir())
            if part.is_symlink()
            or not part.is_file()
            or not (PART.fullmatch(part.name) or is_temporary(part.name))
        ]
    return [] if name in RUN_FILES and entry.is_file() else [name]


def remove_parts_after(out_dir: Path, blocks_done: int) -> None:
    """Delete the parts of blocks ``blocks_done`` on (blocks finish in order) and temporary
    files from the datasets of ``out_dir``, so that what is left is whole blocks."""
    for dataset in DATASETS:
        folder = out_dir / dataset
        if not folder.is_dir():
            continue
        for part in folder.iterdir():
            name = part.name
            if is_temporary(name) or (PART.fullmatch(name) and int(name[5:11]) >= blocks_done):
                part.unlink(missing_ok=True)


def loss_columns(portfolio: Portfolio) -> list[Column]:
    """The loss series summarised by a run, in the order of :func:`loss_matrix`."""
    return (
        [Column("system", "system")]
        + [Column("institutions", "first_round"), Column("institutions", "total")]
        + [Column("institution", i) for i in portfolio.institution_ids]
        + [Column("type", t) for t in portfolio.type_names]
        + [Column("class", c) for c in portfolio.class_names]
        + [Column("vehicle", v) for v in portfolio.vehicles.ids]
        + [Column("tranche", t) for t in portfolio.vehicles.tranche_ids]
    )


def loss_matrix(
    portfolio: Portfolio, system, first_round, total, classes, vehicles, tranches
) -> np.ndarray:
    """(n, S) losses in :func:`loss_columns` order; institution types are summed here.

    Institutions and types carry their total loss (first round plus second round); vehicles
    their asset loss after the guarantee.
    """
    by_type = np.zeros((total.shape[0], len(portfolio.type_names)))
    for i, t in enumerate(portfolio.institution_type):
        by_type[:, t] += total[:, i]
    return np.column_stack(
        [
            system,
            first_round.sum(axis=1),
            total.sum(axis=1),
            total,
            by_type,
            classes,
            vehicles,
            tranches,
        ]
    )


def capital_rows(portfolio: Portfolio) -> list[dict[str, Any]]:
    """Each institution's capital, the yardstick of its losses, as summary rows."""
    return [
        {
            "scope": "institution",
            "name": name,
            "metric": "capital",
            "level": None,
            "value": float(capital),
            "std_error": None,
        }
        for name, capital in zip(
            portfolio.institution_ids, portfolio.institution_capital, strict=True
        )
    ]


def passed_on(portfolio: Portfolio, first_round: np.ndarray) -> np.ndarray:
    """(n, F) loss each borrowing institution passes to its lenders: its first-round loss
    beyond capital, up to the lines' EAD (what the kernels book on the lines)."""
    lines = portfolio.lookthrough
    excess = first_round[:, lines.institution] - lines.capital
    return np.minimum(np.maximum(excess, 0.0), lines.debt)


def loss_maxima(portfolio: Portfolio) -> np.ndarray:
    """The largest possible loss of each :func:`loss_columns` series: every EAD lost in full."""
    ead = portfolio.exposure_ead
    n_institutions = len(portfolio.institution_ids)
    holder = np.repeat(np.arange(n_institutions), np.diff(portfolio.holding_indptr))
    held = portfolio.holding_share * ead[portfolio.holding_exposure]
    # A loose bound is enough for the histogram's grid: an institution loses at most its
    # holdings twice (credit loss, then fire-sale mark-down at EAD), its claims and its
    # external assets (default costs).
    layout = portfolio.contagion
    claims = np.bincount(layout.owe_creditor, weights=layout.owe_amount, minlength=n_institutions)
    held_value = np.bincount(holder, weights=held, minlength=n_institutions)
    institution = 2.0 * held_value + claims + layout.external_assets
    by_type = np.bincount(
        portfolio.institution_type, weights=institution, minlength=len(portfolio.type_names)
    )
    by_class = np.bincount(
        portfolio.exposure_class, weights=ead, minlength=len(portfolio.class_names)
    )
    return np.concatenate(
        [
            [ead.sum(), institution.sum(), institution.sum()],
            institution,
            by_type,
            by_class,
            portfolio.vehicles.asset_value,
            portfolio.vehicles.tranche_width,
        ]
    )


def read_block_losses(out_dir: Path, portfolio: Portfolio, name: str) -> np.ndarray:
    """A block's loss matrix read back from its Parquet parts (the metrics' second pass)."""
    system = sio.read_column(out_dir / "paths" / name, "system_loss")
    shape = (system.shape[0], len(portfolio.institution_ids))
    institutions = out_dir / "institutions" / name
    vehicles = out_dir / "vehicles" / name
    n_tranches = (system.shape[0], portfolio.n_tranches)
    # Each vehicle's asset loss is repeated on its tranche rows: take its first.
    first_tranche = portfolio.vehicles.tranche_indptr[:-1]
    return loss_matrix(
        portfolio,
        system,
        sio.read_column(institutions, "first_round_loss").reshape(shape),
        sio.read_column(institutions, "total_loss").reshape(shape),
        sio.read_column(out_dir / "classes" / name, "loss").reshape(
            system.shape[0], len(portfolio.class_names)
        ),
        sio.read_column(vehicles, "asset_loss").reshape(n_tranches)[:, first_tranche],
        sio.read_column(vehicles, "tranche_loss").reshape(n_tranches),
    )


def reproduce_command(
    argument: str, options: RunOptions, overrides: Sequence[str], out: Path, flags: list[str]
) -> str:
    """The command that runs the same paths again: into ``<out>-reproduced`` beside ``out``
    (``out`` itself holds the run it describes), with absolute paths, so that it works as
    printed from any directory."""
    words = [
        "ai-stress",
        "run",
        argument,
        "--paths",
        str(options.paths),
        "--seed",
        str(options.seed),
        "--block-size",
        str(options.block_size),
    ]
    words += flags
    for assignment in overrides:
        words += ["--set", assignment]
    words += ["--out", f"{Path(out).absolute()}-reproduced"]
    return shlex.join(words)


def versions() -> dict[str, str]:
    return {
        "ai_stress": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "pyarrow": pa.__version__,
    }


def run_scenario(
    scenario: str | Path,
    out: str | Path | None = None,
    paths: int | None = None,
    seed: int | None = None,
    block_size: int | None = None,
    threads: int | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    progress: Progress | None = None,
    kernel: str = "fast",
    repair_correlations: bool = False,
) -> RunResult:
    """Run a scenario and write its run directory.

    Parameters
    ----------
    scenario:
        A scenario file or the name of a shipped scenario.
    out:
        The run directory; default ``runs/<scenario name>``.
    paths, seed, block_size:
        Override the scenario's ``[simulation]`` values.
    threads:
        Worker threads (default: all cores). Results do not depend on it.
    overrides:
        ``KEY=VALUE`` assignments applied to the scenario before validation.
    overwrite:
        Replace an existing ai-stress run in ``out``.
    progress:
        Called as ``progress(paths_done, paths_total)`` after each block.
    kernel:
        ``"fast"`` (conditional independence) or ``"reference"`` (one latent variable per
        obligor and path); the same model, equal in distribution.
    repair_correlations:
        Run on the nearest correlation matrix when the scenario's is not positive
        semi-definite; the audit goes into the manifest and the repaired pairs into the
        run's ``scenario.toml``.

    Returns
    -------
    RunResult
        The run directory and its manifest.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    loaded = load_scenario(scenario, overrides, repair_correlations=repair_correlations)
    options = resolve_options(loaded, paths, seed, block_size, threads)
    check_kernel(kernel)
    out_dir = Path(out) if out is not None else Path("runs") / loaded.name
    portfolio = compile_scenario(loaded)
    blocks = plan_blocks(options.paths, options.block_size)
    prepare_output(out_dir, overwrite)

    shipped = str(scenario) in shipped_scenarios()
    argument = str(scenario) if shipped else str(Path(loaded.source).absolute())
    flags = (["--kernel", kernel] if kernel != "fast" else []) + (
        ["--repair-correlations"] if repair_correlations else []
    )
    command = reproduce_command(argument, options, overrides, out_dir, flags)
    provenance = {
        "scenario": loaded.name,
        "scenario_hash": loaded.hash,
        "seed": options.seed,
        "paths": options.paths,
        "block_size": options.block_size,
        "estimator": ESTIMATOR,
        "kernel": kernel,
        "versions": versions(),
    }
    manifest: dict[str, Any] = {
        "status": "running",
        "scenario": {
            "name": loaded.name,
            "source": loaded.source,
            "extends": list(loaded.inherited_from),
            "overrides": list(overrides),
            "hash": loaded.hash,
        },
        "seed": options.seed,
        "paths": options.paths,
        "block_size": options.block_size,
        "blocks_total": len(blocks),
        "blocks_done": 0,
        "estimator": ESTIMATOR,
        "kernel": kernel,
        "copula": loaded.model.simulation.copula,
        "dof": loaded.model.simulation.dof,
        "levels": list(loaded.model.simulation.levels),
        "threads": options.threads,
        "versions": versions(),
        "correlation_repair": loaded.repair.summary() if loaded.repair else None,
        "contagion": {
            "model": portfolio.contagion.model,
            "fire_sales": portfolio.contagion.fire_sales,
            "max_rounds": portfolio.contagion.max_rounds,
        },
        "command": command,
        "started_at": started_at.isoformat(timespec="seconds"),
    }
    header = f"Resolved scenario of an ai-stress run (hash {loaded.hash}).\nReproduce: {command}"
    sio.write_text(dumps(loaded.data, header=header), out_dir / "scenario.toml")
    # Written before any part, so that even a run killed outright leaves a directory that
    # says what it is: not complete, so no report reads it, and --overwrite recognises it.
    sio.write_json(manifest, out_dir / "manifest.json")

    paths_dir = out_dir / "paths"
    institutions_dir = out_dir / "institutions"
    classes_dir = out_dir / "classes"
    vehicles_dir = out_dir / "vehicles"
    for folder in (paths_dir, institutions_dir, classes_dir, vehicles_dir):
        folder.mkdir()
    paths_schema = sio.with_provenance(sio.paths_schema(portfolio.factor_names), provenance)
    institutions_schema = sio.with_provenance(sio.INSTITUTIONS_SCHEMA, provenance)
    classes_schema = sio.with_provenance(sio.CLASSES_SCHEMA, provenance)
    vehicles_schema = sio.with_provenance(sio.VEHICLES_SCHEMA, provenance)
    vehicles = portfolio.vehicles
    institution_types = [portfolio.type_names[t] for t in portfolio.institution_type]

    accumulator = LossAccumulator(
        loss_columns(portfolio),
        loaded.model.simulation.levels,
        options.block_size,
        loss_maxima(portfolio),
    )
    institution_stats = InstitutionStats(portfolio.institution_ids)
    mechanics_stats = MechanicsStats(
        vehicles.ids, [portfolio.institution_ids[i] for i in portfolio.lookthrough.institution]
    )
    done = 0
    simulate_started = time.perf_counter()
    try:
        for result in iter_blocks(portfolio, options.seed, blocks, options.threads, kernel):
            name = sio.part_name(result.block.index)
            sio.write_parquet(sio.paths_table(result, paths_schema), paths_dir / name)
            sio.write_parquet(
                sio.institutions_table(
                    result,
                    portfolio.institution_ids,
                    institution_types,
                    portfolio.institution_capital,
                    institutions_schema,
                ),
                institutions_dir / name,
            )
            sio.write_parquet(
                sio.classes_table(result, portfolio.class_names, classes_schema),
                classes_dir / name,
            )
            sio.write_parquet(
                sio.vehicles_table(
                    result,
                    vehicles.ids,
                    vehicles.tranche_indptr,
                    vehicles.tranche_ids,
                    vehicles_schema,
                ),
                vehicles_dir / name,
            )
            accumulator.add(
                loss_matrix(
                    portfolio,
                    result.system_loss,
                    result.institution_loss,
                    result.total_loss,
                    result.class_loss,
                    result.vehicle_loss,
                    result.tranche_loss,
                )
            )
            mechanics_stats.add(
                result.lessee_defaulted,
                result.non_renewed,
                result.guarantee_paid,
                passed_on(portfolio, result.institution_loss),
            )
            institution_stats.add(
                {
                    "first_round": result.institution_loss,
                    "contagion": result.contagion_loss,
                    "fire_sale": result.fire_sale_loss,
                },
                result.defaulted,
                result.distressed,
                result.rounds_capped,
            )
            done += result.block.size
            manifest["blocks_done"] += 1
            if progress is not None:
                progress(done, options.paths)
        simulate_seconds = time.perf_counter() - simulate_started

        # Exact tail quantiles in bounded memory: read the parts back for the VaR bins.
        if accumulator.needs_refining():
            for block in blocks:
                name = sio.part_name(block.index)
                accumulator.refine(read_block_losses(out_dir, portfolio, name))
        rows = accumulator.rows()
        levels = loaded.model.simulation.levels
        tail_level = amplification_level(levels)
        rows += amplification_rows(accumulator, tail_level) + institution_stats.rows()
        rows += mechanics_stats.rows() + capital_rows(portfolio)
        summary = sio.summary_table(rows, sio.with_provenance(sio.SUMMARY_SCHEMA, provenance))
        sio.write_parquet(summary, out_dir / "summary.parquet")
    except BaseException as err:
        manifest["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        manifest["error"] = f"{type(err).__name__}: {err}"
        manifest["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        # Keep the blocks counted as done, in every dataset alike: the parts of a block
        # caught half-written, and any temporary file, go.
        remove_parts_after(out_dir, manifest["blocks_done"])
        sio.write_json(manifest, out_dir / "manifest.json")
        raise

    total_seconds = time.perf_counter() - started
    manifest["contagion"]["paths_at_round_bound"] = institution_stats.rounds_capped
    manifest.update(
        status="complete",
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        timings={
            "setup_s": round(simulate_started - started, 3),
            "simulate_s": round(simulate_seconds, 3),
            "total_s": round(total_seconds, 3),
            "paths_per_s": round(options.paths / simulate_seconds, 1) if simulate_seconds else None,
        },
        files={
            "paths": {"parts": len(blocks), "rows": options.paths},
            "institutions": {
                "parts": len(blocks),
                "rows": options.paths * len(portfolio.institution_ids),
            },
            "classes": {
                "parts": len(blocks),
                "rows": options.paths * len(portfolio.class_names),
            },
            "vehicles": {"parts": len(blocks), "rows": options.paths * portfolio.n_tranches},
            "summary.parquet": {"rows": summary.num_rows},
        },
    )
    sio.write_json(manifest, out_dir / "manifest.json")
    return RunResult(out=out_dir, manifest=manifest)
