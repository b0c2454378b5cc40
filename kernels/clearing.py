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
from kernels.common import row_pointers

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


# GMRES on the default set's linear system (see ``_solve_round``). The systems are I − M with
# M ≥ 0 and column sums at most β: on these networks one Perron eigenvalue (up to about β)
# and the others clustered near 0, so GMRES, which removes an outlier in one step, converges
# in 10–20 matrix-vector products where a stationary iteration (Jacobi, Gauss–Seidel,
# Picard) needs a hundred at β = 0.8.
KRYLOV = 60  # Krylov vectors before a restart
GMRES_TIGHT = 1e-15  # a cycle stops once its residual estimate is below this × ‖b‖₂
GMRES_ACCEPT = 1e-14  # the solution is accepted once the recomputed residual is below this × ‖b‖₂
GMRES_CYCLES = 6  # restarts allowed; reached only by (nearly) singular systems


@jit
def clearing_workspace(n, n_claims):
    """Scratch for ``_clear`` on a network of n institutions and n_claims listed claims,
    allocated once per block so that clearing a path allocates nothing.

    real: φ (paid), unpaid, and per local index b before the max, the iterate, the right-hand
    side; index: D ascending, local index of each institution, row pointers of D × D, the
    institution of each local index; flags: in D, in J; then D × D by creditor (columns and
    entries of M), the Krylov basis, the Hessenberg matrix and the rotations.
    """
    real = np.empty((5, n))
    index = np.empty((4, n + 1), dtype=np.int64)
    flags = np.empty((2, n), dtype=np.bool_)
    sub_col = np.empty(n_claims, dtype=np.int64)
    sub_coef = np.empty(n_claims)
    basis = np.empty((KRYLOV + 1, n))
    hessenberg = np.empty((KRYLOV + 1, KRYLOV))
    small = np.empty((3, KRYLOV + 1))
    return real, index, flags, sub_col, sub_coef, basis, hessenberg, small


@jit
def creditor_major(owe_indptr, owe_creditor, owe_amount, pool, beta):
    """The claims by creditor, for the gathers of ``_solve_round``.

    For creditor i and k in ``by_indptr[i]:by_indptr[i + 1]``: debtor ``by_debtor[k]`` = j,
    ascending (so sums over a creditor's debtors run in the order the debtor-major scatter
    used), ``by_amount[k]`` = L_ji and ``by_coef[k]`` = β L_ji / w_j, the entry of M in
    payment space (w = p̄ pari passu, l̄ senior, passed as ``pool``).
    """
    n = owe_indptr.shape[0] - 1
    m = owe_creditor.shape[0]
    by_indptr = row_pointers(owe_creditor, n)
    fill = by_indptr[:n].copy()
    by_debtor = np.empty(m, dtype=np.int64)
    by_amount = np.empty(m)
    by_coef = np.empty(m)
    for j in range(n):
        # A debtor's pool is at least what it owes, so 0 only if its claims are all 0.
        scale = beta / pool[j] if pool[j] > 0.0 else 0.0
        for k in range(owe_indptr[j], owe_indptr[j + 1]):
            c = owe_creditor[k]
            t = fill[c]
            fill[c] += 1
            by_debtor[t] = j
            by_amount[t] = owe_amount[k]
            by_coef[t] = owe_amount[k] * scale
    return by_indptr, by_debtor, by_amount, by_coef


@jit
def _apply(k, row_ptr, sub_col, sub_coef, active, v, out):
    """out = (I − M) v on the active rows, out = v on the others (where v is 0).

    Four partial sums per row: one sum is bound by the latency of the additions, four keep
    the loads busy (the order of the sums is fixed, so results stay reproducible).
    """
    for a in range(k):
        if active[a]:
            acc0 = 0.0
            acc1 = 0.0
            acc2 = 0.0
            acc3 = 0.0
            t = row_ptr[a]
            end = row_ptr[a + 1]
            while t + 4 <= end:
                acc0 += sub_coef[t] * v[sub_col[t]]
                acc1 += sub_coef[t + 1] * v[sub_col[t + 1]]
                acc2 += sub_coef[t + 2] * v[sub_col[t + 2]]
                acc3 += sub_coef[t + 3] * v[sub_col[t + 3]]
                t += 4
            while t < end:
                acc0 += sub_coef[t] * v[sub_col[t]]
                t += 1
            out[a] = v[a] - ((acc0 + acc1) + (acc2 + acc3))
        else:
            out[a] = v[a]


@jit
def _dot(k, u, v):
    """Σ u_a v_a over the first k entries, with four partial sums as in ``_apply``."""
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    acc3 = 0.0
    a = 0
    while a + 4 <= k:
        acc0 += u[a] * v[a]
        acc1 += u[a + 1] * v[a + 1]
        acc2 += u[a + 2] * v[a + 2]
        acc3 += u[a + 3] * v[a + 3]
        a += 4
    while a < k:
        acc0 += u[a] * v[a]
        a += 1
    return (acc0 + acc1) + (acc2 + acc3)


@jit
def _norm(k, v):
    return np.sqrt(_dot(k, v, v))


@jit
def _gmres(k, row_ptr, sub_col, sub_coef, active, b, x, basis, hessenberg, small):
    """Solve (I − M) x = b on the first k entries by restarted GMRES, from x as given.

    b and x are 0 off the active rows and stay so (the operator is the identity there).
    Arnoldi by modified Gram–Schmidt, Givens rotations on the Hessenberg matrix. Each cycle
    runs until its residual estimate is below GMRES_TIGHT·‖b‖; the cycle's update is then
    checked against the recomputed residual, restarting (from the better x) while that is
    above GMRES_ACCEPT·‖b‖, at most GMRES_CYCLES times. Sequential and in a fixed order, so
    the result is bit-for-bit reproducible. Returns the matrix-vector products done.
    """
    cosine = small[0]
    sine = small[1]
    g = small[2]
    products = 0
    b_norm = _norm(k, b)
    if b_norm == 0.0:
        for a in range(k):
            x[a] = 0.0
        return products
    for _ in range(GMRES_CYCLES):
        r = basis[0]
        _apply(k, row_ptr, sub_col, sub_coef, active, x, r)
        products += 1
        for a in range(k):
            r[a] = b[a] - r[a]
        r_norm = _norm(k, r)
        if r_norm <= GMRES_ACCEPT * b_norm:
            break
        inverse = 1.0 / r_norm
        for a in range(k):
            r[a] *= inverse
        g[0] = r_norm
        last = 0
        for j in range(KRYLOV):
            w = basis[j + 1]
            _apply(k, row_ptr, sub_col, sub_coef, active, basis[j], w)
            products += 1
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
            if abs(g[j + 1]) <= GMRES_TIGHT * b_norm or h_next == 0.0:
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
    return products


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
def _solve_round(
    in_default,
    external_assets,
    by_indptr,
    by_debtor,
    by_amount,
    by_coef,
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
    workspace,
):
    """φ of the defaulted set D (``in_default``) given that all others pay, into
    ``workspace``'s ``paid`` on D; the members of D, ascending, into its ``members``.
    Returns |D|.

    For i in D with interbank creditors, in payment space p_i = w_i φ_i:
    p_i = max(0, b_i + Σ_{j∈D} M_ij p_j) with w_i = p̄_i (pari passu) or l̄_i (senior),
    M_ij = β L_ji / w_j and b_i = α e_i − s_i + β Σ_{j∉D} L_ji, s_i = 0 (pari passu) or x_i
    (senior). A linear complementarity problem with a Z-matrix, solved by Chandrasekaran's
    (1970) method: start from J = {i : b_i > 0}, solve (I − M)_JJ p_J = b_J with p = 0 off
    J, add every i whose b_i + Σ_{j∈J} M_ij p_j is positive, repeat. J only grows; p_J only
    rises; the result is the unique solution when M restricted to D has spectral radius
    below 1.

    Pari passu, b ≥ 0, so the max never binds and this is the one system
    (I − β Π_DDᵀ) p_D = α e_D + β Π_{N\\D,D}ᵀ p̄_{N\\D}, restricted to the members with
    something to pay. Keeping J to members with a positive value also keeps a closed ring of
    worthless defaulters (singular when β = 1) out of the system.

    Each system goes to GMRES (``_gmres``) on the rows of D × D that are claims, gathered
    by creditor: O(edges into D) to set up, O(edges within D) per product, where the dense
    elimination it replaces cost O(|D|³). The solve starts from the previous round's
    payments (D only grows, so those are close after the first rounds).
    """
    real, index, flags, sub_col, sub_coef, basis, hessenberg, small = workspace
    paid = real[0]
    rhs = real[2]
    x = real[3]
    b = real[4]
    members = index[0]
    position = index[1]
    row_ptr = index[2]
    local = index[3]
    active = flags[1]
    n = obligations.shape[0]
    # D ascending, and local indices for the members with something to pay.
    n_members = 0
    k = 0
    for i in range(n):
        if in_default[i]:
            members[n_members] = i
            n_members += 1
            if _pool(i, senior_external, obligations, interbank_liabilities) > 0.0:
                position[i] = k
                local[k] = i
                k += 1
            else:
                position[i] = -1
                paid[i] = 0.0
    # D × D by creditor, and the values b, summing each creditor's claims on D in ascending
    # debtor order.
    nnz = 0
    for a in range(k):
        i = local[a]
        row_ptr[a] = nnz
        from_default = 0.0
        for t in range(by_indptr[i], by_indptr[i + 1]):
            j = by_debtor[t]
            if in_default[j]:
                from_default += by_amount[t]
                if position[j] >= 0:
                    sub_col[nnz] = position[j]
                    sub_coef[nnz] = by_coef[t]
                    nnz += 1
        # Interbank assets from the solvent, who pay in full.
        rhs[a] = (
            alpha * external_assets[i]
            - _ahead(i, senior_external, external_liabilities)
            + beta * (interbank_assets[i] - from_default)
        )
        active[a] = rhs[a] > 0.0
        if active[a]:
            b[a] = rhs[a]
            # Warm start: last round's payment, or for a newcomer (paid < 0) its value with
            # the defaulted paying nothing.
            pool = _pool(i, senior_external, obligations, interbank_liabilities)
            x[a] = paid[i] * pool if paid[i] >= 0.0 else rhs[a]
        else:
            b[a] = 0.0
            x[a] = 0.0
    row_ptr[k] = nnz
    while True:
        _gmres(k, row_ptr, sub_col, sub_coef, active, b, x, basis, hessenberg, small)
        # Members outside J whose value is positive given J's payments join J.
        grown = False
        for a in range(k):
            if not active[a]:
                value = rhs[a]
                for t in range(row_ptr[a], row_ptr[a + 1]):
                    value += sub_coef[t] * x[sub_col[t]]
                if value > 0.0:
                    active[a] = True
                    b[a] = rhs[a]
                    x[a] = value
                    grown = True
        if not grown:
            break
    for a in range(k):
        i = local[a]
        paid[i] = (
            x[a] / _pool(i, senior_external, obligations, interbank_liabilities)
            if active[a]
            else 0.0
        )
    return n_members


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
    owe_indptr,
    owe_creditor,
    owe_amount,
    by_indptr,
    by_debtor,
    by_amount,
    by_coef,
    external_liabilities,
    obligations,
    interbank_liabilities,
    interbank_assets,
    alpha,
    beta,
    senior_external,
    workspace,
    out_payments,
    out_received,
    out_contagion_loss,
    out_defaulted,
):
    """``clear_fictitious_default`` given the creditor-major claims (``creditor_major``) and
    a workspace (``clearing_workspace``); the one implementation of both entry points, so
    that they agree bit for bit."""
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

    real, index, flags = workspace[0], workspace[1], workspace[2]
    paid = real[0]
    unpaid = real[1]
    members = index[0]
    in_default = flags[0]
    for i in range(n):
        unpaid[i] = 0.0
        # paid < 0 marks a newcomer to D for the warm start of ``_solve_round``.
        paid[i] = -1.0
        in_default[i] = external_assets[i] + interbank_assets[i] < obligations[i]
    rounds = 0
    while True:
        rounds += 1
        n_members = _solve_round(
            in_default,
            external_assets,
            by_indptr,
            by_debtor,
            by_amount,
            by_coef,
            external_liabilities,
            obligations,
            interbank_liabilities,
            interbank_assets,
            alpha,
            beta,
            senior_external,
            workspace,
        )
        # Unpaid claims from scratch: reset all, one pass over the claims on D (ascending
        # debtors, as ``_accumulate_unpaid``), then test everyone outside D, O(n), rather
        # than each claim's creditor.
        for i in range(n):
            unpaid[i] = 0.0
        for m in range(n_members):
            j = members[m]
            shortfall = 1.0 - paid[j]
            for k in range(owe_indptr[j], owe_indptr[j + 1]):
                unpaid[owe_creditor[k]] += owe_amount[k] * shortfall
        grown = False
        for i in range(n):
            if (
                not in_default[i]
                and external_assets[i] + interbank_assets[i] - unpaid[i] < obligations[i]
            ):
                in_default[i] = True
                grown = True
        if not grown:
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
    ``_solve_round`` for the linear systems of both conventions), recompute the
    interbank assets of D's creditors, which are the only institutions whose incoming
    payments changed, and add those that now fall short to D. D only grows, so this ends
    after at most n rounds (Eisenberg–Noe 2001; Rogers–Veraart 2013, Greatest Clearing Vector
    Algorithm).

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

    A round costs O(n + edges into D) plus O(edges within D) per GMRES product (10–20 per
    solve). This entry point also builds the creditor-major claims and the scratch, O(n + m)
    per call; ``clear_paths`` does that once per block. Inputs are not checked.
    """
    pool = interbank_liabilities if senior_external else obligations
    by_indptr, by_debtor, by_amount, by_coef = creditor_major(
        owe_indptr, owe_creditor, owe_amount, pool, beta
    )
    return _clear(
        external_assets,
        owe_indptr,
        owe_creditor,
        owe_amount,
        by_indptr,
        by_debtor,
        by_amount,
        by_coef,
        external_liabilities,
        obligations,
        interbank_liabilities,
        interbank_assets,
        alpha,
        beta,
        senior_external,
        clearing_workspace(obligations.shape[0], owe_creditor.shape[0]),
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
    iterate and w, s as in ``_solve_round``. The map is monotone, so the iterates fall
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
    Inputs are not checked.
    """
    n_paths = external_assets.shape[0]
    obligations, interbank_liabilities, interbank_assets = network_totals(
        owe_indptr, owe_creditor, owe_amount, external_liabilities
    )
    pool = interbank_liabilities if senior_external else obligations
    by_indptr, by_debtor, by_amount, by_coef = creditor_major(
        owe_indptr, owe_creditor, owe_amount, pool, beta
    )
    workspace = clearing_workspace(obligations.shape[0], owe_creditor.shape[0])
    received = np.empty(obligations.shape[0])
    for path in range(n_paths):
        _clear(
            external_assets[path],
            owe_indptr,
            owe_creditor,
            owe_amount,
            by_indptr,
            by_debtor,
            by_amount,
            by_coef,
            external_liabilities,
            obligations,
            interbank_liabilities,
            interbank_assets,
            alpha,
            beta,
            senior_external,
            workspace,
            out_payments[path],
            received,
            out_contagion_loss[path],
            out_defaulted[path],
        )
