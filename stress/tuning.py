"""Correlation tuning: inspect, repair and fit a scenario's factor correlations.

What ``ai-stress correlations show | repair | fit`` do, one importable function each. The
mathematics (nearest correlation matrix, implied correlations, estimators) lives in
:mod:`stress.correlation`; this module connects it to scenarios and files.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stress import io as sio
from stress.correlation import (
    audit,
    default_correlation_matrix,
    fit_correlation,
    is_psd,
    nearest_correlation,
    tail_dependence_t,
)
from stress.exceptions import OptionError, OutputError
from stress.scenario import (
    ID_PATTERN,
    Scenario,
    first_repeat,
    not_utf8,
    read_scenario_data,
    validate_data,
    with_correlations,
    written_correlation,
)
from stress.tomlwrite import dumps

# Above this many distinct obligors and pools the pairwise matrices would not fit a report.
MAX_ENTITIES = 5_000

AUDIT_SCHEMA = pa.schema(
    [
        pa.field("first", pa.string(), nullable=False),
        pa.field("second", pa.string(), nullable=False),
        pa.field("input", pa.float64(), nullable=False),
        pa.field("repaired", pa.float64(), nullable=False),
        pa.field("change", pa.float64(), nullable=False),
    ]
)
FIT_SCHEMA = pa.schema(
    [
        pa.field("first", pa.string(), nullable=False),
        pa.field("second", pa.string(), nullable=False),
        pa.field("estimate", pa.float64(), nullable=False),
        pa.field("std_error", pa.float64(), nullable=False),
        pa.field("interval_low", pa.float64(), nullable=False),
        pa.field("interval_high", pa.float64(), nullable=False),
    ]
)


# --------------------------------------------------------------------------------------
# show
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationReport:
    """The factor matrix of a scenario and the correlations it implies between classes.

    Class-level figures average the pairwise values of the names behind two classes,
    weighted by EAD: a named obligor is never paired with itself, a pool's members are
    paired with each other (distinct names of one pool). Only exposures on obligors and
    pools have a latent variable of their own: vehicle tranches and lines to institutions
    are left out.
    """

    scenario: str
    factor_names: list[str]
    matrix: np.ndarray
    eigenvalues: np.ndarray
    psd: bool
    copula: str
    dof: float | None
    classes: list[str]
    asset: np.ndarray  # (C, C) implied latent-variable correlation
    default: np.ndarray  # (C, C) implied default correlation
    tail: np.ndarray | None  # (C, C) t-copula tail dependence
    obligors: list[str]
    obligor_asset: np.ndarray | None
    obligor_default: np.ndarray | None


def _entities(scenario: Scenario) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Distinct obligors and pools behind the exposures: ids, PDs and loadings."""
    model = scenario.model
    names = scenario.factor_names
    ids = list(dict.fromkeys(_target(e) for e in _with_latent(model)))
    if len(ids) > MAX_ENTITIES:
        raise OptionError(
            f"the scenario has {len(ids)} obligors and pools with exposures; class-level "
            f"correlations are computed up to {MAX_ENTITIES}"
        )
    tables = {"obligor": model.obligors, "pool": model.pools}
    pd = np.array([tables[kind][key].pd for kind, key in ids])
    loadings = np.array(
        [[tables[kind][key].loadings.get(f, 0.0) for f in names] for kind, key in ids]
    ).reshape(len(ids), len(names))
    return ids, pd, loadings


def _with_latent(model):
    """Exposures on an obligor or a pool: those that default with one latent variable."""
    return [e for e in model.exposures.values() if e.obligor or e.pool]


def _target(exposure) -> tuple[str, str]:
    """The obligor or pool an exposure is on, as a (kind, id) key."""
    return ("obligor", exposure.obligor) if exposure.obligor else ("pool", exposure.pool)


def _class_average(pairwise: np.ndarray, weights: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """EAD-weighted average of ``pairwise`` over the names of each pair of classes."""
    numerator = weights @ (pairwise * allowed) @ weights.T
    denominator = weights @ allowed @ weights.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def correlation_report(scenario: Scenario, obligors: Sequence[str] = ()) -> CorrelationReport:
    """Inspect a validated scenario's correlations: factor matrix, classes, chosen obligors."""
    model = scenario.model
    matrix = scenario.correlation
    eigenvalues = np.linalg.eigvalsh(matrix)
    dof = model.simulation.dof if model.simulation.copula == "t" else None
    ids, pd, loadings = _entities(scenario)
    asset = loadings @ matrix @ loadings.T
    asset = 0.5 * (asset + asset.T)
    pool = np.array([kind == "pool" for kind, _ in ids])
    # A pool's own diagonal is the correlation between two of its distinct members.
    default = default_correlation_matrix(loadings, pd, matrix, nu=dof)
    for u in np.flatnonzero(pool):
        default[u, u] = default_correlation_matrix(
            np.vstack([loadings[u], loadings[u]]), np.array([pd[u], pd[u]]), matrix, nu=dof
        )[0, 1]
    allowed = np.ones_like(asset)
    np.fill_diagonal(allowed, pool.astype(np.float64))

    classes = sorted({e.class_ for e in _with_latent(model)})
    weights = np.zeros((len(classes), len(ids)))
    position = {key: i for i, key in enumerate(ids)}
    for exposure in _with_latent(model):
        weights[classes.index(exposure.class_), position[_target(exposure)]] += exposure.ead
    tail = (
        _class_average(tail_dependence_t(np.clip(asset, -1.0, 1.0), dof), weights, allowed)
        if dof
        else None
    )

    unknown = [o for o in obligors if o not in model.obligors]
    if unknown:
        raise OptionError(f"--obligors: unknown obligor {unknown[0]!r}")
    repeated = first_repeat(obligors)
    if repeated is not None:
        raise OptionError(f"--obligors: {repeated!r} is listed twice")
    if obligors:
        rows = np.array(
            [
                [model.obligors[o].loadings.get(f, 0.0) for f in scenario.factor_names]
                for o in obligors
            ]
        ).reshape(len(obligors), len(scenario.factor_names))
        pds = np.array([model.obligors[o].pd for o in obligors])
        obligor_asset = rows @ matrix @ rows.T
        obligor_asset = 0.5 * (obligor_asset + obligor_asset.T)
        np.fill_diagonal(obligor_asset, 1.0)
        obligor_default = default_correlation_matrix(rows, pds, matrix, nu=dof)
    else:
        obligor_asset = obligor_default = None
    return CorrelationReport(
        scenario=scenario.name,
        factor_names=scenario.factor_names,
        matrix=matrix,
        eigenvalues=eigenvalues,
        psd=bool(is_psd(matrix)),
        copula=model.simulation.copula,
        dof=dof,
        classes=classes,
        asset=_class_average(asset, weights, allowed),
        default=_class_average(default, weights, allowed),
        tail=tail,
        obligors=list(obligors),
        obligor_asset=obligor_asset,
        obligor_default=obligor_default,
    )


def _matrix_text(title: str, names: Sequence[str], matrix: np.ndarray, digits: int = 3) -> str:
    """A labelled matrix; columns are numbered because long names do not fit above them."""
    width = max([8, *(len(n) for n in names)]) + 5
    cell = digits + 5
    lines = [title, " " * width + "".join(f"{j + 1:>{cell}}" for j in range(len(names)))]
    for i, (name, row) in enumerate(zip(names, matrix, strict=True)):
        values = "".join(
            f"{'–':>{cell}}" if math.isnan(v) else f"{v:>{cell}.{digits}f}" for v in row
        )
        lines.append(f"{i + 1:>3} {name:<{width - 4}}{values}")
    return "\n".join(lines)


def render_correlation_report(report: CorrelationReport) -> str:
    status = "positive semi-definite" if report.psd else "NOT positive semi-definite"
    eigen = ", ".join(f"{v:.4g}" for v in report.eigenvalues)
    copula = report.copula + (f" (ν = {report.dof:g})" if report.dof else "")
    parts = [
        f"Scenario {report.scenario!r}: {len(report.factor_names)} factors, {copula} copula",
        _matrix_text("Factor correlation matrix", report.factor_names, report.matrix, 2),
        f"Eigenvalues: {eigen}\nThe matrix is {status}.",
        _matrix_text(
            "Implied asset (latent-variable) correlation between exposure classes",
            report.classes,
            report.asset,
        ),
        _matrix_text(
            "Implied default correlation between exposure classes", report.classes, report.default
        ),
    ]
    if report.tail is not None:
        parts.append(
            _matrix_text(
                "t-copula tail dependence between exposure classes", report.classes, report.tail
            )
        )
    if report.obligors:
        parts.append(
            _matrix_text(
                "Asset correlation between obligors", report.obligors, report.obligor_asset
            )
        )
        parts.append(
            _matrix_text(
                "Default correlation between obligors", report.obligors, report.obligor_default
            )
        )
    return "\n\n".join(parts) + "\n"


REPORT_SCHEMA = pa.schema(
    [
        pa.field("matrix", pa.string(), nullable=False),
        pa.field("first", pa.string(), nullable=False),
        pa.field("second", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
    ]
)


def write_correlation_report(report: CorrelationReport, path: Path, overwrite: bool) -> None:
    """Every matrix of the report in long form: matrix, first, second, value."""
    refuse_existing([Path(path)], overwrite)
    panels = [
        ("factor", report.factor_names, report.matrix),
        ("class_asset", report.classes, report.asset),
        ("class_default", report.classes, report.default),
        ("class_tail_dependence", report.classes, report.tail),
        ("obligor_asset", report.obligors, report.obligor_asset),
        ("obligor_default", report.obligors, report.obligor_default),
    ]
    rows = [
        {
            "matrix": kind,
            "first": a,
            "second": b,
            "value": None if math.isnan(matrix[i, j]) else float(matrix[i, j]),
        }
        for kind, names, matrix in panels
        if matrix is not None
        for i, a in enumerate(names)
        for j, b in enumerate(names)
    ]
    rows += [
        {"matrix": "eigenvalue", "first": str(k), "second": "", "value": float(v)}
        for k, v in enumerate(report.eigenvalues, start=1)
    ]
    sio.write_parquet(pa.Table.from_pylist(rows, schema=REPORT_SCHEMA), Path(path))


PLOT_FORMATS = (".png", ".pdf", ".svg")


def check_plot_path(path: Path, overwrite: bool) -> None:
    """Refuse a --plot path before anything is written: a format matplotlib is not asked
    for, or a file that exists without ``overwrite``."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise OptionError(
            f"--plot: the file name ends in one of {', '.join(PLOT_FORMATS)} (got {str(path)!r})"
        )
    refuse_existing([Path(path)], overwrite)


def plot_correlation(report: CorrelationReport, path: Path) -> None:
    """Heat maps of the factor matrix and the class default correlations (PNG, PDF or SVG by
    the file name; ``check_plot_path`` first). A panel with nothing in it is left out."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise OptionError("--plot needs matplotlib: pip install 'ai-stress[plot]'") from None
    panels = [
        (matrix, names, title)
        for matrix, names, title in (
            (report.matrix, report.factor_names, "Factor correlation"),
            (report.default, report.classes, "Implied default correlation (classes)"),
        )
        if names
    ]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(7 * len(panels), 6), layout="constrained", squeeze=False
    )
    for axis, (matrix, names, title) in zip(axes[0], panels, strict=True):
        finite = np.abs(matrix[np.isfinite(matrix)])
        limit = max(1e-12, float(finite.max())) if finite.size else 1.0
        image = axis.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        axis.set_yticks(range(len(names)), names, fontsize=8)
        axis.set_title(title)
        figure.colorbar(image, ax=axis, shrink=0.8)
    figure.suptitle(f"ai-stress correlations: {report.scenario}")
    figure.savefig(path, dpi=120)
    plt.close(figure)


# --------------------------------------------------------------------------------------
# repair
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairOutcome:
    scenario_path: Path
    audit_path: Path
    frobenius_distance: float
    iterations: int
    converged: bool
    min_eigenvalue_before: float
    min_eigenvalue_after: float
    audit: list[dict[str, Any]]


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse output files that exist (unless ``overwrite``) or are directories."""
    for path in map(Path, paths):
        if path.is_dir():
            raise OutputError(f"{path}: is a directory; name a file to write")
        if path.exists() and not overwrite:
            raise OutputError(f"{path}: exists; pass --overwrite to replace it")


def _pair(text: str, names: Sequence[str], option: str) -> tuple[int, int]:
    first, sep, second = text.partition(":")
    if not sep:
        raise OptionError(f"{option}: expected FACTOR:FACTOR (got {text!r})")
    for name in (first, second):
        if name not in names:
            raise OptionError(f"{option}: unknown factor {name!r} (got {text!r})")
    if first == second:
        raise OptionError(f"{option}: a factor's diagonal entry is always fixed (got {text!r})")
    return names.index(first), names.index(second)


def _weights(assignments: Sequence[str], names: Sequence[str]) -> np.ndarray | None:
    if not assignments:
        return None
    weights = np.ones(len(names))
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or name not in names:
            raise OptionError(
                f"--weight: expected FACTOR=WEIGHT with a known factor (got {text!r})"
            )
        try:
            weights[names.index(name)] = float(value)
        except ValueError:
            raise OptionError(f"--weight: {value!r} is not a number (got {text!r})") from None
    return weights


def repair_scenario_file(
    scenario: str | Path,
    out: str | Path,
    fixed: Sequence[str] = (),
    weights: Sequence[str] = (),
    eigen_floor: float = 0.0,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
) -> RepairOutcome:
    """Write ``scenario`` with its correlations replaced by the nearest correlation matrix.

    Parameters
    ----------
    fixed:
        Pairs ``FACTOR:FACTOR`` held at their input values.
    weights:
        ``FACTOR=WEIGHT``: a larger weight keeps that factor's row closer to the input
        (Higham's W-norm, W diagonal).
    eigen_floor:
        Smallest eigenvalue of the result (0 gives the nearest matrix, which is singular).

    The audit (pair, input, repaired, change) is written next to ``out`` as
    ``<out stem>.audit.parquet``. Works on a valid matrix too (then nothing changes unless
    ``eigen_floor`` asks for it).
    """
    out_path = Path(out)
    audit_path = out_path.with_name(out_path.stem + ".audit.parquet")
    refuse_existing([out_path, audit_path], overwrite)
    path, data, _ = read_scenario_data(scenario, overrides)
    names, raw = written_correlation(data, str(path))
    mask = np.zeros_like(raw, dtype=bool)
    for text in fixed:
        i, j = _pair(text, names, "--fix")
        mask[i, j] = mask[j, i] = True
    with _named_as(
        {"weights": "--weight", "eigen_floor": "--eigen-floor", "matrix": f"{path}: correlations"}
    ):
        result = nearest_correlation(
            raw,
            weights=_weights(weights, names),
            fixed=mask if fixed else None,
            eigen_floor=eigen_floor,
        )
    repaired_data = with_correlations(data, names, result.matrix)
    validate_data(repaired_data, source=str(path))  # the output must run as it is
    rows = audit(names, raw, result.matrix)
    header = (
        f"Repaired by ai-stress correlations repair from {path}: nearest correlation matrix\n"
        f"(Higham 2002), Frobenius distance {result.frobenius_distance:.6g}, smallest eigenvalue "
        f"{result.min_eigenvalue_before:.6g} -> {result.min_eigenvalue_after:.6g}."
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sio.write_text(dumps(repaired_data, header=header), out_path)
    sio.write_parquet(pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA), audit_path)
    return RepairOutcome(
        scenario_path=out_path,
        audit_path=audit_path,
        frobenius_distance=float(result.frobenius_distance),
        iterations=int(result.iterations),
        converged=bool(result.converged),
        min_eigenvalue_before=float(result.min_eigenvalue_before),
        min_eigenvalue_after=float(result.min_eigenvalue_after),
        audit=rows,
    )


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitOutcome:
    toml_path: Path
    estimates_path: Path
    factor_names: list[str]
    result: Any


@contextlib.contextmanager
def _named_as(labels: Mapping[str, str]):
    """Re-word an OptionError of stress.correlation, which names its arguments ("weights:
    ..."), by what the user gave (``labels``: the option or the file)."""
    try:
        yield
    except OptionError as err:
        argument, colon, rest = str(err).partition(": ")
        if colon and argument in labels:
            raise OptionError(f"{labels[argument]}: {rest}") from None
        raise


def _series_names(path: Path, names: Sequence[str]) -> list[str]:
    """The columns' names as factor ids: each an id, each once."""
    for name in names:
        if not ID_PATTERN.match(name):
            raise OptionError(
                f"{path}: column {name!r}: factor names use letters, digits, '_' and '-' only"
            )
    repeated = first_repeat(names)
    if repeated is not None:
        raise OptionError(f"{path}: column {repeated!r} appears twice")
    return list(names)


def read_series(path: Path) -> tuple[list[str], np.ndarray]:
    """Factor time series from CSV (header row of factor names) or Parquet (one column each)."""
    if not path.is_file():
        raise OptionError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise OptionError(f"{path}: not a readable Parquet file ({err})") from None
        names = _series_names(path, table.column_names)
        columns = []
        for name in names:
            column = table.column(name)
            if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
                raise OptionError(f"{path}: column {name!r} is not numeric ({column.type})")
            columns.append(column.cast(pa.float64()).fill_null(float("nan")).to_numpy())
        return names, np.column_stack(columns) if columns else np.empty((0, 0))
    try:
        # utf-8-sig: spreadsheet programs start their CSV with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as err:
        raise OptionError(f"{path}: {not_utf8(err, 'CSV files are read as UTF-8')}") from None
    if len(rows) < 2:
        raise OptionError(f"{path}: needs a header row of factor names and data rows")
    names = _series_names(path, [n.strip() for n in rows[0]])
    values = np.full((len(rows) - 1, len(names)), np.nan)
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            raise OptionError(f"{path}: line {r} has {len(row)} fields, the header {len(names)}")
        for c, text in enumerate(row):
            text = text.strip()
            if text in ("", "NA", "nan", "NaN"):
                continue
            try:
                values[r - 2, c] = float(text)
            except ValueError:
                raise OptionError(
                    f"{path}: line {r}, column {names[c]!r}: not a number (got {text!r})"
                ) from None
    return names, values


def fit_file(
    data: str | Path,
    out: str | Path,
    method: str = "pearson",
    shrinkage: str | None = None,
    into: str | Path | None = None,
    overwrite: bool = False,
) -> FitOutcome:
    """Estimate factor correlations from a data file and write them as TOML and Parquet.

    Without ``into`` the TOML file holds a ``[correlations]`` block to paste; with it, the
    scenario ``into`` with its correlations replaced (factors missing from the data keep
    their pairs; the data's columns must all be factors of that scenario).
    """
    out_path = Path(out)
    estimates_path = out_path.with_name(out_path.stem + ".estimates.parquet")
    refuse_existing([out_path, estimates_path], overwrite)
    names, values = read_series(Path(data))
    with _named_as({"method": "--method", "shrinkage": "--shrinkage", "data": str(data)}):
        result = fit_correlation(values, method=method, shrinkage=shrinkage)
    rows = []
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            rows.append(
                {
                    "first": first,
                    "second": names[j],
                    "estimate": float(result.matrix[i, j]),
                    "std_error": float(result.standard_error[i, j]),
                    "interval_low": float(result.interval_low[i, j]),
                    "interval_high": float(result.interval_high[i, j]),
                }
            )
    header = (
        f"Fitted by ai-stress correlations fit from {data}: {method}"
        + (f", {shrinkage} shrinkage (intensity {result.intensity:.4g})" if shrinkage else "")
        + f", {result.n_obs} observations ({result.dropped} dropped with missing values)"
        + (f"; repaired to PSD (distance {result.repair_distance:.3g})" if result.repaired else "")
        + f".\nStandard errors and intervals: {estimates_path.name}"
    )
    if into is None:
        document = {"correlations": with_correlations({}, names, result.matrix)["correlations"]}
    else:
        target, base, _ = read_scenario_data(into)
        factors, current = written_correlation(base, str(target))
        missing = [n for n in names if n not in factors]
        if missing:
            raise OptionError(f"--into {into}: the data's column {missing[0]!r} is not a factor")
        index = [factors.index(n) for n in names]
        current[np.ix_(index, index)] = result.matrix
        document = with_correlations(base, factors, current)
        validate_data(document, source=str(out_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sio.write_text(dumps(document, header=header), out_path)
    sio.write_parquet(pa.Table.from_pylist(rows, schema=FIT_SCHEMA), estimates_path)
    return FitOutcome(out_path, estimates_path, names, result)


# --------------------------------------------------------------------------------------
# calibrate
# --------------------------------------------------------------------------------------

# Loadings are scaled so that every member keeps aᵀRa at or below this: b stays away from 0.
MAX_SYSTEMATIC = 0.99


@dataclass(frozen=True)
class Target:
    first: str
    second: str
    value: float


@dataclass(frozen=True)
class CalibrationOutcome:
    scenario_path: Path
    kind: str
    rows: list[dict[str, Any]]  # first, second, target, achieved, met
    multipliers: dict[str, float]  # each group's multiplier of its own names' loadings
    elsewhere: dict[str, int]  # per group in multipliers, its names that follow later ones
    shadowed: list[str]  # groups whose names all follow other targets: no multiplier


def parse_targets(texts: Sequence[str]) -> list[Target]:
    """``A:B=VALUE`` where A and B name obligors or exposure classes."""
    targets = []
    for text in texts:
        pair, sep, value = text.partition("=")
        first, colon, second = pair.partition(":")
        if not sep or not colon or not first or not second:
            raise OptionError(f"--target: expected A:B=VALUE (got {text!r})")
        try:
            number = float(value)
        except ValueError:
            raise OptionError(f"--target: {value!r} is not a number (got {text!r})") from None
        if not -1.0 < number < 1.0:
            raise OptionError(f"--target: a correlation must be in (-1, 1) (got {text!r})")
        targets.append(Target(first.strip(), second.strip(), number))
    if not targets:
        raise OptionError("--target: give at least one A:B=VALUE")
    return targets


def _members(data: Mapping[str, Any], group: str) -> list[tuple[str, str]]:
    """The obligors and pools whose loadings a group (an obligor or a class) scales."""
    if group in data.get("obligors", {}):
        return [("obligors", group)]
    members: list[tuple[str, str]] = []
    in_class = False
    for exposure in data.get("exposures", {}).values():
        if exposure.get("class") != group:
            continue
        in_class = True
        # Lines to institutions and holdings of vehicles default with their borrower, not
        # with loadings of their own: nothing of theirs to scale.
        for table, field in (("obligors", "obligor"), ("pools", "pool")):
            key = (table, exposure.get(field))
            if key[1] is not None and key not in members:
                members.append(key)
    if not members:
        if in_class:
            raise OptionError(
                f"--target: class {group!r} has no exposures on obligors or pools, whose "
                "loadings calibrate scales"
            )
        raise OptionError(f"--target: {group!r} is neither an obligor nor an exposure class")
    return members


def _owned_members(groups: dict[str, list]) -> dict[str, list]:
    """Each obligor or pool under the last group that names it (``groups`` in order: classes
    first, obligors last), so that every name is scaled once, by one multiplier."""
    owner = {member: group for group, members in groups.items() for member in members}
    return {g: [m for m in members if owner[m] == g] for g, members in groups.items()}


def _scaled(data: Mapping[str, Any], groups: dict[str, list], multipliers: np.ndarray) -> dict:
    """``data`` with each group's own members' loadings times its multiplier."""
    result = copy.deepcopy(dict(data))
    for (_, members), factor in zip(groups.items(), multipliers, strict=True):
        for table, key in members:
            loadings = data[table][key].get("loadings", {})
            result[table][key]["loadings"] = {f: float(v * factor) for f, v in loadings.items()}
    return result


def calibrate_file(
    scenario: str | Path,
    targets: Sequence[str],
    out: str | Path,
    kind: str = "default",
    overrides: Sequence[str] = (),
    overwrite: bool = False,
) -> CalibrationOutcome:
    """Scale the loadings of named obligors or classes to hit implied correlation targets.

    Each group named in a target (an obligor, or every obligor and pool behind a class) gets
    one multiplier of its loadings, bounded so that every member keeps aᵀRa ≤ 0.99; the
    multipliers minimise the squared misses by bounded least squares. Targets that cannot be
    met within the bounds (or contradict each other) are reported as such, not forced.
    """
    from scipy.optimize import least_squares

    if kind not in ("default", "asset"):
        raise OptionError(f"--kind: must be default or asset (got {kind!r})")
    out_path = Path(out)
    refuse_existing([out_path], overwrite)
    path, data, _ = read_scenario_data(scenario, overrides)
    base = validate_data(data, source=str(path))
    wanted = parse_targets(targets)
    for t in wanted:
        if t.first == t.second and t.first in data.get("obligors", {}):
            raise OptionError(
                f"--target {t.first}:{t.second}: an obligor's correlation with itself is 1 "
                "(a class with itself is the average over pairs of its distinct names)"
            )
    # Classes first, obligors last: an obligor with a target of its own keeps its own
    # multiplier even when a class target covers it too; a name in two classes follows the
    # later. A group left with no name of its own has no multiplier (``shadowed``).
    named = [g for t in wanted for g in (t.first, t.second)]
    order = sorted(dict.fromkeys(named), key=lambda g: g in data.get("obligors", {}))
    named_members = {g: _members(data, g) for g in order}
    owned = _owned_members(named_members)
    groups = {g: members for g, members in owned.items() if members}
    shadowed = [g for g, members in owned.items() if not members]
    elsewhere = {g: len(named_members[g]) - len(members) for g, members in groups.items()}
    matrix = base.correlation
    names = base.factor_names
    upper = []
    for members in groups.values():
        largest = max(
            float(a @ matrix @ a)
            for table, key in members
            for a in [np.array([data[table][key].get("loadings", {}).get(f, 0.0) for f in names])]
        )
        upper.append(math.sqrt(MAX_SYSTEMATIC / largest) if largest > 0 else 1.0)

    def implied(multipliers: np.ndarray) -> np.ndarray:
        trial = validate_data(_scaled(data, groups, multipliers), source=str(path))
        obligors = [g for g in groups if g in trial.model.obligors]
        report = correlation_report(trial, obligors)
        values = []
        for t in wanted:
            if t.first in obligors and t.second in obligors:
                table = report.obligor_default if kind == "default" else report.obligor_asset
                i, j = obligors.index(t.first), obligors.index(t.second)
            else:
                table = report.default if kind == "default" else report.asset
                i, j = report.classes.index(t.first), report.classes.index(t.second)
            values.append(table[i, j])
        return np.array(values)

    for t in wanted:
        both = (t.first in data.get("obligors", {})) == (t.second in data.get("obligors", {}))
        if not both:
            raise OptionError(
                f"--target {t.first}:{t.second}: pair two obligors or two classes, not one of each"
            )
    goal = np.array([t.value for t in wanted])
    start = np.minimum(np.ones(len(groups)), upper)
    fit = least_squares(
        lambda m: implied(m) - goal,
        start,
        bounds=(np.zeros(len(groups)), np.array(upper)),
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
    )
    achieved = implied(fit.x)
    calibrated = _scaled(data, groups, fit.x)
    rows = [
        {
            "first": t.first,
            "second": t.second,
            "target": t.value,
            "achieved": float(a),
            "met": bool(abs(a - t.value) <= 1e-6),
        }
        for t, a in zip(wanted, achieved, strict=True)
    ]
    header = (
        f"Calibrated by ai-stress correlations calibrate from {path}: loadings scaled to hit "
        f"implied {kind} correlation targets\n"
        + "\n".join(
            f"{r['first']}:{r['second']} target {r['target']:.6g} achieved {r['achieved']:.6g}"
            + ("" if r["met"] else " (NOT MET within aᵀRa ≤ 0.99)")
            for r in rows
        )
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sio.write_text(dumps(calibrated, header=header), out_path)
    return CalibrationOutcome(
        scenario_path=out_path,
        kind=kind,
        rows=rows,
        multipliers={g: float(m) for g, m in zip(groups, fit.x, strict=True)},
        elsewhere=elsewhere,
        shadowed=shadowed,
    )
