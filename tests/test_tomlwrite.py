"""The TOML writer round-trips every scenario exactly."""

from __future__ import annotations

import math
import tomllib

import pytest

from stress.scenario import read_resolved, shipped_scenarios
from stress.tomlwrite import dumps

from builders import small_scenario


def test_round_trip_of_a_small_scenario():
    data = small_scenario(stress={"mode": "shift", "shocks": {"ai_demand": -2.5}})
    assert tomllib.loads(dumps(data)) == data


def test_round_trip_of_awkward_values():
    data = {
        "name": 'quotes " and \\ and unicode ν ≤ 1',
        "empty": {},
        "table": {"inner": {}, "x": [1, 2.5, True, "a"], "tiny": 1e-300, "big": 7.5e9},
        "odd keys": {"with.dot": 1, "spa ce": {"k": -0.0}},
        "floats": {"third": 1 / 3, "inf": math.inf, "neg": -math.inf},
    }
    assert tomllib.loads(dumps(data, header="line one\nline two")) == data


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_round_trip_of_shipped_scenarios(name):
    data, _ = read_resolved(shipped_scenarios()[name])
    assert tomllib.loads(dumps(data)) == data
