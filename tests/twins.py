"""Plain-Python twins of the Numba kernels, line for line in the same order of draws.

Numba's ``Generator`` methods reproduce NumPy's streams exactly, so a twin fed a generator
with the same seed must give the same numbers as its kernel (to rounding of the sums).
"""

from __future__ import annotations

import math

import numpy as np

from kernels.fast import DENSE_HAZARD, HAZARD_BOUNDS, N_STEPS, STEPS, X_MIN
from stress.compile import (
    LGD_BETA,
    LGD_COLLATERAL,
    TARGET_INSTITUTION,
    TARGET_OBLIGOR,
    TARGET_POOL,
    TARGET_TRANCHE,
)


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


def vehicles_twin(rng, y, inverse_scale, defaulted, lessee, sponsor, vehicles):
    """Twin of kernels.mechanics.vehicle_losses: (asset loss, paid, event, tranche losses)."""
    v = vehicles
    n_vehicles = len(v.ids)
    asset, paid, event = np.zeros(n_vehicles), np.zeros(n_vehicles), np.zeros(n_vehicles, int)
    tranche = np.zeros(len(v.tranche_ids))
    for j in range(n_vehicles):
        if defaulted[lessee[j]]:
            event[j] |= 1
        if v.renewal_threshold[j] > -math.inf:
            latent = float(v.renewal_loadings[j] @ y) + v.renewal_idio[j] * rng.standard_normal()
            if latent < v.renewal_threshold[j] * inverse_scale:
                event[j] |= 2
        shortfall = 0.0
        if event[j]:
            f = v.recovery_factor[j]
            value = v.recovery_base[j] + (v.recovery_sensitivity[j] * y[f] if f >= 0 else 0.0)
            shortfall = v.asset_value[j] * (1.0 - min(1.0, max(0.0, value)))
        if shortfall > 0 and sponsor[j] >= 0 and not defaulted[sponsor[j]]:
            paid[j] = min(shortfall, v.guarantee_cap[j])
        asset[j] = shortfall - paid[j]
        for t in range(v.tranche_indptr[j], v.tranche_indptr[j + 1]):
            tranche[t] = min(max(asset[j] - v.tranche_attach[t], 0.0), v.tranche_width[t])
    return asset, paid, event, tranche


def simulate_losses_twin(rng, factors, scale, portfolio):
    pf = portfolio
    n = factors.shape[0]
    system = np.zeros(n)
    n_defaults = np.zeros(n, dtype=np.int64)
    classes = np.zeros((n, len(pf.class_names)))
    institutions = np.zeros((n, len(pf.institution_ids)))
    vehicles = []
    for p in range(n):
        y = factors[p]
        defaulted = [False] * len(pf.obligor_ids)
        for o in pf.obligor_order:
            threshold = pf.obligor_threshold[o]
            for d in range(pf.dependency_indptr[o], pf.dependency_indptr[o + 1]):
                if defaulted[pf.dependency_customer[d]]:
                    threshold += pf.dependency_shift[d]
            latent = float(pf.obligor_loadings[o] @ y) + pf.obligor_idio[o] * rng.standard_normal()
            defaulted[o] = latent < threshold / scale[p]
        n_defaults[p] = sum(defaulted)
        fraction = []
        for q in range(len(pf.pool_ids)):
            shifted = pf.pool_threshold[q] / scale[p] - float(pf.pool_loadings[q] @ y)
            cond = 0.5 * math.erfc(-(shifted / pf.pool_idio[q]) * math.sqrt(0.5))
            if pf.pool_exact[q]:
                fraction.append(rng.binomial(pf.pool_count[q], cond) / pf.pool_count[q])
            else:
                fraction.append(cond)
        vehicle = vehicles_twin(
            rng,
            y,
            1.0 / scale[p],
            defaulted,
            pf.vehicles.lessee,
            pf.vehicles.sponsor,
            pf.vehicles,
        )
        vehicles.append(vehicle)
        loss = np.zeros(len(pf.exposure_ids))
        for e in range(len(pf.exposure_ids)):
            t = pf.exposure_target[e]
            f = pf.exposure_lgd_factor[e]
            args = (pf.exposure_lgd_kind[e], pf.exposure_lgd_p1[e], pf.exposure_lgd_p2[e])
            factor_value = y[f] if f >= 0 else 0.0
            kind = pf.exposure_target_kind[e]
            if kind == TARGET_OBLIGOR:
                if defaulted[t]:
                    loss[e] = pf.exposure_ead[e] * _lgd(rng, *args, factor_value, draw=True)
            elif kind == TARGET_POOL:
                loss[e] = (
                    pf.exposure_ead[e] * fraction[t] * _lgd(rng, *args, factor_value, draw=False)
                )
            elif kind == TARGET_TRANCHE:
                loss[e] = vehicle[3][t]

        def holdings_loss(i, loss=loss):
            rows = range(pf.holding_indptr[i], pf.holding_indptr[i + 1])
            return sum(pf.holding_share[h] * loss[pf.holding_exposure[h]] for h in rows)

        lt = pf.lookthrough
        for f in range(len(lt.institution)):
            excess = holdings_loss(lt.institution[f]) - lt.capital[f]
            if excess > 0:
                for e in lt.exposure[lt.exposure_indptr[f] : lt.exposure_indptr[f + 1]]:
                    loss[e] = pf.exposure_ead[e] * min(1.0, excess / lt.debt[f])
        for e in range(len(pf.exposure_ids)):
            classes[p, pf.exposure_class[e]] += loss[e]
        system[p] = loss[pf.exposure_target_kind != TARGET_INSTITUTION].sum()
        for i in range(len(pf.institution_ids)):
            institutions[p, i] = holdings_loss(i)
    return system, n_defaults, classes, institutions, _stack(vehicles, pf)


def _stack(vehicles, pf):
    """Per-path vehicle tuples as (n, V) and (n, T) arrays."""
    n_v, n_t = len(pf.vehicles.ids), len(pf.vehicles.tranche_ids)
    if not vehicles:
        return tuple(np.zeros((0, m)) for m in (n_v, n_v, n_v, n_t))
    return tuple(np.array([v[k] for v in vehicles]).reshape(len(vehicles), -1) for k in range(4))


def simulate_losses_fast_twin(rng, factors, scale, portfolio, dense_hazard=DENSE_HAZARD):
    """Twin of kernels.fast: one Exp(1) budget across the groups, candidates at the bounds'
    upper hazard, each kept when what is left of the budget in its member is below the exact
    hazard. It decides with the exact hazard every time and checks that it lies within the
    bounds the kernel decides with."""
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

    def bounds(x):
        """The hazard bounds and 1 / upper bound of x, as kernels.fast.HAZARD_BOUNDS."""
        t = (x - X_MIN) * STEPS
        row = 0 if not t >= 0 else (N_STEPS + 1 if t >= N_STEPS else int(t) + 1)
        return HAZARD_BOUNDS[row, 0], HAZARD_BOUNDS[row, 1], HAZARD_BOUNDS[row, 2]

    vehicles = []
    for p in range(n):
        y = factors[p]
        rows = f.loading_rows @ y
        watch = [False] * max(f.n_watch, 1)

        def default(first, last, exposures, p=p, y=y):
            """Default of an obligor whose exposures are exposures[first:last]."""
            n_defaults[p] += 1
            for k in range(first, last):
                e = exposures[k]
                args = (pf.exposure_lgd_kind[e], pf.exposure_lgd_p1[e], pf.exposure_lgd_p2[e])
                factor = pf.exposure_lgd_factor[e]
                value = y[factor] if factor >= 0 else 0.0
                loss = pf.exposure_ead[e] * _lgd(rng, *args, value, draw=True)
                system[p] += loss
                book(p, e, loss)

        def member_default(m, default=default, watch=watch):
            if f.member_watch[m] >= 0:
                watch[f.member_watch[m]] = True
            default(f.member_exposure_indptr[m], f.member_exposure_indptr[m + 1], f.member_exposure)

        budget = rng.standard_exponential()
        for g in range(len(f.group_threshold)):
            x = (f.group_threshold[g] * (1.0 / scale[p]) - rows[f.group_loading[g]]) * (
                f.group_inverse_idio[g]
            )
            # A member defaults when an Exp(1) variate falls below this hazard.
            hazard = -math.log1p(-0.5 * math.erfc(-x * math.sqrt(0.5)))
            low, high, inverse_high = bounds(x)
            assert low <= hazard <= high or math.isnan(x)
            first, members = f.group_indptr[g], f.group_indptr[g + 1] - f.group_indptr[g]
            if high >= dense_hazard:
                for j in range(members):
                    if rng.standard_exponential() < hazard:
                        member_default(first + j)
                continue
            start = 0
            while budget < (members - start) * high:
                j = min(start + int(budget * inverse_high), members - 1)
                draw = budget - (j - start) * high
                start = j + 1
                if draw < hazard:
                    member_default(first + j)
                budget = rng.standard_exponential()
            budget -= (members - start) * high
        for d in range(len(f.dependent_threshold)):
            threshold = f.dependent_threshold[d]
            for c in range(f.dependent_customer_indptr[d], f.dependent_customer_indptr[d + 1]):
                if watch[f.dependent_customer[c]]:
                    threshold += f.dependent_shift[c]
            latent = (
                float(f.dependent_loadings[d] @ y) + f.dependent_idio[d] * rng.standard_normal()
            )
            if latent < threshold * (1.0 / scale[p]):
                watch[f.dependent_watch[d]] = True
                default(
                    f.dependent_exposure_indptr[d],
                    f.dependent_exposure_indptr[d + 1],
                    f.dependent_exposure,
                )
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
        vehicle = vehicles_twin(
            rng, y, 1.0 / scale[p], watch, f.vehicle_lessee, f.vehicle_sponsor, pf.vehicles
        )
        vehicles.append(vehicle)
        for t, e in enumerate(pf.vehicles.tranche_exposure):
            system[p] += vehicle[3][t]
            book(p, e, vehicle[3][t])
        lt = pf.lookthrough
        for g in range(len(lt.institution)):
            excess = institutions[p, lt.institution[g]] - lt.capital[g]
            if excess > 0:
                for e in lt.exposure[lt.exposure_indptr[g] : lt.exposure_indptr[g + 1]]:
                    book(p, e, pf.exposure_ead[e] * min(1.0, excess / lt.debt[g]))
    return system, n_defaults, classes, institutions, _stack(vehicles, pf)
