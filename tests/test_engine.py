"""Factor law, stresses and singular-but-valid inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stress.compile import compile_scenario, semidefinite_cholesky
from stress.engine import plan_blocks, simulate
from stress.scenario import load_scenario, validate_data

from builders import small_scenario


def _portfolio(**changes):
    return compile_scenario(validate_data(small_scenario(**changes)))


def test_blocks_cover_every_path_once():
    blocks = plan_blocks(10_500, 1_000)
    assert [b.size for b in blocks] == [1_000] * 10 + [500]
    assert [b.start for b in blocks] == list(range(0, 10_500, 1_000))
    assert plan_blocks(3, 10) == [plan_blocks(3, 10)[0]]


@pytest.mark.parametrize(
    "matrix",
    [
        np.eye(3),
        np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5], [0.5, -0.5, 1.0]]),
        np.ones((4, 4)),
        np.zeros((2, 2)),
    ],
)
def test_semidefinite_cholesky_factors_singular_matrices(matrix):
    factor = semidefinite_cholesky(matrix)
    np.testing.assert_allclose(factor @ factor.T, matrix, atol=1e-12)


def test_the_factor_moves_continuously_with_the_matrix():
    # A grid over one correlation, as a sweep runs it: with the same normal draws z, factor
    # i of two neighbouring points is row_i(A)·z and row_i(A')·z, correlated by the cosine of
    # the rows. A pivot order picked from the values swapped which draw fed which factor
    # between 0.30 and 0.32 here (cosines of about 0.2).
    def matrix(x):
        return np.array([[1.0, x, 0.3], [x, 1.0, 0.2], [0.3, 0.2, 1.0]])

    grid = np.linspace(0.26, 0.34, 9)
    factors = [semidefinite_cholesky(matrix(x)) for x in grid]
    for a, b in itertools.pairwise(factors):
        cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosines.min() > 0.999
    for x, factor in zip(grid, factors, strict=True):
        np.testing.assert_allclose(factor @ factor.T, matrix(x), atol=1e-14)


def test_a_nearly_singular_matrix_is_factored_within_the_root_of_the_tolerance():
    rho = 1.0 - 1e-13  # a and b all but equal: b adds no column of its own
    matrix = np.array([[1.0, rho, 0.3], [rho, 1.0, 0.3], [0.3, 0.3, 1.0]])
    factor = semidefinite_cholesky(matrix)
    assert np.count_nonzero(np.abs(factor).sum(axis=0)) == 2
    np.testing.assert_allclose(factor @ factor.T, matrix, atol=1e-6)


def test_factor_draws_have_the_correlation_matrix():
    pf = _portfolio()
    sim = simulate(pf, 100_000, seed=1, block_size=20_000)
    sample = np.corrcoef(sim.factors.T)
    r = validate_data(small_scenario()).correlation
    # SE of a sample correlation is (1 − ρ²)/sqrt(n) ≤ 0.0032 here.
    np.testing.assert_allclose(sample, r, atol=4 * 1 / np.sqrt(100_000))
    np.testing.assert_allclose(sim.factors.mean(axis=0), 0.0, atol=4 / np.sqrt(100_000))


def test_perfectly_correlated_factors_run_and_move_together():
    sim = simulate(
        _portfolio(
            correlations={
                "ai_demand": {"gpu_value": 1.0, "credit_spread": -0.3},
                "gpu_value": {"credit_spread": -0.3},
            }
        ),
        5_000,
        seed=2,
        block_size=1_000,
    )
    np.testing.assert_allclose(sim.factors[:, 0], sim.factors[:, 1], atol=1e-12)
    assert np.isfinite(sim.system_loss).all()


def test_tiny_pd_runs():
    data = small_scenario()
    data["obligors"]["hyperscaler_a"]["pd"] = 1e-12
    data["pools"]["bank_other"]["pd"] = 1e-12
    pf = compile_scenario(validate_data(data))
    sim = simulate(pf, 4_000, seed=3, block_size=1_000)
    assert np.isfinite(sim.system_loss).all()
    assert sim.class_loss[:, pf.class_names.index("hyperscaler_bond")].max() == 0.0


def test_condition_fixes_the_shocked_factors_and_draws_the_rest_conditionally():
    shocks = {"ai_demand": -2.0, "credit_spread": 1.5}
    pf = _portfolio(stress={"mode": "condition", "shocks": shocks})
    sim = simulate(pf, 60_000, seed=4, block_size=10_000)
    assert (sim.factors[:, 0] == -2.0).all() and (sim.factors[:, 2] == 1.5).all()
    # Conditional law of gpu_value: R_FS R_SS⁻¹ s and 1 − R_FS R_SS⁻¹ R_SF.
    r_ss = np.array([[1.0, -0.3], [-0.3, 1.0]])
    r_fs = np.array([0.6, 0.0])
    beta = r_fs @ np.linalg.inv(r_ss)
    mean, variance = beta @ np.array([-2.0, 1.5]), 1.0 - beta @ r_fs
    n = sim.factors.shape[0]
    assert abs(sim.factors[:, 1].mean() - mean) <= 4 * np.sqrt(variance / n)
    assert abs(sim.factors[:, 1].var() - variance) <= 4 * variance * np.sqrt(2 / n)


def test_shift_moves_means_by_the_regression_and_keeps_the_covariance():
    pf = _portfolio(stress={"mode": "shift", "shocks": {"ai_demand": -2.5}})
    np.testing.assert_allclose(pf.factor_mean, [-2.5, 0.6 * -2.5, -0.3 * -2.5], rtol=1e-12)
    sim = simulate(pf, 60_000, seed=5, block_size=10_000)
    n = sim.factors.shape[0]
    np.testing.assert_allclose(sim.factors.mean(axis=0), pf.factor_mean, atol=4 / np.sqrt(n))
    np.testing.assert_allclose(np.var(sim.factors, axis=0), 1.0, atol=4 * np.sqrt(2 / n))


def test_a_more_severe_shock_raises_every_loss():
    mild = simulate(
        _portfolio(stress={"mode": "shift", "shocks": {"ai_demand": -1.0}}), 20_000, 6, 5_000
    )
    severe = simulate(
        _portfolio(stress={"mode": "shift", "shocks": {"ai_demand": -3.0}}), 20_000, 6, 5_000
    )
    assert severe.system_loss.mean() > mild.system_loss.mean()
    assert (severe.institution_loss.mean(axis=0) >= mild.institution_loss.mean(axis=0)).all()


def test_exposures_on_one_obligor_default_together():
    sim = simulate(_portfolio(), 20_000, seed=7, block_size=5_000)
    pf = _portfolio()
    loan = pf.class_names.index("gpu_backed_loan")
    notes = pf.class_names.index("neocloud_high_yield")
    np.testing.assert_array_equal(sim.class_loss[:, loan] > 0, sim.class_loss[:, notes] > 0)


def test_fast_and_reference_kernels_agree_in_distribution():
    """Different draws, same law: every institution's EL and PD, and the system's tail."""
    pf = compile_scenario(load_scenario("ai-demand-shock"))
    fast = simulate(pf, 60_000, seed=1, block_size=10_000, kernel="fast")
    reference = simulate(pf, 60_000, seed=2, block_size=10_000, kernel="reference")
    n = 60_000

    def close(a, b):
        se = np.sqrt(a.var(axis=0) / n + b.var(axis=0) / n)
        assert (np.abs(a.mean(axis=0) - b.mean(axis=0)) <= 4 * se).all()

    close(fast.institution_loss, reference.institution_loss)
    close(fast.class_loss, reference.class_loss)
    close(fast.n_defaults, reference.n_defaults)
    capital = pf.institution_capital
    close(fast.institution_loss >= capital, reference.institution_loss >= capital)
    q = np.quantile(reference.system_loss, 0.99)
    close(fast.system_loss > q, reference.system_loss > q)
