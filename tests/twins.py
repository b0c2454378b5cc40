"""Plain-Python twins of the Numba kernels, line for line in the same order of draws.

Numba's ``Generator`` methods reproduce NumPy's streams exactly, so a twin fed a generator
with the same seed must give the same numbers as its kernel (to rounding of the sums).
"""

from __future__ import annotations

import math

import numpy as np

from stress.compile import LGD_BETA, LGD_COLLATERAL, TARGET_OBLIGOR


def draw_factors_twin(rng, mean, loading, dof, n):
    k = mean.shape[0]
    factors = np.empty((n, k))
    scale = np.empty(n)
    for p in range(n):
        z = np.array([rng.standard_normal() for _ in range(k)])
        factors[p] = mean + loading @ z
        scale[p] = math.sqrt(dof / rng.chisquare(dof)) if dof > 0 else 1.0
    return factors, scale


def _lgd(rng, kind, p1, p2, factor_value, draw):
    if kind == LGD_BETA:
        return rng.beta(p1, p2) if draw else p1 / (p1 + p2)
    if kind == LGD_COLLATERAL:
        return min(1.0, max(0.0, p1 - p2 * factor_value))
    return p1


def simulate_losses_twin(rng, factors, scale, portfolio):
    pf = portfolio
    n = factors.shape[0]
    system = np.zeros(n)
    n_defaults = np.zeros(n, dtype=np.int64)
    classes = np.zeros((n, len(pf.class_names)))
    institutions = np.zeros((n, len(pf.institution_ids)))
    for p in range(n):
        y = factors[p]
        defaulted = []
        for o in range(len(pf.obligor_ids)):
            latent = float(pf.obligor_loadings[o] @ y) + pf.obligor_idio[o] * rng.standard_normal()
            defaulted.append(latent < pf.obligor_threshold[o] / scale[p])
        n_defaults[p] = sum(defaulted)
        fraction = []
        for q in range(len(pf.pool_ids)):
            shifted = pf.pool_threshold[q] / scale[p] - float(pf.pool_loadings[q] @ y)
            cond = 0.5 * math.erfc(-(shifted / pf.pool_idio[q]) * math.sqrt(0.5))
            if pf.pool_exact[q]:
                fraction.append(rng.binomial(pf.pool_count[q], cond) / pf.pool_count[q])
            else:
                fraction.append(cond)
        loss = np.zeros(len(pf.exposure_ids))
        for e in range(len(pf.exposure_ids)):
            t = pf.exposure_target[e]
            f = pf.exposure_lgd_factor[e]
            args = (pf.exposure_lgd_kind[e], pf.exposure_lgd_p1[e], pf.exposure_lgd_p2[e])
            factor_value = y[f] if f >= 0 else 0.0
            if pf.exposure_target_kind[e] == TARGET_OBLIGOR:
                if defaulted[t]:
                    loss[e] = pf.exposure_ead[e] * _lgd(rng, *args, factor_value, draw=True)
            else:
                loss[e] = (
                    pf.exposure_ead[e] * fraction[t] * _lgd(rng, *args, factor_value, draw=False)
                )
            classes[p, pf.exposure_class[e]] += loss[e]
        system[p] = loss.sum()
        for i in range(len(pf.institution_ids)):
            rows = range(pf.holding_indptr[i], pf.holding_indptr[i + 1])
            institutions[p, i] = sum(
                pf.holding_share[h] * loss[pf.holding_exposure[h]] for h in rows
            )
    return system, n_defaults, classes, institutions


def simulate_losses_fast_twin(rng, factors, scale, portfolio, dense_pd=0.4, small_group=4):
    """Twin of kernels.fast: groups, geometric gaps, losses booked for defaults only."""
    pf, f = portfolio, portfolio.fast
    n = factors.shape[0]
    system = np.zeros(n)
    n_defaults = np.zeros(n, dtype=np.int64)
    classes = np.zeros((n, len(pf.class_names)))
    institutions = np.zeros((n, len(pf.institution_ids)))

    def book(p, e, loss):
        classes[p, pf.exposure_class[e]] += loss
        for h in range(f.holder_indptr[e], f.holder_indptr[e + 1]):
            institutions[p, f.holder[h]] += f.holder_share[h] * loss

    for p in range(n):
        y = factors[p]
        rows = f.loading_rows @ y

        def default(m, p=p, y=y):
            """Default of the group member at position m of group_members."""
            n_defaults[p] += 1
            for k in range(f.member_exposure_indptr[m], f.member_exposure_indptr[m + 1]):
                e = f.member_exposure[k]
                args = (pf.exposure_lgd_kind[e], pf.exposure_lgd_p1[e], pf.exposure_lgd_p2[e])
                factor = pf.exposure_lgd_factor[e]
                value = y[factor] if factor >= 0 else 0.0
                loss = pf.exposure_ead[e] * _lgd(rng, *args, value, draw=True)
                system[p] += loss
                book(p, e, loss)

        for g in range(len(f.group_threshold)):
            shifted = f.group_threshold[g] * (1.0 / scale[p]) - rows[f.group_loading[g]]
            members = range(f.group_indptr[g], f.group_indptr[g + 1])
            if len(members) <= small_group:
                for m in members:
                    if f.group_idio[g] * rng.standard_normal() < shifted:
                        default(m)
                continue
            cond = 0.5 * math.erfc(-(shifted / f.group_idio[g]) * math.sqrt(0.5))
            if cond <= 0.0:
                continue
            if cond >= dense_pd:
                for m in members:
                    if rng.random() < cond:
                        default(m)
                continue
            position = -1
            while True:
                position += 1 + math.floor(math.log(rng.random()) / math.log1p(-cond))
                if position >= len(members):
                    break
                default(members[position])
        for q in range(len(pf.pool_ids)):
            shifted = pf.pool_threshold[q] * (1.0 / scale[p]) - float(pf.pool_loadings[q] @ y)
            fraction = 0.5 * math.erfc(-(shifted / pf.pool_idio[q]) * math.sqrt(0.5))
            if pf.pool_exact[q]:
                fraction = rng.binomial(pf.pool_count[q], fraction) / pf.pool_count[q]
            for e in f.pool_exposure[f.pool_exposure_indptr[q] : f.pool_exposure_indptr[q + 1]]:
                args = (pf.exposure_lgd_kind[e], pf.exposure_lgd_p1[e], pf.exposure_lgd_p2[e])
                factor = pf.exposure_lgd_factor[e]
                value = y[factor] if factor >= 0 else 0.0
                loss = pf.exposure_ead[e] * fraction * _lgd(rng, *args, value, draw=False)
                system[p] += loss
                book(p, e, loss)
    return system, n_defaults, classes, institutions
