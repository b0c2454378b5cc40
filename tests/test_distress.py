"""DebtRank and fire-sale kernels: hand-worked examples, twins, closed forms, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.distress import (
    debtrank,
    debtrank_paths,
    fire_sale,
    fire_sale_paths,
    fire_sale_resume_paths,
)

from twins_distress import debtrank_twin, fire_sale_twin, impact_matrix_twin

TIGHT = 1e-12


def claims(n, edges):
    """CSR by debtor from (debtor, creditor, amount) triples."""
    edges = sorted(edges, key=lambda e: e[0])
    indptr = np.zeros(n + 1, dtype=np.int64)
    for debtor, _, _ in edges:
        indptr[debtor + 1] += 1
    creditor = np.array([e[1] for e in edges], dtype=np.int64)
    amount = np.array([e[2] for e in edges], dtype=np.float64)
    return np.cumsum(indptr), creditor, amount


def random_claims(rng, n, m, scale):
    """m random claims between distinct institutions; a pair may repeat."""
    debtor = np.sort(rng.integers(0, n, m))
    creditor = (debtor + rng.integers(1, n, m)) % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, debtor + 1, 1)
    return np.cumsum(indptr), creditor.astype(np.int64), rng.exponential(scale, m)


def run_debtrank(loss, capital, network, linear, capped, tol=0.0, max_rounds=10_000):
    n = len(capital)
    h = np.empty(n)
    contagion = np.empty(n)
    defaulted = np.empty(n, dtype=np.bool_)
    rounds, hit_cap = debtrank(
        np.asarray(loss, dtype=np.float64),
        np.asarray(capital, dtype=np.float64),
        *network,
        linear,
        capped,
        tol,
        max_rounds,
        h,
        contagion,
        defaulted,
    )
    return h, contagion, defaulted, rounds, hit_cap


def assert_as_path_by_path(
    contagion, defaulted, loss, capital, network, linear, capped, tol, max_rounds
):
    """Each path's contagion and defaults equal ``debtrank`` run on it alone; returns the
    paths' rounds and hit_cap flags."""
    rounds, hits = [], []
    for p in range(loss.shape[0]):
        _, c, d, r, hit = run_debtrank(loss[p], capital, network, linear, capped, tol, max_rounds)
        np.testing.assert_array_equal(contagion[p], c)
        np.testing.assert_array_equal(defaulted[p], d)
        rounds.append(r)
        hits.append(hit)
    return rounds, hits


# --- DebtRank, worked by hand ------------------------------------------------------------
#
# Example 1: a cycle 0 → 1 → 2 → 0 ("i → j": i owes j), every capital E = 10.
#   0 owes 1 5   → W_01 = 5 / 10 = 0.5
#   1 owes 2 20  → W_12 = 20 / 10 = 2 uncapped, min(1, 2) = 1 capped
#   2 owes 0 4   → W_20 = 4 / 10 = 0.4
# First-round loss of 0 is 2: h(0) = (0.2, 0, 0).
CYCLE = (3, [(0, 1, 5.0), (1, 2, 20.0), (2, 0, 4.0)])
CYCLE_LOSS = [2.0, 0.0, 0.0]
TEN = [10.0, 10.0, 10.0]


def test_single_pass_cycle_uncapped():
    # Round 1: Distressed {0}. h_1 += 0.5 · 0.2 = 0.1 → h = (0.2, 0.1, 0).
    #          0 → Inactive, 1 → Distressed.
    # Round 2: Distressed {1}. h_2 += 2 · 0.1 = 0.2 → h = (0.2, 0.1, 0.2).
    # Round 3: Distressed {2}. h_0 += 0.4 · 0.2 = 0.08 → h = (0.28, 0.1, 0.2).
    #          0 is Inactive: it keeps the 0.08 and passes none of it on. Nobody is
    #          Distressed: stop after 3 rounds.
    # Contagion loss (h − h(0)) · E = (0.8, 1, 2); nobody at h = 1.
    h, contagion, defaulted, rounds, hit_cap = run_debtrank(
        CYCLE_LOSS, TEN, claims(*CYCLE), linear=False, capped=False
    )
    np.testing.assert_allclose(h, [0.28, 0.1, 0.2], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.8, 1.0, 2.0], rtol=0, atol=TIGHT)
    assert not defaulted.any()
    assert (rounds, hit_cap) == (3, False)


def test_single_pass_cycle_capped():
    # As above with W_12 = 1: round 2 gives h_2 = 1 · 0.1 = 0.1, round 3 h_0 += 0.4 · 0.1.
    # h = (0.24, 0.1, 0.1); contagion loss (0.4, 1, 1); 3 rounds.
    h, contagion, _, rounds, _ = run_debtrank(
        CYCLE_LOSS, TEN, claims(*CYCLE), linear=False, capped=True
    )
    np.testing.assert_allclose(h, [0.24, 0.1, 0.1], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.4, 1.0, 1.0], rtol=0, atol=TIGHT)
    assert rounds == 3


def test_single_pass_stops_at_the_round_cap():
    # After rounds 1 and 2 (above), h = (0.2, 0.1, 0.2) and node 2 is still Distressed.
    h, _, _, rounds, hit_cap = run_debtrank(
        CYCLE_LOSS, TEN, claims(*CYCLE), linear=False, capped=False, max_rounds=2
    )
    np.testing.assert_allclose(h, [0.2, 0.1, 0.2], rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (2, True)


def test_linear_cycle_round_by_round_and_limit():
    # Every increase travels on. Increase passed in round t+1 = h(t) − h(t−1), h(−1) = 0.
    # Round 1: passes (0.2, 0, 0): h_1 += 0.5 · 0.2 = 0.1 → h = (0.2, 0.1, 0).
    # Round 2: passes (0, 0.1, 0): h_2 += 2 · 0.1 = 0.2 → h = (0.2, 0.1, 0.2).
    # Round 3: passes (0, 0, 0.2): h_0 += 0.4 · 0.2 = 0.08 → h = (0.28, 0.1, 0.2).
    # Round 4: passes (0.08, 0, 0): h_1 += 0.5 · 0.08 = 0.04 → h = (0.28, 0.14, 0.2)
    #          (single pass stopped at (0.28, 0.1, 0.2): 0's second increase is not passed).
    # Each trip round the cycle multiplies the increase by 0.5 · 2 · 0.4 = 0.4, and nothing
    # reaches 1, so h solves h = h(0) + Wᵀh:
    #   h_1 = 0.5 h_0, h_2 = 2 h_1 = h_0, h_0 = 0.2 + 0.4 h_2 = 0.2 + 0.4 h_0
    #   → h_0 = 0.2 / 0.6 = 1/3, h_1 = 1/6, h_2 = 1/3; contagion loss (4/3, 5/3, 10/3).
    network = claims(*CYCLE)
    h3, _, _, rounds, hit_cap = run_debtrank(
        CYCLE_LOSS, TEN, network, linear=True, capped=False, max_rounds=3
    )
    np.testing.assert_allclose(h3, [0.28, 0.1, 0.2], rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (3, True)
    h4, *_ = run_debtrank(CYCLE_LOSS, TEN, network, linear=True, capped=False, max_rounds=4)
    np.testing.assert_allclose(h4, [0.28, 0.14, 0.2], rtol=0, atol=TIGHT)
    h, contagion, defaulted, rounds, hit_cap = run_debtrank(
        CYCLE_LOSS, TEN, network, linear=True, capped=False, tol=1e-15
    )
    np.testing.assert_allclose(h, [1 / 3, 1 / 6, 1 / 3], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [4 / 3, 5 / 3, 10 / 3], rtol=0, atol=TIGHT)
    assert not defaulted.any()
    assert not hit_cap


def test_linear_cycle_capped():
    # W_12 = 1: the cycle gain is 0.5 · 1 · 0.4 = 0.2, and h = h(0) + Wᵀh gives
    #   h_1 = 0.5 h_0, h_2 = h_1, h_0 = 0.2 + 0.4 h_2 = 0.2 + 0.2 h_0
    #   → h_0 = 0.2 / 0.8 = 0.25, h_1 = h_2 = 0.125; contagion loss (0.5, 1.25, 1.25).
    h, contagion, _, _, hit_cap = run_debtrank(
        CYCLE_LOSS, TEN, claims(*CYCLE), linear=True, capped=True, tol=1e-15
    )
    np.testing.assert_allclose(h, [0.25, 0.125, 0.125], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.5, 1.25, 1.25], rtol=0, atol=TIGHT)
    assert not hit_cap


# Example 2: a chain 0 → 1 → 2 where the cap matters and a node defaults.
#   E = (10, 10, 20); 0 owes 1 30 → W_01 = 3 uncapped, 1 capped;
#   1 owes 2 5 → W_12 = 5 / 20 = 0.25. First-round loss of 0 is 5: h(0) = (0.5, 0, 0).
CHAIN = (3, [(0, 1, 30.0), (1, 2, 5.0)])


@pytest.mark.parametrize("linear", [False, True])
def test_chain_uncapped_defaults(linear):
    # Round 1: h_1 = min(1, 3 · 0.5) = min(1, 1.5) = 1 → 1 has lost all its equity.
    # Round 2: h_2 = 0.25 · 1 = 0.25.
    # Round 3: 2 owes nobody; nothing moves (single pass: 2 turns Inactive; linear: the
    #          largest increase is 0). Three rounds, the same under both rules on a chain.
    # Contagion loss (0, 1 · 10, 0.25 · 20) = (0, 10, 5); defaulted (no, yes, no).
    h, contagion, defaulted, rounds, _ = run_debtrank(
        [5.0, 0.0, 0.0], [10.0, 10.0, 20.0], claims(*CHAIN), linear, capped=False
    )
    np.testing.assert_allclose(h, [0.5, 1.0, 0.25], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.0, 10.0, 5.0], rtol=0, atol=TIGHT)
    assert defaulted.tolist() == [False, True, False]
    assert rounds == 3


@pytest.mark.parametrize("linear", [False, True])
def test_chain_capped_partial_distress_is_not_amplified(linear):
    # W_01 = 1: the half-distressed debtor passes 0.5, not 1.5. h_1 = 0.5, h_2 = 0.25 · 0.5.
    # h = (0.5, 0.5, 0.125); contagion loss (0, 5, 2.5); nobody defaults.
    h, contagion, defaulted, _, _ = run_debtrank(
        [5.0, 0.0, 0.0], [10.0, 10.0, 20.0], claims(*CHAIN), linear, capped=True
    )
    np.testing.assert_allclose(h, [0.5, 0.5, 0.125], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.0, 5.0, 2.5], rtol=0, atol=TIGHT)
    assert not defaulted.any()


@pytest.mark.parametrize("capped", [False, True])
def test_fully_distressed_debtor_wipes_out_creditor_either_way(capped):
    # Loss 10 on capital 10: h_0 = 1. Capped 1 · 1 = 1, uncapped min(1, 3 · 1) = 1.
    h, contagion, defaulted, _, _ = run_debtrank(
        [10.0, 0.0, 0.0], [10.0, 10.0, 20.0], claims(*CHAIN), False, capped
    )
    np.testing.assert_allclose(h, [1.0, 1.0, 0.25], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.0, 10.0, 5.0], rtol=0, atol=TIGHT)
    assert defaulted.tolist() == [True, True, False]


# Example 3: distress received in the round a node propagates. Chain 0 → 1 → 2, E = 10,
# 0 owes 1 5 and 1 owes 2 5 (W = 0.5 each); losses 2 and 2: h(0) = (0.2, 0.2, 0).
SAME_ROUND = (3, [(0, 1, 5.0), (1, 2, 5.0)])


def test_single_pass_does_not_pass_on_what_arrives_while_propagating():
    # Round 1: Distressed {0, 1}, each passing its h at the start of the round:
    #          h_1 += 0.5 · 0.2 = 0.1 → 0.3;  h_2 += 0.5 · 0.2 = 0.1 (not 0.5 · 0.3).
    #          0, 1 → Inactive; 2 → Distressed.
    # Round 2: 2 owes nobody → Inactive. h = (0.2, 0.3, 0.1), 2 rounds.
    h, contagion, _, rounds, _ = run_debtrank(
        [2.0, 2.0, 0.0], TEN, claims(*SAME_ROUND), linear=False, capped=True
    )
    np.testing.assert_allclose(h, [0.2, 0.3, 0.1], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.0, 1.0, 1.0], rtol=0, atol=TIGHT)
    assert rounds == 2


def test_linear_passes_on_what_arrives_while_propagating():
    # Round 1: passes (0.2, 0.2, 0): h_1 = 0.3, h_2 = 0.1; increases (0, 0.1, 0.1).
    # Round 2: passes 1's 0.1: h_2 += 0.05 → 0.15; increases (0, 0, 0.05).
    # Round 3: 2 owes nobody; largest increase 0 ≤ tol: stop. h = (0.2, 0.3, 0.15).
    h, contagion, _, rounds, _ = run_debtrank(
        [2.0, 2.0, 0.0], TEN, claims(*SAME_ROUND), linear=True, capped=True
    )
    np.testing.assert_allclose(h, [0.2, 0.3, 0.15], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, [0.0, 1.0, 1.5], rtol=0, atol=TIGHT)
    assert rounds == 3


def test_no_first_round_loss_runs_no_round():
    for linear in (False, True):
        h, contagion, defaulted, rounds, hit_cap = run_debtrank(
            [0.0, -1.0, 0.0], TEN, claims(*CYCLE), linear, capped=False
        )
        assert h.tolist() == [0.0, 0.0, 0.0]
        assert contagion.tolist() == [0.0, 0.0, 0.0]
        assert not defaulted.any()
        assert (rounds, hit_cap) == (0, False)


# --- DebtRank against the twin, closed forms and properties ------------------------------


def random_debtrank_case(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    capital = rng.uniform(5.0, 20.0, n)
    network = random_claims(rng, n, int(rng.integers(0, 4 * n)), rng.uniform(1.0, 15.0))
    hit = rng.random(n) < 0.3
    loss = np.where(hit, rng.uniform(0.0, 1.2, n) * capital, 0.0)
    return loss, capital, network


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("capped", [False, True])
def test_debtrank_matches_twin(seed, linear, capped):
    loss, capital, network = random_debtrank_case(seed)
    h, contagion, defaulted, rounds, hit_cap = run_debtrank(
        loss, capital, network, linear, capped, tol=1e-13
    )
    t_h, t_contagion, t_defaulted, t_rounds, t_hit = debtrank_twin(
        loss, capital, *network, linear, capped, 1e-13, 10_000
    )
    np.testing.assert_allclose(h, t_h, rtol=0, atol=TIGHT)
    np.testing.assert_allclose(contagion, t_contagion, rtol=0, atol=TIGHT * capital.max())
    np.testing.assert_array_equal(defaulted, t_defaulted)
    assert (rounds, hit_cap) == (t_rounds, t_hit)


@pytest.mark.parametrize("seed", range(20))
def test_debtrank_properties(seed):
    loss, capital, network = random_debtrank_case(seed)
    n = len(capital)
    h0 = np.clip(loss / capital, 0.0, 1.0)
    h = {}
    for linear in (False, True):
        for capped in (False, True):
            h_final, contagion, defaulted, rounds, hit_cap = run_debtrank(
                loss, capital, network, linear, capped, tol=1e-14, max_rounds=10_000
            )
            assert ((h_final >= h0) & (h_final <= 1.0)).all()
            np.testing.assert_allclose(contagion, (h_final - h0) * capital, rtol=1e-15)
            np.testing.assert_array_equal(defaulted, h_final >= 1.0)
            assert not hit_cap
            if not linear:
                assert rounds <= n, "each node propagates once"
            h[linear, capped] = h_final
    for linear in (False, True):
        # Capping W can only lower every weight, hence every h (to rounding and tol).
        assert (h[linear, True] <= h[linear, False] + 1e-12).all()
    for capped in (False, True):
        # Linear passes on every increase, single pass only the first ones.
        assert (h[True, capped] >= h[False, capped] - 1e-12).all()


@pytest.mark.parametrize("seed", range(10))
def test_linear_without_saturation_solves_the_linear_system(seed):
    # With no node reaching 1, the linear rule sums the Neumann series of Wᵀ:
    # h = (I − Wᵀ)⁻¹ h(0). Small claims keep the spectral radius of W below 1/2.
    rng = np.random.default_rng(100 + seed)
    n = 15
    capital = rng.uniform(50.0, 100.0, n)
    network = random_claims(rng, n, 40, 2.0)
    w = impact_matrix_twin(capital, *network, capped=False)
    assert np.abs(np.linalg.eigvals(w)).max() < 0.5
    loss = rng.uniform(0.0, 0.1, n) * capital
    expected = np.linalg.solve(np.eye(n) - w.T, loss / capital)
    assert expected.max() < 1.0
    h, *_ = run_debtrank(loss, capital, network, linear=True, capped=False, tol=0.0)
    np.testing.assert_allclose(h, expected, rtol=0, atol=TIGHT)


@pytest.mark.parametrize("linear", [False, True])
def test_debtrank_paths_equals_path_by_path(linear):
    rng = np.random.default_rng(7)
    n, n_paths = 12, 50
    capital = rng.uniform(5.0, 20.0, n)
    network = random_claims(rng, n, 40, 6.0)
    loss = np.where(rng.random((n_paths, n)) < 0.2, rng.uniform(0, 1.2, (n_paths, n)), 0.0)
    loss *= capital
    contagion = np.empty((n_paths, n))
    defaulted = np.empty((n_paths, n), dtype=np.bool_)
    most_rounds, n_hit = debtrank_paths(
        loss, capital, *network, linear, True, 1e-12, 10_000, contagion, defaulted
    )
    rounds, hits = assert_as_path_by_path(
        contagion, defaulted, loss, capital, network, linear, True, 1e-12, 10_000
    )
    assert not any(hits)
    assert (most_rounds, n_hit) == (max(rounds), 0)
    assert defaulted.any() and (contagion > 0).any(), "the test network should propagate"
    _, n_hit = debtrank_paths(loss, capital, *network, linear, True, 1e-12, 1, contagion, defaulted)
    assert n_hit > 0


@pytest.mark.parametrize("capped", [False, True])
def test_a_prepared_network_gives_the_results_of_one_made_per_call(capped):
    # Weights made once (debtrank_network) and used by every block (debtrank_paths_prepared)
    # give what debtrank_paths gives making them per call; the network carries the capital
    # and the cap it was made of.
    from kernels.distress import debtrank_network, debtrank_paths_prepared

    rng = np.random.default_rng(8)
    n, n_paths = 30, 40
    capital = rng.uniform(1.0, 3.0, n)
    network = random_claims(rng, n, 200, 2.5)
    prepared = debtrank_network(capital, *network, capped)
    assert prepared.capped == capped and prepared.capital is capital
    for _ in range(2):  # two blocks on one prepared network
        loss = rng.uniform(0.05, 0.5, (n_paths, n)) * capital
        results = []
        for run in ("per call", "prepared"):
            contagion = np.full((n_paths, n), np.nan)
            defaulted = np.zeros((n_paths, n), dtype=np.bool_)
            if run == "per call":
                debtrank_paths(loss, capital, *network, False, capped, 0.0, 5, contagion, defaulted)
            else:
                debtrank_paths_prepared(loss, prepared, False, 0.0, 5, contagion, defaulted)
            results.append((contagion, defaulted))
        np.testing.assert_array_equal(results[0][0], results[1][0])
        np.testing.assert_array_equal(results[0][1], results[1][1])
    assert (results[0][0] > 0).any()


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_debtrank_paths_on_tiny_networks(linear, n):
    # No institution, one, or rows shorter than a group of LANES terms: as path by path.
    rng = np.random.default_rng(n)
    capital = rng.uniform(1.0, 3.0, n)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    owe_indptr = np.zeros(n + 1, dtype=np.int64)
    for i, _ in pairs:
        owe_indptr[i + 1] += 1
    owe_indptr = np.cumsum(owe_indptr)
    network = (
        owe_indptr,
        np.array([j for _, j in pairs], dtype=np.int64),
        np.full(len(pairs), 2.0),
    )
    n_paths = 19
    loss = rng.uniform(0.1, 0.9, (n_paths, n)) * capital
    contagion = np.full((n_paths, n), np.nan)
    defaulted = np.zeros((n_paths, n), dtype=np.bool_)
    most_rounds, n_hit = debtrank_paths(
        loss, capital, *network, linear, True, 1e-12, 100, contagion, defaulted
    )
    rounds, _ = assert_as_path_by_path(
        contagion, defaulted, loss, capital, network, linear, True, 1e-12, 100
    )
    assert (most_rounds, n_hit) == (max(rounds), 0)


# --- Fire sales, worked by hand ----------------------------------------------------------
#
# Two institutions, one class, depth 500, impact 1 (linear: P = 1 − Q / 500).
#   0: E = 4,   liabilities 96,   A = 100, holds 60, threshold 5 %, target 8 %.
#   1: E = 8.5, liabilities 91.5, A = 100, holds 40, threshold 5 %, target 6 %.
TOY = {
    "capital": np.array([4.0, 8.5]),
    "liabilities": np.array([96.0, 91.5]),
    "holdings": np.array([[60.0], [40.0]]),
    "threshold": np.array([0.05, 0.05]),
    "target": np.array([0.08, 0.06]),
    "impact": np.array([1.0]),
    "depth": np.array([500.0]),
}


def run_fire_sale(case, exponential=False, tol=0.0, max_rounds=1000, **override):
    case = {**case, **override}
    n, n_classes = case["holdings"].shape
    loss = np.empty(n)
    sold = np.empty((n, n_classes))
    price_change = np.empty(n_classes)
    rounds, hit_cap = fire_sale(
        case["capital"],
        case["liabilities"],
        case["holdings"],
        case["threshold"],
        case["target"],
        case["impact"],
        case["depth"],
        exponential,
        tol,
        max_rounds,
        loss,
        sold,
        price_change,
    )
    return loss, sold, price_change, rounds, hit_cap


def twin_fire_sale(case, exponential=False, tol=0.0, max_rounds=1000):
    keys = ("capital", "liabilities", "holdings", "threshold", "target", "impact", "depth")
    return fire_sale_twin(*(case[k] for k in keys), exponential, tol, max_rounds)


def test_fire_sale_toy_linear():
    # Round 1 (P = 1). 0: 4 / 100 = 4 % < 5 %: sells min(60, 100 − 4 / 0.08) = 50, i.e. 5/6 of
    #   its holding, keeps 10, A_0 = 50. 1: 8.5 % ≥ 5 %: holds. Q = 50, P = 1 − 50/500 = 0.9.
    #   Marks: 0 loses 10 · 0.1 = 1 → E_0 = 3, A_0 = 49 (6.1 %);
    #          1 loses 40 · 0.1 = 4 → E_1 = 4.5, A_1 = 96 (4.6875 % < 5 %).
    # Round 2 (P = 0.9). 1 sells min(40 · 0.9, 96 − 4.5 / 0.06) = min(36, 21) = 21, the
    #   fraction 21/36 = 7/12: 40 · 7/12 = 70/3 at pre-fire-sale prices; keeps 50/3; A_1 = 75.
    #   Q = 50 + 70/3 = 220/3, P = 1 − 220/1500 = 64/75; the drop is 0.9 − 64/75 = 7/150.
    #   Marks: 0 loses 10 · 7/150 = 7/15 → E_0 = 38/15, A_0 = 728/15 (38/728 = 5.2 %);
    #          1 loses 50/3 · 7/150 = 7/9 → E_1 = 67/18, A_1 = 668/9 (67/1336 = 5.015 %).
    # Round 3: both at or above 5 %: no sales. Two rounds.
    # Loss (1 + 7/15, 4 + 7/9) = (22/15, 43/9); sold (50, 70/3); price change −11/75.
    loss, sold, price_change, rounds, hit_cap = run_fire_sale(TOY)
    np.testing.assert_allclose(loss, [22 / 15, 43 / 9], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(sold[:, 0], [50.0, 70 / 3], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(price_change, [-11 / 75], rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (2, False)


def test_fire_sale_toy_stops_at_the_round_cap():
    # Only round 1 above: loss (1, 4), sold (50, 0), P = 0.9; 1 still wants to sell.
    loss, sold, price_change, rounds, hit_cap = run_fire_sale(TOY, max_rounds=1)
    np.testing.assert_allclose(loss, [1.0, 4.0], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(sold[:, 0], [50.0, 0.0], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(price_change, [-0.1], rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (1, True)


def test_fire_sale_toy_exponential():
    # The same steps with P = exp(−Q / 500):
    # Round 1: 0 sells 50 as before; P_1 = e^−0.1, drop d_1 = 1 − P_1 ≈ 0.09516.
    #   E_0 = 4 − 10 d_1, A_0 = 50 − 10 d_1 (6.2 %); E_1 = 8.5 − 40 d_1, A_1 = 100 − 40 d_1
    #   (4.88 % < 5 %).
    # Round 2: 1 sells s = A_1 − E_1 / 0.06 ≈ 17.97 < 40 P_1 ≈ 36.19, the fraction
    #   s / (40 P_1), i.e. q = 40 · s / (40 P_1) = s / P_1 at pre-fire-sale prices; keeps
    #   40 − q. P_2 = exp(−(50 + q) / 500), drop d_2 = P_1 − P_2.
    #   Marks: 0 loses 10 d_2 (ends at 5.5 %); 1 loses (40 − q) d_2 (ends at 5.14 %). Stop.
    d1 = 1.0 - math.exp(-0.1)
    e1, a1 = 8.5 - 40 * d1, 100.0 - 40 * d1
    s = a1 - e1 / 0.06
    q = s / (1.0 - d1)
    d2 = math.exp(-0.1) - math.exp(-(50.0 + q) / 500.0)
    loss, sold, price_change, rounds, hit_cap = run_fire_sale(TOY, exponential=True)
    np.testing.assert_allclose(loss, [10 * (d1 + d2), 40 * d1 + (40 - q) * d2], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(sold[:, 0], [50.0, q], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(price_change, [-(d1 + d2)], rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (2, False)


def test_fire_sale_loss_is_not_monotone_in_impact_across_rounds():
    # Mark-to-market on kept holdings only (Cont–Schaanning) makes an earlier sale a shelter:
    # with more impact an institution may be pushed to sell sooner and so lose less.
    #   0: E = 4, A = 100, holds 40, target 6 %; 1: E = 5, A = 100, holds 40, target 6 %;
    #   thresholds 5 %, depth 500.
    # Both impacts, round 1: 0 (4 %) sells 100 − 4/0.06 = 100/3, keeps 20/3, A_0 = 200/3;
    #   1 is at exactly 5 %, not below: holds.
    # Impact 1: drop 1/15. 0 loses 20/3 · 1/15 = 4/9 (E_0 = 32/9, A_0 = 596/9: 5.37 %);
    #   1 loses 8/3 (E_1 = 7/3, A_1 = 292/3: 2.4 %). Round 2: 1 sells all 40 (it needs
    #   292/3 − 350/9 = 526/9 > 40 · 14/15); drop 40/500 = 0.08; 0 loses 20/3 · 0.08 = 8/15
    #   (E_0 = 136/45, A_0 = 2956/45: 4.6 %). Round 3: 0 sells its last 20/3; nothing is
    #   left to mark. Loss of 0: 4/9 + 8/15 = 44/45. Price 1 − 80/500 = 0.84.
    # Impact 2: drop 2/15. 0 loses 8/9 (E_0 = 28/9, A_0 = 592/9: 4.7 %); 1 loses 16/3
    #   (E_1 = −1/3). Round 2: both sell everything at the start-of-round price; nothing is
    #   left to mark. Loss of 0: 8/9 < 44/45. Price 1 − 2 · 80/500 = 0.68.
    case = {
        **TOY,
        "capital": np.array([4.0, 5.0]),
        "liabilities": np.array([96.0, 95.0]),
        "holdings": np.array([[40.0], [40.0]]),
        "target": np.array([0.06, 0.06]),
    }
    low = run_fire_sale(case)
    high = run_fire_sale(case, impact=np.array([2.0]))
    np.testing.assert_allclose(low[0], [44 / 45, 8 / 3], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(high[0], [8 / 9, 16 / 3], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(low[2], [-0.16], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(high[2], [-0.32], rtol=0, atol=TIGHT)
    assert (low[3], high[3]) == (3, 2)


# --- Fire sales against the twin and properties ------------------------------------------


def random_fire_sale_case(seed, ratio=(0.02, 0.09)):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    n_classes = int(rng.integers(1, 5))
    assets = rng.uniform(50.0, 150.0, n)
    capital = rng.uniform(*ratio, n) * assets
    capital[rng.random(n) < 0.1] *= -1.0  # some insolvent after the earlier rounds
    holdings = rng.uniform(0.0, 1.0, (n, n_classes))
    holdings *= (rng.uniform(0.1, 0.8, n) * assets / holdings.sum(axis=1))[:, None]
    threshold = rng.uniform(0.03, 0.06, n)
    return {
        "capital": capital,
        "liabilities": assets - capital,
        "holdings": holdings,
        "threshold": threshold,
        "target": threshold + rng.uniform(0.0, 0.03, n),
        "impact": rng.uniform(0.2, 3.0, n_classes),
        "depth": rng.uniform(100.0, 1000.0, n_classes),
    }


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("exponential", [False, True])
def test_fire_sale_matches_twin(seed, exponential):
    case = random_fire_sale_case(seed)
    loss, sold, price_change, rounds, hit_cap = run_fire_sale(case, exponential, tol=1e-12)
    t_loss, t_sold, t_change, t_rounds, t_hit = twin_fire_sale(case, exponential, tol=1e-12)
    np.testing.assert_allclose(loss, t_loss, rtol=0, atol=TIGHT * 100)
    np.testing.assert_allclose(sold, t_sold, rtol=0, atol=TIGHT * 100)
    np.testing.assert_allclose(price_change, t_change, rtol=0, atol=TIGHT)
    assert (rounds, hit_cap) == (t_rounds, t_hit)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("exponential", [False, True])
def test_fire_sale_properties(seed, exponential):
    case = random_fire_sale_case(seed)
    loss, sold, price_change, _, hit_cap = run_fire_sale(case, exponential)
    assert not hit_cap
    assert (loss >= 0.0).all()
    assert ((sold >= 0.0) & (sold <= case["holdings"] * (1 + 1e-12))).all()
    assert ((price_change >= -1.0) & (price_change <= 0.0)).all()
    insolvent = case["capital"] <= 0.0
    # An institution with no capital left sells everything in the first round.
    np.testing.assert_allclose(sold[insolvent], case["holdings"][insolvent], rtol=1e-15)
    assert (loss[insolvent] == 0.0).all()


@pytest.mark.parametrize("seed", range(10))
def test_nobody_below_threshold_means_no_sales(seed):
    case = random_fire_sale_case(seed, ratio=(0.1, 0.2))
    case["capital"] = np.abs(case["capital"])
    assets = case["capital"] + case["liabilities"]
    case["threshold"] = case["capital"] / assets * np.random.default_rng(seed).uniform(0.5, 1, 1)
    # Exactly at the threshold is not below it: 0.05 · (5 + 95) is 5.0 in floating point.
    case["capital"][0], case["liabilities"][0], case["threshold"][0] = 5.0, 95.0, 0.05
    case["holdings"][0] *= 100.0 / assets[0]
    case["target"] = case["threshold"] + 0.01
    for exponential in (False, True):
        loss, sold, price_change, rounds, hit_cap = run_fire_sale(case, exponential)
        assert (loss == 0.0).all() and (sold == 0.0).all() and (price_change == 0.0).all()
        assert (rounds, hit_cap) == (0, False)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("exponential", [False, True])
def test_loss_monotone_in_impact_when_only_the_first_round_sells(seed, exponential):
    # First-round sales are decided at pre-fire-sale prices, so they do not depend on impact;
    # when nobody sells after them (the sellers liquidate everything, the holders have capital
    # above their holdings and a zero threshold), every loss is holdings × price drop, and the
    # drop grows with impact. (Across several rounds this fails: see the test above.)
    case = random_fire_sale_case(seed)
    sellers = np.arange(len(case["capital"])) % 3 == 0
    holdings_total = case["holdings"].sum(axis=1)
    case["capital"] = np.where(sellers, -1.0, 1.5 * holdings_total)
    case["liabilities"] = np.where(sellers, holdings_total + 20.0, holdings_total)
    case["threshold"] = np.where(sellers, 0.05, 0.0)
    losses = []
    for scale in np.linspace(0.0, 4.0, 9):
        loss, _, price_change, rounds, _ = run_fire_sale(
            case, exponential, impact=case["impact"] * scale
        )
        assert rounds == 1
        if losses:
            assert (loss >= losses[-1][0]).all() and (price_change <= losses[-1][1]).all()
        losses.append((loss, price_change))
    assert losses[-1][0].sum() > losses[1][0].sum() > 0.0


def test_prices_stay_in_unit_interval():
    # One insolvent seller dumps 60 into a class of depth 50 with impact 1: linear impact
    # would give 1 − 60/50 < 0 and is floored at 0, so the holder loses its whole holding;
    # exponential gives e^−1.2 > 0.
    case = {
        "capital": np.array([-1.0, 50.0]),
        "liabilities": np.array([101.0, 50.0]),
        "holdings": np.array([[60.0], [30.0]]),
        "threshold": np.array([0.05, 0.0]),
        "target": np.array([0.06, 0.0]),
        "impact": np.array([1.0]),
        "depth": np.array([50.0]),
    }
    loss, _, price_change, _, _ = run_fire_sale(case)
    assert price_change.tolist() == [-1.0]
    assert loss.tolist() == [0.0, 30.0]
    loss, _, price_change, _, _ = run_fire_sale(case, exponential=True)
    np.testing.assert_allclose(price_change, [math.exp(-1.2) - 1.0], rtol=0, atol=TIGHT)
    np.testing.assert_allclose(loss, [0.0, 30.0 * (1.0 - math.exp(-1.2))], rtol=0, atol=TIGHT)


@pytest.mark.parametrize("exponential", [False, True])
def test_fire_sale_paths_equals_path_by_path(exponential):
    case = random_fire_sale_case(3)
    rng = np.random.default_rng(11)
    n, n_classes = case["holdings"].shape
    n_paths = 30
    assets = case["capital"] + case["liabilities"]
    capital = assets * rng.uniform(-0.01, 0.09, (n_paths, n))
    loss = np.empty((n_paths, n))
    sold = np.empty((n_paths, n, n_classes))
    price_change = np.empty((n_paths, n_classes))
    keys = ("liabilities", "holdings", "threshold", "target", "impact", "depth")
    hit_cap = np.ones(n_paths, dtype=np.bool_)
    most_rounds, n_hit = fire_sale_paths(
        capital,
        *(case[k] for k in keys),
        exponential,
        0.0,
        1000,
        loss,
        sold,
        price_change,
        hit_cap,
    )
    rounds = []
    for p in range(n_paths):
        one = run_fire_sale(case, exponential, capital=capital[p])
        np.testing.assert_array_equal(loss[p], one[0])
        np.testing.assert_array_equal(sold[p], one[1])
        np.testing.assert_array_equal(price_change[p], one[2])
        rounds.append(one[3])
    assert (most_rounds, n_hit) == (max(rounds), 0) and not hit_cap.any()
    assert max(rounds) > 1, "the test case should cascade"
    # Bounded one round short of the longest cascade: the paths stopped are flagged, each as
    # fire_sale flags it alone.
    bound = max(rounds) - 1
    fire_sale_paths(
        capital,
        *(case[k] for k in keys),
        exponential,
        0.0,
        bound,
        loss,
        sold,
        price_change,
        hit_cap,
    )
    stopped = [
        run_fire_sale(case, exponential, capital=capital[p], max_rounds=bound)[4]
        for p in range(n_paths)
    ]
    np.testing.assert_array_equal(hit_cap, stopped)
    assert 0 < hit_cap.sum() < n_paths


def resume_fire_sale(case, equity, liabilities, remaining, class_sold, exponential, max_rounds):
    """fire_sale_resume_paths on paths of ``case``'s institutions, its state updated in place;
    (marks, rounds, hit_cap)."""
    n_paths = equity.shape[0]
    marks = np.full(equity.shape, np.nan)
    rounds = np.full(n_paths, -1, dtype=np.int64)
    hit_cap = np.ones(n_paths, dtype=np.bool_)
    keys = ("threshold", "target", "impact", "depth")
    fire_sale_resume_paths(
        equity,
        liabilities,
        remaining,
        class_sold,
        *(case[k] for k in keys),
        exponential,
        0.0,
        max_rounds,
        marks,
        rounds,
        hit_cap,
    )
    return marks, rounds, hit_cap


def fresh_state(case, n_paths):
    """Before any sale, on each of n_paths paths: capital, liabilities, holdings, none sold."""
    n_classes = case["holdings"].shape[1]
    return (
        np.tile(case["capital"], (n_paths, 1)),
        np.tile(case["liabilities"], (n_paths, 1)),
        np.tile(case["holdings"], (n_paths, 1, 1)),
        np.zeros((n_paths, n_classes)),
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("exponential", [False, True])
def test_resumed_fire_sale_from_before_any_sale_is_the_fire_sale(seed, exponential):
    # Bit for bit, and the state it leaves is what was sold, at what proceeds.
    case = random_fire_sale_case(seed)
    equity, liabilities, remaining, class_sold = fresh_state(case, 1)
    marks, rounds, hit_cap = resume_fire_sale(
        case, equity, liabilities, remaining, class_sold, exponential, 1000
    )
    loss, sold, price_change, fresh_rounds, fresh_hit = run_fire_sale(case, exponential)
    np.testing.assert_array_equal(marks[0], loss)
    assert (rounds[0], hit_cap[0]) == (fresh_rounds, fresh_hit)
    np.testing.assert_allclose(remaining[0], case["holdings"] - sold, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(class_sold[0], sold.sum(axis=0), rtol=1e-12, atol=1e-12)
    # The proceeds repaid liabilities: each sale was made at a price between the final one
    # and the pre-fire-sale one; no sale, no repayment.
    repaid = case["liabilities"] - liabilities[0]
    at_least = sold @ (1.0 + price_change)
    at_most = sold.sum(axis=1)
    assert (repaid >= at_least - 1e-9).all() and (repaid <= at_most + 1e-9).all()
    assert (repaid[at_most == 0.0] == 0.0).all()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("exponential", [False, True])
def test_a_fire_sale_stopped_and_resumed_ends_where_it_would_have(seed, exponential):
    # Stopped after k rounds, then resumed on the capital left: the same sales and marks as
    # one uninterrupted run (to rounding: the capital is handed over as capital − marks);
    # resumed once more with nothing new, nobody sells.
    case = random_fire_sale_case(seed)
    loss, sold, _, total_rounds, _ = run_fire_sale(case, exponential)
    if total_rounds < 2:
        pytest.skip("the case settles in one round")
    equity, liabilities, remaining, class_sold = fresh_state(case, 1)
    first, rounds, hit_cap = resume_fire_sale(
        case, equity, liabilities, remaining, class_sold, exponential, total_rounds - 1
    )
    assert rounds[0] == total_rounds - 1 and hit_cap[0]
    second, rounds, hit_cap = resume_fire_sale(
        case, case["capital"] - first, liabilities, remaining, class_sold, exponential, 1000
    )
    assert rounds[0] == 1 and not hit_cap[0]
    np.testing.assert_allclose(first + second, loss[None], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(class_sold[0], sold.sum(axis=0), rtol=1e-12, atol=1e-12)
    settled = case["capital"] - first - second
    third, rounds, hit_cap = resume_fire_sale(
        case, settled, liabilities, remaining, class_sold, exponential, 1000
    )
    assert rounds[0] == 0 and not hit_cap[0] and (third == 0.0).all()


def test_new_losses_resume_the_sales_and_never_undo_them():
    # After a settled fire sale, a further loss on one path (as the network passes on the
    # mark-downs) makes more sales on that path only; what was sold stays sold.
    case = random_fire_sale_case(13, ratio=(0.05, 0.12))  # cascades, and leaves holdings
    equity, liabilities, remaining, class_sold = fresh_state(case, 2)
    marks, _, _ = resume_fire_sale(case, equity, liabilities, remaining, class_sold, False, 1000)
    sold_before = class_sold.copy()
    equity = case["capital"] - marks
    # A new loss on path 1, of a tenth of the assets of the institution with the most left to
    # sell: capital ratios start below 12 %, so it falls below its trigger.
    i = int(np.argmax(remaining[1].sum(axis=1)))
    assert remaining[1, i].sum() > 0.0
    equity[1, i] -= 0.1 * (case["capital"][i] + case["liabilities"][i])
    more, rounds, _ = resume_fire_sale(
        case, equity, liabilities, remaining, class_sold, False, 1000
    )
    assert rounds[0] == 0 and (more[0] == 0.0).all()
    assert rounds[1] > 0 and (more[1] >= 0.0).all() and more[1].sum() > 0.0
    assert (class_sold >= sold_before).all() and (class_sold[1] > sold_before[1]).any()
    np.testing.assert_array_equal(class_sold[0], sold_before[0])


@pytest.mark.parametrize("max_rounds", [0, 1, 6])
def test_single_pass_batches_distressed_throughout_take_one_round(max_rounds):
    # Every node of every path starts distressed: each batch of single-pass DebtRank is one
    # round and goes straight to its gather: WIDE paths at a time in batches of 16, WIDTH at
    # a time in batches of 8 or 24. The last batch is partial, its empty slots pushing
    # nothing. With max_rounds 0 every batch takes the general loop.
    from kernels.distress import debtrank_network, debtrank_paths_batched

    rng = np.random.default_rng(13)
    n, n_paths = 40, 45
    capital = rng.uniform(5.0, 20.0, n)
    network = random_claims(rng, n, 500, 1.5)
    loss = rng.uniform(0.01, 0.6, (n_paths, n)) * capital
    expected = [
        run_debtrank(loss[p], capital, network, False, True, 0.0, max_rounds)[1:]
        for p in range(n_paths)
    ]
    prepared = debtrank_network(capital, *network, True)
    for batch in (8, 16, 24):
        contagion = np.full((n_paths, n), np.nan)
        defaulted = np.zeros((n_paths, n), dtype=np.bool_)
        hit_cap = np.zeros(n_paths, dtype=np.bool_)
        most_rounds, n_hit = debtrank_paths_batched(
            loss, prepared, False, 0.0, max_rounds, batch, contagion, defaulted, hit_cap
        )
        for p in range(n_paths):
            np.testing.assert_array_equal(contagion[p], expected[p][0])
            np.testing.assert_array_equal(defaulted[p], expected[p][1])
        assert most_rounds == min(max_rounds, 1)
        assert n_hit == (n_paths if max_rounds == 0 else 0)
    # Losses stay below capital: only the round makes defaults, and not everywhere.
    assert defaulted.any() == (max_rounds > 0) and not defaulted.all()


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("capped", [False, True])
@pytest.mark.parametrize("dense", [False, True])
def test_debtrank_paths_do_not_depend_on_the_batch(linear, capped, dense):
    # debtrank_paths runs the paths together in batches: each path's rounds, stop and sums
    # must stay its own, bit for bit what debtrank gives it alone, whatever the batch. Sparse:
    # paths stop at different rounds, some at the round cap, one runs no round. Dense: most
    # nodes saturate part-way through their debtors (the gather's early stop), later rounds
    # take the scatter.
    from kernels.distress import debtrank_network, debtrank_paths_batched

    rng = np.random.default_rng(11)
    n, n_paths = 40, 45
    capital = rng.uniform(5.0, 20.0, n)
    network = random_claims(rng, n, 500, 1.5) if dense else random_claims(rng, n, 120, 4.0)
    hit = rng.random((n_paths, n)) < rng.uniform(0.02, 0.5, (n_paths, 1))
    loss = np.where(hit, rng.uniform(0.0, 1.3, (n_paths, n)), 0.0) * capital
    loss[3] = 0.0
    tol, max_rounds = (1e-4, 14) if linear else (0.0, 6)
    expected = [
        run_debtrank(loss[p], capital, network, linear, capped, tol, max_rounds)[1:]
        for p in range(n_paths)
    ]
    rounds = [e[2] for e in expected]
    n_capped = sum(e[3] for e in expected)
    if not dense:
        assert len(set(rounds)) > 3 and 0 < n_capped < n_paths
    # Batches are multiples of the vector width; 45 paths leave a partial last batch.
    prepared = debtrank_network(capital, *network, capped)
    with pytest.raises(ValueError, match="multiple of WIDTH"):
        debtrank_paths_batched(
            loss, prepared, linear, tol, max_rounds, 7, loss.copy(), loss > 0, loss[:, 0] > 0
        )
    for batch in (8, 16, 24, 64):
        contagion = np.full((n_paths, n), np.nan)
        defaulted = np.zeros((n_paths, n), dtype=np.bool_)
        hit_cap = np.zeros(n_paths, dtype=np.bool_)
        most_rounds, n_hit = debtrank_paths_batched(
            loss, prepared, linear, tol, max_rounds, batch, contagion, defaulted, hit_cap
        )
        for p in range(n_paths):
            np.testing.assert_array_equal(contagion[p], expected[p][0])
            np.testing.assert_array_equal(defaulted[p], expected[p][1])
        assert (most_rounds, n_hit) == (max(rounds), n_capped)
        np.testing.assert_array_equal(hit_cap, [e[3] for e in expected])
    assert (contagion > 0).any() and defaulted.any()
