"""Interbank clearing on one Monte Carlo path: Eisenberg–Noe (2001) with Rogers–Veraart (2013)
default costs, external creditors either pari passu with the interbank ones or senior to them.

Model
-----
n institutions. Institution i owes j the amount L_ij ≥ 0 (L_ii = 0), stored CSR by debtor: i
owes ``owe_amount[k]`` to ``owe_creditor[k]`` for k in ``owe_indptr[i]:owe_indptr[i + 1]``.
External liabilities x_i ≥ 0, interbank liabilities l̄_i = Σ_j L_ij, total obligations
p̄_i = l̄_i + x_i, interbank assets a_i = Σ_j L_ji. On a path institution i has external
assets e_i ≥ 0, already net of the path's first-round credit losses.

Every creditor of i's interbank debt receives the same fraction φ_i of its claim, so i
receives r_i = Σ_j L_ji φ_j from the other institutions. Institution i is solvent when
e_i + r_i ≥ p̄_i and then pays everything (φ_i = 1, p_i = p̄_i). Otherwise it defaults and
its creditors share the realised value v_i = α e_i + β r_i (α, β: shares of external and
interbank assets realised on default; α = β = 1 is plain Eisenberg–Noe), so p_i = v_i:

* pari passu (``senior_external=False``, standard Eisenberg–Noe): external and interbank
  creditors are paid pro rata, Π_ij = L_ij / p̄_i, so φ_i = v_i / p̄_i and j receives
  Π_ij p_i from i.
* senior (``senior_external=True``): external creditors are paid first out of the realised
  value and receive min(x_i, v_i); interbank creditors share what is left pro rata,
  Π^IB_ij = L_ij / l̄_i, so i's interbank payment is q_i = l̄_i φ_i = max(0, v_i − x_i).
  Default is triggered as in the pari passu case, by failing to pay p̄_i in full out of the
  full value e_i + r_i; default costs are taken before anyone is paid. An institution without
  interbank liabilities has no φ to speak of (nobody holds its debt); its φ is set to 0.

With α, β < 1 the clearing map jumps at the default boundary and can have several fixed points;
both kernels return the greatest (Rogers–Veraart), which is also Eisenberg–Noe's unique one
under their regularity condition when α = β = 1.

Outputs, per institution
------------------------
payments : p_i, paid to all creditors together (p̄_i if solvent, v_i if in default).
received : r_i = Σ_j L_ji φ_j, interbank payments received.
defaulted : p_i < (1 − 1e-12) p̄_i. The relative tolerance keeps an institution that clears
    exactly at the boundary (pays p̄_i up to rounding) out of the count.
contagion_loss : Σ_j L_ji (1 − φ_j), the interbank claims on i not repaid, plus, if i is
    flagged ``defaulted``, its default costs (1 − α) e_i + (1 − β) r_i.

They reconcile with the balance sheet: with capital_i = e⁰_i + a_i − p̄_i (e⁰: external assets
before the first-round loss f_i = e⁰_i − e_i),
capital_after_i = capital_i − f_i − contagion_loss_i = e_i + r_i − p̄_i − costs_i, which is the
equity e_i + r_i − p̄_i ≥ 0 of a solvent institution and p_i − p̄_i < 0, the shortfall to its
creditors, of a defaulted one.

The default trigger is strict (default iff e_i + r_i < p̄_i). That makes the clearing map
continuous along decreasing sequences, so the Picard iteration from p̄ converges to the
greatest clearing vector, and lets both kernels take exact decisions where no debtor has
defaulted: there r_i = a_i exactly, because only unpaid claims are accumulated.
"""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.common import creditor_major_order

# Relative tolerance of the ``defaulted`` flag: p_i < (1 − DEFAULT_RTOL) p̄_i.
DEFAULT_RTOL = 1e-12


@jit
def network_totals(owe_indptr, owe_creditor, owe_amount, external_liabilities):
    """Path-independent totals of the network, computed once per block.

    Parameters
    ----------
    owe_indptr : (n + 1,) int64; owe_creditor : (m,) int64; owe_amount : (m,) float64
        Interbank liabilities, CSR by debtor.
    external_liabilities : (n,) float64

    Returns
    -------
    obligations : (n,) p̄_i = Σ_j L_ij + x_i
    interbank_liabilities : (n,) l̄_i = Σ_j L_ij
    interbank_assets : (n,) a_i = Σ_j L_ji

    Inputs are not checked.
    """
    n = external_liabilities.shape[0]
    obligations = np.empty(n)
    interbank_liabilities = np.empty(n)
    interbank_assets = np.zeros(n)
    for i in range(n):
        owed = 0.0
        for k in range(owe_indptr[i], owe_indptr[i + 1]):
            owed += owe_amount[k]
            interbank_assets[owe_creditor[k]] += owe_amount[k]
        interbank_liabilities[i] = owed
        obligations[i] = owed + external_liabilities[i]
    return obligations, interbank_liabilities, interbank_assets


@jit
def _pool(i, senior_external, obligations, interbank_liabilities):
    """What i's interbank creditors share pro rata with: p̄_i (pari passu) or l̄_i (senior)."""
    return interbank_liabilities[i] if senior_external else obligations[i]


@jit
def _ahead(i, senior_external, external_liabilities):
    """What is paid out of the realised value before the interbank creditors see any of it."""
    return external_liabilities[i] if senior_external else 0.0


# GMRES on the default set's linear system (see ``_round``). The systems are I − M with
# M ≥ 0 and column sums at most β: on these networks one Perron eigenvalue (up to about β)
# and the others clustered near 0, so GMRES, which removes an outlier in one step, converges
# in 10–20 matrix-vector products where a stationary iteration (Jacobi, Gauss–Seidel,
# Picard) needs a hundred at β = 0.8.
KRYLOV = 60  # Krylov vectors before a restart
GMRES_TIGHT = 1e-15  # a cycle stops once its residual estimate is below this × ‖b‖₂
GMRES_ACCEPT = 1e-14  # the solution is accepted once the recomputed residual is below this × ‖b‖₂
GMRES_CYCLES = 6  # restarts allowed; reached only by (nearly) singular systems

# Screening (``_screen``): a round that only has to tell who defaults next is solved just
# accurately enough to decide every solvency test with a proven error bound.
SCREEN_FIRST = 1e-5  # first residual target of a screening solve, × ‖b‖₂
# Solvency margins within this × (e_i + a_i + p̄_i) of 0 are left to the accurate solve:
# covers the rounding of the sums of claims (about degree × 2⁻⁵³ relative), with room to spare.
SCREEN_ROUNDING = 1e-12
# Screening needs κ ≥ ‖M‖₁ below 1 (the error bound is a residual / (1 − κ)); above this κ
# (β = 1 with an institution without external debt gives κ = 1) it is not tried.
SCREEN_CONTRACTION = 0.99
# Products over D × D a screened round saves against an accurate solve, roughly: a round is
# screened only if that many products cost more than a test of the outsiders, one pass over
# the claims between D and the outsiders (so not when D is a handful of institutions).
SCREEN_SAVES = 8

# Sweeps of the clearing map from above (``_sweep``) before the rounds, at most this many: on
# a cascade each finds the next wave of defaulters for one pass over the defaulters' claims,
# where a round needs a set-up and several products. They stop at the first that finds none.
SWEEPS = 64

# The whole-network system (everybody in default and paying something) is the same matrix
# I − M on every path: a network of at most DENSE_LIMIT institutions factorises it once per
# workspace, the first time a path needs it, and solves each such round by two triangular
# solves, O(n²), where GMRES needs 10–20 products and their orthogonalisation. The factors
# take n² doubles (8 MB at the limit) and about n³ / 3 multiply-adds to build.
DENSE_LIMIT = 1000
FACTOR_PANEL = 32  # columns per panel of ``_factor``

# Indices into the claims are unsigned in the inner loops: Numba wraps negative indices
# around, a compare and a select per access, which in the gathers of a matrix-vector product
# cost as much as the rest of the work.
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_THREE = np.uint64(3)
_FOUR = np.uint64(4)


@jit
def creditor_major(owe_indptr, owe_creditor, owe_amount, pool, beta, interbank_assets):
    """The claims as the rounds use them, built once per block: a tuple ``claims`` =
    (owe_indptr, to_creditor, owe_amount, by_indptr, by_debtor, by_amount, by_coef, scale,
    reach, upstream).

    For creditor i and t in ``by_indptr[i]:by_indptr[i + 1]``: debtor ``by_debtor[t]`` = j,
    ascending (so sums over a creditor's debtors run in the order of ``network_totals``),
    ``by_amount[t]`` = L_ji and ``by_coef[t]`` = L_ji · scale_j, the entry of M in payment
    space, with ``scale[j]`` = β / w_j (w = p̄ pari passu, l̄ senior, passed as ``pool``).
    Debtors are uint32 and so is ``to_creditor``, a copy of ``owe_creditor`` (see _ONE).

    ``reach[i]`` = max_j L_ji / w_j, the most i's receipts move per unit of one debtor's
    payment, for the error bounds of ``_screen``. ``upstream[i]`` = Σ_j (L_ji / w_j) a_j
    (a: ``interbank_assets``): how far rounding at the scale of i's debtors' balance sheets
    moves i's receipts through their payments, for the margin of ``_sweep``.
    """
    n = owe_indptr.shape[0] - 1
    m = owe_creditor.shape[0]
    by_indptr, position = creditor_major_order(owe_indptr, owe_creditor)
    by_debtor = np.empty(m, dtype=np.uint32)
    by_amount = np.empty(m)
    by_coef = np.empty(m)
    scale = np.empty(n)
    reach = np.zeros(n)
    upstream = np.zeros(n)
    to_creditor = np.empty(m, dtype=np.uint32)
    for j in range(n):
        # A debtor's pool is at least what it owes, so 0 only if its claims are all 0.
        inverse = 1.0 / pool[j] if pool[j] > 0.0 else 0.0
        scale[j] = beta * inverse
        for t in range(owe_indptr[j], owe_indptr[j + 1]):
            c = owe_creditor[t]
            to_creditor[t] = c
            s = position[t]
            by_debtor[s] = j
            by_amount[s] = owe_amount[t]
            by_coef[s] = owe_amount[t] * scale[j]
            reach[c] = max(reach[c], owe_amount[t] * inverse)
            upstream[c] += owe_amount[t] * inverse * interbank_assets[j]
    return (
        owe_indptr,
        to_creditor,
        owe_amount,
        by_indptr,
        by_debtor,
        by_amount,
        by_coef,
        scale,
        reach,
        upstream,
    )


@jit
def contraction(obligations, interbank_liabilities, beta, senior_external):
    """κ = β max_j l̄_j / w_j ≥ ‖M‖₁ for every default set: column j of M holds β L_ji / w_j
    over some of j's creditors, which sum to at most β l̄_j / w_j."""
    kappa = 0.0
    for j in range(obligations.shape[0]):
        pool = _pool(j, senior_external, obligations, interbank_liabilities)
        if pool > 0.0:
            kappa = max(kappa, interbank_liabilities[j] / pool)
    return beta * kappa


@jit
def block_sheet(
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
):
    """The path-independent balance sheets and clearing rule of a block, as the rounds take
    them: (x, p̄, l̄, a, α, β, senior_external, κ), κ from ``contraction``."""
    kappa = contraction(obligations, interbank_liabilities, beta, senior_external)
    return (
        external_liabilities,
        obligations,
        interbank_liabilities,
        interbank_assets,
        alpha,
        beta,
        senior_external,
        kappa,
    )


@jit
def clearing_workspace(n, n_claims, kappa):
    """Scratch for ``_clear`` on a network of n institutions and n_claims listed claims,
    allocated once per block so that clearing a path allocates nothing.

    real: per institution φ (paid) and the unpaid claims; per local index b (rhs), the
    iterate x and the value rhs + (M x)_a; per institution 1 − φ in D, 0 outside
    (``_unpaid_outside``). index: D ascending, the local index of each institution (−1
    outside the system), row pointers of D × D, the institution of each local index. flags:
    in D; in J (per local index); sure to default (``_screen``). Then D × D by creditor
    (columns, entries of M, claims), the Krylov basis, the Hessenberg matrix and the
    rotations. Last, the LU factors of the whole-network system (``_factor``) and whether
    they are made yet: (n, n) when n ≤ DENSE_LIMIT and κ < 1, else (0, 0) and never used.
    """
    real = np.empty((6, n))
    index = np.empty((4, n + 1), dtype=np.int64)
    flags = np.empty((3, n), dtype=np.bool_)
    sub_col = np.empty(n_claims, dtype=np.uint32)
    sub_coef = np.empty(n_claims)
    sub_amount = np.empty(n_claims)
    basis = np.empty((KRYLOV + 1, n))
    hessenberg = np.empty((KRYLOV + 1, KRYLOV))
    small = np.empty((3, KRYLOV + 1))
    size = n if n <= DENSE_LIMIT and kappa < 1.0 else 0
    factors = np.empty((size, size))
    factored = np.zeros(1, dtype=np.bool_)
    return (
        real,
        index,
        flags,
        sub_col,
        sub_coef,
        sub_amount,
        basis,
        hessenberg,
        small,
        factors,
        factored,
    )


@jit
def _factor(by_indptr, by_debtor, by_coef, factors):
    """LU factors of A = I − M, M the whole-network matrix by creditor, without pivoting,
    stored transposed so that both triangular solves run along rows: ``factors[c, a]`` is
    L[a, c] for a > c (L unit lower triangular) and U[a, c] for a ≤ c.

    Only called with κ < 1: every column of M sums to at most κ, so A is strictly diagonally
    dominant by columns, elimination keeps it so (pivots ≥ 1 − κ > 0, no pivoting needed)
    and the growth of the entries is at most 2. Right-looking: each step updates the trailing
    columns of A, rows of ``factors``, with one vectorised multiply-subtract per column, a
    panel of FACTOR_PANEL columns at a time: each trailing column takes the panel's updates
    one after the other while it sits in L1, and the panel stays in L2, where column by column
    the whole trailing matrix would pass through memory at every step. Each entry gets the
    same updates in the same order either way.
    """
    n = factors.shape[0]
    for c in range(n):
        for a in range(n):
            factors[c, a] = 0.0
        factors[c, c] = 1.0
    for a in range(n):
        for t in range(by_indptr[a], by_indptr[a + 1]):
            factors[by_debtor[t], a] -= by_coef[t]
    size = np.uint64(n)
    for p0 in range(0, n, FACTOR_PANEL):
        p1 = min(p0 + FACTOR_PANEL, n)
        for c in range(p0, n):
            target = factors[c]
            for p in range(p0, min(c, p1)):
                u = target[p]
                if u != 0.0:
                    _axpy(np.uint64(p) + _ONE, size, -u, factors[p], target)
            if c < p1:
                # Column c has had every update from the columns before it: below the pivot
                # it becomes column c of L.
                pivot = target[c]
                a = np.uint64(c) + _ONE
                while a < size:
                    target[a] /= pivot
                    a += _ONE


@jit
def _axpy(start, stop, scale, source, target):
    """target[a] += scale · source[a] for a in start:stop (uint64: see _ONE); the rows are
    distinct, so this vectorises."""
    a = start
    while a < stop:
        target[a] += scale * source[a]
        a += _ONE


@jit
def _direct(k, claims, workspace):
    """x = A⁻¹ b by the LU factors of the whole-network system, when this round's system
    is it: every institution in the system (k = n, the caller's test) and in J. Factorises on
    first use. Returns whether it did; x is left for ``_solve`` to check (one product) and
    to polish should the residual not meet GMRES_ACCEPT.
    """
    real, flags, factors, factored = workspace[0], workspace[2], workspace[9], workspace[10]
    if factors.shape[0] != k:
        return False
    active = flags[1]
    for a in range(k):
        if not active[a]:
            return False
    if not factored[0]:
        _factor(claims[3], claims[4], claims[6], factors)
        factored[0] = True
    rhs = real[2]
    x = real[3]
    for a in range(k):
        x[a] = rhs[a]
    # L y = b, column by column of L; then U x = y, column by column of U, from the last.
    size = np.uint64(k)
    for c in range(k):
        y = x[c]
        if y != 0.0:
            _axpy(np.uint64(c) + _ONE, size, -y, factors[c], x)
    for c in range(k - 1, -1, -1):
        column = factors[c]
        y = x[c] / column[c]
        x[c] = y
        if y != 0.0:
            _axpy(np.uint64(0), np.uint64(c), -y, column, x)
    return True


@jit
def _row_sum(start, stop, sub_col, sub_coef, v):
    """Σ_t sub_coef[t] v[sub_col[t]] for t in start:stop (uint64), term t into partial sum
    (t − start) mod 4.

    Four partial sums: one sum is bound by the latency of the additions, four keep the loads
    busy (the order of the sums is fixed, so results stay reproducible).
    """
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    acc3 = 0.0
    t = start
    while t + _FOUR <= stop:
        acc0 += sub_coef[t] * v[sub_col[t]]
        acc1 += sub_coef[t + _ONE] * v[sub_col[t + _ONE]]
        acc2 += sub_coef[t + _TWO] * v[sub_col[t + _TWO]]
        acc3 += sub_coef[t + _THREE] * v[sub_col[t + _THREE]]
        t += _FOUR
    while t < stop:
        acc0 += sub_coef[t] * v[sub_col[t]]
        t += _ONE
    return (acc0 + acc1) + (acc2 + acc3)


@jit
def _apply(k, row_ptr, sub_col, sub_coef, active, v, out):
    """out = (I − M) v on the active rows, out = v on the others (where v is 0)."""
    for a in range(k):
        if active[a]:
            start = np.uint64(row_ptr[a])
            stop = np.uint64(row_ptr[a + 1])
            out[a] = v[a] - _row_sum(start, stop, sub_col, sub_coef, v)
        else:
            out[a] = v[a]


@jit
def _residual(k, row_ptr, sub_col, sub_coef, rhs, active, x, value, r):
    """value = rhs + M x on every row, r = value − x (the residual of (I − M) x = rhs) on
    the active rows and 0 on the others; returns ‖r‖₂. One matrix-vector product."""
    for a in range(k):
        start = np.uint64(row_ptr[a])
        stop = np.uint64(row_ptr[a + 1])
        value[a] = rhs[a] + _row_sum(start, stop, sub_col, sub_coef, x)
        r[a] = value[a] - x[a] if active[a] else 0.0
    return _norm(k, r)


@jit
def _dot(k, u, v):
    """Σ u_a v_a over the first k entries, with four partial sums as in ``_row_sum``."""
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    acc3 = 0.0
    quads = k // 4
    for q in range(quads):
        a = 4 * q
        acc0 += u[a] * v[a]
        acc1 += u[a + 1] * v[a + 1]
        acc2 += u[a + 2] * v[a + 2]
        acc3 += u[a + 3] * v[a + 3]
    for a in range(4 * quads, k):
        acc0 += u[a] * v[a]
    return (acc0 + acc1) + (acc2 + acc3)


@jit
def _norm(k, v):
    return np.sqrt(_dot(k, v, v))


@jit
def _active_norm(k, rhs, active):
    """‖b‖₂ of the system on J: rhs on the active rows, 0 on the others."""
    acc = 0.0
    for a in range(k):
        if active[a]:
            acc += rhs[a] * rhs[a]
    return np.sqrt(acc)


@jit
def _cycle(k, row_ptr, sub_col, sub_coef, active, x, r_norm, stop, basis, hessenberg, small):
    """One GMRES cycle for (I − M) x = b on the active rows, from the residual of x in
    ``basis[0]`` (‖·‖₂ = r_norm > 0): Arnoldi by modified Gram–Schmidt and Givens rotations
    until the residual estimate is at most ``stop`` (or KRYLOV vectors), then x += V y.

    Vectors are 0 off the active rows and stay so (the operator is the identity there).
    Sequential and in a fixed order, so bit-for-bit reproducible. Returns the products done.
    """
    cosine = small[0]
    sine = small[1]
    g = small[2]
    r = basis[0]
    inverse = 1.0 / r_norm
    for a in range(k):
        r[a] *= inverse
    g[0] = r_norm
    last = 0
    for j in range(KRYLOV):
        w = basis[j + 1]
        _apply(k, row_ptr, sub_col, sub_coef, active, basis[j], w)
        for i in range(j + 1):
            v = basis[i]
            h = _dot(k, w, v)
            hessenberg[i, j] = h
            for a in range(k):
                w[a] -= h * v[a]
        h_next = _norm(k, w)
        for i in range(j):
            upper = hessenberg[i, j]
            lower = hessenberg[i + 1, j]
            hessenberg[i, j] = cosine[i] * upper + sine[i] * lower
            hessenberg[i + 1, j] = -sine[i] * upper + cosine[i] * lower
        diagonal = np.hypot(hessenberg[j, j], h_next)
        cosine[j] = hessenberg[j, j] / diagonal
        sine[j] = h_next / diagonal
        hessenberg[j, j] = diagonal
        g[j + 1] = -sine[j] * g[j]
        g[j] *= cosine[j]
        last = j
        if abs(g[j + 1]) <= stop or h_next == 0.0:
            break
        inverse = 1.0 / h_next
        for a in range(k):
            w[a] *= inverse
    # Back substitution for the coefficients (into g), then x += V y.
    for i in range(last, -1, -1):
        acc = g[i]
        for c in range(i + 1, last + 1):
            acc -= hessenberg[i, c] * g[c]
        g[i] = acc / hessenberg[i, i]
    for i in range(last + 1):
        v = basis[i]
        y = g[i]
        for a in range(k):
            x[a] += y * v[a]
    return last + 1


@jit
def _solve(k, row_ptr, sub_col, sub_coef, workspace):
    """p on the system's members by Chandrasekaran's method (``_round``), each J solved by
    GMRES to GMRES_ACCEPT, from x as given."""
    real, flags, basis, hessenberg, small = workspace[0], workspace[2], *workspace[6:9]
    rhs = real[2]
    x = real[3]
    value = real[4]
    active = flags[1]
    b_norm = _active_norm(k, rhs, active)
    cycles = 0
    while True:
        r_norm = _residual(k, row_ptr, sub_col, sub_coef, rhs, active, x, value, basis[0])
        if r_norm > GMRES_ACCEPT * b_norm and cycles < GMRES_CYCLES:
            cycles += 1
            _cycle(
                k,
                row_ptr,
                sub_col,
                sub_coef,
                active,
                x,
                r_norm,
                GMRES_TIGHT * b_norm,
                basis,
                hessenberg,
                small,
            )
            continue
        # J's system is solved: the members outside J whose value is positive join J.
        grown = False
        for a in range(k):
            if not active[a] and value[a] > 0.0:
                active[a] = True
                x[a] = value[a]
                grown = True
        if not grown:
            return
        b_norm = _active_norm(k, rhs, active)
        cycles = 0


@jit
def _close(k, row_ptr, sub_col, sub_coef, rhs, active):
    """Chandrasekaran's growth steps that are certain in advance: J's payments are positive
    (p_J = Σ_m M_JJ^m b_J ≥ b_J > 0, and they only rise), so a member with b ≥ 0 and a claim
    on J has a positive value and would join J after the next solve; add all those now, until
    none is left. Spares a whole solve per step (members without external assets, b = 0, are
    common once most have defaulted). A member with b < 0 (senior) still waits for a solve.
    """
    grown = True
    while grown:
        grown = False
        for a in range(k):
            if active[a] or rhs[a] < 0.0:
                continue
            for t in range(row_ptr[a], row_ptr[a + 1]):
                if sub_coef[t] > 0.0 and active[sub_col[t]]:
                    active[a] = True
                    grown = True
                    break


@jit
def _keep(t, nnz, position, by_debtor, by_amount, sub_col, sub_amount):
    """Claim t of a member's row, written at nnz of the compacted D × D rows and kept by
    advancing nnz when its debtor is in the system (in D: only debtors with a positive pool
    have claims). Returns (nnz, the claim if its debtor is solvent, else 0). No branch: which
    debtors have defaulted is close to random, and a mispredicted branch also discards the
    loads in flight behind it."""
    column = position[by_debtor[t]]
    amount = by_amount[t]
    sub_col[nnz] = column
    sub_amount[nnz] = amount
    kept = column >= 0
    # A product, not a select: LLVM may compile a select of doubles into a branch.
    return nnz + np.uint64(kept), amount * np.float64(column < 0)


@jit
def _setup(in_default, external_assets, claims, sheet, workspace):
    """The round's system on D (see ``_round``): D ascending into ``members``, local indices
    for the members with something to pay, D × D by creditor, the values b (``rhs``), J and
    the warm start x = w φ from ``paid``. Returns (|D|, members in the system).

    A member's row is gathered from its claims by creditor, ascending, with its sum of
    claims on the solvent, exactly 0 once all its debtors are in D. The entry of M is
    recomputed as L_ji · scale_j, the product that made ``by_coef``, so that the scan reads
    two arrays rather than three.

    When every institution is in the system, D × D is the whole creditor-major matrix, with
    local index = institution: it is not copied, and the caller uses ``by_indptr``,
    ``by_debtor``, ``by_coef`` in its place (the same entries in the same order).
    """
    external_liabilities, obligations, interbank_liabilities, _ = sheet[:4]
    alpha, beta, senior_external, _ = sheet[4:]
    by_indptr, by_debtor, by_amount, by_coef, scale = claims[3:8]
    real, index, flags, sub_col, sub_coef, sub_amount = workspace[:6]
    paid = real[0]
    rhs = real[2]
    x = real[3]
    members = index[0]
    position = index[1]
    row_ptr = index[2]
    local = index[3]
    active = flags[1]
    n = obligations.shape[0]
    n_members = 0
    k = 0
    for i in range(n):
        position[i] = -1
        if in_default[i]:
            members[n_members] = i
            n_members += 1
            if _pool(i, senior_external, obligations, interbank_liabilities) > 0.0:
                position[i] = k
                local[k] = i
                k += 1
            else:
                paid[i] = 0.0
    whole = k == n
    nnz = np.uint64(0)
    for a in range(k):
        i = local[a]
        row_ptr[a] = nnz
        t = np.uint64(by_indptr[i])
        stop = np.uint64(by_indptr[i + 1])
        # i's claims on the solvent, which pay in full: none with everybody in the system.
        # Summed directly rather than as a_i minus the claims on D, which would lose a small
        # claim on the solvent next to a large one on D to cancellation; with all of i's
        # debtors in D the sum is of zeros, exactly 0.
        on_solvent = 0.0
        if not whole:
            # Compact the claims on D without a branch per claim (``_keep``), summing the
            # claims on the solvent.
            start = nnz
            while t < stop:
                nnz, amount = _keep(t, nnz, position, by_debtor, by_amount, sub_col, sub_amount)
                on_solvent += amount
                t += _ONE
            # Then the entries of M on the kept claims.
            t = start
            while t < nnz:
                sub_coef[t] = sub_amount[t] * scale[local[sub_col[t]]]
                t += _ONE
        rhs[a] = (
            alpha * external_assets[i]
            - _ahead(i, senior_external, external_liabilities)
            + beta * on_solvent
        )
        active[a] = rhs[a] > 0.0
    row_ptr[k] = nnz
    if whole:
        _close(k, by_indptr, by_debtor, by_coef, rhs, active)
    else:
        _close(k, row_ptr, sub_col, sub_coef, rhs, active)
    for a in range(k):
        i = local[a]
        pool = _pool(i, senior_external, obligations, interbank_liabilities)
        x[a] = paid[i] * pool if active[a] else 0.0
    return n_members, k


@jit
def _unpaid(members, n_members, paid, claims, unpaid):
    """unpaid[c] = Σ_{j∈D} L_jc (1 − φ_j) from scratch, D in ascending order."""
    owe_indptr, to_creditor, owe_amount = claims[0], claims[1], claims[2]
    for i in range(unpaid.shape[0]):
        unpaid[i] = 0.0
    for m in range(n_members):
        j = members[m]
        shortfall = 1.0 - paid[j]
        for t in range(owe_indptr[j], owe_indptr[j + 1]):
            unpaid[to_creditor[t]] += owe_amount[t] * shortfall


@jit
def _unpaid_outside(members, n_members, in_default, paid, claims, shortfall, unpaid):
    """unpaid[c] as ``_unpaid`` for every c outside D (the others are left undefined).

    With fewer outsiders than members, each outsider gathers its claims by creditor instead,
    Σ_j L_jc s_j over all its debtors with s_j = 1 − φ_j in D and 0 outside: the same terms in
    the same order plus zeros, so the same sums to the bit, over fewer claims.
    """
    n = in_default.shape[0]
    if 2 * n_members <= n:
        _unpaid(members, n_members, paid, claims, unpaid)
        return
    by_indptr, by_debtor, by_amount = claims[3], claims[4], claims[5]
    for i in range(n):
        shortfall[i] = 0.0
    for m in range(n_members):
        j = members[m]
        shortfall[j] = 1.0 - paid[j]
    for i in range(n):
        if in_default[i]:
            continue
        acc = 0.0
        t = np.uint64(by_indptr[i])
        stop = np.uint64(by_indptr[i + 1])
        while t < stop:
            acc += by_amount[t] * shortfall[by_debtor[t]]
            t += _ONE
        unpaid[i] = acc


@jit
def _share(i, received, external_assets, sheet):
    """φ_i of a defaulted i that receives ``received``: max(0, α e_i − s_i + β received) / w_i,
    0 if it has no interbank creditors (see ``_round`` for w and s). A warm start."""
    external_liabilities, obligations, interbank_liabilities, _ = sheet[:4]
    alpha, beta, senior_external, _ = sheet[4:]
    pool = _pool(i, senior_external, obligations, interbank_liabilities)
    if pool <= 0.0:
        return 0.0
    value = (
        alpha * external_assets[i]
        - _ahead(i, senior_external, external_liabilities)
        + beta * received
    )
    return value / pool if value > 0.0 else 0.0


@jit
def _screen(
    n_members, k, row_ptr, sub_col, sub_coef, in_default, external_assets, claims, sheet, workspace
):
    """Decide the round's new defaulters from an inexact solve, where that is provably right.

    Let p^D be the round's exact solution (``_round``) and x any iterate. The round's map
    Φ(p)_a = max(0, b_a + (M p)_a) is a contraction in ‖·‖₁ with constant κ ≥ ‖M‖₁
    (``contraction``), so ‖x − p^D‖₁ ≤ ‖x − Φ(x)‖₁ / (1 − κ) =: δ. An outsider i receives
    Σ_j (L_ji / w_j) p_j from D, so its receipts under p^D and under x differ by at most
    reach_i δ. Whoever falls short by more than that (plus a rounding margin) under x falls
    short under p^D; whoever clears by more than that clears under p^D.

    Falling short under p^D is enough to default in the greatest clearing vector p*: D ⊆ D*
    (the induction hypothesis of the fictitious-default algorithm), so p* is a sub-solution of
    the round's monotone map (D's members pay their default value, the others at most in full)
    and lies below its greatest fixed point p^D; receipts are monotone in payments, so i's
    receipts under p* are at most those under p^D. The set added here is the one the exact
    round adds, and the invariant D ⊆ D* holds.

    GMRES runs to SCREEN_FIRST, then to tighter targets while a test is undecided. Returns
    True with the new defaulters flagged (and their warm starts) once every test is decided
    and one defaults; False when all clear (the last round, which the caller solves
    accurately) or the bound cannot decide (J would grow, a margin within rounding, a target
    as tight as the accurate solve's); x is then left for the accurate solve to go on from.
    """
    _, obligations, interbank_liabilities, interbank_assets = sheet[:4]
    _, _, senior_external, kappa = sheet[4:]
    reach = claims[8]
    real, index, flags, basis, hessenberg, small = (
        workspace[0],
        workspace[1],
        workspace[2],
        *workspace[6:9],
    )
    paid = real[0]
    unpaid = real[1]
    rhs = real[2]
    x = real[3]
    value = real[4]
    shortfall = real[5]
    members = index[0]
    local = index[3]
    active = flags[1]
    certain = flags[2]
    n = obligations.shape[0]
    b_norm = _active_norm(k, rhs, active)
    if b_norm == 0.0:
        return False
    target = SCREEN_FIRST
    cycles = 0
    while True:
        r_norm = _residual(k, row_ptr, sub_col, sub_coef, rhs, active, x, value, basis[0])
        if r_norm > target * b_norm:
            if cycles == GMRES_CYCLES:
                return False
            cycles += 1
            _cycle(
                k,
                row_ptr,
                sub_col,
                sub_coef,
                active,
                x,
                r_norm,
                target * b_norm,
                basis,
                hessenberg,
                small,
            )
            continue
        # ‖x − Φ(x)‖₁, x being 0 off J. A member outside J with a positive value means J must
        # grow, which only the accurate solve does.
        distance = 0.0
        for a in range(k):
            if value[a] > 0.0:
                if not active[a]:
                    return False
                distance += abs(x[a] - value[a])
            else:
                distance += abs(x[a])
        spread = distance / (1.0 - kappa)
        for a in range(k):
            i = local[a]
            paid[i] = x[a] / _pool(i, senior_external, obligations, interbank_liabilities)
        _unpaid_outside(members, n_members, in_default, paid, claims, shortfall, unpaid)
        undecided = False
        defaults = False
        need = np.inf  # the spread that would decide all that are undecided
        for i in range(n):
            certain[i] = False
            if in_default[i]:
                continue
            # The exact round's test is e_i + a_i − unpaid_i < p̄_i.
            margin = external_assets[i] + interbank_assets[i] - unpaid[i] - obligations[i]
            rounding = SCREEN_ROUNDING * (external_assets[i] + interbank_assets[i] + obligations[i])
            slack = reach[i] * spread + rounding
            if margin < -slack:
                certain[i] = True
                defaults = True
            elif margin < slack:
                undecided = True
                room = abs(margin) - rounding
                if room <= 0.0:
                    return False
                need = min(need, room / reach[i])
        if not undecided:
            if not defaults:
                return False
            for i in range(n):
                if certain[i]:
                    in_default[i] = True
                    paid[i] = _share(i, interbank_assets[i] - unpaid[i], external_assets, sheet)
            return True
        # The spread must fall below need; the residual, roughly in proportion (halved, as
        # the two norms differ).
        target *= 0.5 * need / spread
        if target <= GMRES_ACCEPT:
            return False


@jit
def _round(in_default, external_assets, claims, sheet, workspace):
    """One round of the fictitious-default algorithm: φ of the defaulted set D
    (``in_default``) given that all others pay in full, the unpaid claims, and the new
    defaulters, flagged. Returns whether D grew.

    For i in D with interbank creditors, in payment space p_i = w_i φ_i:
    p_i = max(0, b_i + Σ_{j∈D} M_ij p_j) with w_i = p̄_i (pari passu) or l̄_i (senior),
    M_ij = β L_ji / w_j and b_i = α e_i − s_i + β Σ_{j∉D} L_ji, s_i = 0 (pari passu) or x_i
    (senior). A linear complementarity problem with a Z-matrix, solved by Chandrasekaran's
    (1970) method: start from J = {i : b_i > 0}, solve (I − M)_JJ p_J = b_J with p = 0 off
    J, add every i whose b_i + Σ_{j∈J} M_ij p_j is positive, repeat. J only grows; p_J only
    rises; the result is the unique solution when M restricted to D has spectral radius
    below 1. Growth steps certain in advance are taken before the first solve (``_close``).

    Pari passu, b ≥ 0, so the max never binds and this is the one system
    (I − β Π_DDᵀ) p_D = α e_D + β Π_{N\\D,D}ᵀ p̄_{N\\D}, restricted to the members with
    something to pay. Keeping J to members with a positive value also keeps a closed ring of
    worthless defaulters (singular when β = 1) out of the system.

    Each system goes to GMRES (``_cycle``) on the rows of D × D that are claims, gathered
    by creditor: O(edges into D) to set up, O(edges within D) per product, where the dense
    elimination it replaces cost O(|D|³). The solve starts from the previous round's
    payments and, for newcomers, their payments given those. The exception is the system of
    the whole network (everybody in D and J), the same matrix on every path: its LU factors
    (``_direct``) give the start, which GMRES then only has to check.

    A round that adds defaulters needs p^D only to tell who they are: ``_screen`` stops
    the solve as soon as an error bound decides every test. Only the last round, which adds
    nobody and whose payments are the result, is solved to GMRES_ACCEPT, and its tests are
    made exactly as stated, e_i + a_i − unpaid_i < p̄_i, with the unpaid claims from scratch.
    """
    _, obligations, interbank_liabilities, interbank_assets = sheet[:4]
    _, _, senior_external, kappa = sheet[4:]
    real, index, flags = workspace[0], workspace[1], workspace[2]
    paid = real[0]
    unpaid = real[1]
    x = real[3]
    members = index[0]
    local = index[3]
    active = flags[1]
    n = obligations.shape[0]
    n_members, k = _setup(in_default, external_assets, claims, sheet, workspace)
    if k == n:
        row_ptr, sub_col, sub_coef = claims[3], claims[4], claims[6]
    else:
        row_ptr, sub_col, sub_coef = index[2], workspace[3], workspace[4]
    # Claims read by a test of the outsiders (``_unpaid_outside``), at the mean degree.
    test = min(n_members, n - n_members) * claims[1].shape[0] / n
    if n_members < n and kappa <= SCREEN_CONTRACTION and SCREEN_SAVES * row_ptr[k] >= test:
        if _screen(
            n_members,
            k,
            row_ptr,
            sub_col,
            sub_coef,
            in_default,
            external_assets,
            claims,
            sheet,
            workspace,
        ):
            return True
    if k == n:
        _direct(k, claims, workspace)
    _solve(k, row_ptr, sub_col, sub_coef, workspace)
    for a in range(k):
        i = local[a]
        paid[i] = (
            x[a] / _pool(i, senior_external, obligations, interbank_liabilities)
            if active[a]
            else 0.0
        )
    _unpaid(members, n_members, paid, claims, unpaid)
    grown = False
    for i in range(n):
        if (
            not in_default[i]
            and external_assets[i] + interbank_assets[i] - unpaid[i] < obligations[i]
        ):
            in_default[i] = True
            grown = True
            paid[i] = _share(i, interbank_assets[i] - unpaid[i], external_assets, sheet)
    return grown


@jit
def _sweep(in_default, external_assets, claims, sheet, workspace):
    """One step of the Picard iteration of the clearing map from above, on φ (``paid``):
    the receipts under φ, the institutions that fall short under them flagged as defaulted,
    and φ ← the default share of every defaulter given those receipts. Returns whether D
    grew.

    Started from φ = 1 (everybody paying in full) the iterates stay above the greatest
    clearing vector φ*: the map is monotone and φ* is its fixed point. Receipts rise with φ,
    so whoever falls short under an iterate falls short under φ*, and D stays inside φ*'s
    default set, the invariant of the fictitious-default rounds, which take over from D and
    the last φ (their warm start).

    Receipts are formed in payment space, as the rounds form theirs: the claims on the
    solvent, a_i minus the claims on D, plus Σ_{j∈D} L_ji φ_j. As a_i − unpaid_i they would
    lose a nearly worthless large claim's few cents to cancellation, and pass the error on
    to i's creditors through φ_i, beyond any margin of their own size. The claims on D
    (``real[1]``) carry over from sweep to sweep: ``_sweeps`` sums them over the first D,
    and each sweep adds its newcomers'. What is left is a few ulps per step of
    the receipts' own terms and of the debtors' (a_j − claims on D), which reach i through
    φ_j at the scale of their balance sheets (``upstream``), damped by κ < 1 from step to
    step; a margin within SCREEN_ROUNDING × (e_i + a_i + p̄_i + upstream_i) / (1 − κ) of 0 is
    not taken as a default, the rounds decide it.
    """
    _, obligations, _, interbank_assets = sheet[:4]
    kappa = sheet[7]
    owe_indptr, to_creditor, owe_amount, upstream = claims[0], claims[1], claims[2], claims[9]
    real = workspace[0]
    paid = real[0]
    on_default = real[1]  # Σ_{j∈D} L_ji, kept up to date from sweep to sweep
    received = real[5]
    n = obligations.shape[0]
    for i in range(n):
        received[i] = 0.0
    for j in range(n):
        if in_default[j]:
            phi = paid[j]
            for t in range(owe_indptr[j], owe_indptr[j + 1]):
                received[to_creditor[t]] += owe_amount[t] * phi
    # Everybody's receipts before D changes (a Jacobi step).
    for i in range(n):
        received[i] += interbank_assets[i] - on_default[i]
    rounding = SCREEN_ROUNDING / (1.0 - kappa)
    grown = False
    for i in range(n):
        if not in_default[i]:
            margin = external_assets[i] + received[i] - obligations[i]
            scale = external_assets[i] + interbank_assets[i] + obligations[i] + upstream[i]
            if margin >= -rounding * scale:
                continue
            in_default[i] = True
            grown = True
            for t in range(owe_indptr[i], owe_indptr[i + 1]):
                on_default[to_creditor[t]] += owe_amount[t]
        paid[i] = _share(i, received[i], external_assets, sheet)
    return grown


@jit
def _sweeps(in_default, external_assets, claims, sheet, workspace):
    """``_sweep`` until one finds nobody, at most SWEEPS times. First the claims on D that
    the sweeps keep (``real[1]``), summed over D in ascending order as in ``network_totals``,
    so that they are exactly a_i when all of i's debtors are in D."""
    owe_indptr, to_creditor, owe_amount = claims[0], claims[1], claims[2]
    on_default = workspace[0][1]
    n = on_default.shape[0]
    for i in range(n):
        on_default[i] = 0.0
    for j in range(n):
        if in_default[j]:
            for t in range(owe_indptr[j], owe_indptr[j + 1]):
                on_default[to_creditor[t]] += owe_amount[t]
    for _ in range(SWEEPS):
        if not _sweep(in_default, external_assets, claims, sheet, workspace):
            break


@jit
def _accumulate_unpaid(debtors, n_debtors, paid, owe_indptr, owe_creditor, owe_amount, unpaid):
    """unpaid[c] = Σ L_jc (1 − φ_j) over the listed debtors j, in list order.

    Every creditor of a listed debtor is reset first; other entries are left alone, so the
    caller keeps them at zero by listing every debtor with φ_j < 1.
    """
    for d in range(n_debtors):
        j = debtors[d]
        for k in range(owe_indptr[j], owe_indptr[j + 1]):
            unpaid[owe_creditor[k]] = 0.0
    for d in range(n_debtors):
        j = debtors[d]
        shortfall = 1.0 - paid[j]
        for k in range(owe_indptr[j], owe_indptr[j + 1]):
            unpaid[owe_creditor[k]] += owe_amount[k] * shortfall


@jit
def _finish(
    external_assets,
    obligations,
    interbank_assets,
    alpha,
    beta,
    in_default,
    unpaid,
    out_payments,
    out_received,
    out_contagion_loss,
    out_defaulted,
):
    """Per-institution outputs from the clearing state (see the module docstring)."""
    n = obligations.shape[0]
    for i in range(n):
        received = interbank_assets[i] - unpaid[i]
        if in_default[i]:
            payment = alpha * external_assets[i] + beta * received
        else:
            payment = obligations[i]
        defaulted = payment < obligations[i] * (1.0 - DEFAULT_RTOL)
        loss = unpaid[i]
        if defaulted:
            loss += (1.0 - alpha) * external_assets[i] + (1.0 - beta) * received
        out_payments[i] = payment
        out_received[i] = received
        out_contagion_loss[i] = loss
        out_defaulted[i] = defaulted


@jit
def _clear(
    external_assets,
    claims,
    sheet,
    workspace,
    out_payments,
    out_received,
    out_contagion_loss,
    out_defaulted,
):
    """``clear_fictitious_default`` given the claims as ``creditor_major`` lays them out,
    the balance sheets as ``block_sheet`` bundles them and a workspace
    (``clearing_workspace``); the one implementation of both entry points, so that they agree
    bit for bit. Returns the rounds."""
    _, obligations, _, interbank_assets = sheet[:4]
    alpha, beta, _, _ = sheet[4:]
    n = obligations.shape[0]
    shortfall = False
    for i in range(n):
        if external_assets[i] + interbank_assets[i] < obligations[i]:
            shortfall = True
            break
    if not shortfall:
        for i in range(n):
            out_payments[i] = obligations[i]
            out_received[i] = interbank_assets[i]
            out_contagion_loss[i] = 0.0
            out_defaulted[i] = False
        return 0

    real, flags = workspace[0], workspace[2]
    paid = real[0]
    unpaid = real[1]
    in_default = flags[0]
    for i in range(n):
        in_default[i] = external_assets[i] + interbank_assets[i] < obligations[i]
        if in_default[i]:
            # Warm start: the default value with everybody paying in full.
            paid[i] = _share(i, interbank_assets[i], external_assets, sheet)
    if sheet[7] <= SCREEN_CONTRACTION:
        _sweeps(in_default, external_assets, claims, sheet, workspace)
    rounds = 0
    while True:
        rounds += 1
        if not _round(in_default, external_assets, claims, sheet, workspace):
            break
    _finish(
        external_assets,
        obligations,
        interbank_assets,
        alpha,
        beta,
        in_default,
        unpaid,
        out_payments,
        out_received,
        out_contagion_loss,
        out_defaulted,
    )
    return rounds


@jit
def _setup_block(
    owe_indptr,
    owe_creditor,
    owe_amount,
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
):
    """What ``_clear`` takes besides the path, built once per call of either entry point:
    the claims (``creditor_major``), the balance sheets (``block_sheet``) and the scratch
    (``clearing_workspace``)."""
    pool = interbank_liabilities if senior_external else obligations
    sheet = block_sheet(
        external_liabilities,
        obligations,
        interbank_liabilities,
        interbank_assets,
        alpha,
        beta,
        senior_external,
    )
    claims = creditor_major(owe_indptr, owe_creditor, owe_amount, pool, beta, interbank_assets)
    workspace = clearing_workspace(obligations.shape[0], owe_creditor.shape[0], sheet[7])
    return claims, sheet, workspace


@jit
def clear_fictitious_default(
    external_assets,
    owe_indptr,
    owe_creditor,
    owe_amount,
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
    out_payments,
    out_received,
    out_contagion_loss,
    out_defaulted,
):
    """Greatest clearing vector of one path by the fictitious-default algorithm.

    Start with everyone paying in full. If no institution falls short (e_i + a_i ≥ p̄_i for
    all i) return p̄ without further work. Otherwise D = the institutions that fall short;
    then repeat: solve for D's payments given that everyone else pays in full (see
    ``_round`` for the linear systems of both conventions), recompute the receipts of D's
    creditors, the only institutions whose incoming payments changed, and add those that now
    fall short to D. D only grows, so this ends after at most n rounds (Eisenberg–Noe 2001;
    Rogers–Veraart 2013, Greatest Clearing Vector Algorithm). A round that adds defaulters is
    solved only as accurately as telling them apart needs (``_screen``); the last one in full.
    Before the first round, while κ ≤ SCREEN_CONTRACTION, sweeps of the clearing map from
    above (``_sweep``) add whoever falls short under its iterates, while they find anyone:
    on a cascade they find most of the defaulters for one pass over D's claims each.

    Parameters
    ----------
    external_assets : (n,) float64
        e, net of the path's first-round losses.
    owe_indptr : (n + 1,) int64; owe_creditor : (m,) int64; owe_amount : (m,) float64
        Interbank liabilities L, CSR by debtor, no self-loans.
    external_liabilities : (n,) float64
        x.
    obligations, interbank_liabilities, interbank_assets : (n,) float64
        p̄, l̄ and a from ``network_totals``.
    alpha, beta : float
        Shares of external and interbank assets realised on default (1, 1: no costs).
    senior_external : bool
        False: pari passu; True: external creditors senior to interbank ones.
    out_payments, out_received, out_contagion_loss : (n,) float64; out_defaulted : (n,) bool
        Written, as defined in the module docstring.

    Returns
    -------
    int
        Rounds (linear solves of the default set), 0 when nobody falls short.

    A round costs O(n + edges into and out of D) plus O(edges within D) per GMRES product
    (10–20 for the last round's solve, fewer for the others). A last round with everybody in
    the system (n ≤ DENSE_LIMIT, κ < 1) is solved by the LU factors of the whole-network
    system instead, O(n²) plus one product to check it, the factors made, O(n³ / 3), by the
    first path that needs them. This entry point also builds the creditor-major claims and
    the scratch, O(n + m), and those factors anew on every call; ``clear_paths`` does all of
    it once per block. Inputs are not checked.
    """
    claims, sheet, workspace = _setup_block(
        owe_indptr,
        owe_creditor,
        owe_amount,
        external_liabilities,
        obligations,
        interbank_liabilities,
        interbank_assets,
        alpha,
        beta,
        senior_external,
    )
    return _clear(
        external_assets,
        claims,
        sheet,
        workspace,
        out_payments,
        out_received,
        out_contagion_loss,
        out_defaulted,
    )


@jit
def clear_fixed_point(
    external_assets,
    owe_indptr,
    owe_creditor,
    owe_amount,
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
    tol,
    max_iter,
    out_payments,
    out_received,
    out_contagion_loss,
    out_defaulted,
):
    """Greatest clearing vector of one path by Picard iteration from p = p̄ downwards.

    Each iteration applies the clearing map to all institutions at once (Jacobi): φ_i = 1 if
    e_i + r_i ≥ p̄_i, else max(0, α e_i + β r_i − s_i) / w_i, with r from the previous
    iterate and w, s as in ``_round``. The map is monotone, so the iterates fall
    monotonically to the greatest clearing vector. The oracle of the fictitious-default
    kernel and its benchmark baseline; it converges only geometrically, at the rate of the
    spectral radius of β Πᵀ on the defaulted set.

    Parameters
    ----------
    As ``clear_fictitious_default``, and
    tol : float
        Stop once no institution's φ (a share of its interbank debt) moves by more than tol.
    max_iter : int
        Stop after this many iterations regardless.

    Returns
    -------
    int
        Iterations done (1 when nobody falls short; max_iter when not converged).

    Inputs are not checked.
    """
    n = obligations.shape[0]
    paid = np.ones(n)
    unpaid = np.zeros(n)
    in_default = np.zeros(n, dtype=np.bool_)
    debtors = np.empty(n, dtype=np.int64)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        step = 0.0
        for i in range(n):
            received = interbank_assets[i] - unpaid[i]
            if external_assets[i] + received >= obligations[i]:
                in_default[i] = False
                share = 1.0
            else:
                in_default[i] = True
                share = 0.0
                pool = _pool(i, senior_external, obligations, interbank_liabilities)
                if pool > 0.0:
                    value = (
                        alpha * external_assets[i]
                        - _ahead(i, senior_external, external_liabilities)
                        + beta * received
                    )
                    share = max(0.0, value) / pool
            step = max(step, abs(share - paid[i]))
            paid[i] = share
        # Recompute from scratch rather than by increments, so rounding does not build up.
        n_debtors = 0
        for j in range(n):
            unpaid[j] = 0.0
            if paid[j] < 1.0:
                debtors[n_debtors] = j
                n_debtors += 1
        _accumulate_unpaid(debtors, n_debtors, paid, owe_indptr, owe_creditor, owe_amount, unpaid)
        if step <= tol:
            break
    _finish(
        external_assets,
        obligations,
        interbank_assets,
        alpha,
        beta,
        in_default,
        unpaid,
        out_payments,
        out_received,
        out_contagion_loss,
        out_defaulted,
    )
    return iterations


@jit
def clear_paths(
    external_assets,
    owe_indptr,
    owe_creditor,
    owe_amount,
    external_liabilities,
    alpha,
    beta,
    senior_external,
    out_payments,
    out_contagion_loss,
    out_defaulted,
):
    """Clear every path of a block with the fictitious-default algorithm.

    Parameters
    ----------
    external_assets : (n_paths, n) float64
        e per path, net of that path's first-round losses.
    owe_indptr, owe_creditor, owe_amount, external_liabilities, alpha, beta, senior_external
        As ``clear_fictitious_default``.
    out_payments, out_contagion_loss : (n_paths, n) float64; out_defaulted : (n_paths, n) bool
        Written row by row, as defined in the module docstring.

    Runs without the GIL (the jit options), so blocks can be cleared on a thread pool.
    Each path is cleared on its own, in a fixed order of operations: results do not depend
    on the other paths of the block or on the threads. The LU factors of the whole-network
    system are made by the first path that needs them and kept for the block; they depend
    on the network alone, so which path makes them changes no bit. Inputs are not checked.
    """
    n_paths = external_assets.shape[0]
    obligations, interbank_liabilities, interbank_assets = network_totals(
        owe_indptr, owe_creditor, owe_amount, external_liabilities
    )
    claims, sheet, workspace = _setup_block(
        owe_indptr,
        owe_creditor,
        owe_amount,
        external_liabilities,
        obligations,
        interbank_liabilities,
        interbank_assets,
        alpha,
        beta,
        senior_external,
    )
    received = np.empty(obligations.shape[0])
    for path in range(n_paths):
        _clear(
            external_assets[path],
            claims,
            sheet,
            workspace,
            out_payments[path],
            received,
            out_contagion_loss[path],
            out_defaulted[path],
        )
