"""The straightforward loss kernel: one latent variable per obligor per path.

It is the oracle and the baseline of every faster kernel: simple enough to check by eye and
against its Python twin (tests/twins.py), and slow in the way benchmarks/ measures.
"""

from __future__ import annotations

import numpy as np

from kernels._jit import jit
from kernels.common import (
    TARGET_OBLIGOR,
    aggregate_path,
    lgd_draw,
    lgd_mean,
    normal_cdf,
    systematic,
)


@jit
def simulate_losses_reference(
    rng,
    factors,
    scale,
    obligor_threshold,
    obligor_loadings,
    obligor_idio,
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
    out_system,
    out_n_defaults,
    out_class,
    out_institution,
):
    """Losses of one block of paths given its factor draws.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's generator, consumed per path in this order: one standard normal per
        obligor; one binomial per exact pool; one Beta variate per defaulted exposure with a
        Beta LGD.
    factors : (n, K) float64
    scale : (n,) float64
        ``sqrt(ν/W)`` of the t copula per path, 1 for the Gaussian copula.
    obligor_* : (O,), (O, K), (O,)
        Thresholds (Φ⁻¹(PD) or t_ν⁻¹(PD)), loadings a and idiosyncratic weights b.
    pool_* : (P,) arrays and (P, K) loadings; ``pool_exact`` selects the conditional binomial
        count over the conditional expectation (large-pool limit).
    exposure_* : (E,) arrays, see ``stress.compile.Portfolio``.
    holding_indptr, holding_exposure, holding_share : CSR rows of institutions' holdings.
    out_system : (n,) float64, written; loss on every exposure at 100 %.
    out_n_defaults : (n,) int64, written; defaulted named obligors.
    out_class : (n, C) float64, written
    out_institution : (n, I) float64, written; first-round loss Σ share × exposure loss.

    Inputs are not checked. An obligor defaults when ``W``-scaled ``a·Y + b·ε`` falls below its
    threshold, i.e. ``a·Y + b·ε < threshold / scale``.
    """
    n = factors.shape[0]
    n_obligors = obligor_threshold.shape[0]
    n_pools = pool_threshold.shape[0]
    n_exposures = exposure_ead.shape[0]
    defaulted = np.zeros(n_obligors, dtype=np.bool_)
    pool_fraction = np.zeros(n_pools)
    exposure_loss = np.zeros(n_exposures)
    for p in range(n):
        count = 0
        for o in range(n_obligors):
            latent = systematic(obligor_loadings, o, factors, p)
            latent += obligor_idio[o] * rng.standard_normal()
            defaulted[o] = latent < obligor_threshold[o] / scale[p]
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
        for e in range(n_exposures):
            t = exposure_target[e]
            if exposure_target_kind[e] == TARGET_OBLIGOR:
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
        aggregate_path(
            p,
            exposure_loss,
            exposure_class,
            holding_indptr,
            holding_exposure,
            holding_share,
            out_system,
            out_class,
            out_institution,
        )
