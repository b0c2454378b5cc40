"""The engine against closed forms and published values (shared/reference/validation.md).

Every Monte Carlo check is |estimate − truth| ≤ 4 standard errors with a fixed seed. Tail
checks compare the simulated CDF at the true quantile with the level (SE of a probability,
sqrt(α(1 − α)/n)); discrete default counts compare P(D ≥ k), not quantiles.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stress.compile import compile_scenario
from stress.engine import simulate
from stress.scenario import validate_data

from oracles import (
    basel_capital_k,
    basel_correlation,
    finite_pool_pmf_t,
    finite_pool_tail,
    finite_pool_tail_t,
    multifactor_moments,
    t_large_pool_quantile,
    vasicek_es,
    vasicek_quantile,
)

PATHS = 200_000
BLOCK = 10_000


def one_factor_pool(p, rho, method, count=1_000, copula=None, ead=None, lgd=1.0):
    """A single pool on one factor with loading sqrt(ρ); loss = EAD × default fraction × LGD."""
    simulation = {"copula": "t", "dof": copula} if copula else {}
    return {
        "name": "one-factor",
        "simulation": simulation,
        "factors": {"z": {}},
        "pools": {
            "pool": {"count": count, "pd": p, "loadings": {"z": math.sqrt(rho)}, "method": method}
        },
        "exposures": {
            "book": {
                "pool": "pool",
                "class": "book",
                "ead": float(count if ead is None else ead),
                "lgd": lgd,
            }
        },
    }


def run(data, kernel, paths=PATHS, seed=20250805):
    portfolio = compile_scenario(validate_data(data))
    return simulate(portfolio, paths, seed, BLOCK, threads=2, kernel=kernel)


@pytest.fixture(params=["fast", "reference"])
def kernel(request):
    """Every validation runs on both kernels: the fast path must pass the same oracles."""
    return request.param


def assert_probability(estimate, truth, n):
    se = math.sqrt(truth * (1.0 - truth) / n)
    assert abs(estimate - truth) <= 4 * se, f"{estimate} vs {truth} (4 SE = {4 * se:.3g})"


@pytest.mark.parametrize("p, rho", [(0.01, 0.12), (0.01, 0.20), (0.05, 0.20)])
def test_vasicek_large_pool_quantiles_and_es(p, rho, kernel):
    loss = run(one_factor_pool(p, rho, "large_pool", ead=1.0), kernel).system_loss
    n = loss.size
    assert abs(loss.mean() - p) <= 4 * loss.std() / math.sqrt(n)
    for alpha in (0.99, 0.999):
        q = vasicek_quantile(alpha, p, rho)
        assert_probability(np.mean(loss <= q), alpha, n)
        # ES estimator VaR + mean((L − VaR)⁺)/(1 − α); its SE from the influence function.
        var = np.sort(loss)[math.ceil(n * alpha - 1e-9) - 1]
        excess = np.clip(loss - var, 0.0, None) / (1.0 - alpha)
        es = var + excess.mean()
        se = excess.std() / math.sqrt(n)
        assert abs(es - vasicek_es(alpha, p, rho)) <= 4 * se, (es, vasicek_es(alpha, p, rho))


def test_vasicek_published_table_through_the_engine(kernel):
    """The table rows of validation.md §2 as the simulated CDF sees them."""
    loss = run(one_factor_pool(0.01, 0.20, "large_pool", ead=1.0), kernel).system_loss
    for alpha, published in ((0.99, 0.075251), (0.999, 0.145525)):
        assert_probability(np.mean(loss <= published), alpha, loss.size)


@pytest.mark.parametrize("n_names, p, rho", [(100, 0.01, 0.2), (500, 0.05, 0.2), (250, 0.02, 0.4)])
def test_finite_exact_pool_against_conditional_binomial(n_names, p, rho, kernel):
    defaults = run(
        one_factor_pool(p, rho, "exact", count=n_names), kernel, paths=100_000
    ).system_loss
    tail = finite_pool_tail(n_names, p, rho)
    counts = np.rint(defaults).astype(np.int64)
    np.testing.assert_allclose(defaults, counts, rtol=1e-12)  # EAD = count, LGD = 1: loss = D
    for k in (1, 2, 5, 10, 20, 50):
        if k <= n_names and tail[k] > 1e-4:
            assert_probability(np.mean(counts >= k), tail[k], counts.size)


@pytest.mark.parametrize("nu", [None, 4.0])
def test_finite_pool_of_named_obligors_against_conditional_binomial(kernel, nu):
    """Named obligors take the per-obligor path of the kernel; n_defaults must follow the law."""
    n_names, p, rho = 40, 0.03, 0.25
    data = {
        "name": "named",
        "simulation": {"copula": "t", "dof": nu} if nu else {},
        "factors": {"z": {}},
        "obligors": {f"o{i}": {"pd": p, "loadings": {"z": math.sqrt(rho)}} for i in range(n_names)},
        "exposures": {
            f"e{i}": {"obligor": f"o{i}", "class": "c", "ead": 1.0, "lgd": 1.0}
            for i in range(n_names)
        },
    }
    sim = run(data, kernel, paths=100_000)
    np.testing.assert_array_equal(sim.n_defaults, np.rint(sim.system_loss))
    tail = finite_pool_tail_t(n_names, p, rho, nu) if nu else finite_pool_tail(n_names, p, rho)
    for k in (1, 2, 4, 8, 12):
        assert_probability(np.mean(sim.n_defaults >= k), tail[k], sim.n_defaults.size)


@pytest.mark.parametrize("nu", [4.0, 10.0])
def test_t_copula_finite_pool(nu, kernel):
    n_names, p, rho = 100, 0.01, 0.2
    defaults = run(one_factor_pool(p, rho, "exact", count=n_names, copula=nu), kernel, 100_000)
    counts = np.rint(defaults.system_loss).astype(np.int64)
    tail = np.cumsum(finite_pool_pmf_t(n_names, p, rho, nu)[::-1])[::-1]
    for k in (1, 3, 10, 25):
        assert_probability(np.mean(counts >= k), tail[k], counts.size)


@pytest.mark.parametrize("nu, q99, q999", [(4.0, 0.193920, 0.441800), (10.0, 0.129453, 0.286809)])
def test_t_copula_large_pool_published_quantiles(nu, q99, q999, kernel):
    assert t_large_pool_quantile(0.99, 0.01, 0.2, nu) == pytest.approx(q99, abs=1e-6)
    loss = run(one_factor_pool(0.01, 0.2, "large_pool", ead=1.0, copula=nu), kernel).system_loss
    assert_probability(np.mean(loss <= q99), 0.99, loss.size)
    assert_probability(np.mean(loss <= q999), 0.999, loss.size)


def test_basel_irb_relation(kernel):
    """Large-pool 99.9 % quantile − EL = K before the maturity adjustment (validation.md §1)."""
    pd, lgd = 0.01, 0.45
    r = basel_correlation(pd)
    b = (0.11852 - 0.05478 * math.log(pd)) ** 2
    k_before_maturity = basel_capital_k(pd, lgd) * (1.0 - 1.5 * b)
    loss = run(one_factor_pool(pd, r, "large_pool", ead=1.0, lgd=lgd), kernel).system_loss
    assert_probability(np.mean(loss <= k_before_maturity + pd * lgd), 0.999, loss.size)


def test_multifactor_exact_mean_and_variance(kernel):
    """E[L] and Var[L] of a multi-factor book with shared obligors (validation.md §3)."""
    factors = ["a", "b", "c"]
    corr = {"a": {"b": 0.5, "c": -0.2}, "b": {"c": 0.3}}
    obligors = {
        "o1": (0.02, {"a": 0.6}),
        "o2": (0.05, {"a": 0.3, "b": 0.4}),
        "o3": (0.01, {"c": 0.7}),
        "o4": (0.10, {"b": -0.5, "c": 0.2}),
        "o5": (0.002, {}),
    }
    exposures = [("o1", 3.0), ("o1", 1.0), ("o2", 2.0), ("o3", 5.0), ("o4", 1.5), ("o5", 4.0)]
    data = {
        "name": "multi",
        "factors": {f: {} for f in factors},
        "correlations": corr,
        "obligors": {k: {"pd": pd, "loadings": a} for k, (pd, a) in obligors.items()},
        "exposures": {
            f"e{i}": {"obligor": o, "class": "c", "ead": c, "lgd": 1.0}
            for i, (o, c) in enumerate(exposures)
        },
    }
    scenario = validate_data(data)
    loss = run(data, kernel).system_loss
    ids = list(obligors)
    loadings = np.array([[obligors[o][1].get(f, 0.0) for f in factors] for o in ids])
    mean, variance = multifactor_moments(
        c=np.array([c for _, c in exposures]),
        pd=np.array([obligors[o][0] for o, _ in exposures]),
        loadings=loadings[[ids.index(o) for o, _ in exposures]],
        R=scenario.correlation,
        obligor_index=np.array([ids.index(o) for o, _ in exposures]),
    )
    n = loss.size
    assert abs(loss.mean() - mean) <= 4 * math.sqrt(variance / n)
    centred = loss - loss.mean()
    se_var = math.sqrt((np.mean(centred**4) - np.var(loss) ** 2) / n)
    assert abs(np.var(loss, ddof=1) - variance) <= 4 * se_var


def test_gaussian_conditional_pd_formula_used_by_large_pools(kernel):
    """Φ((Φ⁻¹(p) − sqrt(ρ)Z)/sqrt(1 − ρ)) evaluated on the simulated factor itself."""
    data = one_factor_pool(0.03, 0.3, "large_pool", ead=1.0)
    sim = run(data, kernel, paths=20_000)
    z = sim.factors[:, 0]
    expected = stats.norm.cdf((stats.norm.ppf(0.03) - math.sqrt(0.3) * z) / math.sqrt(0.7))
    np.testing.assert_allclose(sim.system_loss, expected, rtol=1e-12, atol=1e-300)
