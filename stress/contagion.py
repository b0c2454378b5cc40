"""Second-round losses of one block: interbank clearing or DebtRank, then fire sales.

Per path: first-round credit losses → Eisenberg–Noe clearing (with Rogers–Veraart default
costs, external liabilities pari passu or senior) or DebtRank (distress passed on in
proportion to equity lost) → fire sales by institutions whose capital ratio fell below the
trigger, marked down by every holder → the network again with the fire-sale losses added →
more sales, resumed from where the last stopped (sales are never undone) on the capital now
left, and so on until nobody sells (at most ``max_rounds`` times; paths stopped by a bound are
counted and reported in the run's manifest). Losses only grow from round to round, so the
rounds settle; recomputing the fire sales from scratch each round instead can alternate
between two states, since a seller's mark-down falls when it sells more.

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
    fire_sale_resume_paths,
)
from stress.compile import ContagionLayout

# A sale of at most this share of the seller's assets is not made: the fire sales, and so
# the rounds between them and the network, settle.
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
        # Each path's fire-sale state, carried from one round to the next: what is left to
        # sell, the liabilities the sales have not repaid, and each class's amount sold (its
        # price). Sales are never undone, so losses only grow and the rounds settle.
        remaining = np.empty((n, width, classes))
        remaining[:] = layout.marketable
        liabilities = np.empty((n, width))
        liabilities[:] = layout.total_liabilities
        class_sold = np.zeros((n, classes))
        marks = np.empty((n, width))
        rounds = np.zeros(n, dtype=np.int64)
        fire_sale_capped = np.empty(n, dtype=np.bool_)
        # A mark-down cannot take more than the assets left after the credit losses; the cap
        # keeps the balance sheet, and so the reconciliation, whole.
        room = np.maximum(layout.external_assets + layout.holdings_value - first_round, 0.0)
        for _ in range(layout.max_rounds):
            # Sales resume from where they stopped, on the capital left after every loss so
            # far: the network's of this round and the mark-downs of the earlier ones.
            fire_sale_resume_paths(
                np.ascontiguousarray(capital - first_round - contagion - fire_sale),
                liabilities,
                remaining,
                class_sold,
                threshold,
                target,
                layout.price_impact,
                layout.market_depth,
                layout.fire_sale_exponential,
                FIRE_SALE_TOLERANCE,
                layout.max_rounds,
                marks,
                rounds,
                fire_sale_capped,
            )
            at_bound |= fire_sale_capped
            if not rounds.any():
                break
            fire_sale = np.minimum(fire_sale + marks, room)
            # Fire-sale losses are losses before the network too: clear again with them.
            contagion, defaulted = _network_round(
                layout, capital, first_round + fire_sale, network, at_bound
            )
        else:
            # Paths that sold in the last round allowed may have sold more after its network.
            at_bound |= rounds > 0
    total = first_round + contagion + fire_sale
    distressed = total >= layout.distress_threshold * capital
    return SecondRound(contagion, fire_sale, defaulted, distressed, int(at_bound.sum()))
