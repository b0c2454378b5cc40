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
NAMES = ["ai-demand-shock", "ai-demand-shock-contagion", "baseline"]


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
