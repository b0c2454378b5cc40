"""Second-round losses of one path: DebtRank on the interbank network, then fire sales.

DebtRank
--------
n institutions with capital (equity) E_j > 0 owe each other: the interbank claims are a CSR
matrix by debtor, ``owe_amount[k]`` owed by debtor i to creditor ``owe_creditor[k]`` for k in
``owe_indptr[i]:owe_indptr[i + 1]``. The impact of i's distress on creditor j is

    W_ij = A_ij / E_j                (uncapped)
    W_ij = min(1, A_ij / E_j)        (capped, Battiston et al. 2012)

with A_ij the amount i owes j: j loses the fraction W_ij h_i of its equity when i has lost the
fraction h_i of its own. The weight, and so the cap, is per listed claim: a pair listed twice
adds two weights, each capped, so list each (debtor, creditor) pair once for Battiston's cap
on the pair. The relative equity loss h_j stays in [0, 1]; it starts from the
path's first-round loss, h_j(0) = min(1, max(0, loss_j / E_j)) (a gain is no distress).

Capped and uncapped differ only on links whose claim exceeds the creditor's capital
(A_ij > E_j), and only while the debtor is partially distressed. A fully distressed debtor
(h_i = 1) wipes the creditor out either way: 1·1 = 1 capped, A_ij / E_j ≥ 1 clipped to 1
uncapped. A debtor at h_i < 1 passes h_i capped (the creditor loses at most the debtor's own
relative loss, as if the claim were no larger than the creditor's capital) but
min(1, (A_ij / E_j) h_i) uncapped (its partial loss is amplified by the creditor's leverage
on the claim): with A_ij = 4 E_j and h_i = 0.2, 0.2 capped against 0.8 uncapped. The clip
h ≤ 1 caps a creditor's total loss in both; the cap on W limits each link's amplification.

Two propagation rules:

- ``single_pass`` (Battiston et al. 2012). Each node is Undistressed, Distressed or Inactive;
  nodes with h(0) > 0 start Distressed, the rest Undistressed. In each round, all at once,
  every Distressed node i passes its h_i as it stood at the start of the round,
  h_j ← min(1, h_j + Σ_{i Distressed} W_ij h_i) for every node j (Inactive ones included),
  then every Distressed node becomes Inactive and every Undistressed node whose h rose above
  0 becomes Distressed. A node propagates exactly once: distress it receives in the round it
  propagates, or any later round, raises its own h but is never passed on. Stops when no
  node is Distressed (at most n rounds).
- ``linear`` (Bardoscia et al. 2015). Every increase propagates:
  h_j(t+1) = min(1, h_j(t) + Σ_i W_ij (h_i(t) − h_i(t−1))) with h(−1) = 0, so the first
  round passes on the whole first-round distress. Stops after the first round whose largest
  increase max_j (h_j(t+1) − h_j(t)) is at most ``tol``; that last increase is not passed on.

``rounds`` counts every round run, including the last one that found nothing (single pass)
or too little (linear) to pass on. ``hit_cap`` is true when ``max_rounds`` rounds stopped the
iteration while it still had something to pass on.

Fire sales (Cont & Schaanning 2017)
-----------------------------------
Institution i holds marketable classes worth ``holdings[i, c]`` at pre-fire-sale prices, has
capital E_i (after the earlier rounds of the path; it may be ≤ 0) and liabilities D_i, so
total assets A_i = E_i + D_i: losses on assets reduce capital one for one and leave
liabilities alone. The capital ratio is the unweighted E_i / A_i, and target_i ≥ threshold_i.
Prices P_c are relative to the pre-fire-sale price (start at 1). Each round:

1. Every institution with marketable holdings left (M_i = Σ_c q_ic P_c > 0) whose capital
   ratio is below its threshold (E_i < threshold_i · A_i) sells
   s_i = min(M_i, A_i − E_i / target_i), the amount that brings E_i / A_i back to target_i
   when sales neither gain nor lose (all of M_i if that is not enough, in particular when
   E_i ≤ 0), provided s_i > tol · A_i. It sells the same fraction s_i / M_i of every class.
2. Sales execute at the prices of the start of the round, and the proceeds repay
   liabilities: A_i falls by s_i, E_i is unchanged.
3. Prices move on the cumulative amount sold Q_c = Σ_i sold_ic (measured at pre-fire-sale
   prices): P_c = max(0, 1 − impact_c Q_c / depth_c) (linear) or exp(−impact_c Q_c / depth_c)
   (exponential). So a price path depends on the total sold, not on how it was split into
   rounds, and always lies in [0, 1].
4. Every institution marks the holdings it still has down: the loss
   Σ_c q_ic (P_c before − P_c after) reduces E_i and A_i. The amounts sold in this round bear
   no loss (Cont–Schaanning: mark-to-market losses on remaining holdings only; sellers book no
   execution loss, which understates their losses against a sale at the new or a mid price).

Rounds repeat until no institution sells (the fixed point: everyone at or above its
threshold, out of marketable assets, or with a sale of at most tol · A_i). ``rounds`` counts
the rounds with sales; ``hit_cap`` is true when ``max_rounds`` such rounds left someone still
wanting to sell. The fire-sale loss is the loss of asset value and is not limited to the
capital: E_i may end below 0.

``fire_sale_resume_paths`` resumes these rounds from the state earlier ones left (holdings
left, liabilities not yet repaid, amounts sold and so prices) on capital that later losses
have cut; from the state before any sale it is ``fire_sale``, bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels._jit import jit
from kernels.common import creditor_major_order
from kernels.simd import LANES, WIDE, WIDTH, propagate_row, propagate_wide_row, scatter_terms

# DebtRank node states.
UNDISTRESSED = 0
DISTRESSED = 1
INACTIVE = 2


@jit
def impact_weights(capital, owe_indptr, owe_creditor, owe_amount, capped, out_weight):
    """W for every listed claim: ``out_weight[k] = owe_amount[k] / capital[creditor]``.

    Parameters
    ----------
    capital : (n,) float64, > 0
    owe_indptr : (n + 1,) int64; owe_creditor : (m,) int64; owe_amount : (m,) float64
    capped : bool
        Cap each weight at 1 (Battiston et al. 2012).
    out_weight : (m,) float64, written

    Inputs are not checked.
    """
    for k in range(owe_creditor.shape[0]):
        w = owe_amount[k] / capital[owe_creditor[k]]
        if capped and w > 1.0:
            w = 1.0
        out_weight[k] = w


@jit
def initial_distress(first_round_loss, capital, out_h):
    """h(0) = min(1, max(0, loss / E)), into ``out_h`` (n,). Inputs are not checked."""
    for j in range(capital.shape[0]):
        out_h[j] = min(1.0, max(0.0, first_round_loss[j] / capital[j]))


# Partial sums per node in the rounds (``kernels.simd.LANES`` = 4): a node's terms go
# round-robin into LANES sums (its t-th listed debtor into sum t mod LANES), added up as
# (s0 + s1) + (s2 + s3) at the end. One running sum is bound by the latency of the additions;
# four keep the loads busy.


@jit
def creditor_major_weights(owe_indptr, owe_creditor, weight):
    """The weights by creditor, for the gathers of the rounds.

    For creditor j and t in ``by_indptr[j]:by_indptr[j + 1]``: debtor ``by_debtor[t]``
    (uint32, ascending, and in listing order for a repeated pair) and its weight
    ``by_weight[t]``.
    ``slot[k]`` = LANES·j + (t − by_indptr[j]) mod LANES for the claim k of the debtor-major
    list that is entry t: the partial sum it goes to, so that a scatter adds each term to the
    same partial sum, in the same order, as the gather.
    """
    n = owe_indptr.shape[0] - 1
    m = owe_creditor.shape[0]
    by_indptr, position = creditor_major_order(owe_indptr, owe_creditor)
    by_debtor = np.empty(m, dtype=np.uint32)  # half an int64's traffic in the gathers
    by_weight = np.empty(m)
    slot = np.empty(m, dtype=np.int64)
    for i in range(n):
        for k in range(owe_indptr[i], owe_indptr[i + 1]):
            c = owe_creditor[k]
            t = position[k]
            by_debtor[t] = i
            by_weight[t] = weight[k]
            slot[k] = LANES * c + (t - by_indptr[c]) % LANES
    return by_indptr, by_debtor, by_weight, slot


@jit
def _propagate(owe_indptr, weight, by_indptr, by_debtor, by_weight, slot, push, h, out, incoming):
    """out_j = min(1, h_j + Σ_i W_ij push_i) for every j (push ≥ 0); out may be h.

    Either a scatter over the claims of the nodes with push > 0 or a gather over the debtors
    of the nodes below h = 1 (a node at 1 stays there: the terms are ≥ 0), whichever lists
    fewer claims. Both add a node's terms into the same LANES partial sums in the same order,
    so the choice does not change a bit. The gather stops once the partial sums reach 1:
    rounding is monotone, so the full sum would reach it too and the clip gives exactly 1;
    on a wide shock most nodes saturate after a part of their debtors. ``incoming``
    (LANES·n,) is scratch.
    """
    n = h.shape[0]
    scatter_work = 0
    gather_work = 0
    for i in range(n):
        if push[i] > 0.0:
            scatter_work += owe_indptr[i + 1] - owe_indptr[i]
        if h[i] < 1.0:
            gather_work += by_indptr[i + 1] - by_indptr[i]
    # The gather stops early and touches no scratch: prefer it unless the scatter is much
    # less work (few nodes passing on distress).
    if 2 * scatter_work < gather_work:
        for t in range(LANES * n):
            incoming[t] = 0.0
        for i in range(n):
            if push[i] > 0.0:
                for k in range(owe_indptr[i], owe_indptr[i + 1]):
                    incoming[slot[k]] += weight[k] * push[i]
        for j in range(n):
            t = LANES * j
            acc = (incoming[t] + incoming[t + 1]) + (incoming[t + 2] + incoming[t + 3])
            out[j] = min(1.0, h[j] + acc) if acc != 0.0 else h[j]
        return
    for j in range(n):
        h_j = h[j]
        if h_j >= 1.0:
            out[j] = h_j
            continue
        acc0 = 0.0
        acc1 = 0.0
        acc2 = 0.0
        acc3 = 0.0
        t = by_indptr[j]
        end = by_indptr[j + 1]
        acc = 0.0
        while t + LANES <= end:
            acc0 += by_weight[t] * push[by_debtor[t]]
            acc1 += by_weight[t + 1] * push[by_debtor[t + 1]]
            acc2 += by_weight[t + 2] * push[by_debtor[t + 2]]
            acc3 += by_weight[t + 3] * push[by_debtor[t + 3]]
            t += LANES
            acc = (acc0 + acc1) + (acc2 + acc3)
            if h_j + acc >= 1.0:
                break
        if h_j + acc < 1.0:
            # The last (end − t) mod LANES terms, into the first sums.
            if t < end:
                acc0 += by_weight[t] * push[by_debtor[t]]
            if t + 1 < end:
                acc1 += by_weight[t + 1] * push[by_debtor[t + 1]]
            if t + 2 < end:
                acc2 += by_weight[t + 2] * push[by_debtor[t + 2]]
            acc = (acc0 + acc1) + (acc2 + acc3)
        out[j] = min(1.0, h_j + acc) if acc != 0.0 else h_j


@jit
def _single_pass(
    owe_indptr,
    weight,
    by_indptr,
    by_debtor,
    by_weight,
    slot,
    max_rounds,
    h,
    push,
    incoming,
    state,
):
    """Battiston et al. (2012) rounds on ``h`` (n,), in place; returns (rounds, hit_cap)."""
    n = h.shape[0]
    active = False
    for j in range(n):
        if h[j] > 0.0:
            state[j] = DISTRESSED
            active = True
        else:
            state[j] = UNDISTRESSED
    rounds = 0
    hit_cap = False
    while active:
        if rounds == max_rounds:
            hit_cap = True
            break
        # What each node passes on, fixed before any h moves, so a node that is Distressed
        # and also receives this round passes on only what it had at the start of the round.
        for i in range(n):
            if state[i] == DISTRESSED:
                push[i] = h[i]
                state[i] = INACTIVE
            else:
                push[i] = 0.0
        _propagate(owe_indptr, weight, by_indptr, by_debtor, by_weight, slot, push, h, h, incoming)
        active = False
        for j in range(n):
            if state[j] == UNDISTRESSED and h[j] > 0.0:
                state[j] = DISTRESSED
                active = True
        rounds += 1
    return rounds, hit_cap


@jit
def _linear(
    owe_indptr,
    weight,
    by_indptr,
    by_debtor,
    by_weight,
    slot,
    tol,
    max_rounds,
    h,
    increase,
    new_h,
    incoming,
):
    """Bardoscia et al. (2015) rounds on ``h`` (n,), in place; returns (rounds, hit_cap)."""
    n = h.shape[0]
    active = False
    for j in range(n):
        # h(−1) = 0: the first round passes on the whole first-round distress.
        increase[j] = h[j]
        if h[j] > 0.0:
            active = True
    rounds = 0
    hit_cap = False
    while active:
        if rounds == max_rounds:
            hit_cap = True
            break
        _propagate(
            owe_indptr,
            weight,
            by_indptr,
            by_debtor,
            by_weight,
            slot,
            increase,
            h,
            new_h,
            incoming,
        )
        change = 0.0
        for j in range(n):
            # The increase actually taken, after the clip: a saturated node passes on nothing.
            increase[j] = new_h[j] - h[j]
            h[j] = new_h[j]
            if increase[j] > change:
                change = increase[j]
        rounds += 1
        active = change > tol
    return rounds, hit_cap


@jit
def _reach(by_indptr, by_weight):
    """Per creditor, its terms per unit of weight: length / Σ W (inf for a row of weight 0)."""
    n = by_indptr.shape[0] - 1
    reach = np.empty(n)
    for j in range(n):
        total = 0.0
        for t in range(by_indptr[j], by_indptr[j + 1]):
            total += by_weight[t]
        reach[j] = (by_indptr[j + 1] - by_indptr[j]) / total if total > 0.0 else np.inf
    return reach


class DebtRankNetwork(NamedTuple):
    """A network's DebtRank weights, both ways, with the capital and cap they were made of
    (``debtrank_network``)."""

    capital: np.ndarray  # (n,) equity E, the denominator of h and of W
    capped: bool
    owe_indptr: np.ndarray  # (n + 1,) claims by debtor, as given
    weight: np.ndarray  # (m,) W per claim, by debtor (``impact_weights``)
    by_indptr: np.ndarray  # (n + 1,) and the rest: by creditor (``creditor_major_weights``)
    by_debtor: np.ndarray
    by_weight: np.ndarray
    slot: np.ndarray
    reach: np.ndarray  # (n,) terms per unit of weight (``_reach``)


@jit
def debtrank_network(capital, owe_indptr, owe_creditor, owe_amount, capped):
    """The weights of a network for ``debtrank_paths_prepared``, made once and reused by every
    block on the same capital, claims and cap. Inputs are not checked."""
    weight = np.empty(owe_creditor.shape[0])
    impact_weights(capital, owe_indptr, owe_creditor, owe_amount, capped, weight)
    by_indptr, by_debtor, by_weight, slot = creditor_major_weights(owe_indptr, owe_creditor, weight)
    return DebtRankNetwork(
        capital,
        capped,
        owe_indptr,
        weight,
        by_indptr,
        by_debtor,
        by_weight,
        slot,
        _reach(by_indptr, by_weight),
    )


@jit
def _debtrank(
    first_round_loss,
    network,
    variant_linear,
    tol,
    max_rounds,
    h,
    scratch,
    state,
    out_contagion_loss,
    out_defaulted,
):
    """One path into h (n,), on the weights of ``debtrank_network``, with scratch
    (3 + LANES, n) float64 and state (n,) int8."""
    n = h.shape[0]
    capital = network.capital
    owe_indptr, weight, slot = network.owe_indptr, network.weight, network.slot
    by_indptr, by_debtor, by_weight = network.by_indptr, network.by_debtor, network.by_weight
    h0 = scratch[0]
    push = scratch[1]
    new_h = scratch[2]
    incoming = scratch[3:].reshape(LANES * n)
    initial_distress(first_round_loss, capital, h)
    for j in range(h.shape[0]):
        h0[j] = h[j]
    if variant_linear:
        rounds, hit_cap = _linear(
            owe_indptr,
            weight,
            by_indptr,
            by_debtor,
            by_weight,
            slot,
            tol,
            max_rounds,
            h,
            push,
            new_h,
            incoming,
        )
    else:
        rounds, hit_cap = _single_pass(
            owe_indptr,
            weight,
            by_indptr,
            by_debtor,
            by_weight,
            slot,
            max_rounds,
            h,
            push,
            incoming,
            state,
        )
    for j in range(h.shape[0]):
        out_contagion_loss[j] = (h[j] - h0[j]) * capital[j]
        out_defaulted[j] = h[j] >= 1.0
    return rounds, hit_cap


@jit
def debtrank(
    first_round_loss,
    capital,
    owe_indptr,
    owe_creditor,
    owe_amount,
    variant_linear,
    capped,
    tol,
    max_rounds,
    out_h,
    out_contagion_loss,
    out_defaulted,
):
    """DebtRank contagion of one path (see the module docstring for the exact rules).

    Parameters
    ----------
    first_round_loss : (n,) float64
        The path's losses before contagion, in currency; h(0) = min(1, max(0, loss / E)).
    capital : (n,) float64, > 0
        Equity E before the first-round losses; the denominator of h and of W.
    owe_indptr : (n + 1,) int64; owe_creditor : (m,) int64; owe_amount : (m,) float64
        Interbank claims by debtor: debtor i owes ``owe_creditor[k]`` the amount
        ``owe_amount[k]`` for k in ``owe_indptr[i]:owe_indptr[i + 1]``.
    variant_linear : bool
        ``linear`` (Bardoscia et al. 2015) if true, else ``single_pass`` (Battiston et al.
        2012).
    capped : bool
        W = min(1, A / E) if true, else A / E.
    tol : float
        ``linear`` only: stop after a round whose largest increase of h is at most tol.
    max_rounds : int
        Rounds allowed.
    out_h : (n,) float64, written
        Final relative equity loss h, in [0, 1].
    out_contagion_loss : (n,) float64, written
        (h − h(0)) · E: equity lost to the neighbours' distress, beyond the first round.
    out_defaulted : (n,) bool, written
        h ≥ 1.

    Returns
    -------
    rounds : int
    hit_cap : bool
        ``max_rounds`` stopped the iteration while it still had distress to pass on.

    Inputs are not checked.
    """
    n = capital.shape[0]
    return _debtrank(
        first_round_loss,
        debtrank_network(capital, owe_indptr, owe_creditor, owe_amount, capped),
        variant_linear,
        tol,
        max_rounds,
        out_h,
        np.empty((3 + LANES, n)),
        np.empty(n, dtype=np.int8),
        out_contagion_loss,
        out_defaulted,
    )


# Paths per batch of ``debtrank_paths``. Each term W_ij · push_i of a round is one vector
# multiply-add over a run of paths, with the partial sums in registers (``kernels.simd``): the
# weight, the debtor's index and the loop overhead are paid once for the run. A batch runs
# as many rounds as its slowest path.
# - Single pass: one wide run (``kernels.simd.WIDE``). A one-round batch (every node
#   distressed from the start) gathers all WIDE paths of a creditor together; larger batches
#   measured 3–17 % slower there (more runs per creditor, each reading its slice of rows
#   spread over more memory).
# - Linear: the rounds of the general loop gather WIDTH paths at a time, so that a creditor
#   saturated on all WIDTH of them is skipped; in a batch of 64 a creditor's 8 runs follow
#   one another, so its debtors and weights come from memory once and from L1 seven times.
#   That measured 1.2–1.5× faster than batches of 16 at 50 to 500 institutions; 128 was no
#   faster than 64.
PATH_BATCH = WIDE
LINEAR_BATCH = 4 * WIDE


@jit
def _aligned_empty(rows, cols):
    """An empty (rows, cols) float64 array whose data starts on a 64-byte boundary: a row of
    WIDE doubles is then two whole cache lines, and no vector load straddles two."""
    buffer = np.empty(rows * cols + 8)
    skip = (-(buffer.ctypes.data // 8)) % 8
    return buffer[skip : skip + rows * cols].reshape((rows, cols))


@jit
def _first_checks(by_indptr, reach, push_total, out_first):
    """Where each creditor's gather starts checking for its early stop (``out_first``, (n,)).

    A check pays only once every path can have saturated. Creditor j's terms average a weight
    of 1 / reach_j; with the smallest mean push p of the batch's pushing paths (``push_total``
    / n over the paths whose total is > 0), its sum reaches 1 after about reach_j / p terms,
    and checks start there: at the row's end when no path pushes or the row weighs 0, as
    then only a row already at 1 is done, and the gather sees that before any term. The
    estimate ignores h and how the weight is spread: a row that saturates on a few heavy
    terms is caught by the check the gather always makes after its first STOP_CHECK groups.
    A poor guess costs time only: the early stop is exact wherever it happens.
    """
    n = reach.shape[0]
    least = np.inf
    for b in range(push_total.shape[0]):
        if push_total[b] > 0.0:
            least = min(least, push_total[b] / n)
    for j in range(n):
        begin = by_indptr[j]
        length = by_indptr[j + 1] - begin
        terms = reach[j] / least if least < np.inf else np.inf  # > 0, never NaN
        out_first[j] = begin + (int(terms) if terms < length else length)


@jit
def _gather(out, h, push, by_indptr, by_debtor, by_weight, first_check, wide):
    """out[j, b] = min(1, h[j, b] + Σ_i W_ij push[i, b]) creditor by creditor, in runs of
    WIDE paths if ``wide`` and the batch is a multiple of WIDE, else of WIDTH
    (``kernels.simd.propagate_wide_row`` and ``propagate_row``: the same sums, bit for bit;
    see ``_propagate_batch``)."""
    n, batch = h.shape
    wide = wide and batch % WIDE == 0
    for j in range(n):
        begin = by_indptr[j]
        stop = by_indptr[j + 1]
        if wide:
            for col0 in range(0, batch, WIDE):
                propagate_wide_row(
                    out, h, j, begin, stop, by_debtor, by_weight, push, col0, first_check[j]
                )
        else:
            for col0 in range(0, batch, WIDTH):
                propagate_row(
                    out, h, j, begin, stop, by_debtor, by_weight, push, col0, first_check[j]
                )


@jit
def _propagate_batch(
    owe_indptr,
    weight,
    by_indptr,
    by_debtor,
    by_weight,
    slot,
    push,
    h,
    out,
    pushing,
    scatter_work,
    gather_work,
    incoming,
    first_check,
):
    """``_propagate`` on every path of a batch at once: out[j, b] = min(1, h[j, b] + Σ_i
    W_ij push[i, b]) for every node j and batch slot b (push ≥ 0); out may be h.

    (n, B) arrays, path-minor, B a multiple of WIDTH. Each path's sum is formed exactly as in
    ``_propagate``: its terms in creditor-major order, term t of creditor j into partial sum
    (t − by_indptr[j]) mod LANES, the sums added as (s0 + s1) + (s2 + s3), then the clip. A
    term whose push is 0 on a path adds +0.0 to that path's sums and changes no bit, so the
    other paths of the batch (and a finished path, which pushes 0 everywhere) leave a path's
    result unchanged: it does not depend on the batch it runs in. ``incoming`` (LANES·n, B)
    float64 scratch. The gather is ``_gather``, WIDTH paths at a time, checking its early
    stop from ``first_check`` on (``_first_checks``).

    The caller counts, in the pass that sets push: ``pushing[i]``, whether node i pushes on
    any path of the batch; ``scatter_work``, the claims of those nodes; ``gather_work``, the
    claims on the nodes below 1 on some path. They choose between the scatter and the gather
    and never change a result.
    """
    n, batch = h.shape
    # As in _propagate: the gather skips creditors saturated on every path of a run and stops
    # once all of them saturate; the scatter skips debtors that push nothing on any path but
    # has to clear and read back the LANES·n rows of partial sums.
    if 2 * scatter_work + LANES * n < gather_work:
        for t in range(LANES * n):
            for b in range(batch):
                incoming[t, b] = 0.0
        for i in range(n):
            if pushing[i]:
                for col0 in range(0, batch, WIDTH):
                    scatter_terms(
                        incoming, owe_indptr[i], owe_indptr[i + 1], slot, weight, push, i, col0
                    )
        for j in range(n):
            t = LANES * j
            for b in range(batch):
                s = (incoming[t, b] + incoming[t + 1, b]) + (
                    incoming[t + 2, b] + incoming[t + 3, b]
                )
                out[j, b] = min(1.0, h[j, b] + s)
        return
    _gather(out, h, push, by_indptr, by_debtor, by_weight, first_check, False)


@jit
def debtrank_paths_batched(
    first_round_loss,
    network,
    variant_linear,
    tol,
    max_rounds,
    batch,
    out_contagion_loss,
    out_defaulted,
    out_hit_cap,
):
    """``debtrank_paths_prepared`` with the paths run ``batch`` at a time (``PATH_BATCH``
    there).

    The rounds of a batch run together, path-minor ((n, batch) arrays), until every path of
    the batch has stopped by its own rule and its own round bound; a path that has stopped, or
    a slot past the last path, pushes 0 and keeps its h. Every path's arithmetic is that of
    ``debtrank`` (see ``_propagate_batch``): the outputs are bit for bit those of running the
    paths one by one, whatever ``batch`` is. ``batch`` is a positive multiple of WIDTH; a
    one-round batch gathers WIDE paths at a time when it is a multiple of WIDE. All scratch is
    allocated once per call. ``out_hit_cap`` (n_paths,) bool: whether ``max_rounds`` stopped
    the path.
    """
    if batch <= 0 or batch % WIDTH != 0:
        raise ValueError("debtrank_paths_batched: batch must be a positive multiple of WIDTH")
    n_paths, n = first_round_loss.shape
    capital, reach = network.capital, network.reach
    owe_indptr, weight, slot = network.owe_indptr, network.weight, network.slot
    by_indptr, by_debtor, by_weight = network.by_indptr, network.by_debtor, network.by_weight
    first_check = np.empty(n, dtype=np.int64)
    h0 = np.empty((batch, n))  # path-major: filled and read along the loss rows
    h_rows = np.empty((batch, n))  # the final h, path-major, for the outputs
    start = _aligned_empty(n, batch)  # h(0) of the batch
    h = _aligned_empty(n, batch)
    push = _aligned_empty(n, batch)
    new_h = _aligned_empty(n, batch)
    incoming = _aligned_empty(LANES * n, batch)
    state = np.empty((n, batch), dtype=np.int8)
    pushing = np.empty(n, dtype=np.bool_)
    push_total = np.empty(batch)
    active = np.empty(batch, dtype=np.bool_)
    rounds = np.empty(batch, dtype=np.int64)
    hit_cap = np.empty(batch, dtype=np.bool_)
    change = np.empty(batch)
    undistressed = np.empty(batch, dtype=np.int64)  # single pass: nodes still Undistressed
    most_rounds = 0
    n_hit_cap = 0
    for first in range(0, n_paths, batch):
        size = min(batch, n_paths - first)
        # h(0) along each path's row (contiguous, so the divisions vectorise); empty slots
        # start (and stay) at 0, pushing nothing.
        for b in range(batch):
            rounds[b] = 0
            hit_cap[b] = False
            h0_b = h0[b]
            if b < size:
                loss_b = first_round_loss[first + b]
                count = 0
                for j in range(n):
                    x = min(1.0, max(0.0, loss_b[j] / capital[j]))
                    h0_b[j] = x
                    count += x <= 0.0
                undistressed[b] = count
            else:
                h0_b[:] = 0.0
                undistressed[b] = n
            active[b] = undistressed[b] < n
            push_total[b] = 0.0
        # Into the batch, a column of h0 into a row of ``start``: reads down the batch's rows
        # of h0 at once, writes whole rows (and sums each path's h(0), one sum per path).
        for j in range(n):
            start_j = start[j]
            for b in range(batch):
                x = h0[b, j]
                start_j[b] = x
                push_total[b] += x
        # Single pass with every node of every path distressed from the start: one round, in
        # which all pass on h(0) and after which none can turn Distressed. The general loop
        # would take the gather too (every node pushes, so the scatter's work is all the
        # claims); going straight to it spares the bookkeeping, and it reads WIDE paths at a
        # time. Empty slots push 0.
        one_round = not variant_linear and max_rounds >= 1 and n > 0
        for b in range(size):
            one_round &= undistressed[b] == 0
        final = new_h if one_round else h
        if one_round:
            _first_checks(by_indptr, reach, push_total, first_check)
            _gather(new_h, start, start, by_indptr, by_debtor, by_weight, first_check, True)
            for b in range(size):
                rounds[b] = 1
        else:
            # Linear: h(−1) = 0, the first round passes on the whole first-round distress.
            for j in range(n):
                start_j = start[j]
                h_j = h[j]
                push_j = push[j]
                state_j = state[j]
                for b in range(batch):
                    x = start_j[b]
                    h_j[b] = x
                    push_j[b] = x
                    state_j[b] = DISTRESSED if x > 0.0 else UNDISTRESSED
        while not one_round:
            # Each path's own loop head: stop at its round bound while still active.
            running = False
            for b in range(batch):
                if active[b] and rounds[b] == max_rounds:
                    hit_cap[b] = True
                    active[b] = False
                running |= active[b]
            if not running:
                break
            scatter_work = 0
            gather_work = 0
            for b in range(batch):
                push_total[b] = 0.0
            for j in range(n):
                h_j = h[j]
                push_j = push[j]
                state_j = state[j]
                any_push = False
                open_j = False
                for b in range(batch):
                    if variant_linear:
                        # push holds each path's last increase; a stopped path passes on
                        # nothing.
                        p = push_j[b] if active[b] else 0.0
                    else:
                        # What each node passes on, fixed before any h moves (see
                        # _single_pass).
                        p = 0.0
                        if active[b] and state_j[b] == DISTRESSED:
                            p = h_j[b]
                            state_j[b] = INACTIVE
                    push_j[b] = p
                    push_total[b] += p
                    any_push |= p > 0.0
                    open_j |= h_j[b] < 1.0
                pushing[j] = any_push
                if any_push:
                    scatter_work += owe_indptr[j + 1] - owe_indptr[j]
                if open_j:
                    gather_work += by_indptr[j + 1] - by_indptr[j]
            _first_checks(by_indptr, reach, push_total, first_check)
            _propagate_batch(
                owe_indptr,
                weight,
                by_indptr,
                by_debtor,
                by_weight,
                slot,
                push,
                h,
                new_h if variant_linear else h,
                pushing,
                scatter_work,
                gather_work,
                incoming,
                first_check,
            )
            some_undistressed = False
            for b in range(batch):
                # Linear: each path's largest increase; single pass: 1.0 if some node turned
                # Distressed on the path (none can once no node is Undistressed).
                change[b] = 0.0
                some_undistressed |= active[b] and undistressed[b] > 0
            for j in range(n):
                h_j = h[j]
                push_j = push[j]
                state_j = state[j]
                if variant_linear:
                    new_j = new_h[j]
                    for b in range(batch):
                        if active[b]:
                            # The increase actually taken, after the clip.
                            increase = new_j[b] - h_j[b]
                            push_j[b] = increase
                            h_j[b] = new_j[b]
                            change[b] = max(change[b], increase)
                elif some_undistressed:
                    for b in range(batch):
                        if active[b] and state_j[b] == UNDISTRESSED and h_j[b] > 0.0:
                            state_j[b] = DISTRESSED
                            undistressed[b] -= 1
                            change[b] = 1.0
            for b in range(batch):
                if active[b]:
                    rounds[b] += 1
                    active[b] = change[b] > tol if variant_linear else change[b] > 0.0
        # Back to path-major, a row of the final h into a column of h_rows, then along each
        # output row.
        for j in range(n):
            final_j = final[j]
            for b in range(batch):
                h_rows[b, j] = final_j[b]
        for b in range(size):
            h_b = h_rows[b]
            h0_b = h0[b]
            loss_b = out_contagion_loss[first + b]
            defaulted_b = out_defaulted[first + b]
            for j in range(n):
                loss_b[j] = (h_b[j] - h0_b[j]) * capital[j]
                defaulted_b[j] = h_b[j] >= 1.0
        for b in range(size):
            most_rounds = max(most_rounds, rounds[b])
            out_hit_cap[first + b] = hit_cap[b]
            if hit_cap[b]:
                n_hit_cap += 1
    return most_rounds, n_hit_cap


def debtrank_paths(
    first_round_loss,
    capital,
    owe_indptr,
    owe_creditor,
    owe_amount,
    variant_linear,
    capped,
    tol,
    max_rounds,
    out_contagion_loss,
    out_defaulted,
    out_hit_cap=None,
):
    """``debtrank`` on every path of a block.

    Parameters
    ----------
    first_round_loss : (n_paths, n) float64
    capital, owe_indptr, owe_creditor, owe_amount, variant_linear, capped, tol, max_rounds
        As for ``debtrank``; the network and capital are the same on every path.
    out_contagion_loss : (n_paths, n) float64, written
    out_defaulted : (n_paths, n) bool, written
    out_hit_cap : (n_paths,) bool, written if given: whether ``max_rounds`` stopped the path

    Returns
    -------
    most_rounds : int
        The largest number of rounds any path ran.
    n_hit_cap : int
        Paths stopped by ``max_rounds``.

    Makes the network's weights (``debtrank_network``) and runs ``debtrank_paths_prepared``;
    to run several blocks on one network, make them once and call that. Inputs are not
    checked.
    """
    network = debtrank_network(capital, owe_indptr, owe_creditor, owe_amount, capped)
    return debtrank_paths_prepared(
        first_round_loss,
        network,
        variant_linear,
        tol,
        max_rounds,
        out_contagion_loss,
        out_defaulted,
        out_hit_cap,
    )


def debtrank_paths_prepared(
    first_round_loss,
    network,
    variant_linear,
    tol,
    max_rounds,
    out_contagion_loss,
    out_defaulted,
    out_hit_cap=None,
):
    """``debtrank_paths`` on the weights of ``debtrank_network``, with its capital and cap.

    The paths run ``PATH_BATCH`` (single pass) or ``LINEAR_BATCH`` (linear) at a time
    (``debtrank_paths_batched``), each bit for bit as ``debtrank`` runs it alone. A Python
    function, so that the batch reaches the compiled kernel as a run-time value: compiled
    into a jitted caller as the constant 16, it let LLVM specialise the kernel's loops over
    the batch, which ran up to 15 % slower.
    """
    if out_hit_cap is None:
        out_hit_cap = np.empty(first_round_loss.shape[0], dtype=np.bool_)
    return debtrank_paths_batched(
        first_round_loss,
        network,
        variant_linear,
        tol,
        max_rounds,
        LINEAR_BATCH if variant_linear else PATH_BATCH,
        out_contagion_loss,
        out_defaulted,
        out_hit_cap,
    )


@jit
def _price(sold, impact, depth, exponential):
    """Relative price of a class after ``sold`` (at pre-fire-sale prices) has been sold."""
    x = impact * sold / depth
    if exponential:
        return math.exp(-x)
    return max(0.0, 1.0 - x)


@jit
def _sell(
    equity,
    assets,
    debt,
    remaining,
    class_sold,
    price,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
    sale,
    fraction,
    drop,
    out_loss,
    out_sold,
):
    """Rounds of fire sales of one path from the state given, to the fixed point or
    ``max_rounds`` rounds with sales, updating it in place: equity, assets, debt (the
    liabilities, which sales repay) (n,); remaining (n, C), the holdings left at
    pre-fire-sale prices; class_sold, price (C,). Adds each round's mark-downs to out_loss
    (n,) and its sales to out_sold (n, C). Scratch: sale, fraction (n,), drop (C,). Returns
    (rounds with sales, hit_cap)."""
    n, n_classes = remaining.shape
    rounds = 0
    hit_cap = False
    while True:
        selling = False
        for i in range(n):
            fraction[i] = 0.0
            marketable = 0.0
            for c in range(n_classes):
                marketable += remaining[i, c] * price[c]
            if marketable > 0.0 and equity[i] < threshold[i] * assets[i]:
                sale[i] = min(marketable, assets[i] - equity[i] / target[i])
                if sale[i] > tol * assets[i]:
                    # Exactly 1 when everything goes, so the holdings left are exactly 0.
                    fraction[i] = sale[i] / marketable if sale[i] < marketable else 1.0
                    selling = True
        if not selling:
            break
        if rounds == max_rounds:
            hit_cap = True
            break
        for i in range(n):
            if fraction[i] > 0.0:
                assets[i] -= sale[i]
                debt[i] -= sale[i]
                for c in range(n_classes):
                    q = fraction[i] * remaining[i, c]
                    remaining[i, c] -= q
                    out_sold[i, c] += q
                    class_sold[c] += q
        for c in range(n_classes):
            new = _price(class_sold[c], impact[c], depth[c], exponential)
            drop[c] = price[c] - new
            price[c] = new
        for i in range(n):
            loss = 0.0
            for c in range(n_classes):
                loss += remaining[i, c] * drop[c]
            equity[i] -= loss
            assets[i] -= loss
            out_loss[i] += loss
        rounds += 1
    return rounds, hit_cap


@jit
def _fire_sale(
    capital,
    liabilities,
    holdings,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
    remaining,
    equity,
    assets,
    debt,
    sale,
    fraction,
    class_sold,
    price,
    out_loss,
    out_sold,
    out_price_change,
):
    """One path from before any sale, given scratch arrays remaining (n, C); equity,
    assets, debt, sale, fraction (n,); class_sold, price (C,)."""
    n, n_classes = holdings.shape
    for i in range(n):
        equity[i] = capital[i]
        assets[i] = capital[i] + liabilities[i]
        debt[i] = liabilities[i]
        out_loss[i] = 0.0
        for c in range(n_classes):
            remaining[i, c] = holdings[i, c]
            out_sold[i, c] = 0.0
    for c in range(n_classes):
        class_sold[c] = 0.0
        price[c] = 1.0
    # out_price_change holds each round's price drop until the final prices are known.
    rounds, hit_cap = _sell(
        equity,
        assets,
        debt,
        remaining,
        class_sold,
        price,
        threshold,
        target,
        impact,
        depth,
        exponential,
        tol,
        max_rounds,
        sale,
        fraction,
        out_price_change,
        out_loss,
        out_sold,
    )
    for c in range(n_classes):
        out_price_change[c] = price[c] - 1.0
    return rounds, hit_cap


@jit
def fire_sale(
    capital,
    liabilities,
    holdings,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
    out_loss,
    out_sold,
    out_price_change,
):
    """Fire sales of one path to their fixed point (see the module docstring for the rules).

    Parameters
    ----------
    capital : (n,) float64
        Capital after the path's earlier losses (first round, contagion); may be ≤ 0.
    liabilities : (n,) float64
        Total assets minus capital; earlier losses do not change it.
    holdings : (n, C) float64
        Marketable holdings of each class at pre-fire-sale prices; part of the total assets.
    threshold : (n,) float64
        Capital ratio E / A below which an institution sells.
    target : (n,) float64, ≥ threshold
        Capital ratio it sells back up to.
    impact : (C,) float64, ≥ 0; depth : (C,) float64, > 0
        Price impact: relative drop impact · Q / depth (linear) on the cumulative amount Q
        sold at pre-fire-sale prices.
    exponential : bool
        Price exp(−impact · Q / depth) instead of max(0, 1 − impact · Q / depth).
    tol : float
        An institution sells only if its sale exceeds tol · its total assets.
    max_rounds : int
        Rounds of sales allowed.
    out_loss : (n,) float64, written
        Mark-to-market loss on the holdings kept, summed over rounds.
    out_sold : (n, C) float64, written
        Amount of each class sold, at pre-fire-sale prices.
    out_price_change : (C,) float64, written
        Final price relative to the pre-fire-sale price, minus 1: in [−1, 0].

    Returns
    -------
    rounds : int
        Rounds in which someone sold.
    hit_cap : bool
        ``max_rounds`` rounds left someone still wanting to sell.

    Inputs are not checked.
    """
    n, n_classes = holdings.shape
    return _fire_sale(
        capital,
        liabilities,
        holdings,
        threshold,
        target,
        impact,
        depth,
        exponential,
        tol,
        max_rounds,
        np.empty((n, n_classes)),
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(n_classes),
        np.empty(n_classes),
        out_loss,
        out_sold,
        out_price_change,
    )


@jit
def fire_sale_paths(
    capital,
    liabilities,
    holdings,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
    out_loss,
    out_sold,
    out_price_change,
    out_hit_cap,
):
    """``fire_sale`` on every path of a block.

    Parameters
    ----------
    capital : (n_paths, n) float64
        Capital of each path after its earlier losses.
    liabilities, holdings, threshold, target, impact, depth, exponential, tol, max_rounds
        As for ``fire_sale``; the same on every path.
    out_loss : (n_paths, n) float64, written
    out_sold : (n_paths, n, C) float64, written
    out_price_change : (n_paths, C) float64, written
    out_hit_cap : (n_paths,) bool, written: whether ``max_rounds`` stopped the path

    Returns
    -------
    most_rounds : int
        The largest number of rounds with sales on any path.
    n_hit_cap : int
        Paths stopped by ``max_rounds``.

    Inputs are not checked.
    """
    n_paths = capital.shape[0]
    n, n_classes = holdings.shape
    remaining = np.empty((n, n_classes))
    equity = np.empty(n)
    assets = np.empty(n)
    debt = np.empty(n)
    sale = np.empty(n)
    fraction = np.empty(n)
    class_sold = np.empty(n_classes)
    price = np.empty(n_classes)
    most_rounds = 0
    n_hit_cap = 0
    for p in range(n_paths):
        rounds, hit_cap = _fire_sale(
            capital[p],
            liabilities,
            holdings,
            threshold,
            target,
            impact,
            depth,
            exponential,
            tol,
            max_rounds,
            remaining,
            equity,
            assets,
            debt,
            sale,
            fraction,
            class_sold,
            price,
            out_loss[p],
            out_sold[p],
            out_price_change[p],
        )
        most_rounds = max(most_rounds, rounds)
        out_hit_cap[p] = hit_cap
        if hit_cap:
            n_hit_cap += 1
    return most_rounds, n_hit_cap


@jit
def fire_sale_resume_paths(
    equity,
    liabilities,
    remaining,
    class_sold,
    threshold,
    target,
    impact,
    depth,
    exponential,
    tol,
    max_rounds,
    out_loss,
    out_rounds,
    out_hit_cap,
):
    """Fire sales of every path of a block resumed from where earlier sales left them, for
    losses that have arrived since (``stress.contagion``: the network's again, after the
    fire-sale losses so far): the same rules as ``fire_sale``, whose call from before any
    sale is the resumption of the state holdings, liabilities, nothing sold, capital.

    Parameters
    ----------
    equity : (n_paths, n) float64
        Capital now, after every loss so far, the earlier mark-downs included; may be ≤ 0.
    liabilities : (n_paths, n) float64, updated
        Liabilities now (earlier sales repaid part of them); less each sale's proceeds.
    remaining : (n_paths, n, C) float64, updated
        Marketable holdings left, at pre-fire-sale prices.
    class_sold : (n_paths, C) float64, updated
        Amount of each class sold so far, at pre-fire-sale prices (it sets the prices).
    threshold, target, impact, depth, exponential, tol, max_rounds
        As for ``fire_sale``.
    out_loss : (n_paths, n) float64, written
        The mark-downs of this call, on the holdings kept.
    out_rounds : (n_paths,) int64, written
        Rounds with sales in this call: 0 where nobody sold, so the path is settled.
    out_hit_cap : (n_paths,) bool, written
        Whether ``max_rounds`` stopped the path.

    Inputs are not checked.
    """
    n_paths, n, n_classes = remaining.shape
    equity_now = np.empty(n)
    assets = np.empty(n)
    sale = np.empty(n)
    fraction = np.empty(n)
    price = np.empty(n_classes)
    drop = np.empty(n_classes)
    sold = np.empty((n, n_classes))
    for p in range(n_paths):
        for i in range(n):
            equity_now[i] = equity[p, i]
            assets[i] = equity[p, i] + liabilities[p, i]
            out_loss[p, i] = 0.0
        for c in range(n_classes):
            price[c] = _price(class_sold[p, c], impact[c], depth[c], exponential)
        out_rounds[p], out_hit_cap[p] = _sell(
            equity_now,
            assets,
            liabilities[p],
            remaining[p],
            class_sold[p],
            price,
            threshold,
            target,
            impact,
            depth,
            exponential,
            tol,
            max_rounds,
            sale,
            fraction,
            drop,
            out_loss[p],
            sold,
        )
