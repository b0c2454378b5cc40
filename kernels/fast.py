"""The fast loss kernel: conditional independence, work proportional to defaults.

Given a path's factors Y and t-copula scale s, obligors default independently with
p_i(Y, W) = Φ(x_i), x_i = (t_i / s − a_i·Y) / b_i. Obligors sharing (threshold, loadings) form
a group, and groups sharing loadings share the dot product a·Y. A path costs O(groups +
defaults), not O(obligors), and no group needs its exact conditional PD in the common case:

- Hazards. Member i defaults when an Exp(1) variate E_i falls below its hazard
  λ = −log(1 − p), which happens with probability p. ``HAZARD_BOUNDS`` tabulates λ at the
  points of a grid of step 1/64 over x in [−9, 9]; the row of x gives λ_lo ≤ λ(x) ≤ λ_hi
  (λ increases with x).
- One exponential per candidate, none per group. Members holding at least one point of a
  Poisson process of rate λ_hi per member are *candidates*, each with probability
  p_hi = 1 − e^(−λ_hi); one Exp(1) "budget" walks across all the sparse groups of a path: a
  group of m members with no candidate uses up m·λ_hi of it (what is left is again Exp(1), by
  memorylessness), otherwise the candidate is member j = floor(budget / λ_hi) and a fresh
  budget starts after it. A group with no candidate costs a table read and a few
  multiplications: no Φ, logarithm or draw.
- Thinning without a draw. What is left of the budget inside the candidate's member,
  r = budget − j·λ_hi, is Exp(1) truncated to [0, λ_hi) and independent of j, so the
  candidate defaults when r < λ, with probability (1 − e^(−λ))/(1 − e^(−λ_hi)) = p / p_hi:
  exact, and decided by the bounds alone unless λ_lo ≤ r < λ_hi (a few per cent of
  candidates), when λ(x) is evaluated, once per group.
- Dense groups (λ_hi ≥ −log(1 − ``DENSE_PD``)) draw one exponential per member against the
  same bounds.

Losses are booked only for defaulted obligors. Once per scenario (``stress.compile``),
``member_bookings`` lays out what each group member's default adds to the path's totals, in
group order: for an obligor whose exposures all have fixed LGDs, (slot, amount) pairs for the
system total, its classes and its holders, merged by slot, and its watch slot, so that a
default reads one short run of memory instead of following exposure → holder indices.
Obligors with a Beta or collateral LGD are booked exposure by exposure.

Providers whose default threshold depends on their customers' defaults (revenue
dependencies) are not conditionally independent of them, so they are drawn one by one after
the groups, in dependency order. The defaults that later steps read (customers, lessees,
sponsors) are kept in a few "watch" slots rather than a flag per obligor, which would cost
O(obligors) per path to clear. Then pools, vehicles and tranches, and last the lines to
funds, which lose the funds' first-round losses beyond their capital.

Same model and outputs as ``kernels.reference``, different use of the random stream: the two
agree in distribution, not path by path.
"""

from __future__ import annotations

import math

import numpy as np

from kernels._jit import jit
from kernels.common import LGD_FIXED, lgd_draw, lgd_mean, normal_cdf, systematic
from kernels.mechanics import vehicle_losses

# From this bound on a group's conditional PD up, one exponential per member rather than
# skipping to the candidates; on the 10 000-obligor benchmark book any bound from 0.4 to 0.9
# measured the same within noise, and below 0.25 it is slower.
DENSE_PD = 0.4
DENSE_HAZARD = -math.log1p(-DENSE_PD)

# The grid of HAZARD_BOUNDS: x_k = X_MIN + k / STEPS, k = 0 .. N_STEPS.
X_MIN = -9.0
X_MAX = 9.0
STEPS = 64.0
N_STEPS = int((X_MAX - X_MIN) * STEPS)


def hazard_bounds() -> np.ndarray:
    """Rows (λ_lo, λ_hi, 1/λ_hi, 0) with λ_lo ≤ −log(1 − Φ(x)) ≤ λ_hi.

    λ = −log(1 − p) is the hazard of a conditional PD p: a member defaults when an Exp(1)
    variate falls below it. Row 0 is for x < X_MIN (and NaN), row k in 1 .. N_STEPS for x in
    [x_{k−1}, x_k), row N_STEPS + 1 for x ≥ X_MAX. Φ is ``normal_cdf``'s formula at the grid
    points, which are exact binary fractions, so the bounds hold for the values the kernel
    computes.
    """
    grid = X_MIN + np.arange(N_STEPS + 1) / STEPS
    cdf = np.array([0.5 * math.erfc(-x * math.sqrt(0.5)) for x in grid])
    table = np.zeros((N_STEPS + 2, 4))
    with np.errstate(divide="ignore"):
        hazard = -np.log1p(-cdf)
        table[:, 0] = np.concatenate([[0.0], hazard])
        table[:, 1] = np.concatenate([hazard, [np.inf]])
        table[:, 2] = 1.0 / table[:, 1]
    return table


# A global array: Numba compiles it into the kernel as a constant.
HAZARD_BOUNDS = hazard_bounds()


@jit
def bounds_row(x):
    """The row of ``HAZARD_BOUNDS`` for x (row 0 for NaN)."""
    t = (x - X_MIN) * STEPS
    if not t >= 0.0:
        return 0
    if t >= N_STEPS:
        return N_STEPS + 1
    return int(t) + 1


@jit
def book_exposure(e, loss, exposure_class, holder_indptr, holder, holder_share, n_classes, acc):
    """Add one exposure's loss to its class and to every holder in the path totals ``acc``
    (classes, then institutions from ``n_classes`` on; see ``simulate_losses_fast``)."""
    acc[exposure_class[e]] += loss
    for h in range(holder_indptr[e], holder_indptr[e + 1]):
        acc[n_classes + holder[h]] += holder_share[h] * loss


@jit
def book_default(
    rng,
    factors,
    path,
    first,
    last,
    exposures,
    exposure_ead,
    exposure_lgd_kind,
    exposure_lgd_p1,
    exposure_lgd_p2,
    exposure_lgd_factor,
    exposure_class,
    holder_indptr,
    holder,
    holder_share,
    n_classes,
    system,
    acc,
):
    """Book the losses of one defaulted obligor's exposures ``exposures[first:last]`` into
    ``acc``, system total (slot ``system``) included. Draws one Beta variate per Beta-LGD
    exposure, in order."""
    for k in range(first, last):
        e = exposures[k]
        # A fixed LGD is read in place: the call below costs more than the loss.
        if exposure_lgd_kind[e] == LGD_FIXED:
            loss = exposure_ead[e] * exposure_lgd_p1[e]
        else:
            loss = exposure_ead[e] * lgd_draw(
                rng,
                exposure_lgd_kind[e],
                exposure_lgd_p1[e],
                exposure_lgd_p2[e],
                exposure_lgd_factor[e],
                factors,
                path,
            )
        acc[system] += loss
        book_exposure(e, loss, exposure_class, holder_indptr, holder, holder_share, n_classes, acc)


@jit
def member_bookings(
    member_exposure_indptr,
    member_exposure,
    member_watch,
    exposure_ead,
    exposure_lgd_kind,
    exposure_lgd_p1,
    exposure_class,
    holder_indptr,
    holder,
    holder_share,
    n_classes,
    system,
):
    """What the default of each group member adds to the path totals, member by member.

    Returns ``entry_indptr`` ((O_g + 1,) int64) and ``entry``: member m adds
    ``entry[2k + 1]`` to slot ``int(entry[2k])`` of the path totals for k in
    ``entry_indptr[m]:entry_indptr[m + 1]`` (slot and amount side by side, so that a default
    reads one short run of memory): the system total (slot ``system``) first, then its
    exposures' classes and holders in exposure order, one entry per slot, then 1 in its watch
    slot if it has one. A member with any exposure whose LGD is not fixed has no entries
    (every other member has at least the system one): it is booked exposure by exposure
    (``book_default``).
    """
    n_members = member_exposure_indptr.shape[0] - 1
    size = 2 * n_members
    for k in range(member_exposure.shape[0]):
        e = member_exposure[k]
        size += 1 + holder_indptr[e + 1] - holder_indptr[e]
    entry_indptr = np.empty(n_members + 1, dtype=np.int64)
    slots = np.empty(size, dtype=np.int64)
    amounts = np.empty(size)
    n = 0
    entry_indptr[0] = 0
    for m in range(n_members):
        start = n
        fixed = True
        for k in range(member_exposure_indptr[m], member_exposure_indptr[m + 1]):
            fixed = fixed and exposure_lgd_kind[member_exposure[k]] == LGD_FIXED
        if fixed:
            slots[n] = system
            amounts[n] = 0.0
            n += 1
            for k in range(member_exposure_indptr[m], member_exposure_indptr[m + 1]):
                e = member_exposure[k]
                loss = exposure_ead[e] * exposure_lgd_p1[e]
                amounts[start] += loss
                for j in range(-1, holder_indptr[e + 1] - holder_indptr[e]):
                    if j < 0:
                        slot, amount = exposure_class[e], loss
                    else:
                        h = holder_indptr[e] + j
                        slot, amount = n_classes + holder[h], holder_share[h] * loss
                    i = start + 1
                    while i < n and slots[i] != slot:
                        i += 1
                    if i == n:
                        slots[n] = slot
                        amounts[n] = 0.0
                        n += 1
                    amounts[i] += amount
            if member_watch[m] >= 0:
                slots[n] = system + 1 + member_watch[m]
                amounts[n] = 1.0
                n += 1
        entry_indptr[m + 1] = n
    entry = np.empty(2 * n)
    for k in range(n):
        entry[2 * k] = slots[k]
        entry[2 * k + 1] = amounts[k]
    return entry_indptr, entry


@jit
def simulate_losses_fast(
    rng,
    factors,
    scale,
    loading_rows,
    group_loading,
    group_threshold,
    group_inverse_idio,
    group_indptr,
    member_exposure_indptr,
    member_exposure,
    member_watch,
    booking_indptr,
    booking,
    dependent_threshold,
    dependent_loadings,
    dependent_idio,
    dependent_watch,
    dependent_exposure_indptr,
    dependent_exposure,
    dependent_customer_indptr,
    dependent_customer,
    dependent_shift,
    n_watch,
    pool_threshold,
    pool_loadings,
    pool_idio,
    pool_count,
    pool_exact,
    pool_exposure_indptr,
    pool_exposure,
    exposure_ead,
    exposure_lgd_kind,
    exposure_lgd_p1,
    exposure_lgd_p2,
    exposure_lgd_factor,
    exposure_class,
    holder_indptr,
    holder,
    holder_share,
    vehicle_lessee,
    vehicle_sponsor,
    vehicles,
    lookthrough,
    out_system,
    out_n_defaults,
    out_class,
    out_institution,
    out_asset,
    out_guarantee,
    out_event,
    out_tranche,
):
    """Losses of one block of paths given its factor draws.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's generator, consumed per path in this order: one standard exponential
        (the first budget); then group by group, in group order: for a dense group one
        standard exponential per member, for a sparse group one standard exponential per
        candidate (the next budget); each defaulted member's Beta variates (one per Beta-LGD
        exposure, in order) right after its default is decided, before the next draw; then
        one standard normal per dependent (and its Beta variates if it defaults); one
        binomial per exact pool; one standard normal per vehicle with a non-renewal clause.
    factors : (n, K), scale : (n,)
        As for ``simulate_losses_reference``.
    loading_rows : (L, K)
        Distinct obligor loading vectors.
    group_loading : (G,) int64 row of ``loading_rows``; group_threshold : (G,)
    group_inverse_idio : (G,) 1 / b of the group's members
    group_indptr : (G + 1,)
        Members of group g are positions ``group_indptr[g]:group_indptr[g + 1]``.
    member_exposure_indptr : (O_g + 1,), member_exposure : exposures on each group member, in
        group order.
    member_watch : (O_g,) watch slot of each member, −1 if nobody reads its default.
    booking_indptr, booking : what each member's default adds to the path totals, from
        ``member_bookings`` with ``system = n_classes + n_institutions``.
    dependent_* : providers with revenue dependencies, in dependency order: threshold,
        loadings, idiosyncratic weight, watch slot, exposures (CSR), and customers as watch
        slots with the threshold shift each one's default causes (CSR).
    n_watch : number of watch slots.
    pool_* : as for the reference kernel; pool_exposure_indptr/pool_exposure list the
        exposures on each pool.
    exposure_* : (E,) as for the reference kernel.
    holder_indptr : (E + 1,), holder, holder_share : holders of each exposure (CSR).
    vehicle_lessee, vehicle_sponsor : (V,) watch slots (−1: no sponsor).
    vehicles, lookthrough : tuples of arrays, as for the reference kernel.
    out_* : written, as for the reference kernel.

    Inputs are not checked.
    """
    tranche_exposure = vehicles[11]
    fund_institution, fund_capital, fund_debt, fund_exposure_indptr, fund_exposure = lookthrough
    n = factors.shape[0]
    n_rows = loading_rows.shape[0]
    n_groups = group_threshold.shape[0]
    n_dependents = dependent_threshold.shape[0]
    n_pools = pool_threshold.shape[0]
    n_classes = out_class.shape[1]
    n_institutions = out_institution.shape[1]
    # A path's totals in one vector: classes, institutions, the system total, then the watch
    # slots (1 once that obligor has defaulted).
    system = n_classes + n_institutions
    acc = np.empty(system + 1 + n_watch)
    watch = acc[system + 1 :]
    row_value = np.empty(n_rows)
    for p in range(n):
        acc[:] = 0.0
        inverse_scale = 1.0 / scale[p]
        for r in range(n_rows):
            row_value[r] = systematic(loading_rows, r, factors, p)
        count = 0
        budget = rng.standard_exponential()
        for g in range(n_groups):
            x = (group_threshold[g] * inverse_scale - row_value[group_loading[g]]) * (
                group_inverse_idio[g]
            )
            row = bounds_row(x)
            low = HAZARD_BOUNDS[row, 0]
            high = HAZARD_BOUNDS[row, 1]
            first = group_indptr[g]
            members = group_indptr[g + 1] - first
            dense = high >= DENSE_HAZARD
            hazard = -1.0  # −log(1 − Φ(x)), computed when a draw falls between the bounds
            start = 0
            while True:
                if dense:
                    if start >= members:
                        break
                    j = start
                    start += 1
                    draw = rng.standard_exponential()
                else:
                    left = (members - start) * high
                    if budget >= left:
                        budget -= left
                        break
                    # A candidate: the budget runs out inside member j, and what is left of
                    # it there is Exp(1) truncated to [0, high), independent of j.
                    skipped = int(budget * HAZARD_BOUNDS[row, 2])
                    j = min(start + skipped, members - 1)
                    draw = budget - (j - start) * high
                    start = j + 1
                    budget = -1.0  # a fresh one after this member
                if draw >= low:
                    if hazard < 0.0 and draw < high:
                        hazard = -math.log1p(-normal_cdf(x))
                    if not (draw < high and draw < hazard):
                        if budget < 0.0:
                            budget = rng.standard_exponential()
                        continue
                member = first + j
                count += 1
                begin = booking_indptr[member]
                end = booking_indptr[member + 1]
                if begin < end:
                    for k in range(begin, end):
                        acc[int(booking[2 * k])] += booking[2 * k + 1]
                else:
                    if member_watch[member] >= 0:
                        watch[member_watch[member]] = 1.0
                    book_default(
                        rng,
                        factors,
                        p,
                        member_exposure_indptr[member],
                        member_exposure_indptr[member + 1],
                        member_exposure,
                        exposure_ead,
                        exposure_lgd_kind,
                        exposure_lgd_p1,
                        exposure_lgd_p2,
                        exposure_lgd_factor,
                        exposure_class,
                        holder_indptr,
                        holder,
                        holder_share,
                        n_classes,
                        system,
                        acc,
                    )
                if budget < 0.0:
                    budget = rng.standard_exponential()
        for d in range(n_dependents):
            threshold = dependent_threshold[d]
            for c in range(dependent_customer_indptr[d], dependent_customer_indptr[d + 1]):
                if watch[dependent_customer[c]] != 0.0:
                    threshold += dependent_shift[c]
            latent = systematic(dependent_loadings, d, factors, p)
            latent += dependent_idio[d] * rng.standard_normal()
            if latent < threshold * inverse_scale:
                count += 1
                watch[dependent_watch[d]] = 1.0
                book_default(
                    rng,
                    factors,
                    p,
                    dependent_exposure_indptr[d],
                    dependent_exposure_indptr[d + 1],
                    dependent_exposure,
                    exposure_ead,
                    exposure_lgd_kind,
                    exposure_lgd_p1,
                    exposure_lgd_p2,
                    exposure_lgd_factor,
                    exposure_class,
                    holder_indptr,
                    holder,
                    holder_share,
                    n_classes,
                    system,
                    acc,
                )
        out_n_defaults[p] = count
        for q in range(n_pools):
            shifted = pool_threshold[q] * inverse_scale - systematic(pool_loadings, q, factors, p)
            fraction = normal_cdf(shifted / pool_idio[q])
            if pool_exact[q]:
                fraction = rng.binomial(pool_count[q], fraction) / pool_count[q]
            for k in range(pool_exposure_indptr[q], pool_exposure_indptr[q + 1]):
                e = pool_exposure[k]
                loss = (
                    exposure_ead[e]
                    * fraction
                    * lgd_mean(
                        exposure_lgd_kind[e],
                        exposure_lgd_p1[e],
                        exposure_lgd_p2[e],
                        exposure_lgd_factor[e],
                        factors,
                        p,
                    )
                )
                acc[system] += loss
                book_exposure(
                    e, loss, exposure_class, holder_indptr, holder, holder_share, n_classes, acc
                )
        vehicle_losses(
            rng,
            factors,
            p,
            inverse_scale,
            watch,
            vehicle_lessee,
            vehicle_sponsor,
            vehicles,
            out_asset,
            out_guarantee,
            out_event,
            out_tranche,
        )
        for t in range(tranche_exposure.shape[0]):
            loss = out_tranche[p, t]
            if loss == 0.0:
                continue  # most tranches on most paths: adding 0 would change nothing
            acc[system] += loss
            book_exposure(
                tranche_exposure[t],
                loss,
                exposure_class,
                holder_indptr,
                holder,
                holder_share,
                n_classes,
                acc,
            )
        # Funds in an order where every fund it lends to has passed its loss on already;
        # these losses move part of a fund's loss to its lenders, so the system total,
        # which holds the fund's loss, does not take them again.
        for f in range(fund_institution.shape[0]):
            excess = acc[n_classes + fund_institution[f]] - fund_capital[f]
            if excess <= 0.0:
                continue
            ratio = min(1.0, excess / fund_debt[f])
            for k in range(fund_exposure_indptr[f], fund_exposure_indptr[f + 1]):
                e = fund_exposure[k]
                book_exposure(
                    e,
                    exposure_ead[e] * ratio,
                    exposure_class,
                    holder_indptr,
                    holder,
                    holder_share,
                    n_classes,
                    acc,
                )
        for c in range(n_classes):
            out_class[p, c] = acc[c]
        for i in range(n_institutions):
            out_institution[p, i] = acc[n_classes + i]
        out_system[p] = acc[system]
