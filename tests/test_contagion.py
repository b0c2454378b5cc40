"""Second-round losses through the engine: validation, worked examples, reconciliation."""

from __future__ import annotations

import copy
import json
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stress.cli import app
from stress.compile import compile_scenario
from stress.engine import simulate
from stress.scenario import validate_data

from builders import small_scenario, write_scenario

runner = CliRunner()
CERTAIN = 1.0 - 1e-12  # a PD whose default happens on every simulated path


def eisenberg_noe_book(model: str = "eisenberg-noe", seniority: str = "pari_passu") -> dict:
    """validation.md §5 (systemicrisk, pari passu) as a run: each bank holds a loan of 2 that
    defaults for sure with LGD 1, so on every path its external assets are back to the
    example's (1/2, 5/8, 3/4) while its capital before the loss was positive."""
    external = {"b1": 0.5, "b2": 0.625, "b3": 0.75}
    liabilities = {"b1": 1.5, "b2": 0.5, "b3": 0.5}
    institutions = {}
    for name in external:
        claims = {other: 0.5 for other in external if other != name}
        # capital = e + holdings + claims held − x − claims owed = e + 2 + 1 − x − 1
        institutions[name] = {
            "type": "bank",
            "capital": external[name] + 2.0 - liabilities[name],
            "holdings": {f"{name}_loan": 1.0},
            "external_assets": external[name],
            "external_liabilities": liabilities[name],
            "claims": claims,
        }
    return {
        "name": "eisenberg-noe-example",
        "factors": {"z": {}},
        "obligors": {f"{n}_borrower": {"pd": CERTAIN} for n in external},
        "exposures": {
            f"{n}_loan": {"obligor": f"{n}_borrower", "class": "loan", "ead": 2.0, "lgd": 1.0}
            for n in external
        },
        "institutions": institutions,
        "contagion": {"model": model, "external_seniority": seniority},
    }


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_eisenberg_noe_example_through_the_engine(kernel):
    sim = simulate(
        compile_scenario(validate_data(eisenberg_noe_book())), 2_000, 1, 1_000, kernel=kernel
    )
    # Greatest clearing vector p* = (165/112, 159/112, 3/2), p̄ = (5/2, 3/2, 3/2):
    # Π_ij = 0.5 / p̄_i, so what bank j receives from i is p*_i / (2 p̄_i).
    p = [F(165, 112), F(159, 112), F(3, 2)]
    bar = [F(5, 2), F(3, 2), F(3, 2)]
    unpaid = [sum(F(1, 2) - p[i] / (2 * bar[i]) for i in range(3) if i != j) for j in range(3)]
    np.testing.assert_allclose(sim.institution_loss, 2.0)
    np.testing.assert_allclose(
        sim.contagion_loss, np.tile([float(u) for u in unpaid], (2_000, 1)), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(sim.defaulted, np.tile([True, True, False], (2_000, 1)))


def test_nothing_lost_first_nothing_defaults():
    data = eisenberg_noe_book()
    for exposure in data["exposures"].values():
        exposure["ead"] = 0.0
    for inst in data["institutions"].values():
        inst["capital"] -= 2.0
        inst["external_assets"] += 0.0
    data["institutions"]["b1"]["external_assets"] = 2.5
    data["institutions"]["b1"]["capital"] = 2.5 + 1 - 1.5 - 1
    data["institutions"]["b2"]["external_assets"] = 1.625
    data["institutions"]["b2"]["capital"] = 1.625 - 0.5
    data["institutions"]["b3"]["external_assets"] = 1.75
    data["institutions"]["b3"]["capital"] = 1.75 - 0.5
    sim = simulate(compile_scenario(validate_data(data)), 1_000, 1, 500)
    assert not sim.defaulted.any()
    assert (sim.contagion_loss == 0).all()


def with_network(model: str, fire_sales: bool) -> dict:
    """The small test book with balance sheets, fund lines and (optionally) fire sales."""
    data = small_scenario(
        stress={"mode": "shift", "shocks": {"ai_demand": -2.0}},
        contagion={"model": model, "default_costs": {"external": 0.9, "interbank": 0.7}},
    )
    inst = data["institutions"]
    inst["bank_a"].update(external_assets=40e9, claims={"fund_a": 3e9})
    inst["fund_a"].update(external_assets=1e9, claims={"bank_a": 0.2e9})
    inst["insurer_a"].update(external_assets=150e9, claims={"fund_a": 1e9})
    if fire_sales:
        data["contagion"]["fire_sales"] = {
            "classes": {
                "hyperscaler_bond": {"impact": 0.4, "depth": 50e9},
                "corporate": {"impact": 0.3, "depth": 80e9},
            },
            "trigger_ratio": 0.06,
            "target_ratio": 0.09,
        }
    return data


@pytest.mark.parametrize(
    "model, fire_sales",
    [
        ("eisenberg-noe", False),
        ("eisenberg-noe", True),
        ("debtrank", False),
        ("debtrank", True),
        ("none", True),
    ],
)
def test_outputs_reconcile(tmp_path: Path, model, fire_sales):
    path = write_scenario(tmp_path, with_network(model, fire_sales))
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", str(path), "--out", str(out), "--paths", "4000", "--block-size", "1000"]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "institutions").to_pydict()
    first, contagion, fire, total, after = (
        np.array(table[c])
        for c in (
            "first_round_loss",
            "contagion_loss",
            "fire_sale_loss",
            "total_loss",
            "capital_after",
        )
    )
    np.testing.assert_allclose(total, first + contagion + fire, rtol=1e-12, atol=1e-3)
    capital = {"bank_a": 8e9, "fund_a": 2e9, "insurer_a": 20e9}
    caps = np.array([capital[i] for i in table["institution"]])
    np.testing.assert_allclose(after, caps - total, rtol=1e-12, atol=1e-3)
    assert (contagion >= 0).all() and (fire >= 0).all()
    if model != "none":
        assert contagion.max() > 0, "fund defaults should reach the bank's line"
    if fire_sales:
        assert fire.max() > 0
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    amplification = next(r for r in summary if r["metric"] == "amplification")
    assert amplification["value"] >= 1.0
    # Four full blocks: a batch-means error on both ratios.
    for metric in ("amplification", "amplification_tail"):
        row = next(r for r in summary if r["metric"] == metric)
        assert row["std_error"] is not None and row["std_error"] >= 0.0
    shown = runner.invoke(app, ["report", str(out)])
    assert shown.exit_code == 0 and "Second round" in shown.output
    assert "Contagion amplification" in shown.output
    assert "Expected defaulting institutions per path" in shown.output


def test_a_more_severe_shock_never_lowers_total_losses():
    def totals(shock):
        data = with_network("eisenberg-noe", True)
        data["stress"]["shocks"]["ai_demand"] = shock
        sim = simulate(compile_scenario(validate_data(data)), 20_000, 3, 5_000)
        return (sim.institution_loss + sim.contagion_loss + sim.fire_sale_loss).mean(axis=0)

    assert (totals(-3.0) >= totals(-1.0)).all()


BALANCE_CASES = {
    "missing external assets": (
        lambda d: d["institutions"]["fund_a"].pop("external_assets"),
        "institutions.fund_a.external_assets: required because contagion.model is 'eisenberg-noe'",
    ),
    "missing external assets, fire sales only": (
        lambda d: (
            d["institutions"]["fund_a"].pop("external_assets"),
            d["contagion"].update(model="none"),
        ),
        "institutions.fund_a.external_assets: required because fire sales are on",
    ),
    "negative price impact": (
        lambda d: d["contagion"]["fire_sales"]["classes"]["corporate"].update(impact=-0.1),
        "contagion.fire_sales.classes.corporate.impact: input should be greater than or equal to 0",
    ),
    "liabilities that do not balance": (
        lambda d: d["institutions"]["bank_a"].update(external_liabilities=1e9),
        "institutions.bank_a.external_liabilities: the balance sheet does not balance",
    ),
    "negative balancing item": (
        lambda d: d["institutions"]["fund_a"].update(external_assets=0.0, capital=50e9),
        "institutions.fund_a: the balance sheet does not balance",
    ),
    "claim on itself": (
        lambda d: d["institutions"]["bank_a"]["claims"].update(bank_a=1.0),
        "institutions.bank_a.claims.bank_a: an institution cannot hold a claim on itself",
    ),
    "claim on nobody": (
        lambda d: d["institutions"]["bank_a"]["claims"].update(ghost=1.0),
        "institutions.bank_a.claims.ghost: unknown institution",
    ),
    "negative claim": (
        lambda d: d["institutions"]["bank_a"]["claims"].update(fund_a=-1.0),
        "institutions.bank_a.claims.fund_a: input should be greater than or equal to 0",
    ),
    "unknown fire-sale class": (
        lambda d: d["contagion"]["fire_sales"]["classes"].update(
            tulips={"impact": 1.0, "depth": 1.0}
        ),
        "contagion.fire_sales.classes.tulips: unknown exposure class",
    ),
    "target below trigger": (
        lambda d: d["contagion"]["fire_sales"].update(target_ratio=0.05),
        "contagion.fire_sales.target_ratio: must be above trigger_ratio",
    ),
    "unknown model": (
        lambda d: d["contagion"].update(model="domino"),
        "contagion.model: must be one of 'none', 'eisenberg-noe' or 'debtrank'",
    ),
    "default costs above one": (
        lambda d: d["contagion"]["default_costs"].update(external=1.5),
        "contagion.default_costs.external: input should be less than or equal to 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BALANCE_CASES))
def test_balance_sheet_validation(case, tmp_path: Path):
    change, expected = BALANCE_CASES[case]
    data = copy.deepcopy(with_network("eisenberg-noe", True))
    change(data)
    path = write_scenario(tmp_path, data)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert f"{path}: {expected}" in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", ["eisenberg-noe", "debtrank"])
def test_paths_at_the_round_bound_are_counted_once_each(model, tmp_path: Path):
    # With one fire-sale round allowed, cascading paths stop at the fire sale's own bound
    # and are still moving when the rounds between network and fire sales end: counted once
    # per path, whatever flagged it and however many times, and the same path by path as in
    # the block.
    from stress.contagion import second_round

    data = with_network(model, True)
    data["contagion"]["max_rounds"] = 1
    portfolio = compile_scenario(validate_data(data))
    sim = simulate(portfolio, 400, 3, 400)
    layout, capital = portfolio.contagion, portfolio.institution_capital
    block = second_round(layout, capital, sim.institution_loss).rounds_capped
    one_by_one = [
        second_round(layout, capital, sim.institution_loss[p : p + 1]).rounds_capped
        for p in range(400)
    ]
    assert set(one_by_one) <= {0, 1}
    assert block == sum(one_by_one)
    assert 0 < block < 400
    # The run's manifest and its report say so.
    out = tmp_path / "run"
    path = write_scenario(tmp_path, data)
    ran = runner.invoke(app, ["run", str(path), "--out", str(out), "--paths", "400", "--seed", "3"])
    assert ran.exit_code == 0, ran.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["contagion"]["paths_at_round_bound"] == block
    assert manifest["contagion"]["max_rounds"] == 1
    shown = runner.invoke(app, ["report", str(out)])
    assert f"Second round not settled on {block:,} of 400 paths" in shown.output


def test_fire_sales_and_the_network_settle_on_the_shipped_scenario(tmp_path: Path):
    # Recomputing the fire sales from scratch each round left 5 of these paths alternating
    # between two states until the round bound: a seller's mark-down falls when it sells.
    # Sales resumed, never undone, make losses grow from round to round, and they settle.
    out = tmp_path / "run"
    options = ["--paths", "10000", "--seed", "1", "--out", str(out)]
    linear = ["--set", "contagion.model=debtrank", "--set", "contagion.debtrank.variant=linear"]
    result = runner.invoke(app, ["run", "ai-demand-shock-contagion", *options, *linear])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["contagion"]["paths_at_round_bound"] == 0
    fire_sale = pq.read_table(out / "institutions", columns=["fire_sale_loss"]).column(0)
    assert pc.sum(fire_sale).as_py() > 0.0


def test_amplification_without_first_round_losses_is_undefined_not_nan(tmp_path: Path):
    # LGDs of 0: no credit loss on any path, yet institutions below the fire-sale trigger
    # from the start sell and mark down. Total ÷ first round has no value: no row, the
    # report says why, and the JSON report stays strict JSON.
    data = with_network("eisenberg-noe", True)
    for exposure in data["exposures"].values():
        exposure["lgd"] = 0.0
    data["contagion"]["fire_sales"]["trigger_ratio"] = 0.1  # above the bank's own ratio
    data["contagion"]["fire_sales"]["target_ratio"] = 0.12
    path = write_scenario(tmp_path, data)
    out = tmp_path / "run"
    ran = runner.invoke(app, ["run", str(path), "--out", str(out), "--paths", "2000"])
    assert ran.exit_code == 0, ran.output
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    first = next(r for r in summary if (r["name"], r["metric"]) == ("first_round", "el"))
    total = next(r for r in summary if (r["name"], r["metric"]) == ("total", "el"))
    assert first["value"] == 0.0 and total["value"] > 0.0
    assert not any(r["metric"].startswith("amplification") for r in summary)
    assert all(np.isfinite(r["value"]) for r in summary)
    shown = runner.invoke(app, ["report", str(out)])
    assert "undefined (no first-round loss on any path) in the mean" in shown.output
    as_json = runner.invoke(app, ["report", str(out), "--format", "json"])
    json.loads(as_json.output, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_a_class_without_price_impact_brings_no_fire_sale_loss():
    # Impact 0 is a class as deep as its holders could ever need: sales move no price, so it
    # brings no fire-sale loss, whoever sells it.
    data = with_network("eisenberg-noe", True)
    for fire_class in data["contagion"]["fire_sales"]["classes"].values():
        fire_class["impact"] = 0.0
    sim = simulate(compile_scenario(validate_data(data)), 2_000, 1, 1_000)
    assert (sim.fire_sale_loss == 0.0).all()
    with_impact = simulate(
        compile_scenario(validate_data(with_network("eisenberg-noe", True))), 2_000, 1, 1_000
    )
    assert with_impact.fire_sale_loss.max() > 0.0
