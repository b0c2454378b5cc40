"""Synthetic, deterministic portfolios for the kernel benchmarks (benchmarks/loss_kernels.py).

Obligor ``i`` of an ``n``-obligor book is fixed by its index alone, so every run (and every
size) builds the same book, and the first 1 000 obligors of the 10 000-obligor book are the
1 000-obligor book:

- PD grade ``i % 20``: 20 grades log-spaced from 0.03 % to 20 %;
- sector ``(i // 20) % 10``: one of 10 factors with correlation 0.3 between every pair;
- loading pattern ``(i // 200) % 2``: 0.45 on the sector alone, or (0.35, 0.25) on the sector
  and the next one.

Grades, sectors and patterns come from small discrete sets on purpose: obligors share
(PD, loadings), which is the structure the fast kernel groups on (20 × 10 × 2 = 400 groups at
every size from 400 obligors up). One exposure per obligor, LGD 0.45, EAD from a fixed
lognormal, class = sector; five institutions each hold a primary share (0.6) or a partner
share (0.25) of a deterministic set of exposures.

``mechanics_data`` adds the financing mechanics to a book: vehicles leased to its obligors,
revenue dependencies between them and bank lines to its funds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

N_FACTORS = 10
N_GRADES = 20
PD_GRADES = np.geomspace(3e-4, 0.2, N_GRADES)
FACTOR_CORRELATION = 0.3
ONE_FACTOR_LOADING = 0.45
TWO_FACTOR_LOADINGS = (0.35, 0.25)
LGD = 0.45
# EADs: lognormal with median 5 million and log-sd 1, from a generator of its own so that the
# book does not depend on any simulation seed.
EAD_SEED = 20250805
EAD_MEDIAN = 5e6
EAD_LOG_SD = 1.0
T_DOF = 5.0
# (id, type); an exposure's primary holder is (i // 3) % 5, so that holdings do not line up
# with the 20-grade cycle and every institution holds every grade; the partner is two along.
INSTITUTIONS = (
    ("bank_a", "bank"),
    ("bank_b", "bank"),
    ("insurer_a", "insurer"),
    ("credit_fund_a", "private_credit_fund"),
    ("pension_a", "pension_fund"),
)
PRIMARY_SHARE = 0.6
PARTNER_SHARE = 0.25
# Capital as a fraction of the EAD an institution holds: only needs to be positive here.
CAPITAL_RATIO = 0.08


@dataclass(frozen=True)
class Book:
    """The arrays a benchmark book is made of, one entry per obligor (= per exposure)."""

    pd: np.ndarray
    sector: np.ndarray
    pattern: np.ndarray
    ead: np.ndarray

    @property
    def expected_loss(self) -> float:
        """Σ PD × EAD × LGD: what every engine's mean loss per path must estimate."""
        return float(np.sum(self.pd * self.ead) * LGD)


def book(n_obligors: int) -> Book:
    """The deterministic arrays of the ``n_obligors`` book."""
    i = np.arange(n_obligors)
    ead = np.random.default_rng(EAD_SEED).lognormal(
        math.log(EAD_MEDIAN), EAD_LOG_SD, size=n_obligors
    )
    return Book(
        pd=PD_GRADES[i % N_GRADES],
        sector=(i // N_GRADES) % N_FACTORS,
        pattern=(i // (N_GRADES * N_FACTORS)) % 2,
        ead=ead,
    )


def factor_name(k: int) -> str:
    return f"f{k}"


def scenario_data(n_obligors: int, copula: str = "gaussian") -> dict[str, Any]:
    """The scenario of the ``n_obligors`` book as TOML data, for ``validate_data`` or a file.

    Parameters
    ----------
    n_obligors : int
        Book size.
    copula : {"gaussian", "t"}
        The t copula has ν = ``T_DOF``.

    Returns
    -------
    dict
        Plain Python scalars only, so ``stress.tomlwrite.dumps`` can write it.
    """
    b = book(n_obligors)
    simulation: dict[str, Any] = {"copula": copula}
    if copula == "t":
        simulation["dof"] = T_DOF
    factors = [factor_name(k) for k in range(N_FACTORS)]
    correlations = {
        first: {second: FACTOR_CORRELATION for second in factors[j + 1 :]}
        for j, first in enumerate(factors[:-1])
    }
    obligors: dict[str, Any] = {}
    exposures: dict[str, Any] = {}
    holdings: list[dict[str, float]] = [{} for _ in INSTITUTIONS]
    held_ead = [0.0] * len(INSTITUTIONS)
    for i in range(n_obligors):
        sector = int(b.sector[i])
        if b.pattern[i] == 0:
            loadings = {factor_name(sector): ONE_FACTOR_LOADING}
        else:
            loadings = {
                factor_name(sector): TWO_FACTOR_LOADINGS[0],
                factor_name((sector + 1) % N_FACTORS): TWO_FACTOR_LOADINGS[1],
            }
        obligor, exposure = f"o{i:06d}", f"e{i:06d}"
        ead = float(b.ead[i])
        obligors[obligor] = {"pd": float(b.pd[i]), "loadings": loadings}
        exposures[exposure] = {
            "obligor": obligor,
            "class": f"sector_{sector}",
            "ead": ead,
            "lgd": LGD,
        }
        primary = (i // 3) % len(INSTITUTIONS)
        partner = (primary + 2) % len(INSTITUTIONS)
        for holder, share in ((primary, PRIMARY_SHARE), (partner, PARTNER_SHARE)):
            holdings[holder][exposure] = share
            held_ead[holder] += share * ead
    institutions = {
        name: {
            "type": kind,
            "capital": max(CAPITAL_RATIO * held_ead[j], 1.0),
            "holdings": holdings[j],
        }
        for j, (name, kind) in enumerate(INSTITUTIONS)
    }
    return {
        "name": f"bench-{n_obligors}-{copula}",
        "description": "Synthetic benchmark book (benchmarks/portfolios.py).",
        "simulation": simulation,
        "factors": {f: {} for f in factors},
        "correlations": correlations,
        "obligors": obligors,
        "exposures": exposures,
        "institutions": institutions,
    }


# The financing mechanics on top of a book (``mechanics_data``): vehicles leased to book
# obligors, revenue dependencies between book obligors, and bank lines to funds.
N_VEHICLES = 20
N_DEPENDENCIES = 50
VEHICLE_ASSET = 2e8
# (tranche, class, attach, detach, holder index into INSTITUTIONS)
TRANCHES = (
    ("equity", "spv_equity", 0.0, 0.1, 3),
    ("mezzanine", "spv_mezzanine", 0.1, 0.3, 2),
    ("senior", "spv_senior", 0.3, 1.0, 1),
)
# (lender, borrowing fund, EAD): lines to the private credit fund and the pension fund.
LINES = (
    ("bank_a", "credit_fund_a", 5e8),
    ("bank_b", "credit_fund_a", 3e8),
    ("bank_a", "pension_a", 2e8),
)


def mechanics_data(n_obligors: int, copula: str = "gaussian") -> dict[str, Any]:
    """The ``n_obligors`` book of ``scenario_data`` with the financing mechanics added.

    - ``N_VEHICLES`` vehicles, vehicle v leased to obligor ``(n // N_VEHICLES) × v + 19`` (the
      20 % grade), with a non-renewal clause (probability 10 %, loading 0.4 on the lessee's
      sector), a recovery of 0.5 + 0.1 × the sector factor, a guarantee capped at 20 % of the
      asset by the next obligor along, and three tranches held by the credit fund (equity),
      the insurer (mezzanine) and bank_b (senior);
    - ``N_DEPENDENCIES`` revenue dependencies: obligor ``(n // N_DEPENDENCIES) × d + 7``
      (provider) on obligor ``(n // N_DEPENDENCIES) × d + 12`` (customer), revenue share 0.3,
      sensitivity 1.5, so the providers are simulated one by one after the groups;
    - ``LINES``: bank lines (no LGD) to the credit fund and the pension fund, which pass on
      the fund's first-round loss beyond its capital.
    """
    data = scenario_data(n_obligors, copula)
    data["name"] = f"bench-{n_obligors}-{copula}-mechanics"
    obligors = list(data["obligors"])
    institutions = data["institutions"]
    names = [name for name, _ in INSTITUTIONS]
    vehicles: dict[str, Any] = {}
    stride = n_obligors // N_VEHICLES
    for v in range(N_VEHICLES):
        lessee = stride * v + N_GRADES - 1
        sector = factor_name(int((lessee // N_GRADES) % N_FACTORS))
        key = f"spv_{v:02d}"
        vehicles[key] = {
            "asset_value": VEHICLE_ASSET,
            "lessee": obligors[lessee],
            "non_renewal": {"probability": 0.1, "loadings": {sector: 0.4}},
            "recovery": {"base": 0.5, "factor": sector, "sensitivity": 0.1},
            "guarantee": {"sponsor": obligors[lessee + 1], "cap": 0.2 * VEHICLE_ASSET},
            "tranches": {
                name: {"class": label, "attach": attach, "detach": detach}
                for name, label, attach, detach, _ in TRANCHES
            },
        }
        for name, _, _, _, holder in TRANCHES:
            institutions[names[holder]]["holdings"][f"{key}.{name}"] = 1.0
    dependencies: dict[str, Any] = {}
    stride = n_obligors // N_DEPENDENCIES
    for d in range(N_DEPENDENCIES):
        provider, customer = obligors[stride * d + 7], obligors[stride * d + 12]
        dependencies[provider] = {customer: {"revenue_share": 0.3, "sensitivity": 1.5}}
    for j, (lender, fund, ead) in enumerate(LINES):
        key = f"line_{j}"
        data["exposures"][key] = {"institution": fund, "class": "bank_line", "ead": ead}
        institutions[lender]["holdings"][key] = 1.0
    data["vehicles"] = vehicles
    data["dependencies"] = dependencies
    return data
