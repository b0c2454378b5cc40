"""Engine estimates next to the closed forms of shared/reference/validation.md.

Prints the Markdown table quoted in the README's validation section:

    python benchmarks/accuracy.py [--paths 1000000]

Each row is a one-factor large homogeneous pool (the `large_pool` method) with loading
sqrt(ρ), so its loss fraction has the closed-form Vasicek (Gaussian) or t-copula law. The
engine's VaR and ES come from ``stress.metrics`` with batch-means standard errors, exactly as
``ai-stress run`` reports them.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from stress.compile import compile_scenario
from stress.engine import simulate
from stress.metrics import Column, summarise
from stress.scenario import validate_data

from oracles import (
    basel_capital_k,
    basel_correlation,
    basel_maturity_factor,
    t_large_pool_quantile,
    vasicek_es,
    vasicek_quantile,
)

BLOCK = 10_000
SEED = 20250805


def pool(p: float, rho: float, dof: float | None = None, lgd: float = 1.0) -> dict:
    simulation = {"copula": "t", "dof": dof} if dof else {}
    return {
        "name": "accuracy",
        "simulation": simulation,
        "factors": {"z": {}},
        "pools": {
            "pool": {"count": 1, "pd": p, "loadings": {"z": math.sqrt(rho)}, "method": "large_pool"}
        },
        "exposures": {"book": {"pool": "pool", "class": "book", "ead": 1.0, "lgd": lgd}},
    }


def estimate(data: dict, paths: int, levels: list[float]) -> dict:
    sim = simulate(compile_scenario(validate_data(data)), paths, SEED, BLOCK)
    blocks = [sim.system_loss[start : start + BLOCK, None] for start in range(0, paths, BLOCK)]
    # The pool's EAD is 1, so no path loses more than 1: the top of the metrics' grid.
    rows = summarise([Column("system", "system")], levels, BLOCK, np.ones(1), blocks)
    return {(r["metric"], r["level"]): r for r in rows}


def cell(row: dict) -> str:
    return f"{row['value']:.6f} ± {row['std_error']:.6f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    paths = parser.parse_args().paths
    print(f"{paths:,} paths, seed {SEED}, block size {BLOCK:,}; value ± batch-means SE\n")
    print("| model | p | ρ | metric | closed form | ai-stress | z |")
    print("|---|---|---|---|---:|---:|---:|")

    def line(model, p, rho, metric, truth, row):
        z = (row["value"] - truth) / row["std_error"]
        print(f"| {model} | {p} | {rho} | {metric} | {truth:.6f} | {cell(row)} | {z:+.2f} |")

    for p, rho in ((0.01, 0.12), (0.01, 0.20), (0.05, 0.20)):
        rows = estimate(pool(p, rho), paths, [0.99, 0.999])
        for level in (0.99, 0.999):
            line(
                "Vasicek",
                p,
                rho,
                f"VaR {level:.1%}",
                vasicek_quantile(level, p, rho),
                rows[("var", level)],
            )
        for level in (0.99, 0.999):
            line(
                "Vasicek", p, rho, f"ES {level:.1%}", vasicek_es(level, p, rho), rows[("es", level)]
            )
    for nu in (4.0, 10.0):
        rows = estimate(pool(0.01, 0.2, dof=nu), paths, [0.99, 0.999])
        for level in (0.99, 0.999):
            line(
                f"t, ν = {nu:g}",
                0.01,
                0.2,
                f"VaR {level:.1%}",
                t_large_pool_quantile(level, 0.01, 0.2, nu),
                rows[("var", level)],
            )
    pd, lgd = 0.01, 0.45
    r = basel_correlation(pd)
    rows = estimate(pool(pd, r, lgd=lgd), paths, [0.999])
    k_engine = dict(rows[("var", 0.999)])
    k_engine["value"] -= pd * lgd
    k_basel = basel_capital_k(pd, lgd) / basel_maturity_factor(pd)
    line("Basel IRB K (LGD 45 %)", pd, f"{r:.4f}", "VaR 99.9% − EL", k_basel, k_engine)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
