"""Scenario files: reading, inheritance, ``--set`` overrides, schema and validation.

A scenario is a TOML file (schema version 1). :func:`load_scenario` turns a path or the name
of a shipped scenario into a validated :class:`Scenario`, or raises :class:`ScenarioError`
listing *every* problem found, one line each, as ``FILE: dotted.path: what is wrong (got V)``.

Validation happens in two passes. The schema pass (pydantic, strict types, unknown keys
forbidden) checks each field on its own. The semantic pass checks what links fields:
references between tables, the correlation matrix, aᵀRa < 1, shares across holders. The
semantic pass only runs on a scenario whose structure is sound, since it needs the parsed
tables to say anything precise.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import heapq
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from stress.exceptions import OptionError, Problem, ScenarioError, problem

SCHEMA_VERSION = 1
ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
INSTITUTION_TYPES = (
    "bank",
    "insurer",
    "private_credit_fund",
    "bdc",
    "pension_fund",
    "asset_manager",
    "other",
)
# Eigenvalues of R above -PSD_TOLERANCE count as zero: a repaired or exactly singular matrix
# (two factors correlated 1) is valid and must run.
PSD_TOLERANCE = 1e-10
# a'Ra must stay below 1 by at least this much so that the idiosyncratic weight b > 0.
SYSTEMATIC_VARIANCE_LIMIT = 1.0 - 1e-12


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Amount = Annotated[float, Field(ge=0.0)]
Loadings = dict[str, float]


class Simulation(_Model):
    paths: Annotated[int, Field(ge=1)] = 200_000
    seed: Annotated[int, Field(ge=0)] = 0
    block_size: Annotated[int, Field(ge=1)] = 10_000
    copula: Literal["gaussian", "t"] = "gaussian"
    dof: float | None = None
    levels: Annotated[list[Annotated[float, Field(gt=0.0, lt=1.0)]], Field(min_length=1)] = [
        0.95,
        0.99,
        0.999,
    ]


class Factor(_Model):
    description: str = ""


class Stress(_Model):
    mode: Literal["shift", "condition"]
    shocks: dict[str, float]


class Obligor(_Model):
    description: str = ""
    pd: Probability
    loadings: Loadings = {}


class Pool(_Model):
    description: str = ""
    count: Annotated[int, Field(ge=1)]
    pd: Probability
    loadings: Loadings = {}
    method: Literal["exact", "large_pool"] = "exact"


class BetaLGD(_Model):
    mean: Annotated[float, Field(gt=0.0, lt=1.0)]
    sd: Amount


class CollateralLGD(_Model):
    base: Fraction
    factor: str
    sensitivity: Amount


def _lgd_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "beta" if ("mean" in value or "sd" in value) else "collateral"
    if isinstance(value, BaseModel):
        return "beta" if isinstance(value, BetaLGD) else "collateral"
    return "fixed"


LGD = Annotated[
    Annotated[Fraction, Tag("fixed")]
    | Annotated[BetaLGD, Tag("beta")]
    | Annotated[CollateralLGD, Tag("collateral")],
    Discriminator(_lgd_kind),
]
_LGD_TAGS = {"fixed", "beta", "collateral"}


class Exposure(_Model):
    model_config = ConfigDict(populate_by_name=True)

    description: str = ""
    obligor: str | None = None
    pool: str | None = None
    # A line to a fund or BDC: it loses what the institution loses beyond its capital.
    institution: str | None = None
    class_: str = Field(alias="class")
    ead: Amount
    lgd: LGD | None = None


class NonRenewal(_Model):
    """The lessee walks away at expiry: an event with its own threshold and loadings."""

    probability: Probability
    loadings: Loadings = {}


class Recovery(_Model):
    """Re-leasing or resale value of the asset after the lease ends, as a fraction of it:
    clip(base + sensitivity × factor, 0, 1)."""

    base: Fraction
    factor: str | None = None
    sensitivity: Amount = 0.0


class Guarantee(_Model):
    """A residual value guarantee: the sponsor pays the shortfall up to ``cap``."""

    sponsor: str
    cap: Amount


class Tranche(_Model):
    model_config = ConfigDict(populate_by_name=True)

    description: str = ""
    class_: str = Field(alias="class")
    attach: Fraction
    detach: Fraction


class Vehicle(_Model):
    """An SPV, lease vehicle or ABS issuer owning one leased asset, funded by tranches."""

    description: str = ""
    asset_value: Annotated[float, Field(gt=0.0)]
    lessee: str
    non_renewal: NonRenewal | None = None
    recovery: Recovery
    guarantee: Guarantee | None = None
    tranches: dict[str, Tranche]


class Dependency(_Model):
    """A provider's revenue from one customer: the customer's default moves the provider's
    default threshold up by ``sensitivity × revenue_share`` (latent-variable units)."""

    revenue_share: Annotated[float, Field(gt=0.0, le=1.0)]
    sensitivity: Amount


class Institution(_Model):
    description: str = ""
    type: Literal[
        "bank", "insurer", "private_credit_fund", "bdc", "pension_fund", "asset_manager", "other"
    ]
    capital: Annotated[float, Field(gt=0.0)]
    holdings: dict[str, Annotated[float, Field(gt=0.0, le=1.0)]] = {}
    # Balance sheet for second-round losses (required when [contagion] model is not "none").
    external_assets: Amount | None = None
    external_liabilities: Amount | None = None
    distress_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    claims: dict[str, Amount] = {}


class DefaultCosts(_Model):
    external: Fraction = 1.0
    interbank: Fraction = 1.0


class DebtRankOptions(_Model):
    variant: Literal["single_pass", "linear"] = "single_pass"
    capped: bool = True


class FireSaleClass(_Model):
    impact: Annotated[float, Field(ge=0.0)]  # 0: sales move no price
    depth: Annotated[float, Field(gt=0.0)]


class FireSales(_Model):
    classes: dict[str, FireSaleClass]
    form: Literal["linear", "exponential"] = "linear"
    trigger_ratio: Annotated[float, Field(gt=0.0, lt=1.0)]
    target_ratio: Annotated[float, Field(gt=0.0, lt=1.0)]


class Contagion(_Model):
    model: Literal["none", "eisenberg-noe", "debtrank"] = "none"
    external_seniority: Literal["pari_passu", "senior"] = "pari_passu"
    default_costs: DefaultCosts = DefaultCosts()
    debtrank: DebtRankOptions = DebtRankOptions()
    fire_sales: FireSales | None = None
    max_rounds: Annotated[int, Field(ge=1)] = 100


class ScenarioModel(_Model):
    schema_version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    simulation: Simulation = Simulation()
    factors: dict[str, Factor] = {}
    correlations: dict[str, dict[str, Annotated[float, Field(ge=-1.0, le=1.0)]]] = {}
    stress: Stress | None = None
    obligors: dict[str, Obligor] = {}
    pools: dict[str, Pool] = {}
    exposures: dict[str, Exposure] = {}
    vehicles: dict[str, Vehicle] = {}
    # provider obligor -> customer obligor -> revenue dependency
    dependencies: dict[str, dict[str, Dependency]] = {}
    institutions: dict[str, Institution] = {}
    contagion: Contagion = Contagion()


# --------------------------------------------------------------------------------------
# The validated scenario
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, with the data it was built from.

    Attributes
    ----------
    model:
        The parsed tables.
    data:
        The resolved scenario as plain TOML data (after ``extends`` and ``--set``); this is
        what a run records as ``scenario.toml`` and hashes.
    source:
        The file it came from, as shown in messages.
    correlation:
        The K×K factor correlation matrix, factors in file order.
    overrides:
        The ``--set`` assignments applied, in order.
    """

    model: ScenarioModel
    data: dict[str, Any]
    source: str
    correlation: np.ndarray
    overrides: tuple[str, ...] = ()
    inherited_from: tuple[str, ...] = field(default=())
    repair: CorrelationRepair | None = None

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def factor_names(self) -> list[str]:
        return list(self.model.factors)

    @property
    def hash(self) -> str:
        """SHA-256 of the resolved scenario in canonical JSON: equal hashes, equal scenarios."""
        return scenario_hash(self.data)


@dataclass(frozen=True)
class CorrelationRepair:
    """What ``repair_correlations`` changed: the input and repaired matrices and the audit."""

    input: np.ndarray
    repaired: np.ndarray
    frobenius_distance: float
    iterations: int
    min_eigenvalue_before: float
    min_eigenvalue_after: float
    audit: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        """JSON-ready record for a run's manifest: the distance and every changed pair."""
        return {
            "method": "nearest correlation matrix (Higham 2002)",
            "frobenius_distance": self.frobenius_distance,
            "iterations": self.iterations,
            "min_eigenvalue_before": self.min_eigenvalue_before,
            "min_eigenvalue_after": self.min_eigenvalue_after,
            "pairs": [row for row in self.audit if row["change"] != 0.0],
        }


def scenario_hash(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------


def shipped_scenarios_dir() -> Path:
    """Where the shipped scenarios are: inside the installed package, else the source tree."""
    packaged = Path(__file__).resolve().parent / "scenarios"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "scenarios"


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenario names and their files, sorted by name."""
    folder = shipped_scenarios_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml"), key=lambda p: p.stem)}


def resolve_scenario_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """Map a scenario argument to a file: an existing path wins, then a shipped name."""
    candidate = Path(name_or_path)
    if relative_to is not None and not candidate.is_absolute():
        local = relative_to / candidate
        if local.is_file():
            return local
    if candidate.is_file():
        return candidate
    shipped = shipped_scenarios()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    if candidate.exists():
        raise ScenarioError(str(name_or_path), [problem("", "is not a file")])
    names = ", ".join(shipped) or "none installed"
    raise ScenarioError(
        str(name_or_path),
        [problem("", f"no such file, and no shipped scenario of that name (shipped: {names})")],
    )


def not_utf8(err: UnicodeDecodeError, rule: str) -> str:
    """What is wrong with a file that is not UTF-8, at the first byte that is not."""
    return f"not valid UTF-8 ({rule}): byte {err.start} is {err.object[err.start]:#04x}"


def first_repeat(names: Sequence[str]) -> str | None:
    """The first name that appears a second time in ``names``, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), [problem("", f"not valid TOML: {err}")]) from None
    except UnicodeDecodeError as err:
        message = not_utf8(err, "TOML files are UTF-8")
        raise ScenarioError(str(path), [problem("", message)]) from None
    except OSError as err:
        raise ScenarioError(str(path), [problem("", f"cannot be read: {err.strerror}")]) from None


def deep_merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Child keys win; tables present in both merge recursively."""
    merged = copy.deepcopy(dict(base))
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_resolved(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Read a scenario file and everything it ``extends``; return the merged data and chain."""
    data = read_toml(path)
    parent_ref = data.pop("extends", None)
    if parent_ref is None:
        return data, []
    if not isinstance(parent_ref, str) or not parent_ref:
        raise ScenarioError(
            str(path),
            [problem("extends", "must name a scenario file or shipped scenario", parent_ref)],
        )
    try:
        parent_path = resolve_scenario_path(parent_ref, relative_to=path.parent)
    except ScenarioError as err:
        raise ScenarioError(
            str(path), [problem("extends", p.message, parent_ref) for p in err.problems]
        ) from None
    chain = (*_chain, path.resolve())
    if parent_path.resolve() in chain:
        raise ScenarioError(
            str(path), [problem("extends", "scenarios extend each other in a cycle", parent_ref)]
        )
    parent_data, parent_chain = read_resolved(parent_path, chain)
    return deep_merge(parent_data, data), [str(parent_path), *parent_chain]


# --------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------


KEY_RULE = 'a dotted TOML key, a part that holds a dot in quotes (a."b.c")'


def _key_parts(key: str) -> list[str] | None:
    """The parts of a TOML dotted key, read by TOML's own grammar so that a quoted part may
    hold dots (``institutions.insurer_a.holdings."lease_spv_b.bonds"``); None if ``key`` is
    not one."""
    if "\n" in key or "\r" in key:  # one line: no table headers smuggled in
        return None
    try:
        table = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return None
    parts = []
    while isinstance(table, dict):
        if len(table) != 1:
            return None
        ((part, table),) = table.items()
        parts.append(part)
    return parts


def split_assignment(text: str) -> tuple[str, list[str], str] | None:
    """(key as written, its parts, raw value) of ``KEY=VALUE``, split at the first ``=`` that
    ends a valid TOML key (a quoted part of the key may itself hold ``=``); None if no ``=``
    does."""
    at = text.find("=")
    while at != -1:
        key = text[:at].strip()
        parts = _key_parts(key) if key else None
        if parts is not None:
            return key, parts, text[at + 1 :]
        at = text.find("=", at + 1)
    return None


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=VALUE``; the key is a TOML dotted key (quote a part that holds a dot:
    ``a."b.c"=VALUE``); VALUE is read as TOML, or as a bare string if it is not TOML."""
    split = split_assignment(text)
    if split is None:
        raise OptionError(f"--set: expected KEY=VALUE with {KEY_RULE} (got {text!r})")
    _, parts, raw = split
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``KEY=VALUE`` assignment applied, in order."""
    result = copy.deepcopy(data)
    for text in assignments:
        parts, value = parse_assignment(text)
        table = result
        for depth, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                where = ".".join(parts[: depth + 1])
                raise OptionError(f"--set {text}: {where} is a value, not a table")
            table = nxt
        table[parts[-1]] = value
    return result


# --------------------------------------------------------------------------------------
# Loading and validating
# --------------------------------------------------------------------------------------


def read_scenario_data(
    name_or_path: str | Path, overrides: Sequence[str] = ()
) -> tuple[Path, dict[str, Any], list[str]]:
    """The file, its resolved data (``extends`` merged, ``--set`` applied) and the chain of
    files it extends, before validation."""
    path = resolve_scenario_path(name_or_path)
    data, chain = read_resolved(path)
    return path, apply_overrides(data, overrides), chain


def load_scenario(
    name_or_path: str | Path, overrides: Sequence[str] = (), repair_correlations: bool = False
) -> Scenario:
    """Read, merge, override and validate a scenario.

    Parameters
    ----------
    name_or_path:
        A path to a TOML file or the name of a shipped scenario (``ai-stress scenarios``).
    overrides:
        ``KEY=VALUE`` assignments with dotted TOML keys, applied before validation.
    repair_correlations:
        Replace a correlation matrix that is not positive semi-definite by the nearest
        correlation matrix (Higham 2002) instead of rejecting it; the scenario's data then
        hold the repaired pairs and ``Scenario.repair`` the audit.

    Raises
    ------
    ScenarioError
        With every problem found, if the scenario is invalid.
    OptionError
        If an override is malformed.
    """
    path, data, chain = read_scenario_data(name_or_path, overrides)
    return validate_data(
        data,
        source=str(path),
        overrides=tuple(overrides),
        inherited=tuple(chain),
        repair_correlations=repair_correlations,
    )


def validate_data(
    data: Mapping[str, Any],
    source: str = "<scenario>",
    overrides: tuple[str, ...] = (),
    inherited: tuple[str, ...] = (),
    repair_correlations: bool = False,
) -> Scenario:
    """Validate resolved scenario data; raise :class:`ScenarioError` with every problem."""
    # As problems name their fields: parts joined by dots, unquoted.
    override_keys = [".".join(parse_assignment(text)[0]) for text in overrides]
    try:
        model = ScenarioModel.model_validate(dict(data))
    except ValidationError as err:
        problems = [_from_pydantic(e) for e in err.errors(include_url=False)]
        raise ScenarioError(source, _mark_overrides(problems, override_keys)) from None
    problems, correlation = check_semantics(model)
    repair_problem = [
        p for p in problems if p.path == "correlations" and "semi-definite" in p.message
    ]
    if repair_correlations and repair_problem:
        repair = repair_matrix(list(model.factors), correlation)
        repaired = validate_data(
            with_correlations(data, list(model.factors), repair.repaired),
            source,
            overrides,
            inherited,
        )
        return dataclasses.replace(repaired, repair=repair)
    if problems:
        raise ScenarioError(source, _mark_overrides(problems, override_keys))
    return Scenario(
        model=model,
        data=dict(data),
        source=source,
        correlation=correlation,
        overrides=overrides,
        inherited_from=inherited,
    )


def written_correlation(
    data: Mapping[str, Any], source: str = "<scenario>"
) -> tuple[list[str], np.ndarray]:
    """Factor names and the correlation matrix as written, positive semi-definite or not.

    Raises :class:`ScenarioError` for a scenario that does not parse, or whose factors or
    correlation pairs are wrong in any other way (unknown factor, pair given twice...).
    """
    try:
        model = ScenarioModel.model_validate(dict(data))
    except ValidationError as err:
        raise ScenarioError(
            source, [_from_pydantic(e) for e in err.errors(include_url=False)]
        ) from None
    problems: list[Problem] = []
    factors = list(model.factors)
    matrix, _ = _check_correlations(model, factors, set(factors), problems.append)
    blocking = [p for p in problems if "semi-definite" not in p.message]
    if blocking:
        raise ScenarioError(source, blocking)
    return factors, matrix


def repair_matrix(names: list[str], matrix: np.ndarray) -> CorrelationRepair:
    """The nearest correlation matrix to ``matrix``, with its audit against the input."""
    # Imported here: stress.correlation pulls in scipy.stats, a second of start-up that
    # runs without a repair should not pay.
    from stress.correlation import audit, nearest_correlation

    result = nearest_correlation(matrix)
    return CorrelationRepair(
        input=matrix,
        repaired=result.matrix,
        frobenius_distance=float(result.frobenius_distance),
        iterations=int(result.iterations),
        min_eigenvalue_before=float(result.min_eigenvalue_before),
        min_eigenvalue_after=float(result.min_eigenvalue_after),
        audit=audit(names, matrix, result.matrix),
    )


def with_correlations(
    data: Mapping[str, Any], names: list[str], matrix: np.ndarray
) -> dict[str, Any]:
    """Scenario data with ``[correlations]`` rewritten from a full matrix (non-zero pairs)."""
    rows: dict[str, dict[str, float]] = {}
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            if matrix[i, j] != 0.0:
                rows.setdefault(first, {})[names[j]] = float(matrix[i, j])
    result = copy.deepcopy(dict(data))
    result["correlations"] = rows
    return result


def _mark_overrides(problems: list[Problem], override_keys: list[str]) -> list[Problem]:
    marked = []
    for p in problems:
        if any(p.path == key or p.path.startswith(key + ".") for key in override_keys):
            p = Problem(p.path, p.message + " [set by --set]", p.value, p.has_value)
        marked.append(p)
    return marked


def _from_pydantic(error: Mapping[str, Any]) -> Problem:
    loc = list(error["loc"])
    # Drop the union tag pydantic inserts after an LGD (exposures.ID.lgd.beta.mean).
    if len(loc) >= 4 and loc[0] == "exposures" and loc[2] == "lgd" and loc[3] in _LGD_TAGS:
        del loc[3]
    path = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return problem(path, "unknown key", error["input"])
    if kind == "missing":
        return problem(path, "required key is missing")
    message = error["msg"]
    message = message[0].lower() + message[1:]
    if kind.startswith("literal_error"):
        message = message.replace("input should be", "must be one of")
    return problem(path, message, error["input"])


def _dotted(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


MAX_BOOK = 1e150


def check_semantics(model: ScenarioModel) -> tuple[list[Problem], np.ndarray]:
    """Check the links between tables; return the problems and the correlation matrix."""
    problems: list[Problem] = []
    add = problems.append
    # Every loss the engine sums is at most the book's amounts, and it squares losses (SD):
    # their total must stay far from the largest float.
    amounts = [e.ead for e in model.exposures.values()]
    amounts += [v.asset_value for v in model.vehicles.values()]
    amounts += [i.capital for i in model.institutions.values()]
    if not sum(amounts) <= MAX_BOOK:
        add(
            problem(
                "exposures",
                f"the amounts of the book (EAD, vehicle asset values, capital) add up to more "
                f"than {MAX_BOOK:.0e}, where squared losses overflow: state them in larger units",
            )
        )
        return problems, np.eye(len(model.factors))
    factors = list(model.factors)
    factor_set = set(factors)

    if not ID_PATTERN.match(model.name):
        # It names the default run directory, runs/NAME: no separators, no "..".
        add(problem("name", "a scenario's name uses letters, digits, '_' and '-' only", model.name))
    for table in ("factors", "obligors", "pools", "exposures", "vehicles", "institutions"):
        for key in getattr(model, table):
            if not ID_PATTERN.match(key):
                add(problem(f"{table}.{key}", "ids use letters, digits, '_' and '-' only", key))

    if not factors:
        add(problem("factors", "at least one factor is required"))
    if not model.exposures and not model.vehicles:
        add(problem("exposures", "the scenario defines no exposures: nothing to simulate"))

    sim = model.simulation
    if sim.copula == "t":
        if sim.dof is None:
            add(problem("simulation.dof", "required when copula is 't'"))
        elif sim.dof <= 2.0:
            add(
                problem(
                    "simulation.dof", "must be above 2 so that the t copula has a variance", sim.dof
                )
            )
    elif sim.dof is not None:
        add(problem("simulation.dof", "only allowed when copula is 't'", sim.dof))
    if list(sim.levels) != sorted(set(sim.levels)):
        add(problem("simulation.levels", "must be strictly increasing", list(sim.levels)))

    correlation, corr_ok = _check_correlations(model, factors, factor_set, add)

    if model.stress is not None:
        _check_stress(model.stress, factors, factor_set, correlation if corr_ok else None, add)

    latent = [
        (f"{table}.{key}", item)
        for table in ("obligors", "pools")
        for key, item in getattr(model, table).items()
    ]
    latent += [
        (f"vehicles.{key}.non_renewal", v.non_renewal)
        for key, v in model.vehicles.items()
        if v.non_renewal is not None
    ]
    for where, item in latent:
        bad = [f for f in item.loadings if f not in factor_set]
        for f in bad:
            add(problem(f"{where}.loadings.{f}", "unknown factor", f))
        if corr_ok and not bad and item.loadings:
            a = np.array([item.loadings.get(f, 0.0) for f in factors])
            variance = float(a @ correlation @ a)
            if not variance < SYSTEMATIC_VARIANCE_LIMIT:
                add(
                    problem(
                        f"{where}.loadings",
                        "systematic variance aᵀRa must be below 1 (no room left for the "
                        "idiosyncratic part)",
                        round(variance, 12),
                    )
                )

    for key, exp in model.exposures.items():
        where = f"exposures.{key}"
        targets = [t for t in (exp.obligor, exp.pool, exp.institution) if t is not None]
        if len(targets) != 1:
            add(problem(where, "needs exactly one of 'obligor', 'pool' or 'institution'"))
        if exp.obligor is not None and exp.obligor not in model.obligors:
            add(problem(f"{where}.obligor", "unknown obligor", exp.obligor))
        if exp.pool is not None and exp.pool not in model.pools:
            add(problem(f"{where}.pool", "unknown pool", exp.pool))
        if exp.institution is not None:
            if exp.institution not in model.institutions:
                add(problem(f"{where}.institution", "unknown institution", exp.institution))
            if exp.lgd is not None:
                add(
                    problem(
                        f"{where}.lgd",
                        "an exposure on an institution loses its share of what the "
                        "institution loses beyond its capital; an LGD does not apply",
                        exp.lgd if isinstance(exp.lgd, float) else None,
                    )
                )
        elif exp.lgd is None:
            add(problem(f"{where}.lgd", "required key is missing"))
        _check_class_label(f"{where}.class", exp.class_, add)
        if isinstance(exp.lgd, BetaLGD):
            m, s = exp.lgd.mean, exp.lgd.sd
            if not s * s < m * (1.0 - m):
                add(
                    problem(
                        f"{where}.lgd.sd",
                        f"a Beta LGD with mean {m} needs sd below sqrt(mean·(1 − mean)) = "
                        f"{math.sqrt(m * (1 - m)):.6g}",
                        s,
                    )
                )
        elif isinstance(exp.lgd, CollateralLGD) and exp.lgd.factor not in factor_set:
            add(problem(f"{where}.lgd.factor", "unknown factor", exp.lgd.factor))

    _check_vehicles(model, factor_set, add)
    _check_dependencies(model, add)
    catalogue = exposure_catalogue(model)
    held: dict[str, list[tuple[str, float]]] = {}
    for key, inst in model.institutions.items():
        for exp_id, share in inst.holdings.items():
            if exp_id in catalogue:
                held.setdefault(exp_id, []).append((key, share))
                continue
            where = f"institutions.{key}.holdings.{exp_id}"
            vehicle, dot, tranche = exp_id.partition(TRANCHE_SEPARATOR)
            if not dot:
                add(problem(where, "unknown exposure", exp_id))
            elif vehicle not in model.vehicles:
                add(problem(where, "unknown vehicle in a 'VEHICLE.TRANCHE' holding", vehicle))
            else:
                names = ", ".join(model.vehicles[vehicle].tranches) or "none"
                add(problem(where, f"unknown tranche of {vehicle} (tranches: {names})", tranche))
    for exp_id, holders in held.items():
        total = math.fsum(share for _, share in holders)
        if total > 1.0 + 1e-12:
            who = ", ".join(f"{k} {s:g}" for k, s in holders)
            table = "exposures" if exp_id in model.exposures else "vehicles"
            add(
                problem(
                    f"{table}.{exp_id}",
                    f"shares held add up to more than 1 ({who})",
                    round(total, 12),
                )
            )
    _check_lookthrough(model, add)
    _check_contagion(model, catalogue, add)
    return problems, correlation


def _check_class_label(where: str, label: str, add) -> None:
    if not ID_PATTERN.match(label):
        add(problem(where, "class labels use letters, digits, '_' and '-' only", label))


def _check_vehicles(model: ScenarioModel, factor_set: set[str], add) -> None:
    """Lessees, sponsors, recovery factors, and tranches that tile [0, 1] exactly."""
    for key, vehicle in model.vehicles.items():
        where = f"vehicles.{key}"
        if vehicle.lessee not in model.obligors:
            add(problem(f"{where}.lessee", "unknown obligor", vehicle.lessee))
        guarantee = vehicle.guarantee
        if guarantee is not None and guarantee.sponsor not in model.obligors:
            add(problem(f"{where}.guarantee.sponsor", "unknown obligor", guarantee.sponsor))
        recovery = vehicle.recovery
        if recovery.factor is not None and recovery.factor not in factor_set:
            add(problem(f"{where}.recovery.factor", "unknown factor", recovery.factor))
        if recovery.factor is None and recovery.sensitivity != 0.0:
            add(
                problem(
                    f"{where}.recovery.sensitivity",
                    "needs a 'factor' for the recovered value to move with",
                    recovery.sensitivity,
                )
            )
        if not vehicle.tranches:
            add(problem(f"{where}.tranches", "a vehicle needs at least one tranche"))
            continue
        for name, tranche in vehicle.tranches.items():
            if not ID_PATTERN.match(name):
                add(
                    problem(
                        f"{where}.tranches.{name}",
                        "tranche names use letters, digits, '_' and '-' only",
                        name,
                    )
                )
            _check_class_label(f"{where}.tranches.{name}.class", tranche.class_, add)
            if not tranche.attach < tranche.detach:
                add(
                    problem(
                        f"{where}.tranches.{name}.detach",
                        f"must be above attach ({tranche.attach})",
                        tranche.detach,
                    )
                )
        # The tranches must cover every loss from 0 to the whole asset exactly once.
        ordered = sorted(vehicle.tranches.items(), key=lambda item: item[1].attach)
        first_name, first = ordered[0]
        if first.attach != 0.0:
            add(
                problem(
                    f"{where}.tranches.{first_name}.attach",
                    "the lowest tranche must attach at 0: losses below it would belong to "
                    "no tranche (a gap)",
                    first.attach,
                )
            )
        for (low_name, low), (high_name, high) in itertools.pairwise(ordered):
            if high.attach < low.detach:
                add(
                    problem(
                        f"{where}.tranches.{high_name}.attach",
                        f"overlaps tranche {low_name} ({low.attach} to {low.detach})",
                        high.attach,
                    )
                )
            elif high.attach > low.detach:
                add(
                    problem(
                        f"{where}.tranches.{high_name}.attach",
                        f"leaves a gap above tranche {low_name}, which detaches at {low.detach}",
                        high.attach,
                    )
                )
        last_name, last = max(ordered, key=lambda item: item[1].detach)
        if last.detach != 1.0:
            add(
                problem(
                    f"{where}.tranches.{last_name}.detach",
                    "the highest tranche must detach at 1: losses above it would belong to "
                    "no tranche (a gap)",
                    last.detach,
                )
            )


def _check_dependencies(model: ScenarioModel, add) -> None:
    """Known obligors, revenue shares that add up to at most 1, and no cycles."""
    for provider, customers in model.dependencies.items():
        where = f"dependencies.{provider}"
        if provider not in model.obligors:
            add(problem(where, "unknown obligor (the provider)", provider))
        for customer in customers:
            if customer == provider:
                add(problem(f"{where}.{customer}", "an obligor cannot depend on itself", customer))
            elif customer not in model.obligors:
                add(problem(f"{where}.{customer}", "unknown obligor (the customer)", customer))
        total = math.fsum(d.revenue_share for d in customers.values())
        if total > 1.0 + 1e-12:
            add(
                problem(
                    where,
                    "revenue shares from customers add up to more than 1",
                    round(total, 12),
                )
            )
    edges = {
        provider: [c for c in customers if c != provider and c in model.obligors]
        for provider, customers in model.dependencies.items()
    }
    cycle = find_cycle(edges)
    if cycle:
        add(
            problem(
                f"dependencies.{cycle[0]}",
                "revenue dependencies form a cycle, so there is no order to resolve them in: "
                + " → ".join(cycle),
            )
        )


def _check_lookthrough(model: ScenarioModel, add) -> None:
    """Lines to institutions: one-way and acyclic, and not also a contagion claim."""
    on_institution = {
        key: exp.institution
        for key, exp in model.exposures.items()
        if exp.institution in model.institutions
    }
    edges: dict[str, list[str]] = {}
    for holder, inst in model.institutions.items():
        for exp_id in inst.holdings:
            borrower = on_institution.get(exp_id)
            if borrower is None:
                continue
            edges.setdefault(holder, []).append(borrower)
            if borrower in inst.claims and model.contagion.model != "none":
                add(
                    problem(
                        f"institutions.{holder}.claims.{borrower}",
                        f"{holder} also holds exposure {exp_id} on {borrower}, which passes "
                        f"{borrower}'s losses beyond its capital on already; model the "
                        "lending once",
                        inst.claims[borrower],
                    )
                )
    cycle = find_cycle(edges)
    if cycle:
        add(
            problem(
                f"institutions.{cycle[0]}.holdings",
                "exposures on institutions form a cycle (each holds a line to the next), so "
                "losses beyond capital have no order to pass on in: " + " → ".join(cycle),
            )
        )


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """A cycle ``[a, b, ..., a]`` in a directed graph, or ``[]``; deterministic."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def topological_order(nodes: Sequence[str], before: Mapping[str, Sequence[str]]) -> list[str]:
    """``nodes`` ordered so that every node comes after the nodes ``before[node]`` lists;
    ties keep the given order. The graph must be acyclic (validation checks it)."""
    position = {node: i for i, node in enumerate(nodes)}
    waiting = {node: 0 for node in nodes}
    after: dict[str, list[str]] = {node: [] for node in nodes}
    for node in nodes:
        for first in before.get(node, ()):
            if first in position and first != node:
                waiting[node] += 1
                after[first].append(node)
    ready = [position[n] for n in nodes if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for nxt in after[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, position[nxt])
    return order


TRANCHE_SEPARATOR = "."


def tranche_notional(vehicle: Vehicle, tranche: Tranche) -> float:
    return (tranche.detach - tranche.attach) * vehicle.asset_value


def exposure_catalogue(model: ScenarioModel) -> dict[str, tuple[float, str]]:
    """Everything an institution can hold, with its EAD and class: the exposures, then each
    vehicle's tranches as ``VEHICLE.TRANCHE`` (EAD = tranche width × asset value)."""
    catalogue = {key: (exp.ead, exp.class_) for key, exp in model.exposures.items()}
    for key, vehicle in model.vehicles.items():
        for name, tranche in vehicle.tranches.items():
            catalogue[f"{key}{TRANCHE_SEPARATOR}{name}"] = (
                tranche_notional(vehicle, tranche),
                tranche.class_,
            )
    return catalogue


def balance_sheet_gap(
    model: ScenarioModel, key: str, catalogue: Mapping[str, tuple[float, str]]
) -> tuple[float, float]:
    """(implied external liabilities, scale) of institution ``key`` from its balance sheet.

    capital = external assets + Σ share × EAD + claims held − external liabilities − claims
    owed, so the external liabilities that balance it are the rest. ``catalogue`` is
    :func:`exposure_catalogue` of the model, built once by the caller.
    """
    inst = model.institutions[key]
    held = math.fsum(
        share * catalogue[e][0] for e, share in inst.holdings.items() if e in catalogue
    )
    claims_held = math.fsum(inst.claims.values())
    claims_owed = math.fsum(
        other.claims.get(key, 0.0) for name, other in model.institutions.items() if name != key
    )
    assets = (inst.external_assets or 0.0) + held + claims_held
    return assets - claims_owed - inst.capital, max(1.0, assets)


def _check_contagion(model: ScenarioModel, catalogue: Mapping[str, tuple[float, str]], add) -> None:
    contagion = model.contagion
    for key, inst in model.institutions.items():
        for debtor in inst.claims:
            where = f"institutions.{key}.claims.{debtor}"
            if debtor == key:
                add(problem(where, "an institution cannot hold a claim on itself", debtor))
            elif debtor not in model.institutions:
                add(problem(where, "unknown institution", debtor))
    needs_balance_sheet = contagion.model != "none" or contagion.fire_sales is not None
    if needs_balance_sheet:
        for key, inst in model.institutions.items():
            if inst.external_assets is None:
                why = (
                    f"contagion.model is {contagion.model!r}"
                    if contagion.model != "none"
                    else "fire sales are on"
                )
                add(
                    problem(
                        f"institutions.{key}.external_assets",
                        f"required because {why} (the balance sheet the second round works on)",
                    )
                )
                continue
            if any(d not in model.institutions or d == key for d in inst.claims):
                continue
            implied, scale = balance_sheet_gap(model, key, catalogue)
            given = inst.external_liabilities
            if given is None and implied < -1e-9 * scale:
                add(
                    problem(
                        f"institutions.{key}",
                        "the balance sheet does not balance: assets less claims owed are below "
                        f"capital by {-implied:.6g}, so the balancing external liabilities "
                        "would be negative",
                        round(implied, 6),
                    )
                )
            elif given is not None and abs(given - implied) > 1e-9 * scale:
                add(
                    problem(
                        f"institutions.{key}.external_liabilities",
                        "the balance sheet does not balance: capital = external assets + "
                        "holdings + claims held − external liabilities − claims owed needs "
                        f"external liabilities of {implied:.10g} (gap {given - implied:.6g})",
                        given,
                    )
                )
    sales = contagion.fire_sales
    if sales is not None:
        classes = {label for _, label in catalogue.values()}
        for name in sales.classes:
            if name not in classes:
                add(problem(f"contagion.fire_sales.classes.{name}", "unknown exposure class", name))
        if sales.target_ratio <= sales.trigger_ratio:
            add(
                problem(
                    "contagion.fire_sales.target_ratio",
                    f"must be above trigger_ratio ({sales.trigger_ratio}) so that selling "
                    "restores the institution",
                    sales.target_ratio,
                )
            )


def _check_correlations(model, factors, factor_set, add) -> tuple[np.ndarray, bool]:
    index = {f: i for i, f in enumerate(factors)}
    k = len(factors)
    correlation = np.eye(k)
    seen: dict[frozenset[str], str] = {}
    ok = True
    for first, row in model.correlations.items():
        if first not in factor_set:
            add(problem(f"correlations.{first}", "unknown factor", first))
            ok = False
            continue
        for second, rho in row.items():
            where = f"correlations.{first}.{second}"
            if second not in factor_set:
                add(problem(where, "unknown factor", second))
                ok = False
                continue
            if first == second:
                add(problem(where, "a factor's correlation with itself is 1 by definition", rho))
                ok = False
                continue
            pair = frozenset((first, second))
            if pair in seen:
                add(problem(where, f"pair already given as {seen[pair]}", rho))
                ok = False
                continue
            seen[pair] = where
            i, j = index[first], index[second]
            correlation[i, j] = correlation[j, i] = rho
    if ok and k:
        eigenvalues, vectors = np.linalg.eigh(correlation)
        if eigenvalues[0] < -PSD_TOLERANCE:
            negative = int(np.sum(eigenvalues < -PSD_TOLERANCE))
            main = np.argsort(-np.abs(vectors[:, 0]))[:3]
            names = ", ".join(factors[i] for i in main)
            add(
                problem(
                    "correlations",
                    f"the correlation matrix is not positive semi-definite: {negative} of {k} "
                    f"eigenvalues are negative, the smallest mostly along {names}; fix the pairs, "
                    "or repair to the nearest correlation matrix (Higham 2002) with "
                    "`ai-stress correlations repair` or `run --repair-correlations`",
                    float(f"{eigenvalues[0]:.6g}"),
                )
            )
            ok = False
    return correlation, ok


def _check_stress(stress, factors, factor_set, correlation, add) -> None:
    if not stress.shocks:
        add(problem("stress.shocks", "name at least one factor to shock"))
        return
    bad = [f for f in stress.shocks if f not in factor_set]
    for f in bad:
        add(problem(f"stress.shocks.{f}", "unknown factor", f))
    if bad or correlation is None:
        return
    index = [factors.index(f) for f in stress.shocks]
    shocks = np.array(list(stress.shocks.values()))
    block = correlation[np.ix_(index, index)]
    # With a singular R_SS (shocked factors correlated ±1) only consistent shocks exist.
    implied = block @ np.linalg.pinv(block, hermitian=True) @ shocks
    if not np.allclose(implied, shocks, rtol=1e-8, atol=1e-8):
        add(
            problem(
                "stress.shocks",
                "the shocks contradict the correlation matrix (shocked factors are perfectly "
                "correlated, so their shocks must agree)",
                dict(stress.shocks),
            )
        )
