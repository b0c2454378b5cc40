"""The straightforward loss kernel: one latent variable per obligor per path.

It is the oracle and the baseline of every faster kernel: simple enough to check by eye and
against its Python twin (tests/twins.py), and slow in the way benchmarks/ measures.
"""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.common import (
    TARGET_INSTITUTION,
    TARGET_OBLIGOR,
    TARGET_TRANCHE,
    aggregate_path,
    lgd_draw,
    lgd_mean,
    normal_cdf,
    systematic,
)
from kernels.mechanics import vehicle_losses


@jit
def simulate_losses_reference(
    rng,
    factors,
    scale,
    obligor_threshold,
    obligor_loadings,
    obligor_idio,
    obligor_order,
    dependency_indptr,
    dependency_customer,
    dependency_shift,
    pool_threshold,
    pool_loadings,
    pool_idio,
    pool_count,
    pool_exact,
    exposure_target_kind,
    exposure_target,
    exposure_ead,
    exposure_lgd_kind,
    exposure_lgd_p1,
    exposure_lgd_p2,
    exposure_lgd_factor,
    exposure_class,
    holding_indptr,
    holding_exposure,
    holding_share,
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
        The block's generator, consumed per path in this order: one standard normal per
        obligor, in ``obligor_order``; one binomial per exact pool; one standard normal per
        vehicle with a non-renewal clause; one Beta variate per defaulted exposure with a
        Beta LGD.
    factors : (n, K) float64
    scale : (n,) float64
        ``sqrt(ν/W)`` of the t copula per path, 1 for the Gaussian copula.
    obligor_* : (O,), (O, K), (O,)
        Thresholds (Φ⁻¹(PD) or t_ν⁻¹(PD)), loadings a and idiosyncratic weights b.
    obligor_order : (O,) int64
        Customers before their providers (revenue dependencies).
    dependency_indptr, dependency_customer, dependency_shift : CSR by provider
        A defaulted customer moves its provider's threshold up by the shift.
    pool_* : (P,) arrays and (P, K) loadings; ``pool_exact`` selects the conditional binomial
        count over the conditional expectation (large-pool limit).
    exposure_* : (E,) arrays, see ``stress.compile.Portfolio``.
    holding_indptr, holding_exposure, holding_share : CSR rows of institutions' holdings.
    vehicle_lessee, vehicle_sponsor : (V,) obligor indices (−1: no sponsor).
    vehicles : tuple, ``stress.compile.VehicleLayout.kernel_arguments()``.
    lookthrough : tuple, ``stress.compile.LookThroughLayout.kernel_arguments()``.
    out_system : (n,) float64, written; loss on every exposure at 100 % except lines to
        institutions (see ``aggregate_path``).
    out_n_defaults : (n,) int64, written; defaulted named obligors.
    out_class : (n, C) float64, written
    out_institution : (n, I) float64, written; first-round loss Σ share × exposure loss.
    out_asset, out_guarantee, out_event : (n, V), written; see ``vehicle_losses``.
    out_tranche : (n, T), written.

    Inputs are not checked. An obligor defaults when ``W``-scaled ``a·Y + b·ε`` falls below its
    threshold, i.e. ``a·Y + b·ε < threshold / scale``.
    """
    fund_institution, fund_capital, fund_debt, fund_exposure_indptr, fund_exposure = lookthrough
    n = factors.shape[0]
    n_obligors = obligor_threshold.shape[0]
    n_pools = pool_threshold.shape[0]
    n_exposures = exposure_ead.shape[0]
    defaulted = np.zeros(n_obligors, dtype=np.bool_)
    pool_fraction = np.zeros(n_pools)
    exposure_loss = np.zeros(n_exposures)
    for p in range(n):
        count = 0
        for k in range(n_obligors):
            o = obligor_order[k]
            threshold = obligor_threshold[o]
            for d in range(dependency_indptr[o], dependency_indptr[o + 1]):
                if defaulted[dependency_customer[d]]:
                    threshold += dependency_shift[d]
            latent = systematic(obligor_loadings, o, factors, p)
            latent += obligor_idio[o] * rng.standard_normal()
            defaulted[o] = latent < threshold / scale[p]
            if defaulted[o]:
                count += 1
        out_n_defaults[p] = count
        for q in range(n_pools):
            shifted = pool_threshold[q] / scale[p] - systematic(pool_loadings, q, factors, p)
            conditional_pd = normal_cdf(shifted / pool_idio[q])
            if pool_exact[q]:
                pool_fraction[q] = rng.binomial(pool_count[q], conditional_pd) / pool_count[q]
            else:
                pool_fraction[q] = conditional_pd
        vehicle_losses(
            rng,
            factors,
            p,
            1.0 / scale[p],
            defaulted,
            vehicle_lessee,
            vehicle_sponsor,
            vehicles,
            out_asset,
            out_guarantee,
            out_event,
            out_tranche,
        )
        for e in range(n_exposures):
            t = exposure_target[e]
            kind = exposure_target_kind[e]
            if kind == TARGET_OBLIGOR:
                if defaulted[t]:
                    exposure_loss[e] = exposure_ead[e] * lgd_draw(
                        rng,
                        exposure_lgd_kind[e],
                        exposure_lgd_p1[e],
                        exposure_lgd_p2[e],
                        exposure_lgd_factor[e],
                        factors,
                        p,
                    )
                else:
                    exposure_loss[e] = 0.0
            elif kind == TARGET_TRANCHE:
                exposure_loss[e] = out_tranche[p, t]
            elif kind == TARGET_INSTITUTION:
                exposure_loss[e] = 0.0  # set below, once the institution's loss is known
            else:
                exposure_loss[e] = (
                    exposure_ead[e]
                    * pool_fraction[t]
                    * lgd_mean(
                        exposure_lgd_kind[e],
                        exposure_lgd_p1[e],
                        exposure_lgd_p2[e],
                        exposure_lgd_factor[e],
                        factors,
                        p,
                    )
                )
        # Funds in an order where every fund it lends to has passed its loss on already.
        for f in range(fund_institution.shape[0]):
            i = fund_institution[f]
            fund_loss = 0.0
            for h in range(holding_indptr[i], holding_indptr[i + 1]):
                fund_loss += holding_share[h] * exposure_loss[holding_exposure[h]]
            excess = fund_loss - fund_capital[f]
            if excess > 0.0:
                ratio = min(1.0, excess / fund_debt[f])
                for k in range(fund_exposure_indptr[f], fund_exposure_indptr[f + 1]):
                    e = fund_exposure[k]
                    exposure_loss[e] = exposure_ead[e] * ratio
        aggregate_path(
            p,
            exposure_loss,
            exposure_target_kind,
            exposure_class,
            holding_indptr,
            holding_exposure,
            holding_share,
            out_system,
            out_class,
            out_institution,
        )
