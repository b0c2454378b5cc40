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


@jit
def _solve_dense(a, b):
    """Solve a·x = b by Gaussian elimination with partial pivoting; a and b are overwritten,
    b with x. Shapes (k, k) and (k,).

    The clearing matrices are column diagonally dominant (column j: diagonal p̄_j or l̄_j,
    off-diagonals summing to at most β l̄_j), so in exact arithmetic partial pivoting never
    swaps; the search stays as a guard, and a strict comparison keeps the order deterministic.
    """
    k = b.shape[0]
    for col in range(k):
        pivot = col
        largest = abs(a[col, col])
        for row in range(col + 1, k):
            if abs(a[row, col]) > largest:
                largest = abs(a[row, col])
                pivot = row
        if pivot != col:
            for c in range(col, k):
                a[col, c], a[pivot, c] = a[pivot, c], a[col, c]
            b[col], b[pivot] = b[pivot], b[col]
        inverse = 1.0 / a[col, col]
        for row in range(col + 1, k):
            factor = a[row, col] * inverse
            if factor != 0.0:
                for c in range(col + 1, k):
                    a[row, c] -= factor * a[col, c]
                b[row] -= factor * b[col]
    for col in range(k - 1, -1, -1):
        acc = b[col]
        for c in range(col + 1, k):
            acc -= a[col, c] * b[c]
        b[col] = acc / a[col, col]


@jit
def _sort_head(items, count):
    """Sort ``items[:count]`` in place by insertion. The lists here are sorted except for a
    tail of newcomers, and a quicksort would cost seconds of compilation for nothing."""
    for a in range(1, count):
        item = items[a]
        b = a - 1
        while b >= 0 and items[b] > item:
            items[b + 1] = items[b]
            b -= 1
        items[b + 1] = item


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
def _solve_defaulted(
    members,
    n_members,
    in_default,
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
    paid,
    from_default,
    rhs,
    value,
    position,
    positive,
):
    """φ of the defaulted set D (``members[:n_members]``, sorted) given that all others pay.

    For i in D with interbank creditors, w_i φ_i = max(0, b_i + β Σ_{j∈D} L_ji φ_j), with
    w_i = p̄_i (pari passu) or l̄_i (senior) and b_i = α e_i − s_i + β Σ_{j∉D} L_ji, s_i = 0
    (pari passu) or x_i (senior). This is a linear complementarity problem with a Z-matrix,
    solved by Chandrasekaran's (1970) method: start from J = {i : b_i > 0}, solve
    (diag(w) − β L^T)_JJ φ_J = b_J with φ = 0 off J, add every i whose b_i + β Σ_{j∈J} L_ji φ_j
    is positive, repeat. J only grows (at most |D| solves); φ_J only rises; the result is the
    unique solution when β Π^T restricted to D has spectral radius below 1.

    Pari passu, b ≥ 0, so the max never binds and this is the one system
    (I − β Π_DDᵀ) p_D = α e_D + β Π_{N\\D,D}ᵀ p̄_{N\\D} with p = p̄ φ, restricted to the members
    with something to pay. Senior, it is (I − β Π^IB_JJᵀ) q_J = α e_J − x_J +
    β Π^IB_{N\\D,J}ᵀ l̄_{N\\D} with q = l̄ φ, and q = 0 on D \\ J. Keeping J to members with
    a positive value also keeps a closed ring of worthless defaulters (singular when β = 1)
    out of the system.

    ``paid`` is written on D; ``from_default``, ``rhs``, ``value``, ``positive`` (n,) are
    scratch; ``position`` (n,) must be −1 everywhere on entry and is so again on exit.
    """
    for m in range(n_members):
        j = members[m]
        for k in range(owe_indptr[j], owe_indptr[j + 1]):
            from_default[owe_creditor[k]] = 0.0
    for m in range(n_members):
        j = members[m]
        for k in range(owe_indptr[j], owe_indptr[j + 1]):
            from_default[owe_creditor[k]] += owe_amount[k]
    n_positive = 0
    for m in range(n_members):
        i = members[m]
        paid[i] = 0.0
        if _pool(i, senior_external, obligations, interbank_liabilities) > 0.0:
            # Interbank assets from the solvent, who pay in full.
            from_solvent = interbank_assets[i] - from_default[i]
            rhs[i] = (
                alpha * external_assets[i]
                - _ahead(i, senior_external, external_liabilities)
                + beta * from_solvent
            )
            if rhs[i] > 0.0:
                positive[n_positive] = i
                n_positive += 1
    while n_positive > 0:
        # Ascending order makes the elimination independent of the order of discovery.
        _sort_head(positive, n_positive)
        for a in range(n_positive):
            position[positive[a]] = a
        matrix = np.zeros((n_positive, n_positive))
        solution = np.empty(n_positive)
        for a in range(n_positive):
            i = positive[a]
            matrix[a, a] = _pool(i, senior_external, obligations, interbank_liabilities)
            solution[a] = rhs[i]
        for a in range(n_positive):
            j = positive[a]
            for k in range(owe_indptr[j], owe_indptr[j + 1]):
                row = position[owe_creditor[k]]
                if row >= 0:
                    matrix[row, a] -= beta * owe_amount[k]
        _solve_dense(matrix, solution)
        for a in range(n_positive):
            paid[positive[a]] = solution[a]
        # The value each member outside J would have given J's payments.
        for m in range(n_members):
            i = members[m]
            value[i] = rhs[i]
        for a in range(n_positive):
            j = positive[a]
            for k in range(owe_indptr[j], owe_indptr[j + 1]):
                c = owe_creditor[k]
                if in_default[c] and position[c] < 0:
                    value[c] += beta * owe_amount[k] * solution[a]
        grown = n_positive
        for m in range(n_members):
            i = members[m]
            if (
                position[i] < 0
                and _pool(i, senior_external, obligations, interbank_liabilities) > 0.0
                and value[i] > 0.0
            ):
                positive[grown] = i
                grown += 1
        if grown == n_positive:
            break
        n_positive = grown
    for a in range(n_positive):
        position[positive[a]] = -1


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
    ``_solve_defaulted`` for the linear systems of both conventions), recompute the
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

    The work of a round is O(|D|³ + edges out of D): the dense solves assume the default set
    is at most a few hundred institutions. Inputs are not checked.
    """
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

    paid = np.ones(n)
    unpaid = np.zeros(n)
    in_default = np.zeros(n, dtype=np.bool_)
    members = np.empty(n, dtype=np.int64)
    from_default = np.zeros(n)
    rhs = np.zeros(n)
    value = np.zeros(n)
    position = np.full(n, -1, dtype=np.int64)
    positive = np.empty(n, dtype=np.int64)
    n_members = 0
    for i in range(n):
        if external_assets[i] + interbank_assets[i] < obligations[i]:
            in_default[i] = True
            members[n_members] = i
            n_members += 1
    rounds = 0
    while True:
        rounds += 1
        # Ascending order makes the sums below (and the solves) independent of discovery order.
        _sort_head(members, n_members)
        _solve_defaulted(
            members,
            n_members,
            in_default,
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
            paid,
            from_default,
            rhs,
            value,
            position,
            positive,
        )
        _accumulate_unpaid(members, n_members, paid, owe_indptr, owe_creditor, owe_amount, unpaid)
        grown = n_members
        for m in range(n_members):
            j = members[m]
            for k in range(owe_indptr[j], owe_indptr[j + 1]):
                c = owe_creditor[k]
                if (
                    not in_default[c]
                    and external_assets[c] + interbank_assets[c] - unpaid[c] < obligations[c]
                ):
                    in_default[c] = True
                    members[grown] = c
                    grown += 1
        if grown == n_members:
            break
        n_members = grown
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
    iterate and w, s as in ``_solve_defaulted``. The map is monotone, so the iterates fall
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
    received = np.empty(obligations.shape[0])
    for path in range(n_paths):
        clear_fictitious_default(
            external_assets[path],
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
            out_payments[path],
            received,
            out_contagion_loss[path],
            out_defaulted[path],
        )
