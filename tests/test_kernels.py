"""Kernels against their plain-Python twins, draw for draw."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import draw_factors, simulate_losses_fast, simulate_losses_reference
from stress.compile import compile_scenario
from stress.engine import Block, block_generator, simulate_block
from stress.scenario import validate_data

from builders import MECHANICS, small_scenario
from twins import draw_factors_twin, simulate_losses_fast_twin, simulate_losses_twin

# Thirty identical names (one group) and ten with a high PD (the fast kernel's dense branch).
GROUPED = {
    "obligors": {
        **{f"dc_{i}": {"pd": 0.02, "loadings": {"ai_demand": 0.4}} for i in range(30)},
        **{f"lab_{i}": {"pd": 0.3, "loadings": {"ai_demand": 0.4}} for i in range(10)},
    },
    "exposures": {
        **{
            f"dc_{i}_loan": {
                "obligor": f"dc_{i}",
                "class": "construction_loan",
                "ead": 1e9,
                "lgd": {"mean": 0.4, "sd": 0.2},
            }
            for i in range(30)
        },
        **{
            f"lab_{i}_line": {"obligor": f"lab_{i}", "class": "bank_line", "ead": 2e9, "lgd": 0.5}
            for i in range(10)
        },
    },
}

VARIANTS = {
    "grouped": GROUPED,
    "gaussian": {},
    "t": {"simulation": {"copula": "t", "dof": 4.0}},
    "shift": {"stress": {"mode": "shift", "shocks": {"ai_demand": -2.0}}},
    "mechanics": MECHANICS,
    "mechanics-t": {**MECHANICS, "simulation": {"copula": "t", "dof": 5.0}},
    "condition-t": {
        "simulation": {"copula": "t", "dof": 6.0},
        "stress": {"mode": "condition", "shocks": {"ai_demand": -1.5, "credit_spread": 1.0}},
    },
}


@pytest.fixture(params=sorted(VARIANTS))
def portfolio(request):
    return compile_scenario(validate_data(small_scenario(**VARIANTS[request.param])))


def test_draw_factors_matches_twin(portfolio):
    n = 300
    factors = np.empty((n, portfolio.n_factors))
    scale = np.empty(n)
    draw_factors(
        block_generator(5, 2),
        portfolio.factor_mean,
        portfolio.factor_loading,
        portfolio.dof,
        factors,
        scale,
    )
    twin_factors, twin_scale = draw_factors_twin(
        block_generator(5, 2), portfolio.factor_mean, portfolio.factor_loading, portfolio.dof, n
    )
    np.testing.assert_allclose(factors, twin_factors, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(scale, twin_scale)


KERNELS = {
    "reference": (simulate_losses_reference, simulate_losses_twin, "reference_kernel_arguments"),
    "fast": (simulate_losses_fast, simulate_losses_fast_twin, "fast_kernel_arguments"),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_losses_match_twin(portfolio, kernel):
    losses, twin, arguments = KERNELS[kernel]
    n = 400
    rng = block_generator(9, 0)
    factors, scale = draw_factors_twin(
        rng, portfolio.factor_mean, portfolio.factor_loading, portfolio.dof, n
    )
    state = rng.bit_generator.state
    n_vehicles = len(portfolio.vehicles.ids)
    out = (
        np.empty(n),
        np.empty(n, dtype=np.int64),
        np.empty((n, len(portfolio.class_names))),
        np.empty((n, len(portfolio.institution_ids))),
        np.empty((n, n_vehicles)),
        np.empty((n, n_vehicles)),
        np.empty((n, n_vehicles), dtype=np.int8),
        np.empty((n, portfolio.n_tranches)),
    )
    losses(rng, factors, scale, *getattr(portfolio, arguments)(), *out)
    twin_rng = block_generator(9, 0)
    twin_rng.bit_generator.state = state
    system, n_defaults, classes, institutions, vehicles = twin(twin_rng, factors, scale, portfolio)
    np.testing.assert_allclose(out[0], system, rtol=1e-12)
    np.testing.assert_array_equal(out[1], n_defaults)
    np.testing.assert_allclose(out[2], classes, rtol=1e-12, atol=1e-3)
    np.testing.assert_allclose(out[3], institutions, rtol=1e-12, atol=1e-3)
    for got, expected in zip(out[4:], vehicles, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert out[1].sum() > 0, "the test portfolio should see defaults"
    # The twin shares the random stream only if it consumed exactly what the kernel did.
    assert rng.random() == twin_rng.random()


def test_block_is_a_pure_function_of_seed_and_index(portfolio):
    first = simulate_block(portfolio, 3, Block(4, 4000, 500))
    again = simulate_block(portfolio, 3, Block(4, 4000, 500))
    other = simulate_block(portfolio, 3, Block(5, 4500, 500))
    np.testing.assert_array_equal(first.system_loss, again.system_loss)
    np.testing.assert_array_equal(first.factors, again.factors)
    assert not np.array_equal(first.factors, other.factors)
