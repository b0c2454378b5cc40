"""Human reports of a run directory: tables, Markdown or JSON from ``summary.parquet``.

Every number printed comes from ``summary.parquet``; the report prints the command that
reproduces the run beside it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from stress.exceptions import RunDirError
from stress.metrics import amplification_level

Format = Literal["table", "markdown", "json"]
SCOPE_TITLES = {
    "system": "System",
    "institutions": "All institutions: first-round and total loss",
    "institution": "Institutions",
    "type": "Institution types",
    "class": "Exposure classes",
    "vehicle": "Vehicles: asset loss after the guarantee",
    "tranche": "Tranches",
}


@dataclass(frozen=True)
class RunSummary:
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]

    def levels(self) -> list[float]:
        return sorted({r["level"] for r in self.rows if r["level"] is not None})

    def names(self, scope: str) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            if r["scope"] == scope:
                seen.setdefault(r["name"], None)
        return list(seen)

    @functools.cached_property
    def _index(self) -> dict[tuple, dict[str, Any]]:
        index: dict[tuple, dict[str, Any]] = {}
        for r in self.rows:
            index.setdefault((r["scope"], r["name"], r["metric"], r["level"]), r)
            index.setdefault((r["scope"], r["name"], r["metric"], None), r)
        return index

    def get(self, scope: str, name: str, metric: str, level: float | None = None):
        """The row of (scope, name, metric) at ``level``; without a level, the first such row."""
        return self._index.get((scope, name, metric, level))


# What the report reads from a finished run's manifest.
MANIFEST_KEYS = (
    "scenario",
    "paths",
    "seed",
    "block_size",
    "copula",
    "estimator",
    "kernel",
    "command",
)


def completed_manifest(folder: Path, name: str, what: str, keys: Sequence[str]) -> dict[str, Any]:
    """The manifest ``name`` of a completed run or sweep (``what``) in ``folder``, with
    ``keys``; anything else refused with a clear error."""
    path = folder / name
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunDirError(f"{path}: cannot be read ({err})") from None
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path}: not an ai-stress manifest (not a JSON object)")
    status = manifest.get("status")
    if status != "complete":
        detail = f": {manifest['error']}" if manifest.get("error") else ""
        raise RunDirError(f"{folder}: the {what} did not complete (status {status!r}{detail})")
    missing = [key for key in keys if key not in manifest]
    if missing:
        raise RunDirError(
            f"{path}: not a complete ai-stress manifest (missing {', '.join(missing)})"
        )
    return manifest


def load_run(run_dir: str | Path) -> RunSummary:
    """Read a completed run's manifest and summary; refuse anything else with a clear error."""
    folder = Path(run_dir)
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise RunDirError(f"{folder}: no such run directory")
    if not manifest_path.is_file():
        raise RunDirError(f"{folder}: no manifest.json, so not a finished ai-stress run")
    manifest = completed_manifest(folder, "manifest.json", "run", MANIFEST_KEYS)
    try:
        rows = pq.read_table(folder / "summary.parquet").to_pylist()
    except (OSError, ValueError) as err:
        raise RunDirError(f"{folder / 'summary.parquet'}: cannot be read ({err})") from None
    return RunSummary(manifest=manifest, rows=rows)


def format_amount(value: float | None) -> str:
    """Compact amounts: 1.23bn, 456.7m, 12.0k; probabilities use :func:`format_probability`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    magnitude = abs(value)
    for size, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if magnitude >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def format_probability(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.3g}%"


def _cell(row: dict[str, Any] | None, probability: bool = False) -> str:
    if row is None:
        return ""
    fmt = format_probability if probability else format_amount
    text = fmt(row["value"])
    if row["std_error"] is not None:
        text += f" ± {fmt(row['std_error'])}"
    return text


def _level_name(level: float) -> str:
    return f"{100 * level:g}%"


def scope_table(summary: RunSummary, scope: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one scope: EL, SD, VaR and ES at every level, PD where defined."""
    levels = summary.levels()
    header = ["name", "EL", "SD"]
    header += [f"VaR {_level_name(a)}" for a in levels]
    header += [f"ES {_level_name(a)}" for a in levels]
    with_pd = any(r["scope"] == scope and r["metric"] == "p_default" for r in summary.rows)
    with_pd = with_pd and scope == "institution"
    if with_pd:
        header.append("P(default)")
    body = []
    for name in summary.names(scope):
        if summary.get(scope, name, "el") is None:
            continue  # a scope-wide row (amplification, default counts), shown as text
        line = [name, _cell(summary.get(scope, name, "el")), _cell(summary.get(scope, name, "sd"))]
        line += [_cell(summary.get(scope, name, "var", a)) for a in levels]
        line += [_cell(summary.get(scope, name, "es", a)) for a in levels]
        if with_pd:
            line.append(_cell(summary.get(scope, name, "p_default"), probability=True))
        body.append(line)
    return header, body


def second_round_table(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    """First-round against total loss per institution, and default and distress odds."""
    header = [
        "name",
        "first-round EL",
        "contagion EL",
        "fire-sale EL",
        "total EL",
        "P(default)",
        "P(distress)",
    ]
    body = []
    for name in summary.names("institution"):
        line = [name]
        for metric in ("el_first_round", "el_contagion", "el_fire_sale", "el"):
            line.append(_cell(summary.get("institution", name, metric)))
        for metric in ("p_default", "p_distress"):
            line.append(_cell(summary.get("institution", name, metric), probability=True))
        body.append(line)
    return header, body


def vehicle_table(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    """How each vehicle's asset is hit: lessee default, non-renewal, and the guarantee."""
    header = ["vehicle", "P(lessee default)", "P(non-renewal)", "P(asset hit)"]
    header += ["mean guarantee paid", "EL after guarantee"]
    body = []
    for name in summary.names("vehicle"):
        line = [name]
        for metric in ("p_lessee_default", "p_non_renewal", "p_asset_hit"):
            line.append(_cell(summary.get("vehicle", name, metric), probability=True))
        line.append(_cell(summary.get("vehicle", name, "el_guarantee_paid")))
        line.append(_cell(summary.get("vehicle", name, "el")))
        body.append(line)
    return header, body


def lines_table(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    """Funds and BDCs that borrow through lines: what they pass on to their lenders."""
    header = ["institution", "first-round EL", "capital", "P(default)", "mean passed to lenders"]
    body = []
    for name in summary.names("institution"):
        passed = summary.get("institution", name, "el_passed_on")
        if passed is None:
            continue
        body.append(
            [
                name,
                _cell(summary.get("institution", name, "el_first_round")),
                _cell(summary.get("institution", name, "capital")),
                _cell(summary.get("institution", name, "p_default"), probability=True),
                _cell(passed),
            ]
        )
    return header, body


def system_lines(summary: RunSummary) -> list[str]:
    """Amplification and the number of defaulting institutions, as sentences."""
    amplification = summary.get("institutions", "all", "amplification")
    tail = summary.get("institutions", "all", "amplification_tail")
    defaults = summary.get("institutions", "all", "expected_defaults")
    if defaults is None:
        return []
    contagion = summary.manifest.get("contagion", {})
    stopped = contagion.get("paths_at_round_bound", 0)
    bound = []
    if stopped:
        bound = [
            f"Second round not settled on {stopped:,} of {summary.manifest['paths']:,} paths: "
            f"stopped by a round bound (contagion.max_rounds = {contagion.get('max_rounds')}, "
            "or DebtRank's own); their rows hold the state after the last round."
        ]
    at_least = [
        f"≥{r['name']}: {format_probability(r['value'])}"
        for r in summary.rows
        if r["metric"] == "p_defaults_at_least" and r["value"] > 0
    ]

    def with_error(row: dict | None, undefined: str) -> str:
        if row is None:
            return f"undefined ({undefined})"
        error = row.get("std_error")
        return f"{row['value']:.4g}" + ("" if error is None else f" ± {error:.2g}")

    tail_level = tail["level"] if tail else amplification_level(summary.levels())
    return [
        f"Contagion amplification (total ÷ first-round loss of all institutions): "
        f"{with_error(amplification, 'no first-round loss on any path')} in the mean, "
        f"{with_error(tail, 'no first-round loss in the tail')} at ES "
        f"{_level_name(tail_level)}.",
        f"Expected defaulting institutions per path: {with_error(defaults, 'no paths')}; "
        "P(at least k default): "
        + (", ".join(at_least) if at_least else "none default on any path")
        + ".",
        *bound,
    ]


def _tables(summary: RunSummary) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    for scope, title in SCOPE_TITLES.items():
        header, body = scope_table(summary, scope)
        if body:
            tables.append((title, header, body))
    header, body = vehicle_table(summary)
    if body:
        tables.append(("Vehicles: lessee default, non-renewal and guarantees", header, body))
    header, body = lines_table(summary)
    if body:
        tables.append(("Lines to funds: losses beyond capital passed to lenders", header, body))
    header, body = second_round_table(summary)
    if body:
        tables.append(("Second round: first-round against total loss", header, body))
    return tables


def _heading(summary: RunSummary) -> list[str]:
    m = summary.manifest
    scenario = m["scenario"]
    copula = m["copula"] + (f" (ν = {m['dof']:g})" if m.get("dof") else "")
    return [
        f"ai-stress run of scenario {scenario['name']!r} ({scenario['hash'][:12]})",
        f"{m['paths']:,} paths, seed {m['seed']}, block size {m['block_size']:,}, "
        f"{copula} copula, estimator {m['estimator']}, kernel {m['kernel']}",
        "Values ± Monte Carlo standard errors (batch means over blocks for SD, VaR and ES).",
        f"Reproduce: {m['command']}",
    ]


def render_markdown(summary: RunSummary) -> str:
    lines = [f"# {_heading(summary)[0]}", ""]
    lines += [f"{line}  " for line in _heading(summary)[1:]]
    for title, header, body in _tables(summary):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += ["", *system_lines(summary)]
    return "\n".join(lines) + "\n"


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float (an infinite VaR of an unbounded loss, say) as
    None: JSON has no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def render_json(summary: RunSummary) -> str:
    document = _strict({"manifest": summary.manifest, "summary": summary.rows})
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def print_table(summary: RunSummary) -> None:
    """Print rich tables to the terminal (plain text when not a terminal)."""
    console = _console(200)
    for i, line in enumerate(_heading(summary)):
        console.print(line, style="bold" if i == 0 else None, markup=False, highlight=False)
    for title, header, body in _tables(summary):
        _print_fitted(console, title, header, body)
    for line in system_lines(summary):
        console.print(line, markup=False, highlight=False)


def _print_fitted(console, title: str, header: list[str], body: list[list[str]]) -> None:
    """A table whose first column names the rows, cut into as many tables as it takes to fit
    the console's width, each repeating the names: no cell is ever cut short."""
    from rich.table import Table

    def width(j: int) -> int:  # a column's natural width, with its padding and border
        return max(len(text) for text in [header[j], *(row[j] for row in body)]) + 3

    groups: list[list[int]] = [[]]
    used = width(0) + 1
    for j in range(1, len(header)):
        if groups[-1] and used + width(j) > console.width:
            groups.append([])
            used = width(0) + 1
        groups[-1].append(j)
        used += width(j)
    for k, group in enumerate(groups):
        name = title if k == 0 else f"{title} (continued)"
        table = Table(title=name, title_justify="left", show_lines=False)
        for j in [0, *group]:
            table.add_column(header[j], justify="left" if j == 0 else "right", no_wrap=True)
        for row in body:
            table.add_row(*(row[j] for j in [0, *group]))
        console.print(table)


def sweep_table(folder: Path) -> tuple[dict[str, Any], list[str], list[list[str]], list[dict]]:
    """Sensitivity of a sweep: system and institution tail metrics at each grid point."""
    from stress.sweep import load_sweep

    manifest, points = load_sweep(folder)
    keys = [axis["key"] for axis in manifest["axes"]]
    summaries = [load_run(folder / point["directory"]) for point in points]
    # The tail columns at the highest level every point reports (a sweep may vary the
    # levels); with none in common, each row at its own highest, named in a level column.
    common = set.intersection(*(set(s.levels()) for s in summaries)) if summaries else set()
    records: list[dict[str, Any]] = []
    header: list[str] = []
    body: list[list[str]] = []
    for point, summary in zip(points, summaries, strict=True):
        top = max(common) if common else max(summary.levels())
        institutions = summary.names("institution")
        at = f" {_level_name(top)}" if common else ""
        if not header:
            header = ["point", *keys] + ([] if common else ["level"])
            header += ["system EL", f"system VaR{at}", f"system ES{at}"]
            header += [f"{name} ES{at}" for name in institutions]
        keys_and_level = [point[k] for k in keys] + ([] if common else [_level_name(top)])
        cells = [
            summary.get("system", "system", "el"),
            summary.get("system", "system", "var", top),
            summary.get("system", "system", "es", top),
            *[summary.get("institution", name, "es", top) for name in institutions],
        ]
        body.append([str(point["point"]), *keys_and_level, *[_cell(c) for c in cells]])
        records.append(
            {
                "point": point["point"],
                **{k: point[k] for k in keys},
                "metrics": [r for r in summary.rows if r["scope"] in ("system", "institution")],
            }
        )
    return manifest, header, body, records


def render_sweep(folder: Path, fmt: Format) -> str | None:
    manifest, header, body, records = sweep_table(folder)
    if fmt == "json":
        return json.dumps({"sweep": manifest, "points": records}, indent=2) + "\n"
    title = (
        f"ai-stress sweep of {manifest['scenario']}: {manifest['points']} points, "
        f"{manifest.get('paths', 0):,} paths each, seed {manifest.get('seed')}, common random "
        "numbers across points"
    )
    if fmt == "markdown":
        lines = [f"# {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---:"] * len(header)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + "\n"

    console = _console(250)
    console.print(title, style="bold", markup=False, highlight=False)
    _print_fitted(console, "Sensitivity (value ± standard error)", header, body)
    return None


def _console(piped_width: int):
    """A rich console; piped output has no width to fit, so rows are kept whole."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=piped_width)


def report(run_dir: str | Path, fmt: Format = "table") -> str | None:
    """Render a run's (or a sweep's) report; returns markdown and json text, prints tables."""
    from stress.sweep import is_sweep

    if is_sweep(Path(run_dir)):
        return render_sweep(Path(run_dir), fmt)
    summary = load_run(run_dir)
    if fmt == "markdown":
        return render_markdown(summary)
    if fmt == "json":
        return render_json(summary)
    print_table(summary)
    return None
