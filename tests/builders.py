"""Small scenarios as data, written to TOML when a test needs a file."""

from __future__ import annotations

import copy
from pathlib import Path

from stress.tomlwrite import dumps

SMALL = {
    "name": "small",
    "description": "A small book that touches every feature of schema v1.",
    "simulation": {"paths": 4_000, "seed": 11, "block_size": 1_000},
    "factors": {"ai_demand": {}, "gpu_value": {}, "credit_spread": {}},
    "correlations": {"ai_demand": {"gpu_value": 0.6, "credit_spread": -0.3}},
    "obligors": {
        "neocloud_a": {"pd": 0.04, "loadings": {"ai_demand": 0.5, "gpu_value": 0.3}},
        "ai_lab_a": {"pd": 0.06, "loadings": {"ai_demand": 0.6}},
        "hyperscaler_a": {"pd": 0.0005, "loadings": {"credit_spread": -0.3}},
    },
    "pools": {
        "bank_other": {"count": 5_000, "pd": 0.012, "loadings": {"credit_spread": -0.35}},
        "fund_other": {
            "count": 300,
            "pd": 0.03,
            "loadings": {"ai_demand": 0.4},
            "method": "large_pool",
        },
    },
    "exposures": {
        "neocloud_a_loan": {
            "obligor": "neocloud_a",
            "class": "gpu_backed_loan",
            "ead": 7.5e9,
            "lgd": {"base": 0.35, "factor": "gpu_value", "sensitivity": 0.15},
        },
        "neocloud_a_notes": {
            "obligor": "neocloud_a",
            "class": "neocloud_high_yield",
            "ead": 2.0e9,
            "lgd": {"mean": 0.7, "sd": 0.15},
        },
        "ai_lab_a_line": {"obligor": "ai_lab_a", "class": "bank_line", "ead": 3e9, "lgd": 0.6},
        "hyperscaler_a_bond": {
            "obligor": "hyperscaler_a",
            "class": "hyperscaler_bond",
            "ead": 30e9,
            "lgd": 0.6,
        },
        "bank_other_loans": {
            "pool": "bank_other",
            "class": "corporate",
            "ead": 50e9,
            "lgd": {"mean": 0.45, "sd": 0.2},
        },
        "fund_other_loans": {
            "pool": "fund_other",
            "class": "corporate",
            "ead": 5e9,
            "lgd": {"base": 0.5, "factor": "gpu_value", "sensitivity": 0.1},
        },
    },
    "institutions": {
        "bank_a": {
            "type": "bank",
            "capital": 8e9,
            "holdings": {"neocloud_a_loan": 0.3, "bank_other_loans": 1.0, "ai_lab_a_line": 1.0},
        },
        "fund_a": {
            "type": "private_credit_fund",
            "capital": 2e9,
            "holdings": {"neocloud_a_loan": 0.7, "fund_other_loans": 1.0},
        },
        "insurer_a": {
            "type": "insurer",
            "capital": 20e9,
            "holdings": {"hyperscaler_a_bond": 0.5, "neocloud_a_notes": 0.4},
        },
    },
}


def small_scenario(**changes) -> dict:
    """A deep copy of SMALL with top-level tables replaced or merged by ``changes``."""
    data = copy.deepcopy(SMALL)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(copy.deepcopy(value))
        else:
            data[key] = copy.deepcopy(value)
    return data


def write_scenario(folder: Path, data: dict, name: str = "scenario.toml") -> Path:
    path = folder / name
    path.write_text(dumps(data), encoding="utf-8")
    return path


# The financing mechanics on the small book: a chain of revenue dependencies (ai_lab_a →
# neocloud_a → neocloud_b), a data-centre lease SPV with a non-renewal clause and a capped
# guarantee, a GPU-fleet SPV leased to the AI lab, and a bank line to fund_a, which holds the
# SPVs' first-loss tranches.
MECHANICS = {
    "obligors": {
        "neocloud_b": {"pd": 0.03, "loadings": {"ai_demand": 0.4, "gpu_value": 0.2}},
        "hyperscaler_b": {"pd": 0.001, "loadings": {"ai_demand": 0.2, "credit_spread": -0.2}},
    },
    "dependencies": {
        "neocloud_a": {"ai_lab_a": {"revenue_share": 0.4, "sensitivity": 2.0}},
        "neocloud_b": {
            "neocloud_a": {"revenue_share": 0.5, "sensitivity": 1.5},
            "hyperscaler_b": {"revenue_share": 0.2, "sensitivity": 1.0},
        },
    },
    "vehicles": {
        "dc_spv": {
            "asset_value": 20e9,
            "lessee": "hyperscaler_b",
            "non_renewal": {"probability": 0.15, "loadings": {"ai_demand": 0.5}},
            "recovery": {"base": 0.6, "factor": "ai_demand", "sensitivity": 0.12},
            "guarantee": {"sponsor": "hyperscaler_b", "cap": 3e9},
            "tranches": {
                "equity": {"class": "spv_equity", "attach": 0.0, "detach": 0.1},
                "senior": {"class": "spv_bond", "attach": 0.1, "detach": 1.0},
            },
        },
        "gpu_spv": {
            "asset_value": 5e9,
            "lessee": "ai_lab_a",
            "recovery": {"base": 0.3, "factor": "gpu_value", "sensitivity": 0.1},
            "tranches": {
                "b": {"class": "dc_abs", "attach": 0.3, "detach": 1.0},
                "a": {"class": "dc_abs", "attach": 0.0, "detach": 0.3},
            },
        },
    },
    "exposures": {
        "neocloud_b_loan": {
            "obligor": "neocloud_b",
            "class": "gpu_backed_loan",
            "ead": 3e9,
            "lgd": {"mean": 0.5, "sd": 0.2},
        },
        "fund_a_line": {"institution": "fund_a", "class": "bank_line", "ead": 4e9},
    },
    "institutions": {
        "bank_a": {
            "type": "bank",
            "capital": 8e9,
            "holdings": {
                "neocloud_a_loan": 0.3,
                "bank_other_loans": 1.0,
                "ai_lab_a_line": 1.0,
                "fund_a_line": 1.0,
            },
        },
        "fund_a": {
            "type": "private_credit_fund",
            "capital": 2e9,
            "holdings": {
                "neocloud_a_loan": 0.7,
                "fund_other_loans": 1.0,
                "neocloud_b_loan": 1.0,
                "dc_spv.equity": 1.0,
                "gpu_spv.a": 1.0,
            },
        },
        "insurer_a": {
            "type": "insurer",
            "capital": 20e9,
            "holdings": {
                "hyperscaler_a_bond": 0.5,
                "neocloud_a_notes": 0.4,
                "dc_spv.senior": 0.5,
                "gpu_spv.b": 1.0,
            },
        },
    },
}
