"""The shipped scenario book: valid, listed, and telling the story it claims."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from stress.cli import app
from stress.compile import compile_scenario
from stress.engine import simulate
from stress.scenario import load_scenario, read_toml, shipped_scenarios

runner = CliRunner()
NAMES = [
    "adoption-stall",
    "ai-demand-shock",
    "ai-demand-shock-contagion",
    "baseline",
    "capability-plateau",
    "funding-squeeze",
    "gpu-glut",
]


def test_shipped_scenarios_are_listed():
    assert sorted(shipped_scenarios()) == NAMES
    listed = runner.invoke(app, ["scenarios"])
    assert listed.exit_code == 0
    assert [line.split(":")[0] for line in listed.output.splitlines()] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_scenario_is_valid_and_says_it_is_illustrative(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert "illustrative, not a forecast" in scenario.model.description
    assert runner.invoke(app, ["validate", name]).exit_code == 0


@pytest.mark.parametrize("name", NAMES)
def test_every_number_is_cited_or_an_assumption(name):
    """A number outside a description needs a figure id (M10, H6, §2-E4 ...) or 'assumption'."""
    path = shipped_scenarios()[name]
    read_toml(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        code, _, comment = line.partition("#")
        if code.strip().startswith("description") or not re.search(r"=\s*.*\d", code):
            continue
        cited = re.search(r"\b[A-Z]{1,2}\d+\b|§\d|assumption", comment)
        assert cited, f"{path.name}:{number}: {line.strip()}"


def test_the_shock_raises_every_class_and_institution_loss():
    base = load_scenario("baseline")
    shock = load_scenario("ai-demand-shock")
    runs = [simulate(compile_scenario(s), 20_000, 1, 5_000) for s in (base, shock)]
    base_pf = compile_scenario(base)
    assert runs[1].system_loss.mean() > 3 * runs[0].system_loss.mean()
    for c, name in enumerate(base_pf.class_names):
        assert runs[1].class_loss[:, c].mean() > runs[0].class_loss[:, c].mean(), name
    assert (runs[1].institution_loss.mean(axis=0) > runs[0].institution_loss.mean(axis=0)).all()
    defaults = (runs[1].institution_loss >= base_pf.institution_capital).mean(axis=0)
    assert np.max(defaults) > 0.05, "some fund should default in the shock's tail"


# Monotonicity of the book in the AI-demand shock: tests/test_mechanics.py.


STRESSES = [
    "adoption-stall",
    "ai-demand-shock",
    "capability-plateau",
    "funding-squeeze",
    "gpu-glut",
]


@pytest.fixture(scope="module")
def runs():
    """Baseline and every stress, same paths and seed: (portfolio, simulation) by name."""
    out = {}
    for name in ["baseline", *STRESSES]:
        portfolio = compile_scenario(load_scenario(name))
        out[name] = (portfolio, simulate(portfolio, 20_000, 1, 5_000))
    return out


def test_the_shock_switches_the_financing_mechanics_on(runs):
    pf, base = runs["baseline"]
    shock = runs["ai-demand-shock"][1]
    v = pf.vehicles.ids.index("hyperion_type_spv")
    walked = [((s.vehicle_event[:, v] & 2) > 0).mean() for s in (base, shock)]
    assert 0.01 < walked[0] < 0.04 and walked[1] > 5 * walked[0], walked
    assert shock.guarantee_paid[:, v].mean() > 5 * base.guarantee_paid[:, v].mean()
    tranches = pf.vehicles.tranche_ids
    for tranche in (
        "hyperion_type_spv.bonds",
        "gpu_fleet_spv.debt",
        "dc_abs_master_trust_a.senior",
    ):
        t = tranches.index(tranche)
        assert shock.tranche_loss[:, t].mean() > 5 * base.tranche_loss[:, t].mean(), tranche
    # Insurers hold tranches and lose on them.
    model = load_scenario("baseline").model
    for insurer in ("insurer_a", "insurer_b"):
        held = {
            tranches.index(e): s
            for e, s in model.institutions[insurer].holdings.items()
            if e in tranches
        }
        assert held, insurer
        lost = [
            sum(s * run.tranche_loss[:, t].mean() for t, s in held.items()) for run in (base, shock)
        ]
        assert lost[1] > 5 * lost[0] > 0, (insurer, lost)
    # Some fund loses more than its equity in the tail and its banks' lines take the excess.
    line = pf.class_names.index("bank_line")
    assert (base.class_loss[:, line] > 0).mean() < 0.02
    assert (shock.class_loss[:, line] > 0).mean() > 0.05


def _ratio(runs, name, kind, label):
    """EL under a stress over EL in baseline, for a class or an institution."""
    pf = runs["baseline"][0]
    if kind == "class":
        j, field = pf.class_names.index(label), "class_loss"
    else:
        j, field = list(pf.institution_ids).index(label), "institution_loss"
    stressed, base = (getattr(runs[n][1], field)[:, j].mean() for n in (name, "baseline"))
    return stressed / base


def test_each_stress_tells_its_story(runs):
    pf = runs["baseline"][0]
    classes, institutions = pf.class_names, pf.institution_ids
    for name in STRESSES:
        for i in institutions:
            assert _ratio(runs, name, "institution", i) > 1.0, (name, i)
    # A GPU glut hits the GPU-backed loans hardest, and the GPU-lending fund.
    glut = {c: _ratio(runs, "gpu-glut", "class", c) for c in classes}
    del glut["bank_line"], glut["fund_notes"]  # lines to funds: tiny baseline, ratios are noise
    assert max(glut, key=glut.get) == "gpu_backed_loan", glut
    funds = {i: _ratio(runs, "gpu-glut", "institution", i) for i in institutions}
    assert max(funds, key=funds.get) == "pc_fund_a", funds
    # A funding squeeze hits the generic credit books and the banks harder than any
    # AI-specific stress does.
    others = [s for s in STRESSES if s != "funding-squeeze"]
    for label in ("other_corporate", "other_direct_lending", "other_real_estate"):
        squeeze = _ratio(runs, "funding-squeeze", "class", label)
        assert all(squeeze > _ratio(runs, s, "class", label) for s in others), label
    for bank in ("bank_a", "bank_b", "bank_c"):
        squeeze = _ratio(runs, "funding-squeeze", "institution", bank)
        assert all(squeeze > _ratio(runs, s, "institution", bank) for s in others), bank
    # A capability plateau hits the AI labs' and neoclouds' debt about as hard as the demand
    # shock, but the long-leased infrastructure less.
    plateau = {c: _ratio(runs, "capability-plateau", "class", c) for c in classes}
    demand = {c: _ratio(runs, "ai-demand-shock", "class", c) for c in classes}
    assert plateau["neocloud_high_yield"] > 0.8 * demand["neocloud_high_yield"]
    for label in ("construction_loan", "power_project_finance", "dc_abs"):
        assert plateau[label] < 0.8 * demand[label], label
    # An adoption stall travels through the AI labs' commitments to their providers: the
    # Oracle-type issuer's loss rises far more than the power projects'.
    stall = {c: _ratio(runs, "adoption-stall", "class", c) for c in classes}
    assert stall["ai_levered_issuer"] > 3 * stall["power_project_finance"]
