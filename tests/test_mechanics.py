"""The financing mechanics worked by hand: waterfalls, guarantees, revenue dependencies, lines
to funds, and monotonicity of the shipped book in the AI-demand shock.

Monte Carlo checks are |estimate − truth| ≤ 4 standard errors with fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from kernels.mechanics import EVENT_LESSEE_DEFAULT, EVENT_NON_RENEWAL, vehicle_losses
from stress.compile import compile_scenario, factor_law
from stress.engine import simulate
from stress.run import run_scenario
from stress.scenario import CollateralLGD, load_scenario, shipped_scenarios, validate_data

from builders import write_scenario

KERNELS = ("fast", "reference")
ALMOST_SURELY = 1.0 - 1e-12  # a PD that defaults on every path of any test
NEVER = 1e-12


# --------------------------------------------------------------------------------------
# Waterfall and guarantee, on the kernel itself
# --------------------------------------------------------------------------------------


def one_vehicle(
    recovery: float,
    tranches: list[tuple[float, float]],
    asset: float = 100.0,
    lessee_defaulted: bool = True,
    sponsor_defaulted: bool | None = None,
    cap: float = 0.0,
):
    """Run ``vehicle_losses`` on one path: (asset loss, guarantee paid, event, tranche losses).

    Obligor 0 is the lessee, obligor 1 the sponsor (``None``: no guarantee). No non-renewal
    clause, and a fixed recovery.
    """
    defaulted = np.array([lessee_defaulted, bool(sponsor_defaulted)])
    attach = np.array([a * asset for a, _ in tranches])
    width = np.array([(d - a) * asset for a, d in tranches])
    out = [np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1), np.int8)]
    out.append(np.zeros((1, len(tranches))))
    vehicle_losses(
        np.random.default_rng(0),
        np.zeros((1, 1)),
        0,
        1.0,
        defaulted,
        np.array([0]),
        np.array([-1 if sponsor_defaulted is None else 1]),
        (
            np.array([asset]),
            np.array([cap]),
            np.array([-math.inf]),
            np.zeros((1, 1)),
            np.ones(1),
            np.array([recovery]),
            np.array([-1]),
            np.zeros(1),
            np.array([0, len(tranches)]),
            attach,
            width,
            np.arange(len(tranches)),
        ),
        *out,
    )
    return out[0][0, 0], out[1][0, 0], out[2][0, 0], out[3][0]


# Equity 0–10 %, mezzanine 10–30 %, senior 30–100 % of an asset of 100. Tranche loss =
# clip((ℓ − a)/(d − a), 0, 1) × (d − a) × 100 with ℓ the loss as a fraction of the asset.
WATERFALL = [(0.0, 0.1), (0.1, 0.3), (0.3, 1.0)]


@pytest.mark.parametrize(
    "recovery, expected",
    [
        (1.0, [0.0, 0.0, 0.0]),  # the asset keeps its value: no loss
        (0.95, [5.0, 0.0, 0.0]),  # ℓ = 5 %: inside equity, (0.05 − 0)/0.1 × 10 = 5
        (0.9, [10.0, 0.0, 0.0]),  # ℓ = 10 %: equity exhausted exactly, mezzanine untouched
        (0.8, [10.0, 10.0, 0.0]),  # ℓ = 20 %: above equity, (0.2 − 0.1)/0.2 × 20 = 10
        (0.7, [10.0, 20.0, 0.0]),  # ℓ = 30 %: mezzanine exhausted exactly
        (0.5, [10.0, 20.0, 20.0]),  # ℓ = 50 %: inside senior, (0.5 − 0.3)/0.7 × 70 = 20
        (0.0, [10.0, 20.0, 70.0]),  # ℓ = 100 %: every tranche written off
    ],
)
def test_waterfall_below_inside_and_above_each_tranche(recovery, expected):
    loss, paid, event, tranches = one_vehicle(recovery, WATERFALL)
    assert event == EVENT_LESSEE_DEFAULT and paid == 0.0
    np.testing.assert_allclose(tranches, expected, rtol=1e-12, atol=1e-12)
    assert loss == pytest.approx(100.0 * (1.0 - recovery), abs=1e-12)
    assert tranches.sum() == pytest.approx(loss, abs=1e-12)


def test_no_event_no_loss_and_no_guarantee():
    loss, paid, event, tranches = one_vehicle(0.2, WATERFALL, lessee_defaulted=False, cap=50.0)
    assert (loss, paid, event) == (0.0, 0.0, 0)
    assert not tranches.any()


@pytest.mark.parametrize(
    "cap, sponsor_defaulted, paid, loss",
    [
        # Recovery 60 % of 100: a shortfall of 40.
        (25.0, False, 25.0, 15.0),  # sponsor alive, shortfall above the cap: pays the cap
        (50.0, False, 40.0, 0.0),  # sponsor alive, shortfall below the cap: pays it all
        (25.0, True, 0.0, 40.0),  # sponsor defaulted: pays nothing, whatever the cap
        (50.0, True, 0.0, 40.0),
        (0.0, False, 0.0, 40.0),  # a zero cap guarantees nothing
    ],
)
def test_residual_value_guarantee(cap, sponsor_defaulted, paid, loss):
    got_loss, got_paid, _, tranches = one_vehicle(
        0.6, WATERFALL, cap=cap, sponsor_defaulted=sponsor_defaulted
    )
    assert got_paid == pytest.approx(paid, abs=1e-12)
    assert got_loss == pytest.approx(loss, abs=1e-12)
    assert tranches.sum() == pytest.approx(loss, abs=1e-12)


# --------------------------------------------------------------------------------------
# Vehicles through a whole run
# --------------------------------------------------------------------------------------


def vehicle_book(sponsor_pd: float, non_renewal: float | None = None) -> dict:
    """A lease SPV of 100 whose lessee always defaults (or, with ``non_renewal``, never
    defaults but may walk away), recovery 70 %, guarantee capped at 10 by the sponsor."""
    vehicle = {
        "asset_value": 100.0,
        "lessee": "lessee",
        "recovery": {"base": 0.7},
        "guarantee": {"sponsor": "sponsor", "cap": 10.0},
        "tranches": {
            "equity": {"class": "spv_equity", "attach": 0.0, "detach": 0.15},
            "senior": {"class": "spv_bond", "attach": 0.15, "detach": 1.0},
        },
    }
    if non_renewal is not None:
        vehicle["non_renewal"] = {"probability": non_renewal, "loadings": {"ai_demand": 0.5}}
    return {
        "name": "one-spv",
        "simulation": {"paths": 2_000, "seed": 4, "block_size": 500},
        "factors": {"ai_demand": {}},
        "obligors": {
            "lessee": {"pd": NEVER if non_renewal is not None else ALMOST_SURELY},
            "sponsor": {"pd": sponsor_pd},
        },
        "vehicles": {"spv": vehicle},
        "institutions": {
            "insurer": {"type": "insurer", "capital": 50.0, "holdings": {"spv.senior": 0.5}},
            "fund": {"type": "private_credit_fund", "capital": 5.0, "holdings": {"spv.equity": 1}},
        },
    }


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    "sponsor_pd, paid, equity, senior",
    [
        # Shortfall 30; the sponsor pays 10, so the asset loses 20: equity 15, senior 5.
        (NEVER, 10.0, 15.0, 5.0),
        # The sponsor has defaulted too: the asset loses 30, equity 15, senior 15.
        (ALMOST_SURELY, 0.0, 15.0, 15.0),
    ],
)
def test_lease_loss_flows_through_guarantee_and_tranches_to_holders(
    tmp_path, kernel, sponsor_pd, paid, equity, senior
):
    path = write_scenario(tmp_path, vehicle_book(sponsor_pd))
    out = run_scenario(path, tmp_path / "out", kernel=kernel, threads=1).out
    rows = pq.read_table(out / "vehicles").to_pylist()
    assert len(rows) == 2 * 2_000
    by_tranche = {"equity": equity, "senior": senior}
    for row in rows:
        assert row["lessee_defaulted"] and not row["non_renewed"]
        assert row["guarantee_paid"] == pytest.approx(paid, abs=1e-12)
        assert row["asset_loss"] == pytest.approx(equity + senior, abs=1e-12)
        assert row["tranche_loss"] == pytest.approx(by_tranche[row["tranche"]], abs=1e-12)
    institutions = pq.read_table(out / "institutions").to_pylist()
    losses = {(r["institution"]): r["first_round_loss"] for r in institutions[:2]}
    assert losses == pytest.approx({"insurer": 0.5 * senior, "fund": equity})
    classes = {r["class"]: r["loss"] for r in pq.read_table(out / "classes").to_pylist()[:2]}
    assert classes == pytest.approx({"spv_bond": senior, "spv_equity": equity})
    system = pq.read_table(out / "paths", columns=["system_loss"]).column(0).to_numpy()
    np.testing.assert_allclose(system, equity + senior, rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_non_renewal_has_its_probability_and_drives_the_loss(kernel):
    """P(non-renewal) = its probability; E[asset loss] = P × min(shortfall − cap, ...) = P × 20."""
    probability = 0.2
    portfolio = compile_scenario(validate_data(vehicle_book(NEVER, non_renewal=probability)))
    run = simulate(portfolio, 100_000, 17, 10_000, threads=2, kernel=kernel)
    renewed = (run.vehicle_event[:, 0] & EVENT_NON_RENEWAL) != 0
    se = math.sqrt(probability * (1 - probability) / renewed.size)
    assert abs(renewed.mean() - probability) <= 4 * se
    assert not (run.vehicle_event[:, 0] & EVENT_LESSEE_DEFAULT).any()
    np.testing.assert_allclose(run.vehicle_loss[:, 0], np.where(renewed, 20.0, 0.0), atol=1e-12)
    # The event loads on ai_demand: it happens more when demand is low.
    low = run.factors[:, 0] < 0
    assert renewed[low].mean() > renewed[~low].mean() + 0.1


# --------------------------------------------------------------------------------------
# Revenue dependencies
# --------------------------------------------------------------------------------------

P_B, P_C = 0.02, 0.01
SHIFT_B = 2.0 * 0.5  # sensitivity × revenue share of B's dependency on A
SHIFT_C = 1.5 * 0.6  # ... of C's on B


def chain(p_a: float) -> dict:
    """A → B → C: B earns half its revenue from A, C 60 % from B; no factor loadings, so the
    three latent variables are independent and every default probability is closed-form."""

    def named(obligor):
        return {"obligor": obligor, "class": f"on_{obligor}", "ead": 1.0, "lgd": 1.0}

    return {
        "name": "chain",
        "factors": {"z": {}},
        # File order puts the providers first: the engine must resolve them after A.
        "obligors": {"c": {"pd": P_C}, "b": {"pd": P_B}, "a": {"pd": p_a}},
        "dependencies": {
            "c": {"b": {"revenue_share": 0.6, "sensitivity": 1.5}},
            "b": {"a": {"revenue_share": 0.5, "sensitivity": 2.0}},
        },
        "exposures": {f"loan_{o}": named(o) for o in "abc"},
    }


def chain_probabilities(p_a: float) -> tuple[float, float]:
    """P(B defaults) and P(C defaults): each provider's threshold moves up by its shift on the
    paths where its customer defaults, Φ⁻¹(p) + Δ."""
    phi, inverse = stats.norm.cdf, stats.norm.ppf
    p_b = p_a * phi(inverse(P_B) + SHIFT_B) + (1 - p_a) * P_B
    p_c = p_b * phi(inverse(P_C) + SHIFT_C) + (1 - p_b) * P_C
    return p_b, p_c


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("p_a", [0.3, NEVER])
def test_dependency_chain_of_three_obligors(kernel, p_a):
    portfolio = compile_scenario(validate_data(chain(p_a)))
    n = 200_000
    run = simulate(portfolio, n, 29, 20_000, threads=2, kernel=kernel)
    column = {c: portfolio.class_names.index(f"on_{c}") for c in "abc"}
    p_b, p_c = chain_probabilities(p_a)
    for obligor, truth in (("a", p_a), ("b", p_b), ("c", p_c)):
        estimate = run.class_loss[:, column[obligor]].mean()
        se = math.sqrt(truth * (1 - truth) / n)
        assert abs(estimate - truth) <= 4 * max(se, 1 / n), (obligor, estimate, truth)
    if p_a == NEVER:
        # Without the customer's default B keeps its own PD (checked above against the
        # simulation); C still carries the extra probability from B's own defaults.
        assert p_b == pytest.approx(P_B, rel=1e-9)
    else:
        # With it, B's extra default probability is far outside the noise.
        assert p_b - P_B > 20 * math.sqrt(p_b / n)
        # And given A's default, B defaults with Φ(Φ⁻¹(p_B) + Δ_B).
        a_defaulted = run.class_loss[:, column["a"]] > 0
        given = run.class_loss[a_defaulted, column["b"]].mean()
        truth = stats.norm.cdf(stats.norm.ppf(P_B) + SHIFT_B)
        assert abs(given - truth) <= 4 * math.sqrt(truth * (1 - truth) / a_defaulted.sum())


# --------------------------------------------------------------------------------------
# Lines to funds
# --------------------------------------------------------------------------------------


def fund_book(lgd: float) -> dict:
    """A fund with capital 1 holds a loan of 10 to an obligor that always defaults; it
    borrows through two lines of 2 and 4 (a bank holds all of one, half of the other)."""
    return {
        "name": "fund-lines",
        "factors": {"z": {}},
        "obligors": {"borrower": {"pd": ALMOST_SURELY}},
        "exposures": {
            "loan": {"obligor": "borrower", "class": "direct_loan", "ead": 10.0, "lgd": lgd},
            "line_1": {"institution": "fund", "class": "bank_line", "ead": 2.0},
            "line_2": {"institution": "fund", "class": "bank_line", "ead": 4.0},
        },
        "institutions": {
            "bank": {"type": "bank", "capital": 5.0, "holdings": {"line_1": 1.0, "line_2": 0.5}},
            "fund": {"type": "private_credit_fund", "capital": 1.0, "holdings": {"loan": 1.0}},
        },
    }


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    "lgd, bank_loss",
    [
        # Loss 0.5: within the fund's capital of 1, nothing passes on.
        (0.05, 0.0),
        # Loss 5: 4 beyond capital over lines of 6, each line loses 4/6 of its EAD:
        # 2 × 2/3 + 0.5 × 4 × 2/3 = 4/3 + 4/3 = 8/3.
        (0.5, 8.0 / 3.0),
        # Loss 9: 8 beyond capital is more than the lines: both are lost, 2 + 0.5 × 4 = 4.
        (0.9, 4.0),
    ],
)
def test_fund_losses_beyond_capital_pass_to_its_lines(kernel, lgd, bank_loss):
    portfolio = compile_scenario(validate_data(fund_book(lgd)))
    run = simulate(portfolio, 50, 1, 25, threads=1, kernel=kernel)
    bank, fund = portfolio.institution_ids.index("bank"), portfolio.institution_ids.index("fund")
    np.testing.assert_allclose(run.institution_loss[:, fund], 10.0 * lgd, rtol=1e-12)
    np.testing.assert_allclose(run.institution_loss[:, bank], bank_loss, rtol=1e-12, atol=1e-12)
    lines = run.class_loss[:, portfolio.class_names.index("bank_line")]
    np.testing.assert_allclose(lines, min(max(10.0 * lgd - 1.0, 0.0), 6.0), rtol=1e-12)
    # The system total holds the fund's loss once; the lines only move part of it.
    np.testing.assert_allclose(run.system_loss, 10.0 * lgd, rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_fund_of_funds_passes_on_after_the_fund_it_lends_to(kernel):
    """fund_b lends to fund (line_1); fund's excess reaches fund_b, whose own excess reaches
    the bank through line_b. fund_b is listed first, so order must come from the links."""
    book = fund_book(0.9)
    book["exposures"]["line_b"] = {"institution": "fund_b", "class": "bank_line", "ead": 3.0}
    book["institutions"] = {
        "fund_b": {"type": "bdc", "capital": 0.5, "holdings": {"line_1": 1.0}},
        "fund": {"type": "private_credit_fund", "capital": 1.0, "holdings": {"loan": 1.0}},
        "bank": {"type": "bank", "capital": 5.0, "holdings": {"line_b": 1.0, "line_2": 1.0}},
    }
    portfolio = compile_scenario(validate_data(book))
    run = simulate(portfolio, 20, 1, 10, threads=1, kernel=kernel)
    ids = portfolio.institution_ids
    # fund loses 9, passes on all of its lines (2 and 4); fund_b loses 2, passes 1.5 on.
    np.testing.assert_allclose(run.institution_loss[:, ids.index("fund_b")], 2.0, rtol=1e-12)
    np.testing.assert_allclose(run.institution_loss[:, ids.index("bank")], 4.0 + 1.5, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Monotonicity of the shipped book in the AI-demand shock, in every shipped scenario
# --------------------------------------------------------------------------------------


def _ai_demand_shocks(name: str) -> tuple[list[str], float]:
    """Overrides that pin ai_demand in a shipped scenario at its own stressed mean (or at
    −1.5 sd in the unstressed baseline), and a value one standard deviation more severe."""
    scenario = load_scenario(name)
    if scenario.model.stress is None:
        return ["stress.mode=shift", "stress.shocks.ai_demand=-1.5"], -2.5
    mean = float(factor_law(scenario)[0][scenario.factor_names.index("ai_demand")])
    return [f"stress.shocks.ai_demand={mean!r}"], mean - 1.0


# funding-squeeze pins credit_spread at +2.5: holding spreads there, a lower ai_demand moves
# corporate_credit and real_estate *up* through their partial correlations in R, so the
# real-estate pool loses less. That is the conditional Gaussian law at work, not a breach of
# monotonicity in the AI-demand shock itself, which the other scenarios test.
CONDITIONED_ON_SPREADS = {"funding-squeeze"}
SHOCKS = [
    (name, *_ai_demand_shocks(name))
    for name in shipped_scenarios()
    if name not in CONDITIONED_ON_SPREADS
]


def _severities(name, mild, severe_value):
    severe = [*(o for o in mild if "ai_demand" not in o), f"stress.shocks.ai_demand={severe_value}"]
    return load_scenario(name, mild), load_scenario(name, severe)


@pytest.mark.parametrize("name, mild, severe_value", SHOCKS)
def test_a_more_severe_ai_demand_shock_worsens_every_driver(name, mild, severe_value):
    """Sufficient for monotone losses: a more severe shock lowers every latent variable's
    mean (obligors, pools, non-renewal events) and every recovery and collateral factor's."""
    low, high = _severities(name, mild, severe_value)
    move = factor_law(high)[0] - factor_law(low)[0]
    model = high.model
    index = {f: i for i, f in enumerate(high.factor_names)}

    def shift(loadings):
        return sum(value * move[index[f]] for f, value in loadings.items())

    latent = {f"obligor {k}": o.loadings for k, o in model.obligors.items()}
    latent |= {f"pool {k}": p.loadings for k, p in model.pools.items()}
    latent |= {
        f"non-renewal of {k}": v.non_renewal.loadings
        for k, v in model.vehicles.items()
        if v.non_renewal is not None
    }
    for what, loadings in latent.items():
        assert shift(loadings) <= 1e-12, what
    factors = {f"recovery of {k}": v.recovery.factor for k, v in model.vehicles.items()}
    factors |= {
        f"LGD of {k}": e.lgd.factor
        for k, e in model.exposures.items()
        if isinstance(e.lgd, CollateralLGD)
    }
    for what, factor in factors.items():
        if factor is not None:
            assert move[index[factor]] <= 1e-12, what


@pytest.mark.parametrize("name, mild, severe_value", SHOCKS)
def test_a_more_severe_ai_demand_shock_never_lowers_a_class_loss(name, mild, severe_value):
    low, high = _severities(name, mild, severe_value)
    runs = [simulate(compile_scenario(s), 20_000, 3, 5_000, threads=2) for s in (low, high)]
    classes = compile_scenario(high).class_names
    n = runs[0].class_loss.shape[0]
    for c, label in enumerate(classes):
        before, after = runs[0].class_loss[:, c], runs[1].class_loss[:, c]
        se = math.sqrt((before.var() + after.var()) / n)
        assert after.mean() >= before.mean() - 4 * se, label
    assert runs[1].system_loss.mean() > runs[0].system_loss.mean()
