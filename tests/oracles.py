"""Deterministic closed-form oracles for validating the ai-stress engine.

Every function in this module is exact or evaluated by deterministic quadrature
whose error is far below any Monte Carlo standard error the engine's statistical
tests can resolve.  Nothing here draws random numbers: an oracle that is itself
noisy cannot tell a biased simulator from an unlucky seed.

The reference values these oracles must reproduce are collected in
``/work/shared/reference/validation.md``; ``tests/test_oracles.py`` proves that
they do (and documents the few published figures that cannot be reproduced).

Contents
--------
Bivariate normal
    :func:`bivariate_normal_cdf` (Owen's T), :func:`bivariate_normal_cdf_quad`
    (Plackett/Drezner-Genz integral, an independent cross-check).
Vasicek large homogeneous portfolio
    :func:`vasicek_cdf`, :func:`vasicek_quantile`, :func:`vasicek_es`,
    :func:`vasicek_variance`.
Finite homogeneous pool, one-factor Gaussian copula
    :func:`finite_pool_pmf`, :func:`finite_pool_tail`,
    :func:`finite_pool_pmf_quad` (adaptive cross-check).
Multi-factor Gaussian copula
    :func:`multifactor_moments`.
Student-t copula
    :func:`t_large_pool_cdf`, :func:`t_large_pool_quantile`,
    :func:`t_tail_dependence`, :func:`finite_pool_pmf_t`,
    :func:`finite_pool_tail_t`.
Basel IRB (corporate)
    :func:`basel_correlation`, :func:`basel_maturity_adjustment`,
    :func:`basel_maturity_factor`, :func:`basel_capital_k`,
    :func:`basel_risk_weight`.

Conventions
-----------
``p`` is an unconditional probability of default, ``rho`` the asset (latent
variable) correlation, ``nu`` the Student-t degrees of freedom.  Arrays follow
NumPy broadcasting wherever the signature says "array_like".
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special, stats

__all__ = [
    "basel_capital_k",
    "basel_correlation",
    "basel_maturity_adjustment",
    "basel_maturity_factor",
    "basel_risk_weight",
    "bivariate_normal_cdf",
    "bivariate_normal_cdf_quad",
    "finite_pool_pmf",
    "finite_pool_pmf_quad",
    "finite_pool_pmf_t",
    "finite_pool_tail",
    "finite_pool_tail_t",
    "multifactor_moments",
    "t_large_pool_cdf",
    "t_large_pool_quantile",
    "t_tail_dependence",
    "vasicek_cdf",
    "vasicek_es",
    "vasicek_quantile",
    "vasicek_variance",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)

# QUADPACK settings for every adaptive integral in this module.  The targets
# sit just above double-precision round-off, so the oracles are limited by
# floating point rather than by the integrator.  ``full_output=1`` is always
# passed so that QUADPACK reports trouble through its return value instead of
# an IntegrationWarning (the suite runs with ``-W error``); ``_quad`` then
# raises if the achieved error estimate is not good enough to be an oracle.
_QUAD_EPSABS = 1e-15
_QUAD_EPSREL = 1e-13
_QUAD_LIMIT = 500

# Probability mass we allow the finite-pool quadratures to attribute to the
# wrong default count.  Far below anything a test compares.
_MASS_EPS = 1e-20

# Half-width, in standard deviations, of the Gaussian mixture components we
# keep on a grid.  exp(-12**2 / 2) ~ 5e-32, so nothing outside matters.
_K_SIGMA = 12.0


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _quad(func, a, b, points=None, tol=1e-12):
    """Adaptive quadrature that fails loudly instead of warning.

    Parameters
    ----------
    func : callable
        Scalar integrand.
    a, b : float
        Finite integration limits.
    points : sequence of float, optional
        Break points (kinks, peaks) inside ``(a, b)``.
    tol : float
        Largest acceptable absolute error estimate.

    Returns
    -------
    float
        The integral.

    Raises
    ------
    RuntimeError
        If QUADPACK flags a problem *and* its error estimate exceeds ``tol``.
        (A flag with a tiny error estimate is usually the round-off detector
        firing on an integral that is already exact to machine precision.)
    """
    if points is not None:
        points = sorted({float(x) for x in points if a < x < b})
        if not points:
            points = None
    res = integrate.quad(
        func,
        a,
        b,
        points=points,
        full_output=1,
        epsabs=_QUAD_EPSABS,
        epsrel=_QUAD_EPSREL,
        limit=_QUAD_LIMIT,
    )
    value, abserr = res[0], res[1]
    if len(res) > 3 and abserr > tol:
        raise RuntimeError(
            f"quadrature did not reach oracle accuracy (error estimate "
            f"{abserr:.3g} > {tol:.3g}): {res[3]}"
        )
    return value


def _check_prob_open(name, x):
    """Raise unless every element of ``x`` lies strictly inside (0, 1)."""
    x = np.asarray(x, dtype=float)
    if not np.all((x > 0.0) & (x < 1.0)):
        raise ValueError(f"{name} must lie strictly between 0 and 1")
    return x


def _check_nu(nu):
    """Degrees of freedom: positive (``np.inf`` means the Gaussian limit)."""
    nu = float(nu)
    if not nu > 0.0:
        raise ValueError("nu must be positive")
    return nu


def _check_n(n):
    """Number of names in a finite pool: a positive integer."""
    if int(n) != n or n < 1:
        raise ValueError("n must be a positive integer")
    return int(n)


def _gauss_legendre_panels(a, b, width, order):
    """Composite Gauss-Legendre rule on ``[a, b]`` with panels <= ``width``.

    A composite high-order rule (rather than one global rule) is used because
    the integrands below are smooth but sharply peaked; each panel only has to
    resolve a slowly varying piece, so the error is tiny and predictable.
    """
    n_pan = max(1, math.ceil((b - a) / width))
    x, w = special.roots_legendre(order)
    edges = np.linspace(a, b, n_pan + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    return nodes, weights


def _binomial_mixture(n, y, wy):
    r"""Return ``sum_j wy_j * Binom(k; n, Phi(y_j))`` for ``k = 0..n``.

    The binomial probabilities are evaluated in log space,
    ``log C(n,k) + k log Phi(y) + (n-k) log Phi(-y)``, with ``log_ndtr`` for
    both tails: this stays accurate when the conditional PD is 1e-300 or
    1 - 1e-17, where ``Phi(y)`` and ``1 - Phi(y)`` would lose all digits.
    """
    k = np.arange(n + 1, dtype=float)
    log_comb = _log_binomial_coefficients(n)
    lp = special.log_ndtr(y)
    lq = special.log_ndtr(-y)
    out = np.zeros(n + 1)
    # Chunk over nodes to keep the (nodes x counts) matrix at ~16 MB.
    chunk = max(1, 2_000_000 // (n + 1))
    for s in range(0, y.size, chunk):
        sl = slice(s, s + chunk)
        expo = log_comb[None, :] + lp[sl, None] * k[None, :] + lq[sl, None] * (n - k)[None, :]
        out += wy[sl] @ np.exp(expo)
    return out


def _log_binomial_coefficients(n):
    """``log C(n, k)`` for ``k = 0..n``, correctly rounded for moderate ``n``.

    ``gammaln``/``betaln`` differences carry a systematic relative error of a
    few 1e-13 at ``n = 1000`` (it showed up as the pmf summing to 1 + 4e-13),
    so up to ``n = 20000`` the coefficients are built as exact Python integers
    (``C(n, k+1) = C(n, k) (n-k) / (k+1)``) and ``math.log`` is taken of each,
    which CPython evaluates to ~1 ulp even for huge integers.
    """
    if n > 20000:
        k = np.arange(n + 1, dtype=float)
        return -math.log(n + 1.0) - special.betaln(k + 1.0, n - k + 1.0)
    out = np.empty(n + 1)
    comb = 1
    for k in range(n + 1):
        out[k] = math.log(comb)
        comb = comb * (n - k) // (k + 1)
    return out


def _binomial_support(n):
    """Latent range outside which a pool of ``n`` names is all-or-nothing.

    For ``y < y_lo`` the conditional PD ``Phi(y)`` satisfies ``n Phi(y) <=
    _MASS_EPS``, so ``P(D >= 1 | y) <= _MASS_EPS``: all that mass can be put on
    ``D = 0`` exactly, and symmetrically on ``D = n`` above ``y_hi``.
    """
    y_lo = float(special.ndtri(_MASS_EPS / n))
    return y_lo, -y_lo


# --------------------------------------------------------------------------
# bivariate normal
# --------------------------------------------------------------------------
def _bvn_special_cases(h, k, rho):
    """Fill the values of Phi2 that have closed forms; NaN elsewhere.

    Shared by both bivariate-normal methods so they agree on the degenerate
    cases (infinite limits, rho = +-1, rho = 0, h = k = 0), which are also
    exactly where the general formulas divide by zero.
    """
    out = np.full(h.shape, np.nan)
    done = np.zeros(h.shape, dtype=bool)

    m = (h == -np.inf) | (k == -np.inf)
    out[m] = 0.0
    done |= m
    m = ~done & (h == np.inf)
    out[m] = special.ndtr(k[m])
    done |= m
    m = ~done & (k == np.inf)
    out[m] = special.ndtr(h[m])
    done |= m

    # rho = 1: X1 = X2, so P(X <= h, X <= k) = Phi(min(h, k)).
    m = ~done & (rho == 1.0)
    out[m] = special.ndtr(np.minimum(h[m], k[m]))
    done |= m
    # rho = -1: X2 = -X1, so P(-k <= X <= h) = max(0, Phi(h) - Phi(-k)).
    # Written as Phi(k) - Phi(-h) when both h and -k are positive so that the
    # difference is taken between two small tail probabilities.
    m = ~done & (rho == -1.0)
    hm, km = h[m], k[m]
    both_tails = (hm > 0) & (km < 0)
    val = np.where(
        both_tails, special.ndtr(km) - special.ndtr(-hm), special.ndtr(hm) - special.ndtr(-km)
    )
    out[m] = np.where(hm + km > 0, np.maximum(val, 0.0), 0.0)
    done |= m

    m = ~done & (rho == 0.0)
    out[m] = special.ndtr(h[m]) * special.ndtr(k[m])
    done |= m

    # Sheppard's formula; Owen's T formula would give 0/0 here.
    m = ~done & (h == 0.0) & (k == 0.0)
    out[m] = 0.25 + np.arcsin(rho[m]) / (2.0 * np.pi)
    done |= m
    return out, done


def _bvn_args(h, k, rho):
    h, k, rho = np.broadcast_arrays(
        np.asarray(h, dtype=float), np.asarray(k, dtype=float), np.asarray(rho, dtype=float)
    )
    if np.any(np.isnan(h) | np.isnan(k) | np.isnan(rho)):
        raise ValueError("bivariate_normal_cdf: NaN input")
    if np.any(np.abs(rho) > 1.0):
        raise ValueError("rho must lie in [-1, 1]")
    return h, k, rho


def bivariate_normal_cdf(h, k, rho):
    r"""Standard bivariate normal CDF :math:`\Phi_2(h, k; \rho)`.

    Uses Owen's (1956) representation

    .. math::
        \Phi_2 = \tfrac12\Phi(h) + \tfrac12\Phi(k) - T(h, a_h) - T(k, a_k) - \beta,
        \quad a_h = \frac{k - \rho h}{h\sqrt{1-\rho^2}},\;
        a_k = \frac{h - \rho k}{k\sqrt{1-\rho^2}},

    with :math:`\beta = 1/2` if :math:`hk < 0` or (:math:`hk = 0` and
    :math:`h + k < 0`), else 0, and Owen's T evaluated by
    ``scipy.special.owens_t`` (Patefield-Tandy, double precision).  This is
    deterministic, unlike ``scipy.stats.multivariate_normal.cdf`` whose Genz
    algorithm is randomised quasi-Monte Carlo.

    Parameters
    ----------
    h, k : array_like
        Upper integration limits; ``+-inf`` allowed.
    rho : array_like
        Correlation in ``[-1, 1]``; the endpoints and 0 use closed forms.

    Returns
    -------
    ndarray or float
        :math:`P(X_1 \le h, X_2 \le k)`, broadcast over the inputs.  Absolute
        accuracy ~1e-15 (verified against :func:`bivariate_normal_cdf_quad`
        and 30-digit mpmath values in the test-suite).  Deep in the joint lower
        tail the formula subtracts numbers ~``Phi(h)`` to get a much smaller
        result, so the *relative* error there grows to ~1e-12 (e.g. at
        ``h = k = Phi^-1(0.001)``, ``rho = 0.01``); the absolute error stays
        ~1e-18.

    Raises
    ------
    ValueError
        On NaN input or ``|rho| > 1``.
    """
    h, k, rho = _bvn_args(h, k, rho)
    out, done = _bvn_special_cases(h, k, rho)
    g = ~done
    if np.any(g):
        hg, kg, rg = h[g], k[g], rho[g]
        s = np.sqrt((1.0 - rg) * (1.0 + rg))  # sqrt(1 - rho^2) without cancellation near |rho| = 1
        # h = 0 (or k = 0) gives a_h = +-inf, which owens_t handles exactly
        # (T(0, +-inf) = +-1/4); silence only that division.
        with np.errstate(divide="ignore", invalid="ignore"):
            a_h = (kg - rg * hg) / (hg * s)
            a_k = (hg - rg * kg) / (kg * s)
        a_h = np.where(hg == 0.0, np.copysign(np.inf, kg), a_h)
        a_k = np.where(kg == 0.0, np.copysign(np.inf, hg), a_k)
        prod = hg * kg
        beta = np.where((prod < 0) | ((prod == 0) & (hg + kg < 0)), 0.5, 0.0)
        val = (
            0.5 * special.ndtr(hg)
            + 0.5 * special.ndtr(kg)
            - special.owens_t(hg, a_h)
            - special.owens_t(kg, a_k)
            - beta
        )
        # Round-off can push a probability a few ulps outside [0, 1].
        out[g] = np.clip(val, 0.0, 1.0)
    return out[()] if out.ndim == 0 else out


def bivariate_normal_cdf_quad(h, k, rho):
    r"""Bivariate normal CDF by Plackett's identity (independent cross-check).

    Plackett (1954): :math:`\partial\Phi_2/\partial\rho = \varphi_2(h,k;\rho)`,
    hence :math:`\Phi_2(h,k;\rho) = \Phi(h)\Phi(k) + \int_0^\rho \varphi_2(h,k;r)\,dr`.
    Substituting :math:`r = \sin\theta` (Drezner and Wesolowsky 1990; Genz
    2004) removes the :math:`(1-r^2)^{-1/2}` singularity at :math:`|r| = 1`:

    .. math::
        \Phi_2 = \Phi(h)\Phi(k) + \frac{1}{2\pi}\int_0^{\arcsin\rho}
        \exp\!\Big(-\frac{h^2 - 2hk\sin\theta + k^2}{2\cos^2\theta}\Big)\,d\theta,

    whose integrand is bounded by 1; it is integrated by adaptive QUADPACK.

    Parameters
    ----------
    h, k, rho : array_like
        As for :func:`bivariate_normal_cdf`.

    Returns
    -------
    ndarray or float
        :math:`\Phi_2(h, k; \rho)`.  Slow (one adaptive integral per element);
        meant for tests only.
    """
    h, k, rho = _bvn_args(h, k, rho)
    out, done = _bvn_special_cases(h, k, rho)
    for idx in np.ndindex(out.shape):
        if done[idx]:
            continue
        hh, kk, rr = float(h[idx]), float(k[idx]), float(rho[idx])

        def integrand(t, hh=hh, kk=kk):
            c2 = math.cos(t) ** 2
            return math.exp(-(hh * hh - 2.0 * hh * kk * math.sin(t) + kk * kk) / (2.0 * c2))

        theta = math.asin(rr)
        lo, hi = (0.0, theta) if theta > 0 else (theta, 0.0)
        val = _quad(integrand, lo, hi, tol=1e-13) / (2.0 * math.pi)
        out[idx] = float(special.ndtr(hh) * special.ndtr(kk)) + math.copysign(val, theta)
    return out[()] if out.ndim == 0 else out


# --------------------------------------------------------------------------
# Vasicek large homogeneous portfolio
# --------------------------------------------------------------------------
def vasicek_cdf(x, p, rho):
    r"""CDF of the Vasicek large-pool loss fraction.

    :math:`P(L \le x) = \Phi\big((\sqrt{1-\rho}\,\Phi^{-1}(x) - \Phi^{-1}(p))/\sqrt\rho\big)`.

    Parameters
    ----------
    x : array_like
        Loss fraction in ``[0, 1]``.
    p : array_like
        Unconditional PD in ``(0, 1)``.
    rho : array_like
        Asset correlation in ``(0, 1)``.

    Returns
    -------
    ndarray or float
        ``P(L <= x)``.
    """
    x = np.asarray(x, dtype=float)
    if np.any((x < 0) | (x > 1) | np.isnan(x)):
        raise ValueError("x must lie in [0, 1]")
    p = _check_prob_open("p", p)
    rho = _check_prob_open("rho", rho)
    return special.ndtr((np.sqrt(1.0 - rho) * special.ndtri(x) - special.ndtri(p)) / np.sqrt(rho))


def vasicek_quantile(alpha, p, rho):
    r"""Quantile of the Vasicek large-pool loss fraction.

    :math:`q_\alpha = \Phi\big((\Phi^{-1}(p) + \sqrt\rho\,\Phi^{-1}(\alpha))/\sqrt{1-\rho}\big)`,
    i.e. the conditional PD at the factor's adverse :math:`\alpha`-quantile
    (the loss fraction is decreasing in the factor).

    Parameters
    ----------
    alpha : array_like
        Confidence level in ``[0, 1]``.
    p, rho : array_like
        PD and asset correlation, both in ``(0, 1)``.

    Returns
    -------
    ndarray or float
        ``q_alpha``.
    """
    alpha = np.asarray(alpha, dtype=float)
    if np.any((alpha < 0) | (alpha > 1) | np.isnan(alpha)):
        raise ValueError("alpha must lie in [0, 1]")
    p = _check_prob_open("p", p)
    rho = _check_prob_open("rho", rho)
    return special.ndtr(
        (special.ndtri(p) + np.sqrt(rho) * special.ndtri(alpha)) / np.sqrt(1.0 - rho)
    )


def vasicek_es(alpha, p, rho):
    r"""Expected shortfall of the Vasicek large-pool loss fraction.

    :math:`ES_\alpha = E[L \mid L \ge q_\alpha] = E[p(Z) \mid Z \le -\Phi^{-1}(\alpha)]`.
    Since :math:`p(Z) = P(X_i \le \Phi^{-1}(p) \mid Z)` and
    :math:`\mathrm{corr}(X_i, Z) = \sqrt\rho`, this is a bivariate normal
    probability: :math:`ES_\alpha = \Phi_2(\Phi^{-1}(p), -\Phi^{-1}(\alpha); \sqrt\rho)/(1-\alpha)`.

    Parameters
    ----------
    alpha : array_like
        Confidence level in ``[0, 1)``.
    p, rho : array_like
        PD and asset correlation in ``(0, 1)``.

    Returns
    -------
    ndarray or float
        ``ES_alpha``.
    """
    alpha = np.asarray(alpha, dtype=float)
    if np.any((alpha < 0) | (alpha >= 1) | np.isnan(alpha)):
        raise ValueError("alpha must lie in [0, 1)")
    p = _check_prob_open("p", p)
    rho = _check_prob_open("rho", rho)
    joint = bivariate_normal_cdf(special.ndtri(p), -special.ndtri(alpha), np.sqrt(rho))
    return joint / (1.0 - alpha)


def vasicek_variance(p, rho):
    r"""Variance of the Vasicek large-pool loss fraction.

    :math:`E[p(Z)^2]` is the probability that two names default together,
    :math:`\Phi_2(\Phi^{-1}p, \Phi^{-1}p; \rho)`, so
    :math:`\mathrm{Var}\,L = \Phi_2(\Phi^{-1}p, \Phi^{-1}p; \rho) - p^2`.

    Parameters
    ----------
    p, rho : array_like
        PD and asset correlation in ``(0, 1)``.

    Returns
    -------
    ndarray or float
        ``Var L``.
    """
    p = _check_prob_open("p", p)
    rho = _check_prob_open("rho", rho)
    c = special.ndtri(p)
    return bivariate_normal_cdf(c, c, rho) - p * p


# --------------------------------------------------------------------------
# finite homogeneous pool, one-factor Gaussian copula
# --------------------------------------------------------------------------
def finite_pool_pmf(n, p, rho, *, method="legendre", nodes=200):
    r"""Exact default-count distribution of a finite one-factor Gaussian pool.

    :math:`P(D = k) = \int \binom{n}{k} p(z)^k (1-p(z))^{n-k} \varphi(z)\,dz`,
    :math:`p(z) = \Phi((\Phi^{-1}(p) - \sqrt\rho z)/\sqrt{1-\rho})`.

    The default method changes variable to the latent threshold
    :math:`y = \Phi^{-1}(p(z)) \sim N(\Phi^{-1}(p)/\sqrt{1-\rho},\ \rho/(1-\rho))`
    (a linear map of ``z``) and integrates with a composite 12-point
    Gauss-Legendre rule whose panels are at most half the narrower of the
    normal density's s.d. and the binomial peak width, which is at least
    :math:`\sqrt{\pi/2}/\sqrt n` in ``y``.  A single global Gauss-Hermite rule
    cannot resolve that peak once :math:`n\rho` is large (its node spacing
    near the centre is ~:math:`\pi/\sqrt{N_{nodes}}` in ``z``, whereas the peak
    is ~:math:`1.25\sqrt{(1-\rho)/(\rho n)}` wide), so individual
    probabilities would be wrong even though the total and the mean come out
    right.  Where ``n * Phi(y) <= 1e-20`` the pool cannot default, so the normal
    mass there is placed on ``D = 0`` exactly (symmetrically on ``D = n``).

    Parameters
    ----------
    n : int
        Number of names (>= 1).
    p : float
        Unconditional PD in ``(0, 1)``.
    rho : float
        Asset correlation in ``(0, 1)``.
    method : {"legendre", "hermite"}
        ``"legendre"`` (default) as above; ``"hermite"`` uses a plain
        ``nodes``-point Gauss-Hermite rule in ``z`` (fine for small
        :math:`n\rho`, kept for comparison).
    nodes : int
        Number of Gauss-Hermite nodes for ``method="hermite"``.

    Returns
    -------
    ndarray, shape (n + 1,)
        ``P(D = k)`` for ``k = 0..n``.  Absolute error ~1e-15 per entry for
        ``n`` up to a few thousand; sums to 1 within ~1e-14.
    """
    n = _check_n(n)
    p = float(_check_prob_open("p", p))
    rho = float(_check_prob_open("rho", rho))
    c = float(special.ndtri(p))
    s1 = math.sqrt(1.0 - rho)
    if method == "hermite":
        x, w = special.roots_hermite(int(nodes))
        z = math.sqrt(2.0) * x
        return _binomial_mixture(n, (c - math.sqrt(rho) * z) / s1, w / math.sqrt(math.pi))
    if method != "legendre":
        raise ValueError("method must be 'legendre' or 'hermite'")

    mu = c / s1
    sig = math.sqrt(rho / (1.0 - rho))
    y_lo, y_hi = _binomial_support(n)
    a = max(y_lo, mu - _K_SIGMA * sig)
    b = min(y_hi, mu + _K_SIGMA * sig)
    pmf = np.zeros(n + 1)
    if a < b:
        width = 0.5 * min(sig, math.sqrt(math.pi / 2.0 / n))
        y, wy = _gauss_legendre_panels(a, b, width, 12)
        dens = np.exp(-0.5 * ((y - mu) / sig) ** 2) / (sig * _SQRT_2PI)
        pmf += _binomial_mixture(n, y, wy * dens)
    else:  # the whole normal sits where the pool is all-or-nothing
        a = b = 0.5 * (a + b)
    pmf[0] += float(special.ndtr((a - mu) / sig))
    pmf[n] += float(special.ndtr((mu - b) / sig))
    return pmf


def _tail_from_pmf(pmf):
    """``P(D >= k)`` by summing from the top, smallest terms first.

    Summing upwards from ``k = n`` keeps full relative accuracy in the far
    tail (a ``1 - cdf`` would cancel to zero there).
    """
    tail = np.cumsum(pmf[::-1])[::-1]
    tail[0] = 1.0  # P(D >= 0) is exactly 1; avoid reporting round-off.
    return np.minimum(tail, 1.0)


def finite_pool_tail(n, p, rho):
    """Tail probabilities ``P(D >= k)``, ``k = 0..n``, of a finite Gaussian pool.

    Parameters
    ----------
    n, p, rho
        As for :func:`finite_pool_pmf`.

    Returns
    -------
    ndarray, shape (n + 1,)
        ``P(D >= k)``; ``[0]`` is exactly 1.  The validation notes recommend
        comparing simulated default counts through these tail probabilities
        (binomial SE) rather than through quantiles of a discrete variable.
    """
    return _tail_from_pmf(finite_pool_pmf(n, p, rho))


def finite_pool_pmf_quad(n, p, rho, k=None):
    r"""Finite-pool probabilities by adaptive quadrature over ``z`` (cross-check).

    Integrates :math:`\binom{n}{k}p(z)^k(1-p(z))^{n-k}\varphi(z)` on
    ``[-15, 15]`` (outside mass < 1e-50) with QUADPACK, breaking the interval at
    the peak :math:`z_k` where :math:`p(z_k) = k/n`.  It shares no code with
    :func:`finite_pool_pmf` (different variable, rule and binomial formula),
    which makes it a genuine independent check; it is ~100x slower.

    Parameters
    ----------
    n, p, rho
        As for :func:`finite_pool_pmf`.
    k : array_like of int, optional
        Counts to evaluate (default: all ``0..n``).

    Returns
    -------
    ndarray
        ``P(D = k)`` for the requested ``k``.
    """
    n = _check_n(n)
    p = float(_check_prob_open("p", p))
    rho = float(_check_prob_open("rho", rho))
    ks = np.arange(n + 1) if k is None else np.atleast_1d(np.asarray(k, dtype=int))
    c = float(special.ndtri(p))
    sr, s1 = math.sqrt(rho), math.sqrt(1.0 - rho)
    zmax = 15.0
    out = np.empty(ks.size)
    for i, kk in enumerate(ks):
        kk = int(kk)
        log_comb = math.log(math.comb(n, kk))  # exact integer, then one rounding

        def integrand(z, kk=kk, log_comb=log_comb):
            u = (c - sr * z) / s1
            # erfc-based tails: accurate even where p(z) is ~1 or ~0.
            pz = 0.5 * math.erfc(-u / math.sqrt(2.0))
            qz = 0.5 * math.erfc(u / math.sqrt(2.0))
            if (kk > 0 and pz == 0.0) or (kk < n and qz == 0.0):
                return 0.0
            lg = log_comb - 0.5 * z * z
            if kk:
                lg += kk * math.log(pz)
            if n - kk:
                lg += (n - kk) * math.log(qz)
            return math.exp(lg) / _SQRT_2PI

        pts = []
        if 0 < kk < n:
            pts.append((c - s1 * float(special.ndtri(kk / n))) / sr)
        out[i] = _quad(integrand, -zmax, zmax, points=pts, tol=1e-13)
    return out


# --------------------------------------------------------------------------
# multi-factor Gaussian copula moments
# --------------------------------------------------------------------------
def multifactor_moments(c, pd, loadings, R=None, obligor_index=None):
    r"""Exact mean and variance of a multi-factor Gaussian-copula portfolio loss.

    Exposure ``i`` belongs to an obligor with latent
    :math:`X = a^\top Y + b\,\varepsilon`, :math:`Y \sim N(0, R)`,
    :math:`b = \sqrt{1 - a^\top R a}`, and defaults when
    :math:`X \le \Phi^{-1}(p)`.  For :math:`L = \sum_i c_i 1\{\text{default}_i\}`:

    .. math::
        E[L] = \sum_i c_i p_i, \qquad
        \mathrm{Var}\,L = \sum_{i,j} c_i c_j
        \big[\Phi_2(\Phi^{-1}p_i, \Phi^{-1}p_j; \rho_{ij}) - p_i p_j\big],

    with :math:`\rho_{ij} = a_i^\top R a_j` for different obligors and
    :math:`\rho_{ij} = 1` for two exposures on the same obligor (they default
    together), so the diagonal term is :math:`p_i(1-p_i)`.

    Parameters
    ----------
    c : array_like, shape (m,)
        Loss given default of each exposure (EAD x LGD folded in).
    pd : array_like, shape (m,) or scalar
        PD of each exposure's obligor, in ``[0, 1]``.
    loadings : array_like, shape (m, f) or (m,)
        Factor loadings ``a_i`` (a 1-D array means a single factor).
    R : array_like, shape (f, f), optional
        Factor covariance (normally a correlation matrix).  Default identity.
    obligor_index : array_like of int, shape (m,), optional
        Obligor label of each exposure.  Exposures sharing a label are the same
        obligor: they must carry identical ``pd`` and ``loadings`` (checked) and
        their default indicators are identical (correlation 1, not
        :math:`a_i^\top R a_j`).  Default: every exposure is its own obligor.

    Returns
    -------
    mean : float
        ``E[L]``.
    var : float
        ``Var L``.

    Raises
    ------
    ValueError
        On inconsistent shapes, a non-symmetric or non-PSD ``R``, systematic
        variance ``a_i^T R a_i > 1``, or exposures of one obligor with different
        ``pd``/``loadings``.
    """
    c = np.asarray(c, dtype=float).ravel()
    m = c.size
    pd = np.broadcast_to(np.asarray(pd, dtype=float), (m,)).copy()
    if np.any((pd < 0) | (pd > 1) | np.isnan(pd)):
        raise ValueError("pd must lie in [0, 1]")
    A = np.asarray(loadings, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    if A.shape[0] != m:
        raise ValueError("loadings must have one row per exposure")
    f = A.shape[1]
    R = np.eye(f) if R is None else np.asarray(R, dtype=float)
    if R.shape != (f, f):
        raise ValueError("R must be (f, f) for f = number of factors")
    if not np.allclose(R, R.T, rtol=0, atol=1e-12):
        raise ValueError("R must be symmetric")
    if np.linalg.eigvalsh(R).min() < -1e-12:
        raise ValueError("R must be positive semi-definite")

    S = A @ R @ A.T  # latent correlations a_i^T R a_j
    if np.any(np.diag(S) > 1.0 + 1e-12):
        raise ValueError("systematic variance a_i^T R a_i exceeds 1")

    if obligor_index is None:
        same = np.eye(m, dtype=bool)
    else:
        oi = np.asarray(obligor_index).ravel()
        if oi.shape != (m,):
            raise ValueError("obligor_index must have one entry per exposure")
        same = oi[:, None] == oi[None, :]
        # Two rows of one obligor describe one latent variable; differing
        # inputs would make "default together" ill-defined, so refuse them.
        dp = np.abs(pd[:, None] - pd[None, :])
        dA = np.abs(A[:, None, :] - A[None, :, :]).max(axis=2)
        if np.any(dp[same] > 1e-12 * np.maximum.outer(pd, pd)[same]) or np.any(dA[same] > 1e-12):
            raise ValueError("exposures of the same obligor must share pd and loadings")

    corr = np.where(same, 1.0, np.clip(S, -1.0, 1.0))
    h = special.ndtri(pd)
    joint = bivariate_normal_cdf(h[:, None], h[None, :], corr)
    cov = joint - np.outer(pd, pd)
    mean = float(c @ pd)
    var = float(c @ cov @ c)
    return mean, var


# --------------------------------------------------------------------------
# Student-t copula
# --------------------------------------------------------------------------
def _chi2_log_range(nu, eps=1e-30):
    """``log(W / nu)`` interval carrying all but ~2*eps of the chi-square(nu) mass.

    Lower end from the bound P(W < w) <= (w/2)^(nu/2) / Gamma(nu/2 + 1), which
    is valid for every nu and needs no iterative inverse.
    """
    s_lo = math.log(2.0) + (2.0 / nu) * (math.log(eps) + math.lgamma(nu / 2.0 + 1.0))
    s_hi = math.log(float(stats.chi2.isf(eps, nu)))
    return s_lo - math.log(nu), s_hi - math.log(nu)


def _chi2_log_const(nu):
    r"""``x log x - x - lgamma(x)`` with ``x = nu/2``, without cancellation.

    The density of :math:`t = \log(W/\nu)` for :math:`W \sim \chi^2_\nu` is
    :math:`\exp\{C + (\nu/2)(t - (e^t - 1))\}` with this constant ``C``.
    For large ``nu`` both the constant and the exponent are differences of
    numbers ~``nu``; written this way (Stirling series for the constant,
    ``t - expm1(t)`` for the exponent) the density keeps full relative
    accuracy, which QUADPACK's round-off detector otherwise trips over.
    """
    x = 0.5 * nu
    if x < 30.0:
        return x * math.log(x) - x - math.lgamma(x)
    # Stirling: lgamma(x) = (x - 1/2) log x - x + log(2 pi)/2 + delta(x); the
    # truncated series for delta is accurate to < 1e-16 for x >= 30.
    delta = 1.0 / (12.0 * x) - 1.0 / (360.0 * x**3) + 1.0 / (1260.0 * x**5) - 1.0 / (1680.0 * x**7)
    return 0.5 * math.log(x) - 0.5 * math.log(2.0 * math.pi) - delta


def _t_cdf_y(y, tp, rho, nu):
    r"""``(G(y), 1 - G(y))`` for ``Y = Phi^{-1}(p(Z, W))`` in the t-copula pool.

    :math:`G(y) = E_W[\Phi((\sqrt{1-\rho}\,y - t_p\sqrt{W/\nu})/\sqrt\rho)]`,
    integrated by QUADPACK in :math:`t = \log(W/\nu)`: in that variable the
    chi-square density is smooth and decays exponentially at both ends, even
    for :math:`\nu \le 2` where it is singular or kinked at ``W = 0`` (the
    same feature makes generalized Gauss-Laguerre converge very slowly in the
    tail: 100 nodes still miss the nu = 4 99.9 % quantile by 4e-4).
    Break points: the mode region and the ``W`` where the normal CDF switches
    over.  The smaller of ``G`` and ``1 - G`` is integrated directly so that
    tail probabilities keep their relative accuracy.
    """
    if y == -np.inf:
        return 0.0, 1.0
    if y == np.inf:
        return 1.0, 0.0
    sr, s1 = math.sqrt(rho), math.sqrt(1.0 - rho)
    const = _chi2_log_const(nu)
    half_nu = 0.5 * nu
    t_lo, t_hi = _chi2_log_range(nu)
    u0 = s1 * y

    def integrand(t, sign):
        arg = (u0 - tp * math.exp(0.5 * t)) / sr
        dens = math.exp(const + half_nu * (t - math.expm1(t)))
        return float(special.ndtr(sign * arg)) * dens

    sd = math.sqrt(2.0 / nu)  # s.d. of log W for large nu: bracket the spike
    pts = [0.0, -5.0 * sd, 5.0 * sd]
    if tp != 0.0 and u0 / tp > 0.0:
        pts.append(2.0 * math.log(u0 / tp))
    lower = _quad(lambda t: integrand(t, 1.0), t_lo, t_hi, points=pts)
    if lower <= 0.5:
        return lower, 1.0 - lower
    upper = _quad(lambda t: integrand(t, -1.0), t_lo, t_hi, points=pts)
    return 1.0 - upper, upper


def _t_params(p, rho, nu):
    p = float(_check_prob_open("p", p))
    rho = float(_check_prob_open("rho", rho))
    nu = _check_nu(nu)
    return p, rho, nu


def t_large_pool_cdf(x, p, rho, nu):
    r"""CDF of the large-pool loss fraction under the Student-t copula.

    Model: :math:`X_i = \sqrt{\nu/W}(\sqrt\rho Z + \sqrt{1-\rho}\,\varepsilon_i)`,
    :math:`W \sim \chi^2_\nu` shared, default iff :math:`X_i \le t_\nu^{-1}(p)`.
    Conditional PD
    :math:`p(Z, W) = \Phi((t_\nu^{-1}(p)\sqrt{W/\nu} - \sqrt\rho Z)/\sqrt{1-\rho})`, so

    .. math::
        P(L \le x) = E_W\Big[\Phi\Big(\frac{\sqrt{1-\rho}\,\Phi^{-1}(x)
        - t_\nu^{-1}(p)\sqrt{W/\nu}}{\sqrt\rho}\Big)\Big],

    evaluated by adaptive quadrature over :math:`\log W` (see ``_t_cdf_y``).

    Parameters
    ----------
    x : array_like
        Loss fraction in ``[0, 1]``.
    p, rho : float
        PD and asset correlation in ``(0, 1)``.
    nu : float
        Degrees of freedom (> 0); ``np.inf`` gives :func:`vasicek_cdf`.

    Returns
    -------
    ndarray or float
        ``P(L <= x)``, absolute accuracy ~1e-13.
    """
    p, rho, nu = _t_params(p, rho, nu)
    x = np.asarray(x, dtype=float)
    if np.any((x < 0) | (x > 1) | np.isnan(x)):
        raise ValueError("x must lie in [0, 1]")
    if nu == np.inf:
        return vasicek_cdf(x, p, rho)
    tp = float(stats.t.ppf(p, nu))
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape):
        out[idx] = _t_cdf_y(float(special.ndtri(x[idx])), tp, rho, nu)[0]
    return out[()] if out.ndim == 0 else out


def t_large_pool_quantile(alpha, p, rho, nu):
    r"""Quantile of the Student-t-copula large-pool loss fraction.

    Solves :math:`P(L \le q) = \alpha` with Brent's method in the latent
    variable :math:`y = \Phi^{-1}(q)` (where the CDF is smooth and the
    bracket can be grown without hitting 0 or 1), then returns
    :math:`\Phi(y)`.  For :math:`\alpha > 1/2` the upper tail
    :math:`1 - \alpha` is matched instead, so 99.9 % quantiles are not
    limited by the rounding of ``alpha`` near 1.

    Parameters
    ----------
    alpha : array_like
        Confidence level(s) in ``(0, 1)``.
    p, rho : float
        PD and asset correlation in ``(0, 1)``.
    nu : float
        Degrees of freedom (> 0); ``np.inf`` gives :func:`vasicek_quantile`.

    Returns
    -------
    ndarray or float
        ``q_alpha``.
    """
    p, rho, nu = _t_params(p, rho, nu)
    alpha = _check_prob_open("alpha", alpha)
    if nu == np.inf:
        return vasicek_quantile(alpha, p, rho)
    tp = float(stats.t.ppf(p, nu))
    out = np.empty(alpha.shape)
    for idx in np.ndindex(alpha.shape):
        a = float(alpha[idx])
        if a > 0.5:

            def f(y, a=a):
                return (1.0 - a) - _t_cdf_y(y, tp, rho, nu)[1]
        else:

            def f(y, a=a):
                return _t_cdf_y(y, tp, rho, nu)[0] - a

        # Start from the Gaussian-copula answer and widen until bracketed.
        y0 = float(special.ndtri(vasicek_quantile(a, p, rho)))
        lo, hi, step = y0 - 1.0, y0 + 1.0, 1.0
        while f(lo) > 0.0:
            step *= 2.0
            lo = y0 - step
            if step > 1e6:
                raise RuntimeError("could not bracket the quantile")
        step = 1.0
        while f(hi) < 0.0:
            step *= 2.0
            hi = y0 + step
            if step > 1e6:
                raise RuntimeError("could not bracket the quantile")
        y = optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4.0 * np.finfo(float).eps, maxiter=200)
        out[idx] = special.ndtr(y)
    return out[()] if out.ndim == 0 else out


def t_tail_dependence(rho, nu):
    r"""Lower (= upper) tail-dependence coefficient of a bivariate t copula.

    :math:`\lambda = 2\,t_{\nu+1}\big(-\sqrt{(\nu+1)(1-\rho)/(1+\rho)}\big)`
    (Embrechts, McNeil and Straumann 2002).  It is positive for every
    :math:`\rho > -1`, whereas the Gaussian copula has :math:`\lambda = 0`.

    Parameters
    ----------
    rho : array_like
        Correlation in ``[-1, 1]``.
    nu : array_like
        Degrees of freedom (> 0); ``np.inf`` gives 0 (Gaussian) unless rho = 1.

    Returns
    -------
    ndarray or float
        ``lambda``.
    """
    rho = np.asarray(rho, dtype=float)
    nu = np.asarray(nu, dtype=float)
    if np.any(np.abs(rho) > 1) or np.any(~(nu > 0)):
        raise ValueError("need |rho| <= 1 and nu > 0")
    with np.errstate(divide="ignore"):
        arg = -np.sqrt((nu + 1.0) * (1.0 - rho) / (1.0 + rho))
    return 2.0 * stats.t.cdf(arg, nu + 1.0)


def _t_mixing_nodes(nu, tp, rho, r_max_needed):
    r"""Quadrature in :math:`r = \sqrt{W/\nu}` for :math:`E_W[\,\cdot\,]`.

    The density is :math:`f_r(r) \propto r^{\nu-1} e^{-\nu r^2/2}`.  The
    integrands are normal densities in :math:`c = t_p r`, i.e. of constant
    width :math:`\sqrt\rho/|t_p|` in ``r``, so a uniform composite rule fits.
    The algebraic factor :math:`r^{\nu-1}` (non-smooth at 0 for non-integer
    :math:`\nu`) is absorbed exactly by a Gauss-Jacobi rule on the first panel.
    """
    sd_r = 1.0 / math.sqrt(2.0 * nu)
    feat = math.sqrt(rho) / abs(tp) if tp != 0.0 else np.inf
    width = 0.5 * min(feat, sd_r, 0.5)
    const = _chi2_log_const(nu)
    r_lo = math.sqrt(float(stats.chi2.ppf(_MASS_EPS, nu)) / nu)
    r_hi = math.sqrt(float(stats.chi2.isf(_MASS_EPS, nu)) / nu)
    r_end = min(r_hi, r_max_needed)
    order = 16
    nodes, weights = [], []
    if r_lo < 2.0 * width:
        r_start = min(width, r_end)
        x, w = special.roots_jacobi(order, 0.0, nu - 1.0)
        r = 0.5 * r_start * (1.0 + x)
        # int_0^h r^(nu-1) g(r) dr = (h/2)^nu sum_j w_j g(r_j)
        # f_r(r) = r^(nu-1) exp(log 2 + C + nu/2 - nu r^2 / 2); nu is small here.
        weights.append(
            np.exp(nu * math.log(0.5 * r_start) + math.log(2.0) + const + 0.5 * nu * (1.0 - r * r))
            * w
        )
        nodes.append(r)
    else:
        r_start = r_lo
    if r_end > r_start:
        r, w = _gauss_legendre_panels(r_start, r_end, width, order)
        # log f_r(r) = log 2 + C - log r + (nu/2)(tau - expm1(tau)), tau = log r^2:
        # the cancellation-free form of _chi2_log_const (matters for large nu).
        tau = 2.0 * np.log(r)
        weights.append(
            np.exp(math.log(2.0) + const - np.log(r) + 0.5 * nu * (tau - np.expm1(tau))) * w
        )
        nodes.append(r)
    if not nodes:
        return np.empty(0), np.empty(0)
    return np.concatenate(nodes), np.concatenate(weights)


def finite_pool_pmf_t(n, p, rho, nu):
    r"""Exact default-count distribution of a finite Student-t-copula pool.

    :math:`P(D = k) = E_{Z,W}\big[\binom{n}{k}p(Z,W)^k(1-p(Z,W))^{n-k}\big]`
    with :math:`p(Z, W)` as in :func:`t_large_pool_cdf`.  Given ``W`` the
    latent threshold :math:`Y = \Phi^{-1}(p(Z,W))` is normal with mean
    :math:`t_p\sqrt{W/\nu}/\sqrt{1-\rho}` and s.d. :math:`\sqrt{\rho/(1-\rho)}`,
    so ``Y`` has a normal scale-location mixture density ``g``.  ``g`` is
    computed on a composite Gauss-Legendre ``y`` grid (panels as in
    :func:`finite_pool_pmf`) by a Jacobi/Legendre rule over
    :math:`r = \sqrt{W/\nu}`, and the binomial is integrated against it.  Mass
    of ``Y`` where the pool is all-or-nothing is placed on ``D = 0`` / ``D = n``
    using the quadrature CDF of ``Y`` (the same integral as
    :func:`t_large_pool_cdf`).  That the result sums to 1 and has mean
    ``n p`` therefore checks the two integration schemes against each other.

    Parameters
    ----------
    n : int
        Number of names (>= 1).
    p, rho : float
        PD and asset correlation in ``(0, 1)``.
    nu : float
        Degrees of freedom (> 0); ``np.inf`` gives :func:`finite_pool_pmf`.

    Returns
    -------
    ndarray, shape (n + 1,)
        ``P(D = k)``, ``k = 0..n``.
    """
    n = _check_n(n)
    p, rho, nu = _t_params(p, rho, nu)
    if nu == np.inf:
        return finite_pool_pmf(n, p, rho)
    tp = float(stats.t.ppf(p, nu))
    s1 = math.sqrt(1.0 - rho)
    sig = math.sqrt(rho / (1.0 - rho))
    y_lo, y_hi = _binomial_support(n)

    # Only mixture components centred within K sigma of [y_lo, y_hi] can put
    # mass on the grid; beyond that they belong to the exact end lumps.
    reach = (y_hi + _K_SIGMA * sig) * s1
    r_needed = reach / abs(tp) if tp != 0.0 else np.inf
    r, wr = _t_mixing_nodes(nu, tp, rho, r_needed)
    centres = tp * r / s1

    width = 0.5 * min(sig, math.sqrt(math.pi / 2.0 / n))
    y, wy = _gauss_legendre_panels(y_lo, y_hi, width, 12)
    dens = np.zeros(y.size)
    chunk = max(1, 2_000_000 // max(1, r.size))
    for s in range(0, y.size, chunk):
        sl = slice(s, s + chunk)
        zz = (y[sl, None] - centres[None, :]) / sig
        dens[sl] = np.exp(-0.5 * zz * zz) @ wr / (sig * _SQRT_2PI)

    pmf = _binomial_mixture(n, y, wy * dens)
    pmf[0] += _t_cdf_y(y_lo, tp, rho, nu)[0]
    pmf[n] += _t_cdf_y(y_hi, tp, rho, nu)[1]
    return pmf


def finite_pool_tail_t(n, p, rho, nu):
    """Tail probabilities ``P(D >= k)``, ``k = 0..n``, of a finite t-copula pool.

    Parameters
    ----------
    n, p, rho, nu
        As for :func:`finite_pool_pmf_t`.

    Returns
    -------
    ndarray, shape (n + 1,)
        ``P(D >= k)``; ``[0]`` is exactly 1.
    """
    return _tail_from_pmf(finite_pool_pmf_t(n, p, rho, nu))


# --------------------------------------------------------------------------
# Basel IRB, corporate exposures (Basel II June 2006, para. 272)
# --------------------------------------------------------------------------
def basel_correlation(pd):
    r"""Supervisory asset correlation for corporate exposures.

    :math:`R = 0.12 w + 0.24 (1 - w)`, :math:`w = (1 - e^{-50 PD})/(1 - e^{-50})`
    (no SME size adjustment, i.e. turnover >= EUR 50m).

    Parameters
    ----------
    pd : array_like
        PD in ``(0, 1]``.

    Returns
    -------
    ndarray or float
        ``R``, between 0.12 and 0.24.
    """
    pd = np.asarray(pd, dtype=float)
    w = (1.0 - np.exp(-50.0 * pd)) / (1.0 - np.exp(-50.0))
    return 0.12 * w + 0.24 * (1.0 - w)


def basel_maturity_adjustment(pd):
    r"""Maturity-adjustment slope :math:`b = (0.11852 - 0.05478 \ln PD)^2`."""
    pd = np.asarray(pd, dtype=float)
    return (0.11852 - 0.05478 * np.log(pd)) ** 2


def basel_maturity_factor(pd, m=2.5):
    r"""Maturity factor :math:`(1 + (M - 2.5) b)/(1 - 1.5 b)` multiplying K."""
    b = basel_maturity_adjustment(pd)
    return (1.0 + (np.asarray(m, dtype=float) - 2.5) * b) / (1.0 - 1.5 * b)


def basel_capital_k(pd, lgd, m=2.5):
    r"""IRB capital requirement K for a corporate exposure (no 1.06 scaling).

    .. math::
        K = \big[LGD\,\Phi\big((1-R)^{-1/2}\Phi^{-1}(PD) + (R/(1-R))^{1/2}
        \Phi^{-1}(0.999)\big) - PD\cdot LGD\big]\,\frac{1 + (M-2.5)b}{1 - 1.5b}.

    The bracket is LGD times the Vasicek 99.9 % loss quantile minus expected
    loss with :math:`\rho = R` (see :func:`vasicek_quantile`).

    Parameters
    ----------
    pd : array_like
        PD in ``(0, 1)``.
    lgd : array_like
        Loss given default (fraction).
    m : array_like, default 2.5
        Effective maturity in years.

    Returns
    -------
    ndarray or float
        ``K`` as a fraction of EAD.
    """
    pd = np.asarray(pd, dtype=float)
    lgd = np.asarray(lgd, dtype=float)
    r = basel_correlation(pd)
    cond_pd = special.ndtr(
        (1.0 - r) ** -0.5 * special.ndtri(pd) + (r / (1.0 - r)) ** 0.5 * special.ndtri(0.999)
    )
    return (lgd * cond_pd - pd * lgd) * basel_maturity_factor(pd, m)


def basel_risk_weight(pd, lgd, m=2.5):
    """IRB corporate risk weight ``RW = 12.5 K`` as a fraction (0.9232 = 92.32 %).

    Parameters
    ----------
    pd, lgd, m
        As for :func:`basel_capital_k`.

    Returns
    -------
    ndarray or float
        Risk weight (fraction of EAD).
    """
    return 12.5 * basel_capital_k(pd, lgd, m)
