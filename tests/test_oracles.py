"""Tests proving that ``tests/oracles.py`` reproduces the reference results.

Every number in ``/work/shared/reference/validation.md`` sections 1-4 is
checked here, at the tolerance the brief asks for, together with independent
cross-checks of each oracle (a second integration method, an exact moment, or
a 30-40 digit ``mpmath`` value hard-coded below).  The suite is deterministic
(no random numbers anywhere) and runs in a few seconds.

Published figures that cannot be reproduced to the published precision are
marked ``xfail(strict=True)``: the test documents the discrepancy, and would
turn red if the oracle were ever "fixed" to agree with the misprint.  Each such
case is also pinned to a high-precision value computed independently.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import oracles


def _gauss_hermite_normal(nodes):
    """Nodes and weights for E[f(Z)], Z ~ N(0, 1)."""
    x, w = special.roots_hermite(nodes)
    return math.sqrt(2.0) * x, w / math.sqrt(math.pi)


# ==========================================================================
# 1. Basel IRB
# ==========================================================================
# validation.md section 1: Basel II Annex 5 corporate risk weights, LGD 45 %,
# M = 2.5, in percent, rounded to 0.01 %.
BASEL2_TABLE = [
    (0.0003, 14.44),
    (0.0005, 19.65),
    (0.0010, 29.65),
    (0.0025, 49.47),
    (0.0040, 62.72),
    (0.0050, 69.61),
    (0.0075, 82.78),
    (0.0100, 92.32),
    (0.0130, 100.95),
    (0.0150, 105.59),
    (0.0200, 114.86),
    (0.0250, 122.16),
    (0.0300, 128.44),
]

# The paragraph-272 formula gives 114.8542 % at PD = 2 %, which rounds to
# 114.85 %, not the published 114.86 % (|diff| = 0.0058 > 0.005).  Same value
# from a 40-digit mpmath evaluation, so this is the table, not round-off.
BASEL2_PD2_MPMATH = 114.85422875824999460  # percent
_PD2_XFAIL = pytest.mark.xfail(
    strict=True,
    reason="published 114.86 % is not the rounding of the para-272 formula "
    "(114.8542 %); see test_basel2_pd_2pct_value",
)


@pytest.mark.parametrize(
    "pd, published",
    [pytest.param(pd, rw, marks=_PD2_XFAIL) if pd == 0.02 else (pd, rw) for pd, rw in BASEL2_TABLE],
)
def test_basel2_risk_weight_table(pd, published):
    rw_pct = 100.0 * oracles.basel_risk_weight(pd, 0.45)
    # The table is rounded to 0.01 %, so a correct formula is within 0.005 %.
    assert abs(rw_pct - published) <= 0.005


def test_basel2_pd_2pct_value():
    rw_pct = 100.0 * oracles.basel_risk_weight(0.02, 0.45)
    assert abs(rw_pct - BASEL2_PD2_MPMATH) <= 1e-9
    # ... and the published figure is off by exactly one unit of its last digit.
    assert round(rw_pct, 2) == pytest.approx(114.85, abs=1e-12)
    assert 0.005 < abs(rw_pct - 114.86) < 0.01


def test_basel3_cre99_pd1_lgd40():
    # validation.md: Basel III (CRE99) corporate, LGD 40 %, PD 1 % -> 82.06 %.
    assert abs(100.0 * oracles.basel_risk_weight(0.01, 0.40) - 82.06) <= 0.005


def test_basel_table_discriminates_1_06_scaling():
    # Negative control: the Basel II 1.06 scaling factor must NOT fit the table,
    # otherwise the table test could not tell the two conventions apart.
    pds = np.array([pd for pd, _ in BASEL2_TABLE])
    table = np.array([rw for _, rw in BASEL2_TABLE])
    scaled = 106.0 * oracles.basel_risk_weight(pds, 0.45)
    assert np.all(np.abs(scaled - table) > 0.5)


@pytest.mark.parametrize("m", [1.0, 2.5, 5.0])
@pytest.mark.parametrize("lgd", [0.1, 0.45, 1.0])
def test_basel_k_is_vasicek_quantile_minus_el(lgd, m):
    # validation.md: LGD * (q99.9 - PD) of the one-factor model with loading
    # sqrt(R) equals K before the maturity factor.
    pds = np.array([0.0003, 0.001, 0.004, 0.01, 0.03, 0.1, 0.2, 0.5])
    r = oracles.basel_correlation(pds)
    before_maturity = lgd * (oracles.vasicek_quantile(0.999, pds, r) - pds)
    k = oracles.basel_capital_k(pds, lgd, m)
    np.testing.assert_allclose(
        before_maturity * oracles.basel_maturity_factor(pds, m), k, rtol=0, atol=1e-10
    )
    if m == 2.5:
        b = oracles.basel_maturity_adjustment(pds)
        np.testing.assert_allclose(k * (1.0 - 1.5 * b), before_maturity, rtol=0, atol=1e-10)


def test_basel_correlation_bounds():
    # R runs from 0.24 (PD -> 0) down to 0.12 (PD -> 1), monotonically.
    pds = np.logspace(-6, 0, 200)
    r = oracles.basel_correlation(pds)
    assert abs(r[0] - 0.24) < 1e-4 and abs(r[-1] - 0.12) < 1e-15
    # Strictly decreasing until e^(-50 PD) underflows the double (PD ~ 0.7).
    assert np.all(np.diff(r) <= 0) and np.all(np.diff(r[pds < 0.5]) < 0)
    # Hand value at PD = 1 %: w = (1 - e^-0.5)/(1 - e^-50).
    w = (1 - math.exp(-0.5)) / (1 - math.exp(-50))
    assert oracles.basel_correlation(0.01) == pytest.approx(0.12 * w + 0.24 * (1 - w), abs=1e-15)


# ==========================================================================
# 2. Vasicek large homogeneous portfolio
# ==========================================================================
VASICEK_TABLE = [
    # p, rho, q99, q99.9, ES99, ES99.9 (validation.md section 2)
    (0.01, 0.12, 0.052527, 0.090326, 0.068709, 0.109210),
    (0.01, 0.20, 0.075251, 0.145525, 0.105129, 0.181436),
    (0.05, 0.20, 0.249575, 0.384422, 0.308119, 0.438506),
]


@pytest.mark.parametrize("p, rho, q99, q999, es99, es999", VASICEK_TABLE)
def test_vasicek_table(p, rho, q99, q999, es99, es999):
    tol = 1e-6  # the table has 6 decimals
    assert abs(oracles.vasicek_quantile(0.99, p, rho) - q99) <= tol
    assert abs(oracles.vasicek_quantile(0.999, p, rho) - q999) <= tol
    assert abs(oracles.vasicek_es(0.99, p, rho) - es99) <= tol
    assert abs(oracles.vasicek_es(0.999, p, rho) - es999) <= tol


@pytest.mark.parametrize("p, rho", [(0.01, 0.12), (0.05, 0.2), (0.001, 0.5), (0.3, 0.05)])
@pytest.mark.parametrize("alpha", [0.5, 0.99, 0.999])
def test_vasicek_es_equals_average_quantile(p, rho, alpha):
    # Independent route: ES_a = (1/(1-a)) int_a^1 q_u du, written in s = Phi^-1(u)
    # so the integrand is smooth up to u = 1.
    def integrand(s):
        return float(oracles.vasicek_quantile(special.ndtr(s), p, rho)) * math.exp(-0.5 * s * s)

    s0 = float(special.ndtri(alpha))
    val = integrate.quad(integrand, s0, 40.0, epsabs=1e-16, epsrel=1e-13, limit=200)[0]
    es = val / math.sqrt(2.0 * math.pi) / (1.0 - alpha)
    assert oracles.vasicek_es(alpha, p, rho) == pytest.approx(es, rel=1e-11, abs=1e-14)


@pytest.mark.parametrize("p, rho", [(0.01, 0.12), (0.05, 0.2), (0.001, 0.5), (0.3, 0.05)])
def test_vasicek_variance_by_quadrature(p, rho):
    c = special.ndtri(p)

    def integrand(z):
        pz = special.ndtr((c - math.sqrt(rho) * z) / math.sqrt(1 - rho))
        return (pz - p) ** 2 * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    var = integrate.quad(integrand, -12, 12, epsabs=1e-17, epsrel=1e-12, limit=200)[0]
    assert oracles.vasicek_variance(p, rho) == pytest.approx(var, rel=1e-10, abs=1e-16)


def test_vasicek_cdf_quantile_roundtrip_and_mean():
    p, rho = 0.02, 0.15
    alphas = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 0.99, 0.999, 0.9999])
    np.testing.assert_allclose(
        oracles.vasicek_cdf(oracles.vasicek_quantile(alphas, p, rho), p, rho), alphas, rtol=1e-12
    )
    assert oracles.vasicek_cdf(0.0, p, rho) == 0.0
    assert oracles.vasicek_cdf(1.0, p, rho) == 1.0
    # E[L] = int_0^1 (1 - F(x)) dx = p.
    mean = integrate.quad(
        lambda x: 1.0 - oracles.vasicek_cdf(x, p, rho), 0, 1, points=[p], epsabs=1e-14, limit=200
    )[0]
    assert mean == pytest.approx(p, rel=1e-10)


# ==========================================================================
# Bivariate normal
# ==========================================================================
# 30-digit mpmath values of Plackett's integral (h, k, rho, Phi2).
BVN_MPMATH = [
    (-1.5, 0.7, 0.3, 0.060721148169518627187),
    (2.1, 1.3, -0.7, 0.88533545472320759982),
    (-2.326, -2.326, 0.2, 0.00033945072756031576326),
    (0.5, -0.25, 0.95, 0.40091915735715176557),
    (-3.0, -3.0, 0.999, 0.0012708810536105265934),
    (1.0, 2.0, -0.9999, 0.81859461412036374138),
    (-0.4, 1.1, -0.55, 0.24823277621504578908),
]


@pytest.mark.parametrize("h, k, rho, ref", BVN_MPMATH)
def test_bvn_against_mpmath(h, k, rho, ref):
    assert abs(oracles.bivariate_normal_cdf(h, k, rho) - ref) <= 1e-15
    assert abs(oracles.bivariate_normal_cdf_quad(h, k, rho) - ref) <= 1e-15


def test_bvn_two_methods_agree_on_grid():
    hs = [-8.0, -3.0, -1.0, -0.3, 0.0, 0.4, 1.7, 3.0, 8.0]
    rhos = [-0.999999, -0.9, -0.5, -0.1, 0.1, 0.37, 0.8, 0.99, 0.999999]
    h, k, r = np.meshgrid(hs, hs, rhos, indexing="ij")
    owen = oracles.bivariate_normal_cdf(h, k, r)
    plackett = oracles.bivariate_normal_cdf_quad(h, k, r)
    assert np.max(np.abs(owen - plackett)) <= 1e-14


def test_bvn_endpoints_and_zero():
    hs = np.array([-np.inf, -5.0, -1.2, 0.0, 0.3, 2.0, np.inf])
    h, k = np.meshgrid(hs, hs, indexing="ij")
    ph, pk = special.ndtr(h), special.ndtr(k)
    np.testing.assert_allclose(oracles.bivariate_normal_cdf(h, k, 0.0), ph * pk, rtol=0, atol=1e-16)
    np.testing.assert_allclose(
        oracles.bivariate_normal_cdf(h, k, 1.0), special.ndtr(np.minimum(h, k)), rtol=0, atol=1e-16
    )
    np.testing.assert_allclose(
        oracles.bivariate_normal_cdf(h, k, -1.0), np.maximum(ph + pk - 1.0, 0.0), rtol=0, atol=1e-15
    )
    # The endpoints are limits of the interior: approach them from inside
    # (the gap closes like sqrt(1 - |rho|)).
    for eps in [1e-6, 1e-10]:
        inner_p = oracles.bivariate_normal_cdf(h, k, 1.0 - eps)
        inner_m = oracles.bivariate_normal_cdf(h, k, -1.0 + eps)
        assert np.max(np.abs(inner_p - oracles.bivariate_normal_cdf(h, k, 1.0))) < 2 * math.sqrt(
            eps
        )
        assert np.max(np.abs(inner_m - oracles.bivariate_normal_cdf(h, k, -1.0))) < 2 * math.sqrt(
            eps
        )
    # Sheppard's formula at the origin.
    for rho in [-1.0, -0.6, 0.0, 0.25, 0.9, 1.0]:
        assert oracles.bivariate_normal_cdf(0.0, 0.0, rho) == pytest.approx(
            0.25 + math.asin(rho) / (2 * math.pi), abs=1e-16
        )


def test_bvn_identities():
    h = np.array([-2.0, -0.5, 0.0, 0.7, 3.1])[:, None, None]
    k = np.array([-1.5, 0.0, 0.2, 2.5])[None, :, None]
    r = np.array([-0.95, -0.3, 0.0, 0.45, 0.99])[None, None, :]
    f = oracles.bivariate_normal_cdf
    # exchange symmetry; Phi2(h,k;r) + Phi2(h,-k;-r) = Phi(h)
    assert np.max(np.abs(f(h, k, r) - f(k, h, r))) <= 1e-15
    assert np.max(np.abs(f(h, k, r) + f(h, -k, -r) - special.ndtr(h))) <= 2e-15
    # monotone in rho (Plackett: d Phi2 / d rho = phi2 > 0)
    rr = np.linspace(-1, 1, 41)
    assert np.all(np.diff(f(0.3, -0.8, rr)) > 0)


def test_bvn_rejects_bad_rho():
    with pytest.raises(ValueError):
        oracles.bivariate_normal_cdf(0.0, 0.0, 1.0000001)


# ==========================================================================
# Finite homogeneous pool, Gaussian copula
# ==========================================================================
def _check_pmf(pmf, n, p, second_factorial_moment):
    k = np.arange(n + 1)
    assert pmf.shape == (n + 1,)
    assert np.all(pmf >= 0.0)
    assert abs(pmf.sum() - 1.0) <= 1e-13
    assert pmf @ k == pytest.approx(n * p, rel=1e-12)
    if n > 1:
        # E[D(D-1)] = n(n-1) P(two given names both default): exact.
        assert pmf @ (k * (k - 1.0)) == pytest.approx(second_factorial_moment, rel=1e-10)


@pytest.mark.parametrize("rho", [0.01, 0.12, 0.5])
@pytest.mark.parametrize("p", [1e-3, 0.01, 0.2])
@pytest.mark.parametrize("n", [1, 10, 100, 1000])
def test_finite_pool_pmf_moments(n, p, rho):
    pmf = oracles.finite_pool_pmf(n, p, rho)
    c = special.ndtri(p)
    _check_pmf(pmf, n, p, n * (n - 1) * oracles.bivariate_normal_cdf(c, c, rho))


def test_finite_pool_single_name_is_bernoulli():
    np.testing.assert_allclose(
        oracles.finite_pool_pmf(1, 0.03, 0.4), [0.97, 0.03], rtol=0, atol=1e-15
    )


@pytest.mark.parametrize(
    "n, p, rho", [(1000, 1e-3, 0.5), (1000, 0.01, 0.12), (1000, 0.2, 0.01), (37, 0.2, 0.3)]
)
def test_finite_pool_pmf_matches_adaptive_quadrature(n, p, rho):
    pmf = oracles.finite_pool_pmf(n, p, rho)
    ref = oracles.finite_pool_pmf_quad(n, p, rho)
    # quad's epsabs is 1e-15, so tiny far-tail entries are compared absolutely.
    np.testing.assert_allclose(pmf, ref, rtol=1e-11, atol=1e-14)


def test_gauss_hermite_variant_is_fine_for_small_n_rho():
    ref = oracles.finite_pool_pmf(100, 0.01, 0.12)
    for nodes in (100, 200):
        gh = oracles.finite_pool_pmf(100, 0.01, 0.12, method="hermite", nodes=nodes)
        np.testing.assert_allclose(gh, ref, rtol=0, atol=1e-14)


def test_plain_gauss_hermite_100_is_not_enough_for_large_n_rho():
    # Documents why the default rule is not a global Gauss-Hermite rule: for
    # n = 1000, rho = 0.5 the conditional-binomial peak (~0.04 wide in z) falls
    # between the nodes.  The total and the mean still come out exact, so
    # "sums to 1 / mean = n p" alone would not catch it; the adaptive
    # reference does.
    n, p, rho = 1000, 1e-3, 0.5
    gh = oracles.finite_pool_pmf(n, p, rho, method="hermite", nodes=100)
    ref = oracles.finite_pool_pmf_quad(n, p, rho, k=np.arange(0, 60))
    assert abs(gh.sum() - 1.0) < 1e-13
    assert gh @ np.arange(n + 1) == pytest.approx(n * p, rel=1e-12)
    assert np.max(np.abs(gh[:60] - ref)) > 1e-5


def test_finite_pool_tail():
    n, p, rho = 1000, 0.01, 0.2
    pmf = oracles.finite_pool_pmf(n, p, rho)
    tail = oracles.finite_pool_tail(n, p, rho)
    assert tail[0] == 1.0
    assert np.all(np.diff(tail) <= 0.0)
    np.testing.assert_allclose(tail, np.cumsum(pmf[::-1])[::-1], rtol=1e-13, atol=1e-15)
    assert tail[n] == pmf[n]
    # Independent: P(D >= k) = int P(Bin(n, p(z)) >= k) phi(z) dz by quad.
    c, sr, s1 = special.ndtri(p), math.sqrt(rho), math.sqrt(1 - rho)
    for k in (1, 10, 50, 200):

        def integrand(z, k=k):
            return stats.binom.sf(k - 1, n, special.ndtr((c - sr * z) / s1)) * math.exp(
                -0.5 * z * z
            )

        zk = (c - s1 * special.ndtri(k / n)) / sr
        ref = integrate.quad(
            integrand, -15, 15, points=[zk], epsabs=1e-16, epsrel=1e-12, limit=200
        )[0]
        assert tail[k] == pytest.approx(ref / math.sqrt(2 * math.pi), rel=1e-9, abs=1e-16)


# ==========================================================================
# 3. Multi-factor moments
# ==========================================================================
MF_C = np.array([1.0, 2.5, 0.7])
MF_PD = np.array([0.02, 0.05, 0.10])
MF_A = np.array([[0.5, 0.2], [0.1, 0.6], [-0.3, 0.4]])
MF_R = np.array([[1.0, 0.3], [0.3, 1.0]])


def _brute_force_moments(c, pd, a, r, obligor_index, nodes=80):
    """E[L], Var L by tensor Gauss-Hermite over the factors Y = chol(R) u.

    Conditional on Y the defaults of different obligors are independent with
    PD p_i(Y) = Phi((Phi^-1 p_i - a_i'Y)/b_i); two exposures on one obligor
    share one indicator, so E[1_i 1_j | Y] = p_i(Y) for them.
    """
    z, w = _gauss_hermite_normal(nodes)
    u = np.stack([g.ravel() for g in np.meshgrid(z, z, indexing="ij")])
    wt = np.outer(w, w).ravel()
    y = np.linalg.cholesky(r) @ u
    b = np.sqrt(1.0 - np.einsum("if,fg,ig->i", a, r, a))
    pz = special.ndtr((special.ndtri(pd)[:, None] - a @ y) / b[:, None])
    e1 = pz @ wt
    same = obligor_index[:, None] == obligor_index[None, :]
    e_pair = np.where(same, e1[:, None], (pz * wt) @ pz.T)
    mean = c @ e1
    return mean, c @ e_pair @ c - mean**2


def test_multifactor_moments_vs_factor_integration():
    mean, var = oracles.multifactor_moments(MF_C, MF_PD, MF_A, MF_R)
    bm, bv = _brute_force_moments(MF_C, MF_PD, MF_A, MF_R, np.arange(3))
    assert mean == pytest.approx(MF_C @ MF_PD, rel=1e-15)
    assert mean == pytest.approx(bm, rel=1e-13)
    assert var == pytest.approx(bv, rel=1e-12)


def test_multifactor_same_obligor_grouping():
    # Exposures 1 and 2 are on the same obligor: they must behave as one
    # exposure of 2.5 + 0.4 = 2.9, not as two correlated names.
    oi = np.array([0, 1, 1, 2])
    c4 = np.array([1.0, 2.5, 0.4, 0.7])
    mean, var = oracles.multifactor_moments(c4, MF_PD[oi], MF_A[oi], MF_R, obligor_index=oi)
    merged = oracles.multifactor_moments(np.array([1.0, 2.9, 0.7]), MF_PD, MF_A, MF_R)
    bm, bv = _brute_force_moments(c4, MF_PD[oi], MF_A[oi], MF_R, oi)
    assert (mean, var) == pytest.approx(merged, rel=1e-14)
    assert var == pytest.approx(bv, rel=1e-12)
    assert mean == pytest.approx(bm, rel=1e-13)
    # Without the grouping the variance is smaller (correlation a'Ra < 1).
    _, var_ungrouped = oracles.multifactor_moments(c4, MF_PD[oi], MF_A[oi], MF_R)
    assert var_ungrouped < var - 1e-3


def test_multifactor_reduces_to_finite_pool():
    n, p, rho = 50, 0.02, 0.18
    mean, var = oracles.multifactor_moments(
        np.ones(n), np.full(n, p), np.full((n, 1), math.sqrt(rho)), np.eye(1)
    )
    pmf = oracles.finite_pool_pmf(n, p, rho)
    k = np.arange(n + 1)
    assert mean == pytest.approx(pmf @ k, rel=1e-12)
    assert var == pytest.approx(pmf @ k**2 - (pmf @ k) ** 2, rel=1e-11)


def test_multifactor_independent_names():
    c = np.array([3.0, 1.0, 2.0])
    pd = np.array([0.01, 0.2, 0.5])
    mean, var = oracles.multifactor_moments(c, pd, np.zeros((3, 2)), None)
    assert var == pytest.approx(np.sum(c**2 * pd * (1 - pd)), rel=1e-14)
    assert mean == pytest.approx(c @ pd, rel=1e-15)


def test_multifactor_input_validation():
    oi = np.array([0, 1, 1, 2])
    bad_pd = MF_PD[oi].copy()
    bad_pd[2] = 0.06  # same obligor as exposure 1 but a different PD
    with pytest.raises(ValueError):
        oracles.multifactor_moments(np.ones(4), bad_pd, MF_A[oi], MF_R, obligor_index=oi)
    with pytest.raises(ValueError):  # a'Ra > 1: no room for idiosyncratic noise
        oracles.multifactor_moments(np.ones(1), [0.01], [[0.9, 0.9]], MF_R)
    with pytest.raises(ValueError):  # not positive semi-definite
        oracles.multifactor_moments(np.ones(1), [0.01], [[0.1, 0.1]], [[1.0, 2.0], [2.0, 1.0]])


# ==========================================================================
# 4. Student-t copula
# ==========================================================================
@pytest.mark.parametrize("nu, rho, ref", [(4, 0.2, 0.127464), (10, 0.5, 0.081864)])
def test_t_tail_dependence_table(nu, rho, ref):
    assert abs(oracles.t_tail_dependence(rho, nu) - ref) <= 1e-6


def test_t_tail_dependence_limits():
    assert oracles.t_tail_dependence(1.0, 4) == pytest.approx(1.0, abs=1e-15)
    lam = oracles.t_tail_dependence(0.3, np.array([1, 2, 4, 10, 30, 100]))
    assert np.all(np.diff(lam) < 0) and lam[-1] < 1e-6
    assert np.all(np.diff(oracles.t_tail_dependence(np.linspace(-0.9, 0.9, 7), 4)) > 0)


# validation.md section 4: large pool, p = 1 %, rho = 0.2.
T_POOL_Q99 = [(4, 0.193920), (10, 0.129453)]
T_POOL_Q999 = [(4, 0.441800), (10, 0.286809)]
# 40-digit mpmath (quad over W of the chi-square density, findroot on the CDF):
T_POOL_MPMATH = {
    (4, 0.99): 0.19391985225319566,
    (4, 0.999): 0.44180807835806076,
    (10, 0.99): 0.12945335248743066,
    (10, 0.999): 0.28682277914478493,
}


@pytest.mark.parametrize("nu, ref", T_POOL_Q99)
def test_t_large_pool_q99_table(nu, ref):
    assert abs(oracles.t_large_pool_quantile(0.99, 0.01, 0.2, nu) - ref) <= 1e-6


@pytest.mark.xfail(
    strict=True,
    reason="published q99.9 (0.441800 / 0.286809) are below the exact values "
    "0.4418081 / 0.2868228 by 8e-6 / 1.4e-5; see test_t_large_pool_quantiles_high_precision",
)
@pytest.mark.parametrize("nu, ref", T_POOL_Q999)
def test_t_large_pool_q999_table(nu, ref):
    assert abs(oracles.t_large_pool_quantile(0.999, 0.01, 0.2, nu) - ref) <= 1e-6


@pytest.mark.parametrize("nu, alpha", list(T_POOL_MPMATH))
def test_t_large_pool_quantiles_high_precision(nu, alpha):
    q = oracles.t_large_pool_quantile(alpha, 0.01, 0.2, nu)
    assert abs(q - T_POOL_MPMATH[(nu, alpha)]) <= 1e-12
    if alpha == 0.999:
        # At the published q99.9 the exact CDF is not 0.999 (0.99899992 for
        # nu = 4, 0.99899981 for nu = 10): the table, not the root-finder.
        published = dict(T_POOL_Q999)[nu]
        assert abs(oracles.t_large_pool_cdf(published, 0.01, 0.2, nu) - 0.999) > 5e-8


def test_t_section_gaussian_comparison_row():
    # "(Gaussian: 0.075251, 0.145525)" in section 4.
    q = oracles.vasicek_quantile(np.array([0.99, 0.999]), 0.01, 0.2)
    np.testing.assert_allclose(q, [0.075251, 0.145525], rtol=0, atol=1e-6)
    assert np.all(q < [T_POOL_MPMATH[(10, 0.99)], T_POOL_MPMATH[(10, 0.999)]])


def _t_cdf_by_factor_z(x, p, rho, nu):
    """P(L <= x) integrating over Z instead of W (independent of the oracle).

    {p(Z, W) <= x} = {sqrt(W/nu) >= (sqrt(1-rho) Phi^-1(x) + sqrt(rho) Z)/t_p}
    for t_p < 0, i.e. a chi-square tail probability given Z.
    """
    tp = stats.t.ppf(p, nu)
    y = special.ndtri(x)
    sr, s1 = math.sqrt(rho), math.sqrt(1 - rho)

    def integrand(z):
        rhs = (s1 * y + sr * z) / tp
        inner = 1.0 if rhs <= 0 else stats.chi2.sf(nu * rhs * rhs, nu)
        return inner * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    return integrate.quad(
        integrand, -40, 40, points=[-s1 * y / sr], epsabs=1e-16, epsrel=1e-13, limit=500
    )[0]


@pytest.mark.parametrize("nu", [1.0, 4.0, 10.0])
def test_t_large_pool_cdf_two_ways(nu):
    for x in (1e-4, 0.01, 0.1, 0.4, 0.8):
        assert oracles.t_large_pool_cdf(x, 0.01, 0.2, nu) == pytest.approx(
            _t_cdf_by_factor_z(x, 0.01, 0.2, nu), abs=1e-13
        )


def test_t_large_pool_roundtrip_and_gaussian_limit():
    p, rho = 0.01, 0.2
    alphas = np.array([0.05, 0.5, 0.99, 0.999])
    for nu in (2.5, 4.0, 30.0):
        q = oracles.t_large_pool_quantile(alphas, p, rho, nu)
        np.testing.assert_allclose(
            oracles.t_large_pool_cdf(q, p, rho, nu), alphas, rtol=0, atol=1e-12
        )
    gauss = oracles.vasicek_quantile(alphas, p, rho)
    np.testing.assert_array_equal(oracles.t_large_pool_quantile(alphas, p, rho, np.inf), gauss)
    # The t correction is O(1/nu): ~1.6e-4 at nu = 1e4, ~1.6e-6 at nu = 1e6.
    assert np.max(np.abs(oracles.t_large_pool_quantile(alphas, p, rho, 1e6) - gauss)) < 3e-6


def _t_second_factorial_moment(p, rho, nu):
    """P(two given names both default) = E_W[Phi2(c(W), c(W); rho)]."""
    tp = stats.t.ppf(p, nu)

    def integrand(w):
        c = tp * math.sqrt(w / nu)
        return oracles.bivariate_normal_cdf(c, c, rho) * stats.chi2.pdf(w, nu)

    hi = stats.chi2.isf(1e-18, nu)
    return integrate.quad(integrand, 0, hi, points=[nu], epsabs=1e-17, epsrel=1e-12, limit=500)[0]


@pytest.mark.parametrize(
    "n, p, rho, nu",
    [
        (10, 1e-3, 0.5, 4.0),
        (100, 0.01, 0.2, 1.5),
        (1000, 1e-3, 0.2, 4.0),
        (1000, 0.01, 0.5, 10.0),
        (300, 0.2, 0.12, 30.0),
    ],
)
def test_finite_pool_pmf_t_moments(n, p, rho, nu):
    pmf = oracles.finite_pool_pmf_t(n, p, rho, nu)
    _check_pmf(pmf, n, p, n * (n - 1) * _t_second_factorial_moment(p, rho, nu))


@pytest.mark.parametrize("n, p, rho, nu", [(30, 0.01, 0.2, 4.0), (30, 1e-3, 0.5, 1.5)])
def test_finite_pool_pmf_t_vs_adaptive_w_integral(n, p, rho, nu):
    # Independent route: given W the pool is a Gaussian pool with PD
    # Phi(t_p sqrt(W/nu)); integrate that (already validated) pmf over W with
    # the adaptive vector integrator, in t = log(W/nu).
    tp = stats.t.ppf(p, nu)

    def integrand(t):
        pw = special.ndtr(tp * math.exp(0.5 * t))
        if pw < 1e-300:  # nobody can default
            cond = np.zeros(n + 1)
            cond[0] = 1.0
        else:
            cond = oracles.finite_pool_pmf(n, pw, rho)
        w = nu * math.exp(t)
        return cond * stats.chi2.pdf(w, nu) * w

    lo = math.log(stats.chi2.ppf(1e-18, nu) / nu)
    hi = math.log(stats.chi2.isf(1e-18, nu) / nu)
    ref = integrate.quad_vec(integrand, lo, hi, points=[0.0], epsabs=1e-15, epsrel=1e-12)[0]
    np.testing.assert_allclose(
        oracles.finite_pool_pmf_t(n, p, rho, nu), ref, rtol=1e-10, atol=1e-14
    )


def test_finite_pool_t_gaussian_limit_and_tail():
    n, p, rho = 100, 0.01, 0.2
    gauss = oracles.finite_pool_pmf(n, p, rho)
    np.testing.assert_array_equal(oracles.finite_pool_pmf_t(n, p, rho, np.inf), gauss)
    assert np.max(np.abs(oracles.finite_pool_pmf_t(n, p, rho, 1e6) - gauss)) < 1e-5
    tail = oracles.finite_pool_tail_t(n, p, rho, 4.0)
    pmf = oracles.finite_pool_pmf_t(n, p, rho, 4.0)
    assert tail[0] == 1.0 and np.all(np.diff(tail) <= 0.0)
    np.testing.assert_allclose(tail, np.cumsum(pmf[::-1])[::-1], rtol=1e-13, atol=1e-15)
    # Heavier joint tail than the Gaussian copula at the same p and rho.
    assert tail[20] > 5 * oracles.finite_pool_tail(n, p, rho)[20]
