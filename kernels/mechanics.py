"""AI-infrastructure financing mechanics on one path, shared by the loss kernels.

Vehicles (SPVs, lease vehicles, ABS issuers) and their tranches, after the path's obligor
defaults are known. The kernels differ in how they record defaults (every obligor, or only
the watched ones), so a vehicle's lessee and sponsor come in as indices into ``defaulted``,
whichever array that is.
"""

from __future__ import annotations

import math

from kernels._jit import jit
from kernels.common import systematic

# Bits of a vehicle's event code on a path.
EVENT_LESSEE_DEFAULT = 1
EVENT_NON_RENEWAL = 2


@jit
def vehicle_losses(
    rng,
    factors,
    path,
    inverse_scale,
    defaulted,
    lessee,
    sponsor,
    vehicles,
    out_asset,
    out_guarantee,
    out_event,
    out_tranche,
):
    """Asset loss, guarantee paid, event code and tranche losses of every vehicle on a path.

    Draws one standard normal per vehicle with a non-renewal clause (``renewal_threshold``
    above −inf), in vehicle order, whether or not the lessee has defaulted, so that the
    non-renewal event has the same law on every path. The asset is hit when the lessee
    defaults or does not renew; it then keeps ``clip(base + sensitivity × Y_f, 0, 1)`` of its
    value, the sponsor (if it has not defaulted) pays the shortfall up to its cap, and the
    rest is the asset loss. Tranche t loses ``clip(loss − attach, 0, width)``, which is
    clip((ℓ − a)/(d − a), 0, 1) × notional with ℓ the loss as a fraction of the asset.

    ``vehicles`` is ``stress.compile.VehicleLayout.kernel_arguments()``: one tuple, so that
    the loss kernels pass the vehicles on without listing a dozen arrays.
    """
    (
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
        _,
    ) = vehicles
    for v in range(asset_value.shape[0]):
        event = 0
        if defaulted[lessee[v]]:
            event |= EVENT_LESSEE_DEFAULT
        if renewal_threshold[v] > -math.inf:
            latent = systematic(renewal_loadings, v, factors, path)
            latent += renewal_idio[v] * rng.standard_normal()
            if latent < renewal_threshold[v] * inverse_scale:
                event |= EVENT_NON_RENEWAL
        shortfall = 0.0
        if event != 0:
            recovered = recovery_base[v]
            if recovery_factor[v] >= 0:
                recovered += recovery_sensitivity[v] * factors[path, recovery_factor[v]]
            recovered = min(1.0, max(0.0, recovered))
            shortfall = asset_value[v] * (1.0 - recovered)
        paid = 0.0
        if shortfall > 0.0 and sponsor[v] >= 0 and not defaulted[sponsor[v]]:
            paid = min(shortfall, guarantee_cap[v])
        loss = shortfall - paid
        out_event[path, v] = event
        out_guarantee[path, v] = paid
        out_asset[path, v] = loss
        for t in range(tranche_indptr[v], tranche_indptr[v + 1]):
            out_tranche[path, t] = min(max(loss - tranche_attach[t], 0.0), tranche_width[t])
