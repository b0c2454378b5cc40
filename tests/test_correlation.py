"""Tests of stress/correlation.py: nearest correlation, implied correlations, fitting.

Oracles: Higham's (2002) worked example and closed forms (a 3×3 problem whose answer is
1/sqrt(2), Φ₂(0, 0; ρ) = 1/4 + asin(ρ)/2π, published tail-dependence values); the
independent bivariate normal CDFs of tests/oracles.py; adaptive quadrature for the t-copula
integral; and statistical checks at 4 standard errors with fixed seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from stress.correlation import (
    FitResult,
    RepairResult,
    asset_correlation,
    asset_correlation_matrix,
    audit,
    bivariate_normal_cdf,
    default_correlation,
    default_correlation_matrix,
    default_correlation_t,
    fit_correlation,
    is_psd,
    joint_default_probability,
    ledoit_wolf_intensity,
    nearest_correlation,
    tail_dependence_t,
)
from stress.exceptions import OptionError, StressError

from oracles import bivariate_normal_cdf as oracle_bvn
from oracles import bivariate_normal_cdf_quad as oracle_bvn_quad
from oracles import t_tail_dependence as oracle_tail_dependence

HIGHAM = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
HIGHAM_NEAREST = np.array([[1.0, 0.7607, 0.1573], [0.7607, 1.0, 0.7607], [0.1573, 0.7607, 1.0]])
# A 4×4 factor correlation matrix (eigenvalues 0.23 to 1.88) for the fitting tests.
TRUE_R = np.array(
    [
        [1.0, 0.5, 0.3, -0.2],
        [0.5, 1.0, 0.4, 0.0],
        [0.3, 0.4, 1.0, 0.6],
        [-0.2, 0.0, 0.6, 1.0],
    ]
)


def min_eig(m: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(m)[0])


def random_correlation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A random positive definite correlation matrix (normalised Wishart)."""
    g = rng.standard_normal((k, k + 2))
    c = g @ g.T
    d = np.sqrt(np.diag(c))
    c = c / np.outer(d, d)
    np.fill_diagonal(c, 1.0)
    return 0.5 * (c + c.T)


def random_invalid(k: int, rng: np.random.Generator) -> np.ndarray:
    """A symmetric unit-diagonal matrix with entries in [-1, 1], almost surely indefinite."""
    a = rng.uniform(-1.0, 1.0, (k, k))
    a = np.triu(a, 1)
    a = a + a.T
    np.fill_diagonal(a, 1.0)
    return a


def assert_correlation(m: np.ndarray, psd_tol: float = 1e-12) -> None:
    assert np.array_equal(m, m.T)
    assert np.array_equal(np.diag(m), np.ones(m.shape[0]))
    assert np.all(np.abs(m) <= 1.0)
    assert min_eig(m) >= -psd_tol


# --------------------------------------------------------------------------------------
# Nearest correlation matrix
# --------------------------------------------------------------------------------------


def test_higham_example():
    result = nearest_correlation(HIGHAM)
    assert isinstance(result, RepairResult)
    assert result.converged
    assert result.iterations > 1
    np.testing.assert_allclose(result.matrix, HIGHAM_NEAREST, atol=5e-5)
    assert_correlation(result.matrix)
    assert result.min_eigenvalue_before == pytest.approx(1.0 - math.sqrt(2.0), abs=1e-12)
    assert result.min_eigenvalue_after == pytest.approx(0.0, abs=1e-12)
    assert result.frobenius_distance == pytest.approx(np.linalg.norm(HIGHAM - result.matrix))
    assert result.eigen_floor == 0.0


def test_result_is_nearest_among_correlation_matrices():
    # The feasible set is convex and the objective strictly convex, so no other correlation
    # matrix, and no point on a segment towards one, may be nearer.
    rng = np.random.default_rng(11)
    a = random_invalid(8, rng)
    assert min_eig(a) < -0.5
    result = nearest_correlation(a)
    assert result.converged
    assert_correlation(result.matrix)
    best = np.linalg.norm(a - result.matrix)
    for _ in range(20):
        other = random_correlation(8, rng)
        for t in (1e-3, 1e-2, 0.1, 1.0):
            candidate = (1.0 - t) * result.matrix + t * other
            assert best <= np.linalg.norm(a - candidate) + 1e-12


def test_valid_input_is_returned_unchanged():
    rng = np.random.default_rng(3)
    c = random_correlation(6, rng)
    result = nearest_correlation(c)
    assert result.iterations == 0
    assert result.converged
    assert result.frobenius_distance == 0.0
    assert np.array_equal(result.matrix, c)


@pytest.mark.parametrize(
    "singular",
    [
        [[1.0, 1.0], [1.0, 1.0]],
        [[1.0, -1.0], [-1.0, 1.0]],
        [[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 1.0]],
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
    ],
)
def test_singular_but_valid_input_passes_through(singular):
    m = np.array(singular)
    result = nearest_correlation(m)
    assert result.iterations == 0
    assert result.frobenius_distance == 0.0
    assert np.array_equal(result.matrix, m)


def test_fixed_entries_stay_fixed_exactly():
    # Holding (0, 2) at 0, the nearest [[1, a, 0], [a, 1, b], [0, b, 1]] to HIGHAM needs
    # a² + b² ≤ 1, so a = b = 1/sqrt(2).
    fixed = np.zeros((3, 3), dtype=bool)
    fixed[0, 2] = fixed[2, 0] = True
    result = nearest_correlation(HIGHAM, fixed=fixed)
    assert result.converged
    assert result.matrix[0, 2] == 0.0
    assert result.matrix[2, 0] == 0.0
    expected = np.array([[1.0, 0.5**0.5, 0.0], [0.5**0.5, 1.0, 0.5**0.5], [0.0, 0.5**0.5, 1.0]])
    np.testing.assert_allclose(result.matrix, expected, atol=1e-9)
    assert_correlation(result.matrix, psd_tol=1e-10)


def test_fixed_entries_of_a_larger_matrix():
    # Fix entries of a valid matrix, scramble the rest: the problem stays feasible.
    rng = np.random.default_rng(5)
    c = random_correlation(7, rng)
    fixed = np.zeros((7, 7), dtype=bool)
    for i, j in [(0, 1), (2, 5), (3, 6), (1, 4)]:
        fixed[i, j] = fixed[j, i] = True
    a = random_invalid(7, rng)
    a[fixed] = c[fixed]
    assert min_eig(a) < 0.0
    result = nearest_correlation(a, fixed=fixed)
    assert result.converged
    assert np.array_equal(result.matrix[fixed], a[fixed])
    assert_correlation(result.matrix, psd_tol=1e-10)
    assert result.frobenius_distance <= np.linalg.norm(a - c) + 1e-12


def test_infeasible_fixed_entries_stop_and_report():
    # Every off-diagonal entry fixed on an indefinite matrix: no correlation matrix qualifies.
    a = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    fixed = ~np.eye(3, dtype=bool)
    result = nearest_correlation(a, fixed=fixed, max_iterations=50)
    assert not result.converged
    assert result.iterations == 50
    assert np.array_equal(result.matrix, a)
    assert result.min_eigenvalue_after < 0.0


def test_weights_hold_a_heavily_weighted_factor():
    plain = nearest_correlation(HIGHAM).matrix
    weights = np.array([1.0, 50.0, 1.0])
    weighted = nearest_correlation(HIGHAM, weights=weights)
    assert weighted.converged
    assert_correlation(weighted.matrix)
    moved_plain = np.abs(plain - HIGHAM)[1]
    moved_weighted = np.abs(weighted.matrix - HIGHAM)[1]
    assert np.all(moved_weighted[[0, 2]] < moved_plain[[0, 2]])
    # ... so the lightly weighted pair (0, 2) takes more of the change.
    assert abs(weighted.matrix[0, 2]) > abs(plain[0, 2])

    # The weighted answer is the nearest in the weighted norm, nearer than the plain one.
    def w_norm(m):
        return np.linalg.norm(np.sqrt(np.outer(weights, weights)) * (HIGHAM - m))

    assert w_norm(weighted.matrix) < w_norm(plain)
    # Uniform weights are the Frobenius norm.
    uniform = nearest_correlation(HIGHAM, weights=[3.0, 3.0, 3.0]).matrix
    np.testing.assert_allclose(uniform, plain, atol=1e-10)


@pytest.mark.parametrize("floor", [1e-6, 0.05, 0.3])
def test_eigen_floor(floor):
    result = nearest_correlation(HIGHAM, eigen_floor=floor)
    assert result.converged
    assert result.eigen_floor == floor
    assert_correlation(result.matrix, psd_tol=0.0)
    assert result.min_eigenvalue_after >= floor - 1e-12
    assert result.min_eigenvalue_after == pytest.approx(min_eig(result.matrix))
    plain = nearest_correlation(HIGHAM)
    assert result.frobenius_distance > plain.frobenius_distance
    # Nearer than the usual shortcut: clip A's eigenvalues at the floor, rescale to a unit
    # diagonal and shrink towards I until the floor holds again.
    values, vectors = np.linalg.eigh(HIGHAM)
    x = (vectors * np.maximum(values, floor)) @ vectors.T
    d = np.sqrt(np.diag(x))
    x = x / np.outer(d, d)
    lam = min_eig(x)
    t = max(0.0, (floor - lam) / (1.0 - lam))
    shortcut = (1.0 - t) * x + t * np.eye(3)
    assert result.frobenius_distance <= np.linalg.norm(HIGHAM - shortcut) + 1e-12


def test_eigen_floor_repairs_a_valid_but_nearly_singular_matrix():
    m = np.array([[1.0, 0.99], [0.99, 1.0]])
    result = nearest_correlation(m, eigen_floor=0.05)
    assert result.iterations > 0
    # The nearest 2×2 with eigenvalues 1 ± r ≥ 0.05 has r = 0.95.
    assert result.matrix[0, 1] == pytest.approx(0.95, abs=1e-10)
    assert result.min_eigenvalue_after >= 0.05 - 1e-12


def test_fixed_and_weights_and_floor_together():
    rng = np.random.default_rng(8)
    a = random_invalid(6, rng)
    fixed = np.zeros((6, 6), dtype=bool)
    fixed[0, 1] = fixed[1, 0] = True
    a[0, 1] = a[1, 0] = 0.2
    result = nearest_correlation(a, weights=rng.uniform(0.5, 2.0, 6), fixed=fixed, eigen_floor=0.01)
    assert result.converged
    assert result.matrix[0, 1] == 0.2
    assert np.array_equal(np.diag(result.matrix), np.ones(6))
    assert result.min_eigenvalue_after >= 0.01 - 1e-10


def test_nonconvergence_without_fixed_still_gives_a_correlation_matrix():
    result = nearest_correlation(random_invalid(10, np.random.default_rng(2)), max_iterations=2)
    assert not result.converged
    assert result.iterations == 2
    assert_correlation(result.matrix)


def test_audit_rows():
    after = nearest_correlation(HIGHAM).matrix
    rows = audit(["energy", "chips", "power"], HIGHAM, after)
    assert [(r["first"], r["second"]) for r in rows] == [
        ("energy", "chips"),
        ("energy", "power"),
        ("chips", "power"),
    ]
    assert rows[0]["input"] == 1.0
    assert rows[0]["repaired"] == after[0, 1]
    assert rows[1]["change"] == pytest.approx(after[0, 2])
    for r in rows:
        assert r["change"] == r["repaired"] - r["input"]
        assert set(r) == {"first", "second", "input", "repaired", "change"}


def test_audit_checks_shapes():
    with pytest.raises(OptionError, match=r"names: need one name per factor, 3 \(got 2\)"):
        audit(["a", "b"], HIGHAM, HIGHAM)
    with pytest.raises(OptionError, match=r"after: must have the shape of before"):
        audit(["a", "b", "c"], HIGHAM, np.eye(2))


def test_is_psd():
    assert is_psd(np.eye(3))
    assert is_psd([[1.0, 1.0], [1.0, 1.0]])
    assert not is_psd(HIGHAM)
    assert not is_psd([[1.0, 0.5], [0.4, 1.0]])
    assert is_psd(np.diag([1.0, -1e-11]))
    assert not is_psd(np.diag([1.0, -1e-11]), tol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"matrix": np.ones((2, 3))},
            r"matrix: must be a non-empty square matrix \(got shape \(2, 3\)\)",
        ),
        ({"matrix": np.ones(3)}, r"matrix: must be a non-empty square matrix"),
        ({"matrix": np.zeros((0, 0))}, r"matrix: must be a non-empty square matrix"),
        ({"matrix": [["a", "b"], ["c", "d"]]}, r"matrix: must be numbers"),
        (
            {"matrix": [[1.0, np.nan], [np.nan, 1.0]]},
            r"matrix: must not contain NaN \(got NaN at matrix\[0, 1\]\)",
        ),
        (
            {"matrix": [[1.0, 1.2], [1.2, 1.0]]},
            r"matrix: entries must lie in \[-1, 1\] \(got matrix\[0, 1\] = 1\.2\)",
        ),
        (
            {"matrix": [[1.0, 0.5], [0.4, 1.0]]},
            r"matrix: must be symmetric \(got matrix\[0, 1\] = 0\.5 but matrix\[1, 0\] = 0\.4\)",
        ),
        (
            {"matrix": [[1.0, 0.5], [0.5, 0.9]]},
            r"matrix: a correlation matrix has a unit diagonal \(got matrix\[1, 1\] = 0\.9\)",
        ),
        (
            {"weights": [1.0, 0.0, 1.0]},
            r"weights: must be positive and finite \(got weights\[1\] = 0\.0\)",
        ),
        (
            {"weights": [1.0, -2.0, 1.0]},
            r"weights: must be positive and finite \(got weights\[1\] = -2\.0\)",
        ),
        ({"weights": [1.0, np.nan, 1.0]}, r"weights: must be positive and finite"),
        (
            {"weights": [1.0, 1.0]},
            r"weights: must have shape \(3,\), one per factor \(got shape \(2,\)\)",
        ),
        (
            {"fixed": np.triu(np.ones((3, 3), dtype=bool), 1)},
            r"fixed: must be symmetric \(got fixed\[0, 1\] = True but fixed\[1, 0\] = False\)",
        ),
        (
            {"fixed": np.eye(3, dtype=bool)},
            r"fixed: the diagonal is always held at 1, leave it False in the mask "
            r"\(got fixed\[0, 0\] = True\)",
        ),
        ({"fixed": np.zeros((3, 3))}, r"fixed: must be a boolean mask \(got dtype float64\)"),
        (
            {"fixed": np.zeros((2, 2), dtype=bool)},
            r"fixed: must have shape \(3, 3\) like the matrix",
        ),
        ({"eigen_floor": -0.1}, r"eigen_floor: must lie in \[0, 1\) \(got -0\.1\)"),
        ({"eigen_floor": 1.0}, r"eigen_floor: must lie in \[0, 1\) \(got 1\.0\)"),
        ({"eigen_floor": "x"}, r"eigen_floor: must be a number"),
        ({"tol": 0.0}, r"tol: must be a positive number \(got 0\.0\)"),
        ({"max_iterations": 0}, r"max_iterations: must be at least 1 \(got 0\)"),
        ({"max_iterations": 2.5}, r"max_iterations: must be an integer \(got 2\.5\)"),
    ],
)
def test_nearest_correlation_validation(kwargs, message):
    arguments = {"matrix": HIGHAM, **kwargs}
    with pytest.raises(OptionError, match=message):
        nearest_correlation(**arguments)


def test_option_errors_are_stress_errors():
    with pytest.raises(StressError):
        nearest_correlation([[1.0, 2.0], [2.0, 1.0]])


# --------------------------------------------------------------------------------------
# Bivariate normal CDF
# --------------------------------------------------------------------------------------


def test_bivariate_normal_against_oracles():
    rng = np.random.default_rng(21)
    h = rng.normal(0.0, 2.5, 5000)
    k = rng.normal(0.0, 2.5, 5000)
    rho = rng.uniform(-1.0, 1.0, 5000)
    # Exact zeros and special correlations exercise every branch.
    h[::7] = 0.0
    k[::11] = 0.0
    rho[::13] = 1.0
    rho[::17] = -1.0
    rho[::19] = 0.0
    rho[::23] = 0.999999
    h[::29] = np.inf
    k[::31] = -np.inf
    np.testing.assert_allclose(
        bivariate_normal_cdf(h, k, rho), oracle_bvn(h, k, rho), rtol=0, atol=1e-15
    )
    # The Plackett-integral oracle shares nothing with Owen's T.
    part = slice(0, 400)
    np.testing.assert_allclose(
        bivariate_normal_cdf(h[part], k[part], rho[part]),
        oracle_bvn_quad(h[part], k[part], rho[part]),
        rtol=0,
        atol=1e-14,
    )


def test_bivariate_normal_closed_forms():
    rho = np.linspace(-1.0, 1.0, 41)
    np.testing.assert_allclose(
        bivariate_normal_cdf(0.0, 0.0, rho), 0.25 + np.arcsin(rho) / (2 * np.pi), atol=1e-16
    )
    h, k = -0.7, 1.3
    assert bivariate_normal_cdf(h, k, 0.0) == special.ndtr(h) * special.ndtr(k)
    assert bivariate_normal_cdf(h, k, 1.0) == special.ndtr(h)
    assert bivariate_normal_cdf(h, k, -1.0) == pytest.approx(
        special.ndtr(h) - special.ndtr(-k), abs=1e-16
    )
    assert bivariate_normal_cdf(-1.0, 0.5, -1.0) == 0.0
    assert bivariate_normal_cdf(np.inf, k, 0.3) == special.ndtr(k)
    assert bivariate_normal_cdf(h, -np.inf, 0.3) == 0.0
    assert bivariate_normal_cdf(np.inf, np.inf, -0.3) == 1.0
    # Symmetric in (h, k) and continuous in rho at the special points.
    assert bivariate_normal_cdf(h, k, 0.4) == pytest.approx(
        bivariate_normal_cdf(k, h, 0.4), abs=1e-16
    )
    assert bivariate_normal_cdf(h, k, 1e-9) == pytest.approx(
        bivariate_normal_cdf(h, k, 0.0), abs=1e-9
    )
    assert bivariate_normal_cdf(h, k, 1 - 1e-12) == pytest.approx(
        bivariate_normal_cdf(h, k, 1.0), abs=1e-6
    )
    assert isinstance(bivariate_normal_cdf(h, k, 0.4), float)


def test_bivariate_normal_validation():
    with pytest.raises(OptionError, match=r"rho: correlations must lie in \[-1, 1\] \(got 1\.5\)"):
        bivariate_normal_cdf(0.0, 0.0, 1.5)
    with pytest.raises(OptionError, match=r"h, k: must not be NaN"):
        bivariate_normal_cdf(np.nan, 0.0, 0.5)


# --------------------------------------------------------------------------------------
# Asset and default correlations
# --------------------------------------------------------------------------------------

R3 = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, -0.3], [0.2, -0.3, 1.0]])
LOADINGS = np.array([[0.5, 0.3, 0.0], [0.2, 0.0, 0.6], [0.0, 0.4, 0.4], [0.3, 0.3, 0.3]])
PDS = np.array([0.01, 0.05, 0.002, 0.2])


def test_asset_correlation():
    a_i, a_j = LOADINGS[0], LOADINGS[1]
    assert asset_correlation(a_i, a_j, R3) == pytest.approx(float(a_i @ R3 @ a_j), abs=1e-16)
    assert asset_correlation(a_i, a_j, R3) == asset_correlation(a_j, a_i, R3)
    # Own correlation is the systematic share aᵀRa; the latent variable has unit variance.
    assert asset_correlation(a_i, a_i, R3) == pytest.approx(float(a_i @ R3 @ a_i))


def test_asset_correlation_matrix_matches_pairs_and_simulation():
    c = asset_correlation_matrix(LOADINGS, R3)
    assert np.array_equal(c, c.T)
    assert np.array_equal(np.diag(c), np.ones(4))
    for i in range(4):
        for j in range(i + 1, 4):
            assert c[i, j] == pytest.approx(
                asset_correlation(LOADINGS[i], LOADINGS[j], R3), abs=1e-15
            )
    # Simulate X = L Y + b ε with b = sqrt(1 − aᵀRa): sample correlations agree to 4 SE.
    rng = np.random.default_rng(4)
    n = 200_000
    y = rng.standard_normal((n, 3)) @ np.linalg.cholesky(R3).T
    b = np.sqrt(1.0 - np.einsum("ik,kl,il->i", LOADINGS, R3, LOADINGS))
    x = y @ LOADINGS.T + rng.standard_normal((n, 4)) * b
    sample = np.corrcoef(x, rowvar=False)
    se = (1.0 - c**2) / math.sqrt(n - 3)
    assert np.all(np.abs(sample - c) <= 4.0 * se + 1e-15)


def test_asset_correlation_validation():
    with pytest.raises(
        OptionError, match=r"a_i: systematic variance aᵀRa must not exceed 1 \(got 1\.25\)"
    ):
        asset_correlation([1.0, 0.5, 0.0], [0.0, 0.0, 0.1], np.eye(3))
    with pytest.raises(
        OptionError, match=r"a_j: must have shape \(3,\) to match R \(got shape \(2,\)\)"
    ):
        asset_correlation([0.1, 0.1, 0.1], [0.1, 0.1], np.eye(3))
    with pytest.raises(
        OptionError,
        match=r"R: must be positive semi-definite, repair it with nearest_correlation "
        r"\(got smallest eigenvalue -0\.414214\)",
    ):
        asset_correlation([0.1, 0.1, 0.1], [0.1, 0.1, 0.1], HIGHAM)
    with pytest.raises(OptionError, match=r"loadings\[1\]: systematic variance"):
        asset_correlation_matrix([[0.1, 0.1, 0.1], [0.9, 0.9, 0.0]], np.eye(3))
    with pytest.raises(OptionError, match=r"loadings: must have shape \(n, 3\) to match R"):
        asset_correlation_matrix(np.zeros((2, 2)), np.eye(3))
    with pytest.raises(OptionError, match=r"loadings: must be finite"):
        asset_correlation_matrix([[0.1, np.nan, 0.1]], np.eye(3))


def test_default_correlation_closed_form_at_half():
    # p = 1/2 gives thresholds 0 and Φ₂(0, 0; ρ) = 1/4 + asin(ρ)/2π, so corr = 2 asin(ρ)/π.
    rho = np.linspace(-1.0, 1.0, 21)
    np.testing.assert_allclose(
        default_correlation(0.5, 0.5, rho), 2.0 * np.arcsin(rho) / np.pi, atol=1e-15
    )


def test_default_correlation_against_oracle():
    rng = np.random.default_rng(9)
    p_i = 10.0 ** rng.uniform(-5, -0.3, 300)
    p_j = 10.0 ** rng.uniform(-5, -0.3, 300)
    rho = rng.uniform(-0.95, 0.95, 300)
    joint = oracle_bvn(special.ndtri(p_i), special.ndtri(p_j), rho)
    expected = (joint - p_i * p_j) / np.sqrt(p_i * (1 - p_i) * p_j * (1 - p_j))
    np.testing.assert_allclose(default_correlation(p_i, p_j, rho), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        joint_default_probability(p_i, p_j, rho), joint, rtol=1e-12, atol=1e-18
    )


def test_default_correlation_limits():
    assert default_correlation(0.01, 0.2, 0.0) == 0.0
    assert default_correlation(0.03, 0.03, 1.0) == pytest.approx(1.0, abs=1e-14)
    # Unequal PDs cannot be perfectly correlated: at rho = 1 the joint PD is min(p_i, p_j).
    p_i, p_j = 0.01, 0.04
    expected = (p_i - p_i * p_j) / math.sqrt(p_i * (1 - p_i) * p_j * (1 - p_j))
    assert default_correlation(p_i, p_j, 1.0) == pytest.approx(expected, rel=1e-14)
    assert default_correlation_t(p_i, p_j, 1.0, 4.0) == pytest.approx(expected, rel=1e-14)
    # rho = -1: the joint PD is max(0, p_i + p_j - 1) = 0 here.
    expected = -p_i * p_j / math.sqrt(p_i * (1 - p_i) * p_j * (1 - p_j))
    assert default_correlation(p_i, p_j, -1.0) == pytest.approx(expected, rel=1e-14)
    # Monotone in rho.
    values = default_correlation(0.02, 0.05, np.linspace(-0.9, 0.9, 19))
    assert np.all(np.diff(values) > 0)


def quad_t_joint(p_i, p_j, rho, nu):
    """Reference t-copula joint PD by adaptive quadrature over u = log(W/ν)."""
    h, k = stats.t.ppf(p_i, nu), stats.t.ppf(p_j, nu)
    x = 0.5 * nu
    const = x * math.log(x) - x - math.lgamma(x)

    def integrand(u):
        s = math.exp(0.5 * u)
        return oracle_bvn(h * s, k * s, rho) * math.exp(const + x * (u - math.expm1(u)))

    sd = math.sqrt(2.0 / nu)
    low = -60.0 / x if nu < 4 else -40.0 * sd
    high = math.log(stats.chi2.isf(1e-20, nu) / nu)
    peak = math.log(nu / (h * h + nu))
    points = sorted(p for p in (0.0, -sd, sd, -5 * sd, 5 * sd, peak) if low < p < high)
    value, _ = integrate.quad(
        integrand, low, high, points=points, epsabs=1e-17, epsrel=1e-13, limit=1000
    )
    return value


@pytest.mark.parametrize(
    ("p_i", "p_j", "rho", "nu"),
    [
        (0.01, 0.02, 0.3, 4.0),
        (1e-4, 1e-3, 0.5, 2.5),
        (0.3, 0.6, -0.5, 10.0),
        (0.05, 0.05, 0.0, 30.0),
        (1e-3, 1e-3, 0.9, 1000.0),
        (0.5, 0.2, 0.2, 1.0),
        (0.01, 0.3, 0.7, 0.5),
        (1e-6, 1e-5, 0.3, 3.0),
        (0.9, 0.95, 0.6, 3.0),
    ],
)
def test_t_joint_default_probability_against_quadrature(p_i, p_j, rho, nu):
    value = joint_default_probability(p_i, p_j, rho, nu)
    assert value == pytest.approx(quad_t_joint(p_i, p_j, rho, nu), rel=1e-11, abs=1e-16)


def test_t_joint_default_probability_against_monte_carlo():
    rng = np.random.default_rng(2024)
    n, nu = 1_000_000, 4.0
    for p_i, p_j, rho in [(0.02, 0.05, 0.3), (0.01, 0.01, 0.0)]:
        z1 = rng.standard_normal(n)
        z2 = rho * z1 + math.sqrt(1 - rho**2) * rng.standard_normal(n)
        scale = np.sqrt(rng.chisquare(nu, n) / nu)
        both = (z1 / scale <= stats.t.ppf(p_i, nu)) & (z2 / scale <= stats.t.ppf(p_j, nu))
        estimate = both.mean()
        exact = joint_default_probability(p_i, p_j, rho, nu)
        se = math.sqrt(exact * (1 - exact) / n)
        assert abs(estimate - exact) <= 4.0 * se
    # Uncorrelated latent variables still default together more often than independent ones.
    assert default_correlation_t(0.01, 0.01, 0.0, 4.0) > 0.01


def test_t_approaches_gaussian_for_large_nu():
    gaussian = default_correlation(0.01, 0.02, 0.3)
    gaps = [
        abs(default_correlation_t(0.01, 0.02, 0.3, nu) - gaussian) for nu in (1e2, 1e4, 1e6, 1e8)
    ]
    assert gaps[0] > 1e-3
    assert gaps[2] < 1e-6
    assert gaps[3] < 1e-8
    assert all(a > b for a, b in itertools.pairwise(gaps))
    assert default_correlation_t(0.01, 0.02, 0.3, math.inf) == gaussian


def test_default_correlations_are_symmetric_and_broadcast():
    p_i = np.array([0.001, 0.01, 0.05, 0.2])
    p_j = np.array([0.03, 0.004, 0.3, 0.02])
    rho = np.array([0.1, 0.5, -0.2, 0.8])
    for function, extra in ((default_correlation, ()), (default_correlation_t, (5.0,))):
        forward = function(p_i, p_j, rho, *extra)
        np.testing.assert_allclose(function(p_j, p_i, rho, *extra), forward, rtol=1e-13, atol=0)
        one_by_one = [function(a, b, r, *extra) for a, b, r in zip(p_i, p_j, rho, strict=True)]
        np.testing.assert_allclose(forward, one_by_one, rtol=1e-14, atol=0)
        assert function(p_i[:, None], p_j[None, :], 0.3, *extra).shape == (4, 4)


def test_default_correlation_validation():
    with pytest.raises(
        OptionError, match=r"p_i: probabilities must lie strictly between 0 and 1 \(got 0\.0\)"
    ):
        default_correlation(0.0, 0.1, 0.2)
    with pytest.raises(
        OptionError, match=r"p_j: probabilities must lie strictly between 0 and 1 \(got 1\.0\)"
    ):
        default_correlation([0.1, 0.2], [0.1, 1.0], 0.2)
    with pytest.raises(OptionError, match=r"rho: correlations must lie in \[-1, 1\] \(got -1\.1\)"):
        default_correlation(0.1, 0.1, -1.1)
    with pytest.raises(OptionError, match=r"nu: degrees of freedom must be above 0 \(got 0\.0\)"):
        default_correlation_t(0.1, 0.1, 0.2, 0)
    with pytest.raises(
        OptionError, match=r"nu: the t copula needs degrees of freedom \(got None\)"
    ):
        default_correlation_t(0.1, 0.1, 0.2, None)
    with pytest.raises(
        OptionError, match=r"p_i: probabilities must lie strictly between 0 and 1 \(got nan\)"
    ):
        joint_default_probability(np.nan, 0.1, 0.2)


def test_tail_dependence_published_values():
    # validation.md section 4 (Embrechts, McNeil and Straumann 2002).
    assert tail_dependence_t(0.2, 4) == pytest.approx(0.127464, abs=1e-6)
    assert tail_dependence_t(0.5, 10) == pytest.approx(0.081864, abs=1e-6)
    rho = np.linspace(-0.99, 0.99, 23)
    np.testing.assert_allclose(
        tail_dependence_t(rho, 6.0), oracle_tail_dependence(rho, 6.0), rtol=1e-14
    )
    assert tail_dependence_t(1.0, 4) == 1.0
    assert tail_dependence_t(-1.0, 4) == 0.0
    assert tail_dependence_t(0.5, np.inf) == 0.0
    assert tail_dependence_t(1.0, np.inf) == 1.0
    # More degrees of freedom, thinner tails, less tail dependence.
    assert np.all(np.diff(tail_dependence_t(0.3, [2.0, 4.0, 8.0, 16.0])) < 0)
    with pytest.raises(OptionError, match=r"nu: degrees of freedom must be above 0 \(got -1\.0\)"):
        tail_dependence_t(0.3, -1.0)


def test_default_correlation_matrix():
    asset = asset_correlation_matrix(LOADINGS, R3)
    first, second = np.triu_indices(4, 1)
    gaussian = default_correlation_matrix(LOADINGS, PDS, R3)
    t = default_correlation_matrix(LOADINGS, PDS, R3, nu=5.0)
    for m in (gaussian, t):
        assert np.array_equal(m, m.T)
        assert np.array_equal(np.diag(m), np.ones(4))
    np.testing.assert_allclose(
        gaussian[first, second],
        default_correlation(PDS[first], PDS[second], asset[first, second]),
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        t[first, second],
        default_correlation_t(PDS[first], PDS[second], asset[first, second], 5.0),
        rtol=1e-14,
    )
    # The t copula's shared mixing variable adds default correlation.
    assert np.all(t[first, second] > gaussian[first, second])
    assert np.array_equal(default_correlation_matrix(LOADINGS, PDS, R3, nu=math.inf), gaussian)
    with pytest.raises(
        OptionError, match=r"pd: need one PD per obligor, shape \(4,\) \(got shape \(3,\)\)"
    ):
        default_correlation_matrix(LOADINGS, PDS[:3], R3)


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaussian_sample() -> np.ndarray:
    rng = np.random.default_rng(20240601)
    return rng.multivariate_normal(np.zeros(4), TRUE_R, size=5000)


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_fit_recovers_a_known_matrix(gaussian_sample, method):
    fit = fit_correlation(gaussian_sample, method)
    assert isinstance(fit, FitResult)
    assert fit.method == method
    assert fit.n_obs == 5000
    assert fit.dropped == 0
    assert not fit.repaired
    assert fit.repair_distance == 0.0
    assert fit.shrinkage is None
    assert fit.intensity is None
    assert fit.confidence == 0.95
    assert_correlation(fit.matrix)
    off = ~np.eye(4, dtype=bool)
    se = fit.standard_error[off]
    assert np.all((se > 0.005) & (se < 0.02))
    assert np.all(np.abs(fit.matrix - TRUE_R)[off] <= 4.0 * se)
    assert np.all(np.diag(fit.standard_error) == 0.0)
    assert np.all((fit.interval_low < fit.matrix)[off])
    assert np.all((fit.matrix < fit.interval_high)[off])
    assert np.all((fit.interval_low >= -1.0) & (fit.interval_high <= 1.0))
    # A 95 % interval is about ±1.96 standard errors wide.
    width = (fit.interval_high - fit.interval_low)[off]
    np.testing.assert_allclose(width, 2 * 1.96 * se, rtol=0.05)


def test_pearson_fit_formulas(gaussian_sample):
    fit = fit_correlation(gaussian_sample, confidence=0.9)
    r = np.corrcoef(gaussian_sample, rowvar=False)
    np.testing.assert_allclose(fit.matrix, r, atol=1e-14)
    n = 5000
    np.testing.assert_allclose(
        fit.standard_error[0, 1], (1 - r[0, 1] ** 2) / math.sqrt(n - 3), rtol=1e-12
    )
    q = stats.norm.ppf(0.95)
    np.testing.assert_allclose(
        fit.interval_high[2, 3], math.tanh(math.atanh(r[2, 3]) + q / math.sqrt(n - 3)), rtol=1e-12
    )


def test_kendall_sine_map_is_right_for_elliptical_data():
    # Bivariate t with 4 degrees of freedom: Kendall's tau maps exactly to rho by sin(πτ/2).
    rng = np.random.default_rng(77)
    n, rho, nu = 20_000, 0.6, 4.0
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    x = z / np.sqrt(rng.chisquare(nu, n) / nu)[:, None]
    fit = fit_correlation(x, "kendall")
    assert abs(fit.matrix[0, 1] - rho) <= 4.0 * fit.standard_error[0, 1]
    assert 0.003 < fit.standard_error[0, 1] < 0.01


def test_bootstrap_is_deterministic_for_a_seed(gaussian_sample):
    data = gaussian_sample[:300]
    first = fit_correlation(data, "spearman", seed=5)
    again = fit_correlation(data, "spearman", seed=5)
    other = fit_correlation(data, "spearman", seed=6)
    assert np.array_equal(first.standard_error, again.standard_error)
    assert np.array_equal(first.interval_low, again.interval_low)
    assert not np.array_equal(first.standard_error, other.standard_error)
    assert np.array_equal(first.matrix, other.matrix)


def test_ledoit_wolf_intensity():
    rng = np.random.default_rng(31)
    intensities = []
    for n in (30, 300, 3000):
        data = rng.multivariate_normal(np.zeros(4), TRUE_R, size=n)
        fit = fit_correlation(data, shrinkage="ledoit-wolf")
        assert fit.shrinkage == "ledoit-wolf"
        assert 0.0 <= fit.intensity <= 1.0
        raw = np.corrcoef(data, rowvar=False)
        expected = (1 - fit.intensity) * raw + fit.intensity * np.eye(4)
        np.testing.assert_allclose(fit.matrix, expected, atol=1e-14)
        intensities.append(fit.intensity)
    assert intensities[0] > intensities[1] > intensities[2] > 0.0


def test_ledoit_wolf_intensity_matches_the_definition():
    # Lemmas 3.2-3.4 of Ledoit and Wolf (2004), written out observation by observation.
    rng = np.random.default_rng(12)
    data = rng.standard_t(5.0, (40, 5)) @ rng.uniform(-1, 1, (5, 5))
    z = (data - data.mean(axis=0)) / data.std(axis=0)
    n, k = z.shape
    s = z.T @ z / n
    d2 = np.sum((s - np.eye(k)) ** 2) / k
    b2 = sum(np.sum((np.outer(row, row) - s) ** 2) / k for row in z) / n**2
    assert ledoit_wolf_intensity(data) == pytest.approx(min(b2, d2) / d2, rel=1e-12)
    with pytest.raises(OptionError, match=r"data: must not contain NaN \(got 1 rows with NaN\)"):
        ledoit_wolf_intensity(np.vstack([data, np.full(5, np.nan)]))


def test_rank_methods_shrink_with_rank_intensity(gaussian_sample):
    data = gaussian_sample[:200]
    fit = fit_correlation(data, "spearman", "ledoit-wolf")
    assert fit.intensity == ledoit_wolf_intensity(stats.rankdata(data, axis=0))
    raw = fit_correlation(data, "spearman")
    expected = (1 - fit.intensity) * raw.matrix + fit.intensity * np.eye(4)
    np.testing.assert_allclose(fit.matrix, expected, atol=1e-14)
    # Intervals describe the truth, not the shrunk matrix: unchanged by shrinkage.
    assert np.array_equal(fit.interval_low, raw.interval_low)


def test_nan_rows_are_dropped_and_counted(gaussian_sample):
    data = gaussian_sample[:500].copy()
    holes = [3, 40, 41, 200, 499]
    data[holes, [0, 1, 3, 2, 0]] = np.nan
    fit = fit_correlation(data)
    assert fit.dropped == 5
    assert fit.n_obs == 495
    clean = fit_correlation(np.delete(gaussian_sample[:500], holes, axis=0))
    assert np.array_equal(fit.matrix, clean.matrix)
    assert np.array_equal(fit.standard_error, clean.standard_error)


def test_indefinite_rank_estimate_is_repaired():
    # With fewer observations than factors the sine-mapped Kendall matrix is indefinite.
    x = np.random.default_rng(0).standard_normal((6, 5))
    mapped = np.eye(5)
    for i in range(5):
        for j in range(i + 1, 5):
            tau = stats.kendalltau(x[:, i], x[:, j]).statistic
            mapped[i, j] = mapped[j, i] = math.sin(math.pi * tau / 2)
    assert min_eig(mapped) < -0.01
    fit = fit_correlation(x, "kendall", n_bootstrap=20)
    assert fit.repaired
    expected = nearest_correlation(mapped)
    np.testing.assert_allclose(fit.matrix, expected.matrix, atol=1e-12)
    assert fit.repair_distance == pytest.approx(expected.frobenius_distance, rel=1e-9)
    assert_correlation(fit.matrix)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (
            np.ones(10),
            {},
            r"data: must be a 2-D array, one column per factor \(got shape \(10,\)\)",
        ),
        ("abc", {}, r"data: must be numbers"),
        (
            np.arange(6.0).reshape(3, 2),
            {},
            r"data: need at least 4 complete rows \(got 3 after dropping 0 with NaN\)",
        ),
        (
            [[1.0, 2.0], [2.0, np.nan], [3.0, 1.0], [4.0, 5.0]],
            {},
            r"data: need at least 4 complete rows \(got 3 after dropping 1 with NaN\)",
        ),
        (
            [[1.0, 2.0], [2.0, np.inf], [3.0, 1.0], [4.0, 5.0]],
            {},
            r"data: must be finite apart from NaN \(got inf in column 1\)",
        ),
        (
            [[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [4.0, 2.0]],
            {},
            r"data: column 1 is constant, so it has no correlation \(got 2\.0\)",
        ),
        (
            None,
            {"method": "pearsons"},
            r"method: must be one of pearson, spearman, kendall \(got 'pearsons'\)",
        ),
        (None, {"shrinkage": "oas"}, r"shrinkage: must be None or 'ledoit-wolf' \(got 'oas'\)"),
        (None, {"confidence": 1.0}, r"confidence: must lie strictly between 0 and 1 \(got 1\.0\)"),
        (None, {"n_bootstrap": 5}, r"n_bootstrap: must be at least 20 \(got 5\)"),
        (None, {"n_bootstrap": 50.0}, r"n_bootstrap: must be an integer \(got 50\.0\)"),
        (None, {"seed": -1}, r"seed: must be a non-negative integer \(got -1\)"),
    ],
)
def test_fit_validation(data, kwargs, message):
    if data is None:
        data = np.random.default_rng(1).standard_normal((20, 3))
    with pytest.raises(OptionError, match=message):
        fit_correlation(data, **kwargs)
