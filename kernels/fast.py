"""The fast loss kernel: conditional independence, work proportional to defaults.

Given a path's factors Y and t-copula scale s, obligors default independently with
p_i(Y, W) = Φ((t_i / s − a_i·Y) / b_i). Obligors sharing (threshold, loadings) form a group
whose conditional PD is evaluated once per path, and groups sharing loadings share the dot
product a·Y. Within a group only the defaulting members are drawn: the gap to the next
default is geometric with the conditional PD, so a path costs O(groups + defaults), not
O(obligors). Losses are booked only for defaulted obligors' exposures, directly into the
class and institution totals through an exposure → holders index.

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

# Above this conditional PD one uniform per member (~7 ns) is cheaper than a logarithm and a
# division per default (~15 ns each); measured in benchmarks/loss_kernels.py.
DENSE_PD = 0.4
# Up to this many members a normal draw per member (the latent variable itself) is cheaper
# than the group's conditional PD, which costs an erfc and a log1p.
SMALL_GROUP = 4


@jit
def book_exposure(
    path, e, loss, exposure_class, holder_indptr, holder, holder_share, out_class, out_institution
):
    """Add one exposure's loss on one path to its class and to every holder."""
    out_class[path, exposure_class[e]] += loss
    for h in range(holder_indptr[e], holder_indptr[e + 1]):
        out_institution[path, holder[h]] += holder_share[h] * loss


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
    out_class,
    out_institution,
):
    """Book the losses of one defaulted obligor's exposures ``exposures[first:last]``;
    return their sum. Draws one Beta variate per Beta-LGD exposure, in order."""
    total = 0.0
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
        total += loss
        book_exposure(
            path,
            e,
            loss,
            exposure_class,
            holder_indptr,
            holder,
            holder_share,
            out_class,
            out_institution,
        )
    return total


@jit
def simulate_losses_fast(
    rng,
    factors,
    scale,
    loading_rows,
    group_loading,
    group_threshold,
    group_idio,
    group_indptr,
    group_members,
    member_exposure_indptr,
    member_exposure,
    member_watch,
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
    asset_value,
    guarantee_cap,
    renewal_threshold,
    renewal_loadings,
    renewal_idio,
    recovery_base,
    recovery_factor,
    recovery_sensitivity,
    tranche_indptr,
    tranche_attach,
    tranche_width,
    tranche_exposure,
    fund_institution,
    fund_capital,
    fund_debt,
    fund_exposure_indptr,
    fund_exposure,
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
        The block's generator, consumed per path: for each obligor group, one standard normal
        per member (groups of at most ``SMALL_GROUP``: the latent variable itself), or uniforms
        for the geometric gaps (one per member above ``DENSE_PD``); one Beta variate per
        defaulted Beta-LGD exposure right after its obligor's default; then one standard
        normal per dependent (and its Beta variates if it defaults); one binomial per exact
        pool; one standard normal per vehicle with a non-renewal clause.
    factors : (n, K), scale : (n,)
        As for ``simulate_losses_reference``.
    loading_rows : (L, K)
        Distinct obligor loading vectors.
    group_loading : (G,) int64 row of ``loading_rows``; group_threshold, group_idio : (G,)
    group_indptr : (G + 1,), group_members : (O_g,)
        Obligors of group g are ``group_members[group_indptr[g]:group_indptr[g + 1]]``.
    member_exposure_indptr : (O_g + 1,), member_exposure : exposures on each group member, in
        ``group_members`` order, so the defaults of a group read neighbouring entries.
    member_watch : (O_g,) watch slot of each member, −1 if nobody reads its default.
    dependent_* : providers with revenue dependencies, in dependency order: threshold,
        loadings, idiosyncratic weight, watch slot, exposures (CSR), and customers as watch
        slots with the threshold shift each one's default causes (CSR).
    n_watch : number of watch slots.
    pool_* : as for the reference kernel; pool_exposure_indptr/pool_exposure list the
        exposures on each pool.
    exposure_* : (E,) as for the reference kernel.
    holder_indptr : (E + 1,), holder, holder_share : holders of each exposure (CSR).
    vehicle_lessee, vehicle_sponsor : (V,) watch slots; then ``VehicleLayout`` and
        ``LookThroughLayout`` arrays as for the reference kernel.
    out_* : written, as for the reference kernel.

    Inputs are not checked.
    """
    n = factors.shape[0]
    n_rows = loading_rows.shape[0]
    n_groups = group_threshold.shape[0]
    n_dependents = dependent_threshold.shape[0]
    n_pools = pool_threshold.shape[0]
    row_value = np.empty(n_rows)
    watch = np.zeros(max(n_watch, 1), dtype=np.bool_)
    for p in range(n):
        for c in range(out_class.shape[1]):
            out_class[p, c] = 0.0
        for i in range(out_institution.shape[1]):
            out_institution[p, i] = 0.0
        for w in range(n_watch):
            watch[w] = False
        inverse_scale = 1.0 / scale[p]
        for r in range(n_rows):
            row_value[r] = systematic(loading_rows, r, factors, p)
        total = 0.0
        count = 0
        for g in range(n_groups):
            shifted = group_threshold[g] * inverse_scale - row_value[group_loading[g]]
            first = group_indptr[g]
            members = group_indptr[g + 1] - first
            small = members <= SMALL_GROUP
            conditional_pd = 1.0 if small else normal_cdf(shifted / group_idio[g])
            if conditional_pd <= 0.0:
                continue
            dense = conditional_pd >= DENSE_PD
            log_survival = math.log1p(-conditional_pd) if not dense else 0.0
            position = -1.0
            while True:
                if small:
                    position += 1.0
                    if position >= members:
                        break
                    if group_idio[g] * rng.standard_normal() >= shifted:
                        continue
                elif dense:
                    position += 1.0
                    if position >= members:
                        break
                    if rng.random() >= conditional_pd:
                        continue
                else:
                    # Failures before the next default: floor(log U / log(1 − p)).
                    gap = math.floor(math.log(rng.random()) / log_survival)
                    position += 1.0 + gap
                    if position >= members:
                        break
                member = first + int(position)
                count += 1
                if member_watch[member] >= 0:
                    watch[member_watch[member]] = True
                total += book_default(
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
                    out_class,
                    out_institution,
                )
        for d in range(n_dependents):
            threshold = dependent_threshold[d]
            for c in range(dependent_customer_indptr[d], dependent_customer_indptr[d + 1]):
                if watch[dependent_customer[c]]:
                    threshold += dependent_shift[c]
            latent = systematic(dependent_loadings, d, factors, p)
            latent += dependent_idio[d] * rng.standard_normal()
            if latent < threshold * inverse_scale:
                count += 1
                watch[dependent_watch[d]] = True
                total += book_default(
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
                    out_class,
                    out_institution,
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
                total += loss
                book_exposure(
                    p,
                    e,
                    loss,
                    exposure_class,
                    holder_indptr,
                    holder,
                    holder_share,
                    out_class,
                    out_institution,
                )
        vehicle_losses(
            rng,
            factors,
            p,
            inverse_scale,
            watch,
            vehicle_lessee,
            vehicle_sponsor,
            asset_value,
            guarantee_cap,
            renewal_threshold,
            renewal_loadings,
            renewal_idio,
            recovery_base,
            recovery_factor,
            recovery_sensitivity,
            tranche_indptr,
            tranche_attach,
            tranche_width,
            out_asset,
            out_guarantee,
            out_event,
            out_tranche,
        )
        for t in range(tranche_exposure.shape[0]):
            loss = out_tranche[p, t]
            total += loss
            book_exposure(
                p,
                tranche_exposure[t],
                loss,
                exposure_class,
                holder_indptr,
                holder,
                holder_share,
                out_class,
                out_institution,
            )
        # Funds in an order where every fund it lends to has passed its loss on already;
        # these losses move part of a fund's loss to its lenders, so the system total,
        # which holds the fund's loss, does not take them again.
        for f in range(fund_institution.shape[0]):
            excess = out_institution[p, fund_institution[f]] - fund_capital[f]
            if excess <= 0.0:
                continue
            ratio = min(1.0, excess / fund_debt[f])
            for k in range(fund_exposure_indptr[f], fund_exposure_indptr[f + 1]):
                e = fund_exposure[k]
                book_exposure(
                    p,
                    e,
                    exposure_ead[e] * ratio,
                    exposure_class,
                    holder_indptr,
                    holder,
                    holder_share,
                    out_class,
                    out_institution,
                )
        out_system[p] = total
