"""Correlation mathematics: repairing, implying and fitting correlation matrices.

Three concerns, all pure NumPy/SciPy (arrays in, arrays and small records out, no I/O):

Repair
    :func:`nearest_correlation` (Higham 2002, with weights, fixed entries and an eigenvalue
    floor), :func:`audit` (what the repair changed, pair by pair), :func:`is_psd`.
Implied correlations
    Between two obligors with factor loadings ``a_i, a_j``, PDs ``p_i, p_j`` and factor
    correlation ``R``: :func:`asset_correlation` (latent variables),
    :func:`joint_default_probability`, :func:`default_correlation` (Gaussian copula),
    :func:`default_correlation_t` (Student-t copula), :func:`tail_dependence_t`, the
    bivariate normal CDF :func:`bivariate_normal_cdf` they rest on, and the portfolio-wide
    :func:`asset_correlation_matrix` and :func:`default_correlation_matrix`.
Fitting
    :func:`fit_correlation` (Pearson, Spearman or Kendall, optional Ledoit-Wolf shrinkage,
    per-entry standard errors and intervals) and :func:`ledoit_wolf_intensity`.

Every public function validates its arguments once and raises
:class:`~stress.exceptions.OptionError` naming the rule and the offending value. Nothing here
draws random numbers except the bootstrap of :func:`fit_correlation`, which takes its seed as an
argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from stress.exceptions import OptionError

FloatArray = NDArray[np.float64]

# Eigenvalues down to this far below zero (or below the requested floor) are rounding, not
# indefiniteness: eigh of an exactly singular K×K correlation matrix returns about -K·1e-16.
PSD_SLACK = 1e-12
# A matrix is symmetric and has a unit diagonal if it does so to within these.
_SYMMETRY_TOLERANCE = 1e-10
_DIAGONAL_TOLERANCE = 1e-8
# Probability mass of the chi-square mixing variable left out at each end of the t-copula
# integral; the joint default probability is then exact to about this, absolutely.
_MIXING_MASS = 1e-20
# The t-copula integral uses composite 16-point Gauss-Legendre panels (see _mixing_rule).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
# Bound on the size of the (pairs × nodes) blocks of the t-copula integral, to cap memory.
_BLOCK_ELEMENTS = 1_000_000

METHODS = ("pearson", "spearman", "kendall")
SHRINKAGES = ("ledoit-wolf",)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _float_array(value: Any, name: str) -> FloatArray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise OptionError(f"{name}: must be numbers (got {_show(value)})") from None
    return array


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _first(mask: NDArray[np.bool_]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _where(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]"


def _check_square(matrix: ArrayLike, name: str) -> FloatArray:
    """A float copy of a non-empty square matrix without NaN."""
    a = _float_array(matrix, name)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise OptionError(f"{name}: must be a non-empty square matrix (got shape {a.shape})")
    if np.isnan(a).any():
        raise OptionError(
            f"{name}: must not contain NaN (got NaN at {_where(name, _first(np.isnan(a)))})"
        )
    return a


def _check_correlation_like(matrix: ArrayLike, name: str) -> FloatArray:
    """Square, symmetric, entries in [-1, 1], unit diagonal; returned symmetrised."""
    a = _check_square(matrix, name)
    outside = ~((a >= -1.0) & (a <= 1.0))
    if outside.any():
        index = _first(outside)
        raise OptionError(
            f"{name}: entries must lie in [-1, 1] (got {_where(name, index)} = {float(a[index])!r})"
        )
    asymmetric = np.abs(a - a.T) > _SYMMETRY_TOLERANCE
    if asymmetric.any():
        i, j = _first(asymmetric)
        raise OptionError(
            f"{name}: must be symmetric (got {_where(name, (i, j))} = {float(a[i, j])!r} but "
            f"{_where(name, (j, i))} = {float(a[j, i])!r})"
        )
    diagonal = np.diagonal(a)
    off = np.abs(diagonal - 1.0) > _DIAGONAL_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise OptionError(
            f"{name}: a correlation matrix has a unit diagonal (got {_where(name, (i, i))} = "
            f"{float(diagonal[i])!r})"
        )
    a = 0.5 * (a + a.T)
    np.fill_diagonal(a, 1.0)
    return a


def _check_factor_correlation(matrix: ArrayLike, name: str = "R") -> FloatArray:
    """A valid factor correlation matrix: correlation-like and PSD (as the scenario demands)."""
    r = _check_correlation_like(matrix, name)
    smallest = _min_eigenvalue(r)
    if smallest < -1e-10:
        raise OptionError(
            f"{name}: must be positive semi-definite, repair it with nearest_correlation (got "
            f"smallest eigenvalue {smallest:.6g})"
        )
    return r


def _check_loadings(loadings: ArrayLike, r: FloatArray, name: str) -> FloatArray:
    """Loadings as an (n, K) array whose rows have systematic variance aᵀRa ≤ 1."""
    a = _float_array(loadings, name)
    k = r.shape[0]
    single = a.ndim == 1
    rows = a.reshape(1, -1) if single else a
    if rows.ndim != 2 or rows.shape[1] != k:
        want = f"({k},)" if single else f"(n, {k})"
        raise OptionError(f"{name}: must have shape {want} to match R (got shape {a.shape})")
    if not np.isfinite(rows).all():
        bad = _first(~np.isfinite(rows))
        raise OptionError(f"{name}: must be finite (got {float(rows[bad])!r} at index {bad[-1]})")
    variance = np.einsum("ik,kl,il->i", rows, r, rows)
    over = variance > 1.0 + PSD_SLACK
    if over.any():
        i = int(np.argmax(over))
        where = name if single else f"{name}[{i}]"
        raise OptionError(
            f"{where}: systematic variance aᵀRa must not exceed 1 (got {variance[i]:.12g})"
        )
    return rows


def _check_probability(p: ArrayLike, name: str) -> FloatArray:
    a = _float_array(p, name)
    bad = ~((a > 0.0) & (a < 1.0))
    if bad.any():
        value = a[_first(bad)] if a.ndim else a[()]
        raise OptionError(
            f"{name}: probabilities must lie strictly between 0 and 1 (got {float(value)!r})"
        )
    return a


def _check_rho(rho: ArrayLike, name: str = "rho") -> FloatArray:
    a = _float_array(rho, name)
    bad = ~((a >= -1.0) & (a <= 1.0))
    if bad.any():
        value = a[_first(bad)] if a.ndim else a[()]
        raise OptionError(f"{name}: correlations must lie in [-1, 1] (got {float(value)!r})")
    return a


def _check_nu(nu: float | None, *, required: bool) -> float:
    """Degrees of freedom as a float; ``inf`` (or ``None`` where allowed) means Gaussian."""
    if nu is None:
        if required:
            raise OptionError("nu: the t copula needs degrees of freedom (got None)")
        return math.inf
    try:
        value = float(nu)
    except (TypeError, ValueError):
        raise OptionError(f"nu: must be a number (got {_show(nu)})") from None
    if not value > 0.0:
        raise OptionError(f"nu: degrees of freedom must be above 0 (got {value!r})")
    return value


def _scalar_or_array(out: FloatArray) -> float | FloatArray:
    return float(out) if out.ndim == 0 else out


def _min_eigenvalue(matrix: FloatArray) -> float:
    return float(np.linalg.eigvalsh(matrix)[0])


# --------------------------------------------------------------------------------------
# Repair: the nearest correlation matrix
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairResult:
    """The outcome of :func:`nearest_correlation`.

    Attributes
    ----------
    matrix : ndarray, shape (K, K)
        The repaired matrix: exactly symmetric with an exactly unit diagonal.
    iterations : int
        Alternating-projection steps taken; 0 if the input needed no repair.
    converged : bool
        Whether the iteration met ``tol`` before ``max_iterations``. With fixed entries a
        ``False`` usually means no correlation matrix has those entries (and the floor).
    frobenius_distance : float
        ``‖input − matrix‖_F``, unweighted, whatever weights were used.
    min_eigenvalue_before, min_eigenvalue_after : float
        Smallest eigenvalue of the input and of ``matrix``.
    eigen_floor : float
        The eigenvalue floor that was imposed (0 for plain positive semi-definiteness).
    """

    matrix: FloatArray
    iterations: int
    converged: bool
    frobenius_distance: float
    min_eigenvalue_before: float
    min_eigenvalue_after: float
    eigen_floor: float


def nearest_correlation(
    matrix: ArrayLike,
    weights: ArrayLike | None = None,
    fixed: ArrayLike | None = None,
    eigen_floor: float = 0.0,
    tol: float = 1e-12,
    max_iterations: int = 10_000,
) -> RepairResult:
    r"""The correlation matrix nearest to ``matrix`` (Higham 2002).

    Minimises :math:`\|W^{1/2}(A - X)W^{1/2}\|_F` over symmetric ``X`` with unit diagonal,
    the ``fixed`` entries of ``A`` and :math:`\lambda_{\min}(X) \ge` ``eigen_floor``, by
    alternating projections between :math:`S_\delta = \{X : X - \delta I \succeq 0\}` and the
    affine set :math:`U` of unit-diagonal matrices holding the fixed entries, with Dykstra's
    correction on the (non-affine) :math:`S_\delta` step. Higham, "Computing the nearest
    correlation matrix - a problem from finance", IMA J. Numer. Anal. 22 (2002) 329-343,
    Algorithm 3.3; the W-norm projection onto the PSD cone is his Theorem 3.2, and the
    projection onto :math:`S_\delta` is :math:`\delta I + P_S(X - \delta I)`.

    The floor is imposed inside the iteration, so the answer is the nearest matrix with that
    floor, not a clipped-afterwards approximation. Once converged, the eigenvalues are clipped
    at the floor once more (removing rounding) and the matrix rescaled to a unit diagonal; if
    the rescaling pulled the smallest eigenvalue below the floor (by about ``tol``) the
    off-diagonal is shrunk towards the identity by just enough to restore it. That last step
    would move fixed entries, so with ``fixed`` the final iterate of :math:`U` is returned
    instead: fixed entries and the diagonal exact, the floor met to within about ``K·tol``.

    Parameters
    ----------
    matrix : array_like, shape (K, K)
        Symmetric (to 1e-10), unit diagonal (to 1e-8), entries in ``[-1, 1]``, no NaN.
    weights : array_like, shape (K,), optional
        Positive factor weights :math:`w`, :math:`W = \mathrm{diag}(w)`: entry ``(i, j)``
        costs :math:`w_i w_j` per unit squared change, so the rows of heavily weighted
        factors move least. Default: all ones (the Frobenius norm).
    fixed : array_like of bool, shape (K, K), optional
        Symmetric mask of off-diagonal entries to hold at their input values. The diagonal
        is always held at 1 and must be ``False`` in the mask.
    eigen_floor : float, default 0
        Smallest eigenvalue the result may have, in ``[0, 1)``. With 0 the result may be
        singular; it is then positive semi-definite to within about 1e-15.
    tol : float, default 1e-12
        Converged when no entry of the iterate moved by more than ``tol`` and the two
        projections agree entry by entry to within ``tol``.
    max_iterations : int, default 10000
        Stop (with ``converged=False``) after this many iterations.

    Returns
    -------
    RepairResult
        A matrix that already meets every constraint (with its smallest eigenvalue at least
        ``eigen_floor - 1e-12``) is returned unchanged with ``iterations=0``.

    Raises
    ------
    OptionError
        On a non-square, non-symmetric or NaN matrix, entries outside ``[-1, 1]``, a diagonal
        that is not 1, non-positive weights, a malformed mask, ``eigen_floor`` outside
        ``[0, 1)``, or non-positive ``tol`` / ``max_iterations``.
    """
    original = _check_square(matrix, "matrix")
    a = _check_correlation_like(original, "matrix")
    k = a.shape[0]
    w = _check_weights(weights, k)
    held = _check_fixed(fixed, k)
    floor = _check_floor(eigen_floor)
    if not (isinstance(tol, int | float) and tol > 0.0 and math.isfinite(tol)):
        raise OptionError(f"tol: must be a positive number (got {_show(tol)})")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int | np.integer):
        raise OptionError(f"max_iterations: must be an integer (got {_show(max_iterations)})")
    if max_iterations < 1:
        raise OptionError(f"max_iterations: must be at least 1 (got {max_iterations})")

    min_before = _min_eigenvalue(a)
    if min_before >= floor - PSD_SLACK:
        return _repair_result(original, a, 0, True, min_before, floor)

    root_w = np.sqrt(w)
    scale = np.outer(root_w, root_w)
    y = a.copy()
    correction = np.zeros_like(a)
    x = a
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        r = y - correction
        x = _project_floor(r, scale, floor)
        correction = x - r
        y_next = x.copy()
        np.fill_diagonal(y_next, 1.0)
        y_next[held] = a[held]
        step = float(np.max(np.abs(y_next - y)))
        gap = float(np.max(np.abs(x - y_next)))
        y = y_next
        if step <= tol and gap <= tol:
            converged = True
            break

    out = y if held.any() else _polish(x, floor)
    return _repair_result(original, out, iterations, converged, min_before, floor)


def _check_weights(weights: ArrayLike | None, k: int) -> FloatArray:
    if weights is None:
        return np.ones(k)
    w = _float_array(weights, "weights")
    if w.shape != (k,):
        raise OptionError(f"weights: must have shape ({k},), one per factor (got shape {w.shape})")
    bad = ~((w > 0.0) & np.isfinite(w))
    if bad.any():
        i = int(np.argmax(bad))
        raise OptionError(
            f"weights: must be positive and finite (got weights[{i}] = {float(w[i])!r})"
        )
    return w


def _check_fixed(fixed: ArrayLike | None, k: int) -> NDArray[np.bool_]:
    if fixed is None:
        return np.zeros((k, k), dtype=bool)
    mask = np.asarray(fixed)
    if mask.dtype != np.bool_:
        raise OptionError(f"fixed: must be a boolean mask (got dtype {mask.dtype})")
    if mask.shape != (k, k):
        raise OptionError(f"fixed: must have shape ({k}, {k}) like the matrix (got {mask.shape})")
    if np.diagonal(mask).any():
        i = int(np.argmax(np.diagonal(mask)))
        raise OptionError(
            f"fixed: the diagonal is always held at 1, leave it False in the mask (got "
            f"fixed[{i}, {i}] = True)"
        )
    asymmetric = mask != mask.T
    if asymmetric.any():
        i, j = _first(asymmetric)
        raise OptionError(
            f"fixed: must be symmetric (got fixed[{i}, {j}] = {bool(mask[i, j])} but "
            f"fixed[{j}, {i}] = {bool(mask[j, i])})"
        )
    return mask.copy()


def _check_floor(eigen_floor: float) -> float:
    try:
        floor = float(eigen_floor)
    except (TypeError, ValueError):
        raise OptionError(f"eigen_floor: must be a number (got {_show(eigen_floor)})") from None
    if not 0.0 <= floor < 1.0:
        # A unit-diagonal K×K matrix has eigenvalues averaging 1, so a floor of 1 or more
        # leaves only the identity (or nothing).
        raise OptionError(f"eigen_floor: must lie in [0, 1) (got {floor!r})")
    return floor


def _project_floor(r: FloatArray, scale: FloatArray, floor: float) -> FloatArray:
    """W-norm projection onto {X : X − floor·I ⪰ 0}; ``scale`` is w wᵀ with w = sqrt(weights)."""
    shifted = r.copy()
    shifted[np.diag_indices_from(shifted)] -= floor
    values, vectors = np.linalg.eigh(shifted * scale)
    x = (vectors * np.maximum(values, 0.0)) @ vectors.T / scale
    x = 0.5 * (x + x.T)
    x[np.diag_indices_from(x)] += floor
    return x


def _polish(x: FloatArray, floor: float) -> FloatArray:
    """Clip at the floor, rescale to a unit diagonal and restore the floor the scaling dented."""
    values, vectors = np.linalg.eigh(x)
    x = (vectors * np.maximum(values, floor)) @ vectors.T
    diagonal = np.diagonal(x)
    # A zero diagonal entry means a zero row (x is PSD); leave it and set the diagonal to 1.
    d = np.where(diagonal > 0.0, np.sqrt(np.maximum(diagonal, 0.0)), 1.0)
    c = x / np.outer(d, d)
    c = 0.5 * (c + c.T)
    np.fill_diagonal(c, 1.0)
    smallest = _min_eigenvalue(c)
    if smallest < floor:
        # (1 − t)C + tI keeps the unit diagonal and lifts every eigenvalue to (1 − t)λ + t.
        c *= 1.0 - (floor - smallest) / (1.0 - smallest)
        np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)


def _repair_result(
    original: FloatArray,
    out: FloatArray,
    iterations: int,
    converged: bool,
    min_before: float,
    floor: float,
) -> RepairResult:
    return RepairResult(
        matrix=out,
        iterations=iterations,
        converged=converged,
        frobenius_distance=float(np.linalg.norm(original - out)),
        min_eigenvalue_before=min_before,
        min_eigenvalue_after=_min_eigenvalue(out),
        eigen_floor=floor,
    )


def audit(names: Sequence[str], before: ArrayLike, after: ArrayLike) -> list[dict[str, Any]]:
    """What a repair changed, one row per unordered pair of factors.

    Parameters
    ----------
    names : sequence of str, length K
        Factor names in matrix order.
    before, after : array_like, shape (K, K)
        The input and the repaired matrix.

    Returns
    -------
    list of dict
        For each pair ``i < j`` in row-major order: ``first`` and ``second`` (the names),
        ``input`` (``before[i, j]``), ``repaired`` (``after[i, j]``) and ``change``
        (``repaired − input``).
    """
    b = _check_square(before, "before")
    a = _check_square(after, "after")
    names = list(names)
    if b.shape != a.shape:
        raise OptionError(f"after: must have the shape of before {b.shape} (got {a.shape})")
    if len(names) != b.shape[0]:
        raise OptionError(f"names: need one name per factor, {b.shape[0]} (got {len(names)})")
    rows: list[dict[str, Any]] = []
    for i, j in zip(*np.triu_indices(b.shape[0], 1), strict=True):
        rows.append(
            {
                "first": names[i],
                "second": names[j],
                "input": float(b[i, j]),
                "repaired": float(a[i, j]),
                "change": float(a[i, j] - b[i, j]),
            }
        )
    return rows


def is_psd(matrix: ArrayLike, tol: float = 1e-10) -> bool:
    """Whether ``matrix`` is symmetric and positive semi-definite to within ``tol``.

    Parameters
    ----------
    matrix : array_like, shape (K, K)
        A square matrix without NaN.
    tol : float, default 1e-10
        Largest asymmetry ``|m_ij − m_ji|`` and largest negative eigenvalue tolerated (the
        scenario validator's tolerance).

    Returns
    -------
    bool
    """
    m = _check_square(matrix, "matrix")
    if not np.isfinite(m).all() or np.max(np.abs(m - m.T)) > tol:
        return False
    return _min_eigenvalue(0.5 * (m + m.T)) >= -tol


# --------------------------------------------------------------------------------------
# Implied correlations
# --------------------------------------------------------------------------------------


def bivariate_normal_cdf(h: ArrayLike, k: ArrayLike, rho: ArrayLike) -> float | FloatArray:
    r"""Standard bivariate normal CDF :math:`\Phi_2(h, k; \rho) = P(X \le h, Y \le k)`.

    Owen's (1956) formula in terms of Owen's T (``scipy.special.owens_t``):

    .. math::
        \Phi_2 = \tfrac12\Phi(h) + \tfrac12\Phi(k) - T(h, a_h) - T(k, a_k) - \beta,\quad
        a_h = \frac{k - \rho h}{h\sqrt{1-\rho^2}},\; a_k = \frac{h - \rho k}{k\sqrt{1-\rho^2}},

    with :math:`\beta = 1/2` if :math:`hk < 0` or (:math:`hk = 0` and :math:`h + k < 0`),
    else 0. Deterministic, unlike ``scipy.stats.multivariate_normal.cdf`` (randomised
    quasi-Monte Carlo). Exact closed forms at :math:`\rho \in \{-1, 0, 1\}`, at
    :math:`h = k = 0` and for infinite limits.

    Parameters
    ----------
    h, k : array_like
        Upper limits (``±inf`` allowed), broadcast together with ``rho``.
    rho : array_like
        Correlation in ``[-1, 1]``.

    Returns
    -------
    float or ndarray
        Absolute accuracy about 1e-16; relative accuracy about 1e-12 deep in the joint lower
        tail, where the formula subtracts numbers of the size of :math:`\Phi(h)`.
    """
    h_ = _float_array(h, "h")
    k_ = _float_array(k, "k")
    if np.isnan(h_).any() or np.isnan(k_).any():
        raise OptionError("h, k: must not be NaN")
    r = _check_rho(rho)
    return _scalar_or_array(_bvn(h_, k_, r))


def _bvn(h: FloatArray, k: FloatArray, rho: FloatArray) -> FloatArray:
    """Φ₂ on validated inputs (no NaN, |ρ| ≤ 1), broadcast; see :func:`bivariate_normal_cdf`."""
    h, k, rho = (np.array(v, dtype=float) for v in np.broadcast_arrays(h, k, rho))
    out = np.empty(h.shape)
    todo = np.ones(h.shape, dtype=bool)

    def settle(mask: NDArray[np.bool_], value: Callable[..., FloatArray]) -> None:
        if mask.any():
            out[mask] = value(h[mask], k[mask], rho[mask])
            todo[mask] = False

    settle((h == -np.inf) | (k == -np.inf), lambda h, k, r: np.zeros(h.shape))
    settle(todo & (h == np.inf), lambda h, k, r: special.ndtr(k))
    settle(todo & (k == np.inf), lambda h, k, r: special.ndtr(h))
    settle(todo & (rho == 1.0), lambda h, k, r: special.ndtr(np.minimum(h, k)))
    settle(todo & (rho == -1.0), lambda h, k, r: _band(h, k))
    settle(todo & (rho == 0.0), lambda h, k, r: special.ndtr(h) * special.ndtr(k))
    settle(todo & (h == 0.0) & (k == 0.0), lambda h, k, r: 0.25 + np.arcsin(r) / (2.0 * np.pi))
    if todo.any():
        hg, kg, rg = h[todo], k[todo], rho[todo]
        s = np.sqrt((1.0 - rg) * (1.0 + rg))  # sqrt(1 − ρ²) without cancellation near |ρ| = 1
        # At h = 0, a_h = ±inf and T(0, ±inf) = ±1/4, the sign of k − ρh = k (h taken as +0,
        # which is the convention the β term follows).
        a_h = (kg - rg * hg) / (np.where(hg == 0.0, 1.0, hg) * s)
        a_k = (hg - rg * kg) / (np.where(kg == 0.0, 1.0, kg) * s)
        t_h = np.where(hg == 0.0, np.copysign(0.25, kg), special.owens_t(hg, a_h))
        t_k = np.where(kg == 0.0, np.copysign(0.25, hg), special.owens_t(kg, a_k))
        prod = hg * kg
        beta = np.where((prod < 0.0) | ((prod == 0.0) & (hg + kg < 0.0)), 0.5, 0.0)
        phi_h, phi_k = special.ndtr(hg), special.ndtr(kg)
        value = 0.5 * phi_h + 0.5 * phi_k - t_h - t_k - beta
        # Fréchet bounds; they only ever trim rounding.
        out[todo] = np.clip(value, np.maximum(phi_h + phi_k - 1.0, 0.0), np.minimum(phi_h, phi_k))
    return out


def _band(h: FloatArray, k: FloatArray) -> FloatArray:
    """P(−k ≤ X ≤ h), the ρ = −1 limit, as a difference of the two smaller tail probabilities."""
    band = np.where(
        k <= 0.0, special.ndtr(k) - special.ndtr(-h), special.ndtr(h) - special.ndtr(-k)
    )
    return np.maximum(band, 0.0)


def asset_correlation(a_i: ArrayLike, a_j: ArrayLike, R: ArrayLike) -> float:
    r"""Correlation of two obligors' latent variables, :math:`a_i^\top R\, a_j`.

    The latent variable :math:`X = a^\top Y + b\,\varepsilon` with
    :math:`b = \sqrt{1 - a^\top R a}` has unit variance by construction, so the covariance is
    the correlation. For two distinct obligors with the same loadings it is the systematic
    share :math:`a^\top R a`, not 1.

    Parameters
    ----------
    a_i, a_j : array_like, shape (K,)
        Factor loadings; each must have :math:`a^\top R a \le 1`.
    R : array_like, shape (K, K)
        Factor correlation matrix (symmetric, unit diagonal, positive semi-definite).

    Returns
    -------
    float
    """
    r = _check_factor_correlation(R)
    first = _check_loadings(a_i, r, "a_i")[0]
    second = _check_loadings(a_j, r, "a_j")[0]
    return float(first @ r @ second)


def asset_correlation_matrix(loadings: ArrayLike, R: ArrayLike) -> FloatArray:
    r"""Latent-variable correlations of ``n`` obligors, :math:`L R L^\top` with unit diagonal.

    Parameters
    ----------
    loadings : array_like, shape (n, K)
        One row of factor loadings per obligor, each with :math:`a^\top R a \le 1`.
    R : array_like, shape (K, K)
        Factor correlation matrix.

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric, unit diagonal (an obligor's latent variable is perfectly correlated with
        itself, whatever its systematic share).
    """
    r = _check_factor_correlation(R)
    rows = _check_loadings(loadings, r, "loadings")
    c = rows @ r @ rows.T
    c = np.clip(0.5 * (c + c.T), -1.0, 1.0)
    np.fill_diagonal(c, 1.0)
    return c


def joint_default_probability(
    p_i: ArrayLike, p_j: ArrayLike, rho: ArrayLike, nu: float | None = None
) -> float | FloatArray:
    r"""Probability that both obligors default, Gaussian or Student-t copula.

    Gaussian (``nu`` None or inf): :math:`\Phi_2(\Phi^{-1}(p_i), \Phi^{-1}(p_j); \rho)`.
    Student t: :math:`P(X_i \le t_\nu^{-1}(p_i), X_j \le t_\nu^{-1}(p_j))` for a bivariate
    :math:`t_\nu` pair with correlation :math:`\rho`; writing :math:`X = Z/\sqrt{W/\nu}`,
    :math:`W \sim \chi^2_\nu`, this is
    :math:`E_W[\Phi_2(t_\nu^{-1}(p_i)\sqrt{W/\nu}, t_\nu^{-1}(p_j)\sqrt{W/\nu}; \rho)]`,
    integrated by a fixed composite Gauss-Legendre rule in :math:`\log(W/\nu)` (see
    ``_mixing_rule``). At :math:`\rho = \pm 1` both copulas give the Fréchet bounds
    :math:`\min(p_i, p_j)` and :math:`\max(0, p_i + p_j - 1)` exactly.

    Parameters
    ----------
    p_i, p_j : array_like
        PDs in ``(0, 1)``, broadcast together with ``rho``.
    rho : array_like
        Latent-variable correlation in ``[-1, 1]``.
    nu : float, optional
        Degrees of freedom (> 0) of the t copula; None or ``inf`` for the Gaussian copula.

    Returns
    -------
    float or ndarray
        Absolute accuracy about 1e-16 (Gaussian) and 1e-15 (t).
    """
    pi = _check_probability(p_i, "p_i")
    pj = _check_probability(p_j, "p_j")
    r = _check_rho(rho)
    return _scalar_or_array(_joint(pi, pj, r, _check_nu(nu, required=False)))


def _joint(p_i: FloatArray, p_j: FloatArray, rho: FloatArray, nu: float) -> FloatArray:
    p_i, p_j, rho = (np.array(v, dtype=float) for v in np.broadcast_arrays(p_i, p_j, rho))
    out = np.empty(p_i.shape)
    upper = rho == 1.0
    lower = rho == -1.0
    out[upper] = np.minimum(p_i, p_j)[upper]
    out[lower] = np.maximum(p_i + p_j - 1.0, 0.0)[lower]
    rest = ~(upper | lower)
    if nu == math.inf:
        independent = rest & (rho == 0.0)
        out[independent] = (p_i * p_j)[independent]
        rest &= ~independent
        out[rest] = _bvn(special.ndtri(p_i[rest]), special.ndtri(p_j[rest]), rho[rest])
    elif rest.any():
        h = special.stdtrit(nu, p_i[rest])
        k = special.stdtrit(nu, p_j[rest])
        out[rest] = _t_joint(h, k, rho[rest], nu)
    return out


def _mixing_rule(nu: float) -> tuple[FloatArray, FloatArray]:
    r"""Nodes :math:`s = \sqrt{W/\nu}` and weights for :math:`E[g(s)]`, :math:`W \sim \chi^2_\nu`.

    In :math:`u = \log(W/\nu)` the chi-square density is proportional to
    :math:`\exp\{(\nu/2)(u - (e^u - 1))\}`: smooth, with no singularity at :math:`W = 0` even
    for :math:`\nu < 2`, and decaying exponentially on the left and doubly exponentially on
    the right. Near its peak it is Gaussian with s.d. :math:`\sqrt{2/\nu}` (wider for small
    :math:`\nu`), and so is the product with :math:`\Phi_2(hs, ks; \rho)`, whose lower tail
    :math:`\approx e^{-h^2 e^u/2}` only moves the peak (the curvature of the log-product stays
    :math:`\nu/2`). Panels one such s.d. wide (at most 1) with 16 Gauss-Legendre nodes each
    therefore resolve the integrand to rounding error wherever it matters; halving the panels
    changes the results by about 1e-16 (checked against adaptive quadrature in the tests).
    The ends cut :data:`_MIXING_MASS` of probability each. The weights are normalised to sum
    to 1, which makes the density's constant (a cancellation-prone ``lgamma`` difference for
    large ``nu``) unnecessary.
    """
    half_nu = 0.5 * nu
    low_w = float(stats.chi2.ppf(_MIXING_MASS, nu))
    if low_w > 1e-280:
        u_low = math.log(low_w / nu)
    else:
        # P(W ≤ w) ≈ (w/2)^(ν/2) / Γ(ν/2 + 1) for small w; ppf underflows for small ν.
        u_low = math.log(2.0 / nu) + (math.log(_MIXING_MASS) + math.lgamma(half_nu + 1.0)) / half_nu
    u_high = math.log(float(stats.chi2.isf(_MIXING_MASS, nu)) / nu)
    width = min(1.0, math.sqrt(2.0 / nu))
    panels = max(1, math.ceil((u_high - u_low) / width))
    edges = np.linspace(u_low, u_high, panels + 1)
    centre = 0.5 * (edges[1:] + edges[:-1])
    half = 0.5 * (edges[1:] - edges[:-1])
    u = (centre[:, None] + half[:, None] * _GL_NODES).ravel()
    log_density = half_nu * (u - np.expm1(u))
    weights = (half[:, None] * _GL_WEIGHTS).ravel() * np.exp(log_density - log_density.max())
    return np.exp(0.5 * u), weights / weights.sum()


def _t_joint(h: FloatArray, k: FloatArray, rho: FloatArray, nu: float) -> FloatArray:
    """E_W[Φ₂(h s, k s; ρ)], s = sqrt(W/ν), for flat arrays of thresholds and correlations."""
    s, weights = _mixing_rule(nu)
    out = np.empty(h.shape)
    block = max(1, _BLOCK_ELEMENTS // s.size)
    for start in range(0, h.size, block):
        part = slice(start, start + block)
        values = _bvn(h[part, None] * s, k[part, None] * s, rho[part, None])
        out[part] = values @ weights
    return out


def _default_correlation(
    p_i: FloatArray, p_j: FloatArray, rho: FloatArray, nu: float
) -> FloatArray:
    p_i, p_j, rho = np.broadcast_arrays(p_i, p_j, rho)
    joint = _joint(p_i, p_j, rho, nu)
    spread = np.sqrt(p_i * (1.0 - p_i) * p_j * (1.0 - p_j))
    return np.clip((joint - p_i * p_j) / spread, -1.0, 1.0)


def default_correlation(p_i: ArrayLike, p_j: ArrayLike, rho: ArrayLike) -> float | FloatArray:
    r"""Correlation of two default indicators under the Gaussian copula.

    .. math::
        \frac{\Phi_2(\Phi^{-1}(p_i), \Phi^{-1}(p_j); \rho) - p_i p_j}
        {\sqrt{p_i(1-p_i)\,p_j(1-p_j)}}

    Parameters
    ----------
    p_i, p_j : array_like
        PDs in ``(0, 1)``, broadcast together with ``rho``.
    rho : array_like
        Latent-variable (asset) correlation in ``[-1, 1]``.

    Returns
    -------
    float or ndarray
        Exactly 0 at ``rho = 0``; at ``rho = 1`` it is 1 only for equal PDs.
    """
    pi = _check_probability(p_i, "p_i")
    pj = _check_probability(p_j, "p_j")
    r = _check_rho(rho)
    return _scalar_or_array(_default_correlation(pi, pj, r, math.inf))


def default_correlation_t(
    p_i: ArrayLike, p_j: ArrayLike, rho: ArrayLike, nu: float
) -> float | FloatArray:
    r"""Correlation of two default indicators under the Student-t copula.

    As :func:`default_correlation` with the joint default probability of
    :func:`joint_default_probability` for ``nu`` degrees of freedom. Unlike the Gaussian
    copula, ``rho = 0`` gives a positive default correlation: the shared mixing variable
    makes defaults cluster.

    Parameters
    ----------
    p_i, p_j : array_like
        PDs in ``(0, 1)``, broadcast together with ``rho``.
    rho : array_like
        Correlation parameter of the t copula in ``[-1, 1]``.
    nu : float
        Degrees of freedom (> 0); ``inf`` gives :func:`default_correlation`.

    Returns
    -------
    float or ndarray
    """
    pi = _check_probability(p_i, "p_i")
    pj = _check_probability(p_j, "p_j")
    r = _check_rho(rho)
    return _scalar_or_array(_default_correlation(pi, pj, r, _check_nu(nu, required=True)))


def tail_dependence_t(rho: ArrayLike, nu: ArrayLike) -> float | FloatArray:
    r"""Tail-dependence coefficient of the bivariate t copula (lower = upper).

    :math:`\lambda = 2\,t_{\nu+1}\big(-\sqrt{(\nu+1)(1-\rho)/(1+\rho)}\big)` (Embrechts, McNeil
    and Straumann 2002): the limit of :math:`P(U_j \le q \mid U_i \le q)` as :math:`q \to 0`.
    The Gaussian copula (``nu = inf``) has :math:`\lambda = 0` unless :math:`\rho = 1`.

    Parameters
    ----------
    rho : array_like
        Correlation in ``[-1, 1]``.
    nu : array_like
        Degrees of freedom (> 0, ``inf`` allowed).

    Returns
    -------
    float or ndarray
    """
    r = _check_rho(rho)
    n = _float_array(nu, "nu")
    if not (n > 0.0).all():
        value = n[_first(~(n > 0.0))] if n.ndim else n[()]
        raise OptionError(f"nu: degrees of freedom must be above 0 (got {float(value)!r})")
    r, n = np.broadcast_arrays(r, n)
    finite = np.isfinite(n)
    m = np.where(finite, n, 1.0)
    # ρ = −1 divides by zero on purpose: the argument is −inf and λ = 0.
    with np.errstate(divide="ignore"):
        argument = -np.sqrt((m + 1.0) * (1.0 - r) / (1.0 + r))
    out = np.where(finite, 2.0 * special.stdtr(m + 1.0, argument), np.where(r == 1.0, 1.0, 0.0))
    return _scalar_or_array(np.asarray(out, dtype=float))


def default_correlation_matrix(
    loadings: ArrayLike, pd: ArrayLike, R: ArrayLike, nu: float | None = None
) -> FloatArray:
    """Default-indicator correlations of ``n`` obligors, Gaussian or Student-t copula.

    Parameters
    ----------
    loadings : array_like, shape (n, K)
        Factor loadings, one row per obligor (see :func:`asset_correlation_matrix`).
    pd : array_like, shape (n,)
        PDs in ``(0, 1)``.
    R : array_like, shape (K, K)
        Factor correlation matrix.
    nu : float, optional
        Degrees of freedom of the t copula; None or ``inf`` for the Gaussian copula.

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric with unit diagonal; entry ``(i, j)`` is :func:`default_correlation` (or
        :func:`default_correlation_t`) of obligors ``i`` and ``j``.
    """
    degrees = _check_nu(nu, required=False)
    asset = asset_correlation_matrix(loadings, R)
    n = asset.shape[0]
    p = _check_probability(pd, "pd")
    if p.shape != (n,):
        raise OptionError(f"pd: need one PD per obligor, shape ({n},) (got shape {p.shape})")
    first, second = np.triu_indices(n, 1)
    pairs = _default_correlation(p[first], p[second], asset[first, second], degrees)
    out = np.eye(n)
    out[first, second] = pairs
    out[second, first] = pairs
    return out


# --------------------------------------------------------------------------------------
# Fitting factor correlations from data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    r"""The outcome of :func:`fit_correlation`.

    Attributes
    ----------
    matrix : ndarray, shape (K, K)
        The estimate on the Pearson scale: mapped (Spearman, Kendall), shrunk (Ledoit-Wolf)
        and repaired (if it was not positive semi-definite), in that order.
    standard_error : ndarray, shape (K, K)
        Per-entry sampling standard error of the unshrunk, unrepaired estimate; 0 on the
        diagonal. Pearson: Fisher-z delta method :math:`(1 - r^2)/\sqrt{n - 3}` (valid for
        Gaussian data). Spearman, Kendall: s.d. over a seeded nonparametric bootstrap.
    interval_low, interval_high : ndarray, shape (K, K)
        Confidence interval (at ``confidence``) for each true correlation, built on Fisher's
        z scale and mapped back, so it stays inside ``[-1, 1]``; 1 on the diagonal. Pearson:
        :math:`\tanh(z \pm q/\sqrt{n-3})`; Spearman, Kendall: the bootstrap s.d. of z in place
        of :math:`1/\sqrt{n-3}`. Built from the unshrunk estimate, so they are intervals for the
        truth, not for the shrunk matrix.
    method, shrinkage : str, str or None
        As requested.
    intensity : float or None
        Ledoit-Wolf shrinkage intensity in ``[0, 1]``; None without shrinkage.
    n_obs, dropped : int
        Rows used, and rows dropped because they held a NaN.
    repaired : bool
        Whether the matrix had to be repaired by :func:`nearest_correlation`.
    repair_distance : float
        Frobenius distance moved by the repair (0 if none).
    confidence : float
        Coverage of the intervals.
    """

    matrix: FloatArray
    standard_error: FloatArray
    interval_low: FloatArray
    interval_high: FloatArray
    method: str
    shrinkage: str | None
    intensity: float | None
    n_obs: int
    dropped: int
    repaired: bool
    repair_distance: float
    confidence: float


def fit_correlation(
    data: ArrayLike,
    method: str = "pearson",
    shrinkage: str | None = None,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> FitResult:
    r"""Estimate a factor correlation matrix from time series, one column per factor.

    Pearson
        The sample correlation.
    Spearman
        The Pearson correlation of the ranks (ties averaged), mapped to the Pearson scale by
        :math:`2\sin(\pi\rho_S/6)`, exact for Gaussian copulas.
    Kendall
        Kendall's :math:`\tau_b` (``scipy.stats.kendalltau``), mapped by
        :math:`\sin(\pi\tau/2)`, exact for every elliptical distribution (so robust to the
        heavy tails of factor returns).

    With ``shrinkage="ledoit-wolf"`` the matrix is shrunk towards the identity,
    :math:`(1-\delta)\hat R + \delta I`, with the intensity :math:`\delta` of
    :func:`ledoit_wolf_intensity` computed on the data (Pearson) or on their ranks (Spearman,
    Kendall: the rank-based estimators see only the ranks, and a moment-based intensity from
    heavy-tailed raw data would over-shrink them). If the result is not positive
    semi-definite (possible after the sine maps) it is repaired with
    :func:`nearest_correlation` and the repair is recorded.

    Standard errors: Pearson by Fisher's z (a closed form for Gaussian data). Spearman and
    Kendall by a nonparametric bootstrap with ``n_bootstrap`` resamples of rows drawn with
    ``numpy.random.default_rng(seed)``, so deterministic for a given seed; the normal-theory
    delta-method variances of Fieller, Hartley and Pearson (1957) would be wrong for exactly
    the heavy-tailed data these estimators are chosen for. Resamples in which a column is
    constant are skipped.

    Parameters
    ----------
    data : array_like, shape (n_obs, K)
        Observations; rows with any NaN are dropped. Infinite values are an error.
    method : {"pearson", "spearman", "kendall"}, default "pearson"
    shrinkage : {None, "ledoit-wolf"}, default None
    confidence : float, default 0.95
        Coverage of the per-entry intervals, in ``(0, 1)``.
    n_bootstrap : int, default 200
        Bootstrap resamples (Spearman, Kendall), at least 20.
    seed : int, default 0
        Seed of the bootstrap (non-negative).

    Returns
    -------
    FitResult

    Raises
    ------
    OptionError
        On a bad option, data that are not a 2-D numeric array, infinite values, fewer than 4
        complete rows, or a constant column.
    """
    x, dropped = _check_data(data)
    if method not in METHODS:
        raise OptionError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
    if shrinkage is not None and shrinkage not in SHRINKAGES:
        raise OptionError(f"shrinkage: must be None or 'ledoit-wolf' (got {shrinkage!r})")
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise OptionError(
            f"confidence: must lie strictly between 0 and 1 (got {_show(confidence)})"
        )
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise OptionError(f"n_bootstrap: must be an integer (got {_show(n_bootstrap)})")
    if n_bootstrap < 20:
        raise OptionError(f"n_bootstrap: must be at least 20 (got {n_bootstrap})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise OptionError(f"seed: must be a non-negative integer (got {_show(seed)})")

    n, k = x.shape
    raw = _mapped_correlation(x, method)
    q = float(special.ndtri(0.5 + 0.5 * confidence))
    first, second = np.triu_indices(k, 1)
    estimate = raw[first, second]
    if method == "pearson":
        se = (1.0 - estimate**2) / math.sqrt(n - 3)
        se_z = np.full(estimate.shape, 1.0 / math.sqrt(n - 3))
    else:
        se, se_z = _bootstrap(x, method, n_bootstrap, seed)
    # atanh(±1) = ±inf on purpose: a perfect correlation has the degenerate interval [±1, ±1].
    with np.errstate(divide="ignore"):
        z = np.arctanh(estimate)
    standard_error = np.zeros((k, k))
    low, high = np.eye(k), np.eye(k)
    for target, values in (
        (standard_error, se),
        (low, np.tanh(z - q * se_z)),
        (high, np.tanh(z + q * se_z)),
    ):
        target[first, second] = values
        target[second, first] = values

    matrix = raw
    intensity = None
    if shrinkage == "ledoit-wolf":
        basis = x if method == "pearson" else stats.rankdata(x, axis=0)
        intensity = ledoit_wolf_intensity(basis)
        matrix = (1.0 - intensity) * raw
        np.fill_diagonal(matrix, 1.0)
    repaired, distance = False, 0.0
    if _min_eigenvalue(matrix) < -PSD_SLACK:
        repair = nearest_correlation(matrix)
        matrix, repaired, distance = repair.matrix, True, repair.frobenius_distance
    return FitResult(
        matrix=matrix,
        standard_error=standard_error,
        interval_low=low,
        interval_high=high,
        method=method,
        shrinkage=shrinkage,
        intensity=intensity,
        n_obs=n,
        dropped=dropped,
        repaired=repaired,
        repair_distance=distance,
        confidence=float(confidence),
    )


def _check_data(data: ArrayLike) -> tuple[FloatArray, int]:
    """Complete rows of an (n_obs, K) array and the number of rows dropped for NaN."""
    x = _float_array(data, "data")
    if x.ndim != 2 or x.shape[1] == 0:
        raise OptionError(f"data: must be a 2-D array, one column per factor (got shape {x.shape})")
    nan_rows = np.isnan(x).any(axis=1)
    x = x[~nan_rows]
    if not np.isfinite(x).all():
        i, j = _first(~np.isfinite(x))
        raise OptionError(
            f"data: must be finite apart from NaN (got {float(x[i, j])!r} in column {j})"
        )
    dropped = int(nan_rows.sum())
    if x.shape[0] < 4:
        raise OptionError(
            f"data: need at least 4 complete rows (got {x.shape[0]} after dropping {dropped} "
            "with NaN)"
        )
    constant = np.ptp(x, axis=0) == 0.0
    if constant.any():
        j = int(np.argmax(constant))
        raise OptionError(
            f"data: column {j} is constant, so it has no correlation (got {float(x[0, j])!r})"
        )
    return x, dropped


def _pearson(x: FloatArray) -> FloatArray:
    centred = x - x.mean(axis=0)
    z = centred / np.sqrt(np.mean(centred**2, axis=0))
    c = z.T @ z / x.shape[0]
    c = np.clip(0.5 * (c + c.T), -1.0, 1.0)
    np.fill_diagonal(c, 1.0)
    return c


def _mapped_correlation(x: FloatArray, method: str) -> FloatArray:
    """The correlation estimate of ``method`` on the Pearson scale (before shrinkage/repair)."""
    if method == "pearson":
        return _pearson(x)
    if method == "spearman":
        c = 2.0 * np.sin(np.pi * _pearson(stats.rankdata(x, axis=0)) / 6.0)
    else:
        k = x.shape[1]
        c = np.eye(k)
        for i, j in zip(*np.triu_indices(k, 1), strict=True):
            tau = stats.kendalltau(x[:, i], x[:, j]).statistic
            c[i, j] = c[j, i] = tau
        c = np.sin(0.5 * np.pi * c)
    c = np.clip(c, -1.0, 1.0)
    np.fill_diagonal(c, 1.0)
    return c


def _bootstrap(
    x: FloatArray, method: str, n_bootstrap: int, seed: int
) -> tuple[FloatArray, FloatArray]:
    """Bootstrap s.d. of each upper-triangle entry, on the correlation and Fisher-z scales."""
    n, k = x.shape
    first, second = np.triu_indices(k, 1)
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_bootstrap):
        sample = x[rng.integers(0, n, size=n)]
        if (np.ptp(sample, axis=0) == 0.0).any():
            continue
        replicates.append(_mapped_correlation(sample, method)[first, second])
    if len(replicates) < 2:
        raise OptionError(
            f"data: too few distinct rows to bootstrap ({n} rows; resamples kept coming out "
            "constant)"
        )
    values = np.array(replicates)
    # Keep z finite: a replicate of exactly ±1 would otherwise make the s.d. of z infinite.
    z = np.arctanh(np.clip(values, -1.0 + 1e-12, 1.0 - 1e-12))
    return values.std(axis=0, ddof=1), z.std(axis=0, ddof=1)


def ledoit_wolf_intensity(data: ArrayLike) -> float:
    r"""Ledoit-Wolf (2004) optimal shrinkage intensity of the correlation matrix.

    The data are standardised column by column (divisor n), so their sample covariance
    :math:`S` is the sample correlation and the Ledoit-Wolf target :math:`\mu I` is the
    identity (:math:`\mu = \mathrm{tr}\,S/K = 1`). With :math:`\|A\|^2 = \mathrm{tr}(AA^\top)/K`,
    :math:`d^2 = \|S - I\|^2`,
    :math:`\bar b^2 = n^{-2}\sum_t \|x_t x_t^\top - S\|^2` and :math:`b^2 = \min(\bar b^2, d^2)`,
    the intensity is :math:`b^2/d^2` (Ledoit and Wolf, J. Multivar. Anal. 88 (2004) 365-411,
    Lemmas 3.2-3.4 and Theorem 3.2; the same quantity as scikit-learn's ``ledoit_wolf`` on
    standardised data). As in the paper, :math:`\bar b^2` includes the diagonal terms
    :math:`(x_{ti}^2 - 1)^2` although standardisation fixes the diagonal; this errs towards
    more shrinkage for small K.

    Parameters
    ----------
    data : array_like, shape (n_obs, K)
        Observations without NaN or infinities; no constant column.

    Returns
    -------
    float
        :math:`\delta \in [0, 1]`; 0 when the sample correlation is the identity.
    """
    x, dropped = _check_data(data)
    if dropped:
        raise OptionError(f"data: must not contain NaN (got {dropped} rows with NaN)")
    n, k = x.shape
    centred = x - x.mean(axis=0)
    z = centred / np.sqrt(np.mean(centred**2, axis=0))
    s = z.T @ z / n
    d2 = float(np.sum((s - np.eye(k)) ** 2)) / k
    # Σ_t ‖x_t x_tᵀ − S‖_F² = Σ_t ‖x_t‖⁴ − n‖S‖_F², since Σ_t x_t x_tᵀ = nS.
    b2_bar = max(
        (float(np.sum(np.sum(z**2, axis=1) ** 2)) / n - float(np.sum(s**2))) / (k * n), 0.0
    )
    b2 = min(b2_bar, d2)
    return 0.0 if b2 == 0.0 else b2 / d2
