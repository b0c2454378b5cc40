"""Sweeps: one run per point of a Cartesian grid of scenario overrides.

``ai-stress sweep SCENARIO --vary KEY=V1,V2 [--vary ...] --out DIR`` validates every point
first, then runs each as an ordinary run under ``DIR/point=NN/`` (a hive-partitioned layout:
``pyarrow.dataset.dataset(DIR, partitioning="hive")`` reads all points at once). Every point
uses the same seed, paths and blocks, so the points share their random numbers (common random
numbers) and differences between them are the effect of the overrides, not noise. The grid is
in ``DIR/points.parquet``; ``DIR/sweep.json`` is written last.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from stress import io as sio
from stress.engine import check_kernel
from stress.exceptions import OptionError, RunDirError
from stress.report import completed_manifest
from stress.run import (
    output_foreign,
    prepare_output,
    resolve_options,
    run_foreign,
    run_scenario,
)
from stress.scenario import KEY_RULE, load_scenario, split_assignment

SWEEP_MANIFEST = "sweep.json"
POINTS_TABLE = "points.parquet"
# What every point of a sweep shares, so that they differ only by the varied values.
SHARED = (["simulation", "paths"], ["simulation", "seed"], ["simulation", "block_size"])
# Keys of every sweep.json ai-stress writes, from the "running" one written first.
SWEEP_MANIFEST_KEYS = ("status", "scenario", "axes", "points", "points_done")


@dataclass(frozen=True)
class Axis:
    key: str
    texts: list[str]  # the values as given, TOML literals or bare strings


@dataclass(frozen=True)
class SweepResult:
    out: Path
    points: list[dict[str, Any]]
    manifest: dict[str, Any]


def parse_vary(texts: Sequence[str]) -> list[Axis]:
    """``KEY=V1,V2,...`` per axis, KEY a dotted TOML key as for ``--set``; values are TOML
    literals (or bare strings), cut at the commas outside arrays, inline tables and strings
    (``split_values``)."""
    axes: list[Axis] = []
    keys: list[list[str]] = []
    for text in texts:
        split = split_assignment(text)
        if split is None or not split[2].strip():
            raise OptionError(f"--vary: expected KEY=V1,V2,... with {KEY_RULE} (got {text!r})")
        key, key_parts, values = split
        if key_parts in keys:
            raise OptionError(f"--vary: {key} is varied twice")
        if key_parts in SHARED:
            raise OptionError(
                f"--vary: {key} cannot vary: the points of a sweep share their paths, seed and "
                "block size (common random numbers); set them with --paths, --seed and "
                "--block-size"
            )
        keys.append(key_parts)
        texts_of_key = [v.strip() for v in split_values(values)]
        if any(not v for v in texts_of_key):
            raise OptionError(f"--vary {key}: empty value in {values!r}")
        axes.append(Axis(key, texts_of_key))
    if not axes:
        raise OptionError("--vary: give at least one KEY=V1,V2,... to sweep")
    return axes


def split_values(text: str) -> list[str]:
    """``text`` cut at its top-level commas: not inside a TOML array or inline table, nor
    inside a quoted string, so that ``[0.9, 0.99],[0.99, 0.999]`` is two values."""
    values, start, depth, quote = [], 0, 0, ""
    for at, char in enumerate(text):
        if quote:
            if char == quote and not (quote == '"' and text[at - 1] == "\\"):
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            values.append(text[start:at])
            start = at + 1
    values.append(text[start:])
    return values


def grid(axes: Sequence[Axis]) -> list[list[str]]:
    """Every combination, the last axis varying fastest: ``KEY=VALUE`` assignments per point."""
    return [
        [f"{axis.key}={value}" for axis, value in zip(axes, values, strict=True)]
        for values in itertools.product(*(axis.texts for axis in axes))
    ]


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def run_sweep(
    scenario: str | Path,
    vary: Sequence[str],
    out: str | Path,
    paths: int | None = None,
    seed: int | None = None,
    block_size: int | None = None,
    threads: int | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    kernel: str = "fast",
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run the grid of ``vary`` overrides (after ``overrides``) on ``scenario``.

    Every point is validated before anything is written; a refused sweep leaves ``out``
    untouched.
    """
    axes = parse_vary(vary)
    points = grid(axes)
    for assignments in points:  # all or nothing: find a bad grid value or option first
        loaded = load_scenario(scenario, [*overrides, *assignments])
        resolve_options(loaded, paths, seed, block_size, threads)
    check_kernel(kernel)
    out_dir = Path(out)
    prepare_output(out_dir, overwrite, sweep_foreign, "sweep")

    rows = []
    for number, assignments in enumerate(points):
        row: dict[str, Any] = {"point": number, "directory": f"point={number:02d}"}
        for axis, assignment in zip(axes, assignments, strict=True):
            row[axis.key] = split_assignment(assignment)[2]  # the value as given
        rows.append(row)
    started = datetime.now(UTC)
    manifest: dict[str, Any] = {
        "status": "running",
        "scenario": str(scenario),
        "axes": [{"key": a.key, "values": [_value(t) for t in a.texts]} for a in axes],
        "overrides": list(overrides),
        "points": len(points),
        "points_done": 0,
        "started_at": started.isoformat(timespec="seconds"),
    }
    # Written before any point, so that even a sweep killed outright leaves a directory that
    # says what it is (and that --overwrite recognises).
    sio.write_json(manifest, out_dir / SWEEP_MANIFEST)
    try:
        for row, assignments in zip(rows, points, strict=True):
            result = run_scenario(
                scenario,
                out=out_dir / row["directory"],
                paths=paths,
                seed=seed,
                block_size=block_size,
                threads=threads,
                overrides=[*overrides, *assignments],
                kernel=kernel,
            )
            row["scenario_hash"] = result.manifest["scenario"]["hash"]
            manifest.update(
                points_done=manifest["points_done"] + 1,
                paths=result.manifest["paths"],
                seed=result.manifest["seed"],
                block_size=result.manifest["block_size"],
            )
            if progress is not None:
                progress(manifest["points_done"], len(points))
        table = pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [pa.field("point", pa.int64()), pa.field("directory", pa.string())]
                + [pa.field(a.key, pa.string()) for a in axes]
                + [pa.field("scenario_hash", pa.string())]
            ),
        )
        sio.write_parquet(table, out_dir / POINTS_TABLE)
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        manifest.update(status=status, error=f"{type(err).__name__}: {err}")
        sio.write_json(manifest, out_dir / SWEEP_MANIFEST)
        raise
    manifest.update(status="complete", finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
    sio.write_json(manifest, out_dir / SWEEP_MANIFEST)
    return SweepResult(out=out_dir, points=rows, manifest=manifest)


def sweep_foreign(folder: Path) -> list[str]:
    """What in ``folder`` an ai-stress sweep did not write (``stress.run.output_foreign``):
    anything but its manifest, its points table, and point directories each holding a run."""
    return output_foreign(folder, SWEEP_MANIFEST, SWEEP_MANIFEST_KEYS, _sweep_entry_foreign)


def _sweep_entry_foreign(entry: Path) -> list[str]:
    name = entry.name
    if name.startswith("point=") and entry.is_dir():
        return [f"{name}/{other}" for other in run_foreign(entry)]
    return [] if name in (SWEEP_MANIFEST, POINTS_TABLE) and entry.is_file() else [name]


def is_sweep(folder: Path) -> bool:
    return (folder / SWEEP_MANIFEST).is_file()


def load_sweep(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A completed sweep's manifest and points table; anything else refused clearly."""
    manifest = completed_manifest(folder, SWEEP_MANIFEST, "sweep", SWEEP_MANIFEST_KEYS)
    try:
        points = sio.read_table_rows(folder / POINTS_TABLE)
    except (OSError, ValueError) as err:
        raise RunDirError(f"{folder / POINTS_TABLE}: cannot be read ({err})") from None
    return manifest, points
