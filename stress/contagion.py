"""Second-round losses of one block: interbank clearing or DebtRank, then fire sales.

Per path: first-round credit losses → Eisenberg–Noe clearing (with Rogers–Veraart default
costs, external liabilities pari passu or senior) or DebtRank (distress passed on in
proportion to equity lost) → fire sales by institutions whose capital ratio fell below the
trigger, marked down by every holder → the second round again with the fire-sale losses
added, until the fire-sale losses stop changing (at most ``max_rounds`` times; paths that hit
the bound are counted and reported in the run's manifest).

What the outputs mean, so they reconcile:

- ``contagion_loss``: interbank claims not repaid plus default costs (Eisenberg–Noe,
  Rogers–Veraart), or equity lost to neighbours' distress (DebtRank); 0 without a network;
- ``fire_sale_loss``: the mark-down of the marketable holdings an institution kept;
- total = first-round + contagion + fire-sale; capital after = capital − total;
- ``defaulted``: pays less than it owes (Eisenberg–Noe), fully distressed (DebtRank), or
  total loss ≥ capital (no network model);
- ``distressed``: total loss ≥ ``distress_threshold`` × capital.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.clearing import clear_paths
from kernels.distress import (
    DebtRankNetwork,
    debtrank_network,
    debtrank_paths_prepared,
    fire_sale_paths,
)
from stress.compile import ContagionLayout

# Relative change in fire-sale losses below which the second round has converged.
FIRE_SALE_TOLERANCE = 1e-12
DEBTRANK_TOLERANCE = 1e-12
# Linear DebtRank converges geometrically; with a 1e-12 tolerance a few hundred rounds are
# typical, so this bound is only hit by a network that does not contract.
DEBTRANK_MAX_ROUNDS = 10_000


@dataclass(frozen=True)
class SecondRound:
    """Second-round results of one block, each (n paths, I institutions)."""

    contagion_loss: np.ndarray
    fire_sale_loss: np.ndarray
    defaulted: np.ndarray
    distressed: np.ndarray
    # Paths stopped by a round bound before settling: DebtRank's own, the fire sale's, or
    # the bound on the rounds between the network and the fire sales.
    rounds_capped: int


def has_second_round(layout: ContagionLayout) -> bool:
    return layout.model != "none" or layout.fire_sales


def _network_round(
    layout: ContagionLayout,
    capital: np.ndarray,
    losses: np.ndarray,
    network: DebtRankNetwork | None,
    at_bound: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Contagion losses and defaults given each path's losses before the network
    (``network``: DebtRank's weights of ``capital``, made once for the block); flags in
    ``at_bound`` the paths DebtRank's round bound stopped."""
    n, width = losses.shape
    contagion = np.zeros((n, width))
    defaulted = np.zeros((n, width), dtype=np.bool_)
    if layout.model == "eisenberg-noe":
        # Credit losses never exceed the holdings and fire-sale losses are capped at what is
        # left, so external assets stay ≥ 0 (the clip only guards rounding).
        external = layout.external_assets + layout.holdings_value - losses
        payments = np.empty((n, width))
        clear_paths(
            np.ascontiguousarray(np.maximum(external, 0.0)),
            layout.owe_indptr,
            layout.owe_creditor,
            layout.owe_amount,
            layout.external_liabilities,
            layout.alpha,
            layout.beta,
            layout.senior_external,
            payments,
            contagion,
            defaulted,
        )
    elif layout.model == "debtrank":
        hit_cap = np.empty(n, dtype=np.bool_)
        debtrank_paths_prepared(
            np.ascontiguousarray(losses),
            network,
            layout.debtrank_linear,
            DEBTRANK_TOLERANCE,
            DEBTRANK_MAX_ROUNDS,
            contagion,
            defaulted,
            hit_cap,
        )
        at_bound |= hit_cap
    else:
        defaulted = losses >= capital
    return contagion, defaulted


def second_round(
    layout: ContagionLayout, capital: np.ndarray, first_round: np.ndarray
) -> SecondRound:
    """Run the second round on a block's first-round losses, shape (n, I)."""
    n, width = first_round.shape
    fire_sale = np.zeros((n, width))
    at_bound = np.zeros(n, dtype=np.bool_)
    # DebtRank's weights, once for the block and its fire-sale rounds.
    network = None
    if layout.model == "debtrank":
        network = debtrank_network(
            capital,
            layout.owe_indptr,
            layout.owe_creditor,
            layout.owe_amount,
            layout.debtrank_capped,
        )
    contagion, defaulted = _network_round(layout, capital, first_round, network, at_bound)
    if layout.fire_sales:
        threshold = np.full(width, layout.fire_sale_trigger)
        target = np.full(width, layout.fire_sale_target)
        classes = layout.marketable.shape[1]
        unsettled = np.zeros(n, dtype=np.bool_)
        sold = np.empty((n, width, classes))
        price_change = np.empty((n, classes))
        fire_sale_capped = np.empty(n, dtype=np.bool_)
        # A mark-down cannot take more than the assets left after the credit losses; the cap
        # keeps the balance sheet, and so the reconciliation, whole.
        room = np.maximum(layout.external_assets + layout.holdings_value - first_round, 0.0)
        for _ in range(layout.max_rounds):
            new_fire_sale = np.empty((n, width))
            fire_sale_paths(
                np.ascontiguousarray(capital - first_round - contagion),
                layout.total_liabilities,
                layout.marketable,
                threshold,
                target,
                layout.price_impact,
                layout.market_depth,
                layout.fire_sale_exponential,
                FIRE_SALE_TOLERANCE,
                layout.max_rounds,
                new_fire_sale,
                sold,
                price_change,
                fire_sale_capped,
            )
            at_bound |= fire_sale_capped
            new_fire_sale = np.minimum(new_fire_sale, room)
            unsettled = ~np.isclose(
                new_fire_sale, fire_sale, rtol=FIRE_SALE_TOLERANCE, atol=0.0
            ).all(axis=1)
            fire_sale = new_fire_sale
            if not unsettled.any():
                break
            # Fire-sale losses are losses before the network too: clear again with them.
            contagion, defaulted = _network_round(
                layout, capital, first_round + fire_sale, network, at_bound
            )
        # Paths still moving when the bound was reached count as capped.
        at_bound |= unsettled
    total = first_round + contagion + fire_sale
    distressed = total >= layout.distress_threshold * capital
    return SecondRound(contagion, fire_sale, defaulted, distressed, int(at_bound.sum()))
