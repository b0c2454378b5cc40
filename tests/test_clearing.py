"""Interbank clearing: Eisenberg–Noe with Rogers–Veraart default costs, both seniorities.

Oracles: the published three-bank example (validation.md §5), two three-bank examples worked
by hand below, the Picard iteration, the NumPy twin, and properties on random networks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from kernels.clearing import (
    FACTOR_PANEL,
    _clear,
    _direct,
    _factor,
    _setup_block,
    clear_fictitious_default,
    clear_fixed_point,
    clear_paths,
    clearing_workspace,
    creditor_major,
    network_totals,
)

from twins_clearing import clear_fictitious_default_twin

ATOL = 1e-12
MAX_ITER = 100_000
# Picard runs until the iterate stops moving at all, so it is as converged as floats allow.
PICARD_TOL = 0.0


def to_csr(liabilities):
    """Dense ``liabilities[i, j]`` (i owes j) to CSR by debtor."""
    debtor, creditor = np.nonzero(liabilities)
    indptr = np.zeros(liabilities.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(debtor, minlength=liabilities.shape[0]), out=indptr[1:])
    return indptr, creditor.astype(np.int64), liabilities[debtor, creditor].astype(np.float64)


def clear(e, liabilities, x, alpha=1.0, beta=1.0, senior_external=False, picard=False):
    """Run one per-path kernel on a dense network; outputs and the round/iteration count."""
    e = np.ascontiguousarray(e, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)
    indptr, creditor, amount = to_csr(np.asarray(liabilities, dtype=np.float64))
    totals = network_totals(indptr, creditor, amount, x)
    n = e.shape[0]
    out = SimpleNamespace(
        payments=np.empty(n),
        received=np.empty(n),
        contagion_loss=np.empty(n),
        defaulted=np.empty(n, dtype=np.bool_),
    )
    args = (e, indptr, creditor, amount, x, *totals, float(alpha), float(beta))
    outs = (out.payments, out.received, out.contagion_loss, out.defaulted)
    if picard:
        out.count = clear_fixed_point(*args, bool(senior_external), PICARD_TOL, MAX_ITER, *outs)
    else:
        out.count = clear_fictitious_default(*args, bool(senior_external), *outs)
    return out


def clear_both(e, liabilities, x, **conventions):
    """Both algorithms, checked to agree to 1e-12; returns the fictitious-default result."""
    exact = clear(e, liabilities, x, **conventions)
    picard = clear(e, liabilities, x, picard=True, **conventions)
    assert picard.count < MAX_ITER
    for name in ("payments", "received", "contagion_loss"):
        np.testing.assert_allclose(
            getattr(exact, name), getattr(picard, name), rtol=0, atol=ATOL, err_msg=name
        )
    np.testing.assert_array_equal(exact.defaulted, picard.defaulted)
    return exact


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=0, atol=ATOL)


def assert_matches_twin(out, e, liabilities, x, alpha, beta, senior_external):
    """The kernel's result against the NumPy twin's: values to ATOL, flags and rounds exactly."""
    payments, received, loss, defaulted, rounds = clear_fictitious_default_twin(
        e, liabilities, x, alpha, beta, senior_external
    )
    assert_close(out.payments, payments)
    assert_close(out.received, received)
    assert_close(out.contagion_loss, loss)
    np.testing.assert_array_equal(out.defaulted, defaulted)
    assert out.count == rounds


# --- Worked examples --------------------------------------------------------------------------


def test_published_example_pari_passu():
    # validation.md §5, from the R package systemicrisk. Every off-diagonal L_ij = 1/2, so
    # p̄ = (5/2, 3/2, 3/2) and each bank has interbank assets 1.
    # Round 1: bank 1 has 1/2 + 1 < 5/2 and defaults. Its payment with the others paying in
    #   full is 1/2 + 1/2 + 1/2 = 3/2, so each creditor gets (1/5)(3/2) = 3/10 from it.
    #   Bank 2: 5/8 + 3/10 + 1/2 = 57/40 < 3/2, defaults; bank 3: 3/4 + 4/5 = 31/20 ≥ 3/2.
    # Round 2, D = {1, 2}: p₁ = 1/2 + p₂/3 + 1/2, p₂ = 5/8 + p₁/5 + 1/2, so
    #   p₁ = 11/8 + p₁/15, p₁ = 165/112, p₂ = 159/112; bank 3 gets 33/112 + 53/112 = 86/112
    #   and 84/112 + 86/112 ≥ 168/112: solvent, done.
    # The kernel's sweeps (Picard steps from full payment, ``_sweep``) find bank 2 from
    # bank 1's round-1 payment before any solve, so it solves once, D = {1, 2}: one round.
    liabilities = np.full((3, 3), 0.5)
    np.fill_diagonal(liabilities, 0.0)
    e = np.array([1 / 2, 5 / 8, 3 / 4])
    x = np.array([3 / 2, 1 / 2, 1 / 2])
    out = clear_both(e, liabilities, x)
    assert_close(out.payments, np.array([165, 159, 168]) / 112)
    np.testing.assert_array_equal(out.defaulted, [True, True, False])
    assert out.count == 1


def test_senior_external_by_hand():
    # Banks A, B, C = 0, 1, 2; α = β = 1; external creditors paid first.
    #   L_AB = 2, L_AC = 2, L_BA = 2, L_CB = 2;  x = (1, 1, 4);  e = (2, 1, 1).
    #   l̄ = (4, 2, 2), p̄ = (5, 3, 6), interbank assets a = (2, 4, 2).
    # Interbank payment q_i = l̄_i φ_i = max(0, e_i + r_i − x_i) in default.
    # Round 1, everybody paying: A has 2 + 2 = 4 < 5, C has 1 + 2 = 3 < 6: both default;
    #   B has 1 + 4 = 5 ≥ 3. With B paying in full, q_A = 2 + 2 − 1 = 3, φ_A = 3/4;
    #   C's value 1 + 2·(3/4) = 5/2 is below its senior x_C = 4, so q_C = 0.
    #   B now receives 2·(3/4) + 2·0 = 3/2, and 1 + 3/2 = 5/2 < 3: B defaults too.
    # Round 2, D = {A, B, C}: q_C = max(0, 1 + 2φ_A − 4) = 0 for any φ_A ≤ 1, and
    #   4φ_A = q_A = 2 + 2φ_B − 1,  2φ_B = q_B = 1 + 2φ_A + 2φ_C − 1 = 2φ_A
    #   → φ_B = φ_A, 4φ_A = 1 + 2φ_A, φ_A = φ_B = 1/2.
    # So r = (2φ_B, 2φ_A + 2φ_C, 2φ_A) = (1, 1, 1), p = e + r = (3, 2, 2), q = (2, 1, 0):
    # the external creditors of A and B are paid in full although both default; C's get 2 of 4.
    # Unpaid interbank claims: A 2(1 − φ_B) = 1, B 2(1 − φ_A) + 2(1 − φ_C) = 3, C 2(1 − φ_A) = 1.
    # φ_C is forced to 0 and the 2×2 system for φ_A, φ_B is regular, so this is the only
    # clearing vector.
    liabilities = np.zeros((3, 3))
    liabilities[0, 1] = liabilities[0, 2] = liabilities[1, 0] = liabilities[2, 1] = 2.0
    e = np.array([2.0, 1.0, 1.0])
    x = np.array([1.0, 1.0, 4.0])
    out = clear_both(e, liabilities, x, senior_external=True)
    assert_close(out.payments, [3, 2, 2])
    assert_close(out.received, [1, 1, 1])
    assert_close(out.contagion_loss, [1, 3, 1])
    np.testing.assert_array_equal(out.defaulted, [True, True, True])
    # Senior with β = 1 gives κ = 1 (``contraction``): no sweeps, the rounds as above.
    assert out.count == 2


def test_default_costs_by_hand():
    # Pari passu with Rogers–Veraart costs α = 1/2, β = 3/4. Banks A, B, C = 0, 1, 2:
    #   L_AB = 2, L_BA = 1, L_BC = 1, L_CA = 1;  x = (2, 1, 1);  e = (1, 7/4, 7/4).
    #   p̄ = (4, 3, 2), a = (2, 2, 1); Π_AB = 1/2, Π_BA = Π_BC = 1/3, Π_CA = 1/2.
    # Round 1: A has 1 + 2 = 3 < 4 and defaults; B (7/4 + 2) and C (7/4 + 1) do not.
    #   p_A = α e_A + β (L_BA + L_CA) = 1/2 + (3/4)·2 = 2, so B receives Π_AB p_A = 1 and has
    #   7/4 + 1 = 11/4 < 3: B defaults. (Without costs p_A = 3, B receives 3/2, has 13/4 ≥ 3
    #   and survives; see below.)
    # Round 2, D = {A, B}:
    #   p_A = 1/2 + (3/4)(p_B/3 + 1) = 5/4 + p_B/4
    #   p_B = 7/8 + (3/4)(p_A/2)     = 7/8 + 3p_A/8
    #   → p_A = 5/4 + 7/32 + 3p_A/32, (29/32) p_A = 47/32, p_A = 47/29, p_B = 43/29.
    #   C receives p_B/3 = 43/87 and has 7/4 + 43/87 ≥ 2: solvent, done.
    # r = (p_B/3 + 1, p_A/2, p_B/3) = (130/87, 47/58, 43/87). The kernel's sweeps find B
    # from A's round-1 payment, so it solves once, D = {A, B}.
    # Contagion loss = unpaid interbank claims + default costs (1 − α) e + (1 − β) r:
    #   A: (1 − 43/87) + (1/2 + (1/4)(130/87)) = 44/87 + 76/87 = 40/29
    #   B: (2 − 47/58) + ((1/2)(7/4) + (1/4)(47/58)) = 69/58 + 125/116 = 263/116
    #   C: 1 − 43/87 = 44/87.
    liabilities = np.zeros((3, 3))
    liabilities[0, 1] = 2.0
    liabilities[1, 0] = liabilities[1, 2] = liabilities[2, 0] = 1.0
    e = np.array([1.0, 7 / 4, 7 / 4])
    x = np.array([2.0, 1.0, 1.0])
    out = clear_both(e, liabilities, x, alpha=0.5, beta=0.75)
    assert_close(out.payments, [47 / 29, 43 / 29, 2])
    assert_close(out.received, [130 / 87, 47 / 58, 43 / 87])
    assert_close(out.contagion_loss, [40 / 29, 263 / 116, 44 / 87])
    np.testing.assert_array_equal(out.defaulted, [True, True, False])
    assert out.count == 1

    # Without costs only A defaults: p_A = 1 + 2 = 3, r = (2, 3/2, 1), and B loses 2 − 3/2.
    plain = clear_both(e, liabilities, x)
    assert_close(plain.payments, [3, 3, 2])
    assert_close(plain.received, [2, 3 / 2, 1])
    assert_close(plain.contagion_loss, [0, 1 / 2, 0])
    np.testing.assert_array_equal(plain.defaulted, [True, False, False])
    assert plain.count == 1


@pytest.mark.parametrize("senior_external", [False, True])
@pytest.mark.parametrize("costs", [(1.0, 1.0), (0.5, 0.5)])
def test_balanced_ring_without_assets_pays_in_full(senior_external, costs):
    # Each bank receives exactly what it owes, and has nothing else. The trigger e + r ≥ p̄
    # must hold exactly, or default costs would halve every payment.
    liabilities = np.array([[0.0, 0.1, 0.2], [0.2, 0.0, 0.1], [0.1, 0.2, 0.0]])
    zero = np.zeros(3)
    out = clear_both(
        zero, liabilities, zero, alpha=costs[0], beta=costs[1], senior_external=senior_external
    )
    np.testing.assert_array_equal(out.payments, liabilities.sum(axis=1))
    np.testing.assert_array_equal(out.contagion_loss, zero)
    assert not out.defaulted.any()
    assert out.count == 0


@pytest.mark.parametrize(("large", "e_c"), [(1e8, 2.7), (3.7e9, 1.3), (1e10, 2.2)])
def test_nearly_worthless_large_claim_does_not_tip_a_solvent_creditor(large, e_c):
    # C owes B a large amount S and is nearly worthless (external assets E); B owes i 1;
    # α = β = 1/2. i clears its obligations by 1e-10. C: e = E, p̄ = 2S, defaults, pays αE
    # to its creditors, B gets half of it, r_B = αE/2. B: e = 0, p̄ = 2, defaults,
    # p_B = β r_B, so φ_B = β r_B / 2 and i receives φ_B. With e_i = 1 − φ_B + 1e-10, i has
    # 1 + 1e-10 ≥ p̄_i = 1: solvent. Receipts formed as a_B − unpaid_B = S − S(1 − φ_C) lose
    # about ulp(S) to cancellation, which tips i into default with these (S, E); the sweeps
    # form them in payment space.
    alpha = beta = 0.5
    liabilities = np.zeros((3, 3))
    liabilities[0, 1] = large
    liabilities[1, 2] = 1.0
    x = np.array([large, 1.0, 1.0])
    r_b = Fraction(alpha) * Fraction(e_c) / 2
    phi_b = Fraction(beta) * r_b / 2
    e = np.array([e_c, 0.0, float(1 - phi_b + Fraction(1e-10))])
    out = clear(e, liabilities, x, alpha=alpha, beta=beta)
    np.testing.assert_array_equal(out.defaulted, [True, True, False])
    # The outputs report B's receipts as a_B − unpaid_B (the reconciliation's identity):
    # exact to rounding at the scale of B's balance sheet, S, not of the receipts themselves.
    np.testing.assert_allclose(
        out.payments, [alpha * e_c, float(beta * r_b), 1.0], rtol=0, atol=1e-15 * large
    )


@pytest.mark.parametrize(("large", "e_c"), [(1e8, 1.3), (1e9, 2.7), (1e10, 2.2)])
def test_small_claim_on_the_solvent_next_to_a_large_one_on_a_defaulter(large, e_c):
    # As above, and B also holds a claim of 0.3 on D, solvent throughout (e_D = 10); x_B is
    # 1.5, so p̄_B = 2.5. r_B = αE/2 + 0.3, φ_B = β r_B / 2.5, i solvent by 1e-10. Formed as
    # a_B − (claims on D) = (S + 0.3) − S, B's claims on the solvent lose about ulp(S) to
    # cancellation, in the sweeps' receipts and in the rounds' right-hand side alike; the
    # rounds sum them directly, and the sweeps leave to the rounds whatever is within
    # rounding at the scale of the debtors' balance sheets (``upstream``).
    alpha = beta = 0.5
    small = 0.3
    liabilities = np.zeros((4, 4))
    liabilities[0, 1] = large
    liabilities[1, 2] = 1.0
    liabilities[3, 1] = small
    x = np.array([large, 1.5, 1.0, 1.0])
    r_b = Fraction(alpha) * Fraction(e_c) / 2 + Fraction(small)
    phi_b = Fraction(beta) * r_b / Fraction(5, 2)
    e = np.array([e_c, 0.0, float(1 - phi_b + Fraction(1e-10)), 10.0])
    out = clear(e, liabilities, x, alpha=alpha, beta=beta)
    np.testing.assert_array_equal(out.defaulted, [True, True, False, False])
    np.testing.assert_allclose(
        out.payments, [alpha * e_c, float(beta * r_b), 1.0, 1.3], rtol=0, atol=1e-15 * large
    )


# --- Random networks --------------------------------------------------------------------------

N = 30
CASES = [
    pytest.param(
        seed,
        stress,
        senior,
        alpha,
        beta,
        id=f"{seed}-{stress}-{'senior' if senior else 'pari'}-{alpha}",
    )
    for seed in range(4)
    for stress in ("mild", "severe")
    for senior in (False, True)
    for alpha, beta in ((1.0, 1.0), (0.7, 0.9), (0.4, 0.6))
]
# External assets: mild stress leaves most banks solvent in the first round, severe stress
# defaults about half of them and cascades through most of the rest.
ASSETS = {"mild": (0.5, 4.0), "severe": (0.0, 2.0)}


def random_network(seed, stress="mild", n=N, density=0.2):
    """L (20 % of pairs, amounts in [0.1, 1]), x and e; three banks owe nothing interbank and
    bank 0 owes nothing at all."""
    rng = np.random.default_rng(seed)
    liabilities = np.where(rng.random((n, n)) < density, rng.uniform(0.1, 1.0, (n, n)), 0.0)
    np.fill_diagonal(liabilities, 0.0)
    liabilities[:3] = 0.0
    x = rng.uniform(0.0, 2.0, n)
    x[0] = 0.0
    e = rng.uniform(*ASSETS[stress], n)
    return liabilities, x, e


def relative(liabilities, pool):
    """liabilities[i, j] / pool[i], 0 where the pool is empty."""
    return np.divide(
        liabilities,
        pool[:, None],
        out=np.zeros_like(liabilities),
        where=pool[:, None] > 0,
    )


def paid_matrix(payments, liabilities, x, senior_external):
    """What each debtor pays each creditor, from the payment vector alone."""
    owed = liabilities.sum(axis=1)
    if senior_external:
        interbank = np.clip(payments - x, 0.0, owed)
        return relative(liabilities, owed) * interbank[:, None]
    return relative(liabilities, owed + x) * payments[:, None]


def clearing_map(payments, e, liabilities, x, alpha, beta, senior_external):
    """The clearing map of the module docstring, written with Π as in the papers."""
    obligations = liabilities.sum(axis=1) + x
    received = paid_matrix(payments, liabilities, x, senior_external).sum(axis=0)
    mapped = np.where(e + received >= obligations, obligations, alpha * e + beta * received)
    return mapped, received


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_algorithms_agree_on_random_networks(seed, stress, senior, alpha, beta):
    liabilities, x, e = random_network(seed, stress)
    # clear_both holds Picard and fictitious default together to 1e-12.
    out = clear_both(e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior)
    assert out.defaulted.any()
    assert 1 <= out.count <= N


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_payments_are_a_clearing_vector(seed, stress, senior, alpha, beta):
    liabilities, x, e = random_network(seed, stress)
    out = clear(e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior)
    obligations = liabilities.sum(axis=1) + x
    assert (out.payments >= 0).all()
    # Up to rounding: the kernel sums p̄ in its own order.
    assert (out.payments <= obligations + ATOL).all()
    mapped, received = clearing_map(out.payments, e, liabilities, x, alpha, beta, senior)
    assert_close(mapped, out.payments)
    assert_close(received, out.received)


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_losses_reconcile_with_the_balance_sheet(seed, stress, senior, alpha, beta):
    liabilities, x, e = random_network(seed, stress)
    first_round_loss = np.random.default_rng(seed + 100).uniform(0.0, 1.0, N)
    before = e + first_round_loss
    out = clear(e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior)
    obligations = liabilities.sum(axis=1) + x

    paid = paid_matrix(out.payments, liabilities, x, senior)
    costs = (1 - alpha) * e + (1 - beta) * out.received
    expected = (liabilities - paid).sum(axis=0) + np.where(out.defaulted, costs, 0.0)
    assert_close(out.contagion_loss, expected)

    capital = before + liabilities.sum(axis=0) - obligations
    after = capital - first_round_loss - out.contagion_loss
    d = out.defaulted
    # A defaulter's creditors lose exactly its negative equity; survivors keep theirs.
    assert_close(after[d], out.payments[d] - obligations[d])
    assert_close(after[~d], (e + out.received - obligations)[~d])
    assert (after[~d] >= -ATOL).all()


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_matches_twin(seed, stress, senior, alpha, beta):
    liabilities, x, e = random_network(seed, stress)
    out = clear(e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior)
    assert_matches_twin(out, e, liabilities, x, alpha, beta, senior)


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_nobody_defaults_when_external_assets_cover_obligations(seed, stress, senior, alpha, beta):
    liabilities, x, _ = random_network(seed, stress)
    e = liabilities.sum(axis=1) + x
    for picard in (False, True):
        out = clear(
            e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior, picard=picard
        )
        assert_close(out.payments, e)
        assert_close(out.received, liabilities.sum(axis=0))
        np.testing.assert_array_equal(out.contagion_loss, np.zeros(N))
        assert not out.defaulted.any()
        assert out.count == (1 if picard else 0)


@pytest.mark.parametrize(("seed", "stress", "senior", "alpha", "beta"), CASES)
def test_payments_fall_as_external_assets_fall(seed, stress, senior, alpha, beta):
    liabilities, x, e = random_network(seed, stress)
    payments = np.array(
        [
            clear(
                scale * e, liabilities, x, alpha=alpha, beta=beta, senior_external=senior
            ).payments
            for scale in np.linspace(1.5, 0.0, 16)
        ]
    )
    assert (np.diff(payments, axis=0) <= ATOL).all()


# --- The block driver -------------------------------------------------------------------------


@pytest.mark.parametrize("senior", [False, True])
def test_clear_paths_matches_per_path_kernel_and_threads(senior):
    liabilities, x, e = random_network(7)
    scales = np.random.default_rng(8).uniform(0.0, 1.5, (40, 1))
    assets = np.ascontiguousarray(scales * e)
    indptr, creditor, amount = to_csr(liabilities)
    alpha, beta = 0.7, 0.9

    def run(block):
        shape = block.shape
        out = (np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_))
        clear_paths(block, indptr, creditor, amount, x, alpha, beta, senior, *out)
        return out

    serial = run(assets)
    for path in range(assets.shape[0]):
        one = clear(assets[path], liabilities, x, alpha=alpha, beta=beta, senior_external=senior)
        np.testing.assert_array_equal(serial[0][path], one.payments)
        np.testing.assert_array_equal(serial[1][path], one.contagion_loss)
        np.testing.assert_array_equal(serial[2][path], one.defaulted)

    halves = (np.ascontiguousarray(assets[:20]), np.ascontiguousarray(assets[20:]))
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(run, halves))
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), serial[k])


# --- Whole-network default: the dense LU ------------------------------------------------------


def owing_network(seed, n):
    """Every bank owes other banks (a ring at least) and external creditors, so that all are in
    the whole-network system and κ = β max l̄ / p̄ < 1."""
    rng = np.random.default_rng(seed)
    liabilities = np.where(rng.random((n, n)) < 0.2, rng.uniform(0.1, 1.0, (n, n)), 0.0)
    np.fill_diagonal(liabilities, 0.0)
    ring = np.arange(n)
    liabilities[ring, (ring + 1) % n] = np.maximum(liabilities[ring, (ring + 1) % n], 0.1)
    return liabilities, rng.uniform(0.5, 2.0, n)


def whole_system(seed, beta=0.8):
    """An ``owing_network`` of more than two factorisation panels (the last one partial): its
    creditor-major claims, A = I − M as a dense matrix and κ. M[a, c] = β L_ca / p̄_c, what
    creditor a gets per unit paid by debtor c."""
    n = 2 * FACTOR_PANEL + 5
    liabilities, x = owing_network(seed, n)
    obligations = liabilities.sum(axis=1) + x
    claims = creditor_major(*to_csr(liabilities), obligations, beta, liabilities.sum(axis=0))
    a = np.eye(n) - beta * (liabilities / obligations[:, None]).T
    return claims, a, beta * np.max(liabilities.sum(axis=1) / obligations)


def test_lu_factors_reconstruct_the_whole_system():
    claims, a, _ = whole_system(3)
    n = a.shape[0]
    factors = np.empty((n, n))
    _factor(claims[3], claims[4], claims[6], factors)
    lower = np.tril(factors.T, -1) + np.eye(n)
    upper = np.triu(factors.T)
    np.testing.assert_allclose(lower @ upper, a, rtol=0, atol=1e-14)


def test_direct_solve_of_the_whole_system():
    claims, a, kappa = whole_system(4)
    n = a.shape[0]
    b = np.random.default_rng(6).uniform(0.0, 1.0, n)
    workspace = clearing_workspace(n, claims[1].shape[0], kappa)
    real, flags = workspace[0], workspace[2]
    real[2, :] = b
    flags[1, :] = True
    assert _direct(n, claims, workspace)
    np.testing.assert_allclose(real[3], np.linalg.solve(a, b), rtol=1e-13, atol=0)
    # Not the whole system: somebody outside J, or κ = 1 (no factors).
    flags[1, 7] = False
    assert not _direct(n, claims, workspace)
    flags[1, 7] = True
    assert not _direct(n, claims, clearing_workspace(n, claims[1].shape[0], 1.0))


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.9, 0.8)])
def test_everybody_defaults_through_the_dense_lu(alpha, beta):
    n = 2 * FACTOR_PANEL + 5
    liabilities, x = owing_network(11, n)
    e = np.random.default_rng(12).uniform(0.0, 0.3, n)
    # 41 of the 69 fall short with everybody paying; the sweeps find the rest of the cascade,
    # so the one round is the whole-network system.
    assert np.count_nonzero(e + liabilities.sum(axis=0) < liabilities.sum(axis=1) + x) == 41
    # clear_both holds the result against Picard to 1e-12.
    out = clear_both(e, liabilities, x, alpha=alpha, beta=beta)
    assert out.defaulted.all()
    assert out.count == 1
    assert_matches_twin(out, e, liabilities, x, alpha, beta, False)


def test_factors_are_made_by_the_first_whole_network_round_and_kept():
    # GMRES would polish any start, so the results alone do not show the factors in use.
    n = 2 * FACTOR_PANEL + 5
    liabilities, x = owing_network(5, n)
    indptr, creditor, amount = to_csr(liabilities)
    alpha, beta = 0.9, 0.8
    totals = network_totals(indptr, creditor, amount, x)
    claims, sheet, workspace = _setup_block(
        indptr, creditor, amount, x, *totals, alpha, beta, False
    )
    factors, factored = workspace[9], workspace[10]
    out = (np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool))
    obligations = totals[0]

    _clear(0.5 * obligations, claims, sheet, workspace, *out)  # a few default, not all
    assert out[3].any() and not out[3].all()
    assert not factored[0]
    _clear(np.zeros(n) + 0.01, claims, sheet, workspace, *out)  # everybody defaults
    assert out[3].all()
    assert factored[0]
    fresh = np.empty((n, n))
    _factor(claims[3], claims[4], claims[6], fresh)
    np.testing.assert_array_equal(factors, fresh)
    # The next whole-network path reuses them as they are.
    factors[:] = np.nan
    _clear(np.zeros(n) + 0.02, claims, sheet, workspace, *out)
    assert np.isnan(factors).all()


def test_clear_paths_matches_per_path_kernel_whichever_path_factorises():
    # Paths from nobody defaulting to everybody: the block factorises the whole-network system
    # on the first path that needs it and reuses it; each single-path call factorises its own.
    n = 2 * FACTOR_PANEL + 5
    liabilities, x = owing_network(5, n)
    indptr, creditor, amount = to_csr(liabilities)
    base = liabilities.sum(axis=1) + x
    scales = np.linspace(1.2, 0.0, 24)[:, None]
    assets = np.ascontiguousarray(scales * base)
    alpha, beta = 0.9, 0.8

    def run(block):
        out = (np.empty(block.shape), np.empty(block.shape), np.empty(block.shape, dtype=bool))
        clear_paths(block, indptr, creditor, amount, x, alpha, beta, False, *out)
        return out

    serial = run(assets)
    everybody = serial[2].all(axis=1)
    assert everybody.any() and not serial[2][0].any()
    for path in range(assets.shape[0]):
        one = clear(assets[path], liabilities, x, alpha=alpha, beta=beta)
        np.testing.assert_array_equal(serial[0][path], one.payments)
        np.testing.assert_array_equal(serial[1][path], one.contagion_loss)
    # Reversed, the first path to factorise is another one: the same bits.
    backwards = run(np.ascontiguousarray(assets[::-1]))
    for k in range(3):
        np.testing.assert_array_equal(backwards[k][::-1], serial[k])
