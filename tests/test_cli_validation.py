"""Every validation rule through the CLI: exit 1, the field named, no traceback, nothing written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stress.cli import app
from stress.exceptions import OptionError
from stress.scenario import load_scenario, parse_assignment

from builders import MECHANICS, small_scenario, write_scenario

runner = CliRunner()


def _set(path: str, value):
    def change(data):
        *parents, last = path.split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
        table[last] = value

    return change


def _delete(path: str):
    def change(data):
        *parents, last = path.split(".")
        table = data
        for part in parents:
            table = table[part]
        del table[last]

    return change


CASES = {
    "unknown top-level key": (_set("colour", "red"), "colour: unknown key (got 'red')"),
    "unknown nested key": (
        _set("obligors.neocloud_a.pdd", 0.1),
        "obligors.neocloud_a.pdd: unknown key",
    ),
    "missing required key": (_delete("obligors.ai_lab_a.pd"), "obligors.ai_lab_a.pd: required"),
    "pd zero": (
        _set("obligors.neocloud_a.pd", 0.0),
        "obligors.neocloud_a.pd: input should be greater than 0 (got 0.0)",
    ),
    "pd one": (
        _set("obligors.neocloud_a.pd", 1.0),
        "obligors.neocloud_a.pd: input should be less than 1 (got 1.0)",
    ),
    "pool pd above one": (_set("pools.bank_other.pd", 1.5), "pools.bank_other.pd"),
    "pd as text": (
        _set("obligors.neocloud_a.pd", "4%"),
        "obligors.neocloud_a.pd: input should be a valid number",
    ),
    "negative ead": (
        _set("exposures.ai_lab_a_line.ead", -1.0),
        "exposures.ai_lab_a_line.ead: input should be greater than or equal to 0 (got -1.0)",
    ),
    "infinite ead": (
        _set("exposures.ai_lab_a_line.ead", math.inf),
        "exposures.ai_lab_a_line.ead: input should be a finite number",
    ),
    "nan capital": (
        _set("institutions.bank_a.capital", math.nan),
        "institutions.bank_a.capital: input should be a finite number",
    ),
    "zero capital": (
        _set("institutions.bank_a.capital", 0.0),
        "institutions.bank_a.capital: input should be greater than 0",
    ),
    "pool count zero": (_set("pools.bank_other.count", 0), "pools.bank_other.count"),
    "pool count float": (
        _set("pools.bank_other.count", 2.5),
        "pools.bank_other.count: input should be a valid integer",
    ),
    "pool method": (
        _set("pools.bank_other.method", "vasicek"),
        "pools.bank_other.method: must be one of 'exact' or 'large_pool'",
    ),
    "unknown obligor": (
        _set("exposures.ai_lab_a_line.obligor", "ai_lab_z"),
        "exposures.ai_lab_a_line.obligor: unknown obligor (got 'ai_lab_z')",
    ),
    "unknown pool": (
        _set("exposures.bank_other_loans.pool", "nowhere"),
        "exposures.bank_other_loans.pool: unknown pool",
    ),
    "both obligor and pool": (
        _set("exposures.ai_lab_a_line.pool", "bank_other"),
        "exposures.ai_lab_a_line: needs exactly one of 'obligor', 'pool' or 'institution'",
    ),
    "neither obligor nor pool": (
        _delete("exposures.ai_lab_a_line.obligor"),
        "exposures.ai_lab_a_line: needs exactly one",
    ),
    "unknown loading factor": (
        _set("obligors.ai_lab_a.loadings.ai_hype", 0.2),
        "obligors.ai_lab_a.loadings.ai_hype: unknown factor",
    ),
    "unknown holding": (
        _set("institutions.bank_a.holdings.ghost_loan", 0.5),
        "institutions.bank_a.holdings.ghost_loan: unknown exposure",
    ),
    "share above one": (
        _set("institutions.bank_a.holdings.ai_lab_a_line", 1.4),
        "institutions.bank_a.holdings.ai_lab_a_line: input should be less than or equal to 1 (got 1.4)",
    ),
    "share zero": (
        _set("institutions.bank_a.holdings.ai_lab_a_line", 0.0),
        "institutions.bank_a.holdings.ai_lab_a_line: input should be greater than 0",
    ),
    "shares add above one": (
        _set("institutions.fund_a.holdings.ai_lab_a_line", 0.5),
        "exposures.ai_lab_a_line: shares held add up to more than 1 (bank_a 1, fund_a 0.5) (got 1.5)",
    ),
    "institution type": (
        _set("institutions.bank_a.type", "hedge_fund"),
        "institutions.bank_a.type: must be one of",
    ),
    "systematic variance": (
        _set("obligors.ai_lab_a.loadings", {"ai_demand": 0.8, "gpu_value": 0.5}),
        "obligors.ai_lab_a.loadings: systematic variance aᵀRa must be below 1",
    ),
    "loading of exactly one": (
        _set("obligors.ai_lab_a.loadings", {"ai_demand": 1.0}),
        "obligors.ai_lab_a.loadings: systematic variance",
    ),
    "correlation above one": (
        _set("correlations.ai_demand.gpu_value", 1.2),
        "correlations.ai_demand.gpu_value: input should be less than or equal to 1",
    ),
    "correlation unknown factor": (
        _set("correlations.ai_demand.ai_hype", 0.2),
        "correlations.ai_demand.ai_hype: unknown factor",
    ),
    "correlation with itself": (
        _set("correlations.ai_demand.ai_demand", 1.0),
        "correlations.ai_demand.ai_demand: a factor's correlation with itself",
    ),
    "pair given twice": (
        _set("correlations.gpu_value", {"ai_demand": 0.6}),
        "correlations.gpu_value.ai_demand: pair already given",
    ),
    "not positive semi-definite": (
        _set(
            "correlations",
            {
                "ai_demand": {"gpu_value": 0.9, "credit_spread": 0.9},
                "gpu_value": {"credit_spread": -0.9},
            },
        ),
        "correlations: the correlation matrix is not positive semi-definite: 1 of 3 eigenvalues are negative",
    ),
    "dof at two": (
        _set("simulation", {"copula": "t", "dof": 2.0}),
        "simulation.dof: must be above 2",
    ),
    "t without dof": (
        _set("simulation", {"copula": "t"}),
        "simulation.dof: required when copula is 't'",
    ),
    "dof with gaussian": (
        _set("simulation.dof", 5.0),
        "simulation.dof: only allowed when copula is 't'",
    ),
    "copula name": (
        _set("simulation.copula", "clayton"),
        "simulation.copula: must be one of 'gaussian' or 't'",
    ),
    "levels not increasing": (
        _set("simulation.levels", [0.99, 0.95]),
        "simulation.levels: must be strictly increasing",
    ),
    "level of one": (_set("simulation.levels", [0.95, 1.0]), "simulation.levels[1]"),
    "negative seed": (_set("simulation.seed", -1), "simulation.seed"),
    "stress unknown factor": (
        _set("stress", {"mode": "shift", "shocks": {"ai_hype": -2.0}}),
        "stress.shocks.ai_hype: unknown factor",
    ),
    "stress mode": (
        _set("stress", {"mode": "scale", "shocks": {"ai_demand": -2.0}}),
        "stress.mode: must be one of 'shift' or 'condition'",
    ),
    "stress without shocks": (
        _set("stress", {"mode": "shift", "shocks": {}}),
        "stress.shocks: name at least one factor",
    ),
    "beta sd too large": (
        _set("exposures.neocloud_a_notes.lgd", {"mean": 0.7, "sd": 0.5}),
        "exposures.neocloud_a_notes.lgd.sd: a Beta LGD with mean 0.7 needs sd below",
    ),
    "beta mean": (
        _set("exposures.neocloud_a_notes.lgd", {"mean": 1.2, "sd": 0.1}),
        "exposures.neocloud_a_notes.lgd.mean: input should be less than 1",
    ),
    "fixed lgd above one": (
        _set("exposures.ai_lab_a_line.lgd", 1.1),
        "exposures.ai_lab_a_line.lgd: input should be less than or equal to 1 (got 1.1)",
    ),
    "collateral unknown factor": (
        _set("exposures.neocloud_a_loan.lgd.factor", "gpu_price"),
        "exposures.neocloud_a_loan.lgd.factor: unknown factor",
    ),
    "collateral negative sensitivity": (
        _set("exposures.neocloud_a_loan.lgd.sensitivity", -0.1),
        "exposures.neocloud_a_loan.lgd.sensitivity",
    ),
    "collateral unknown key": (
        _set("exposures.neocloud_a_loan.lgd.floor", 0.1),
        "exposures.neocloud_a_loan.lgd.floor: unknown key",
    ),
    "id with a dot": (
        _set("factors", {"ai.demand": {}, "ai_demand": {}, "gpu_value": {}, "credit_spread": {}}),
        "factors.ai.demand: ids use letters",
    ),
    "no exposures": (_set("exposures", {}), "exposures: the scenario defines no exposures"),
    "no factors": (_set("factors", {}), "factors: at least one factor is required"),
}


def _add(path: str, key: str, value):
    """Add ``key = value`` to the table at dotted ``path`` (keys may hold dots)."""

    def change(data):
        table = data
        for part in path.split("."):
            table = table[part]
        table[key] = value

    return change


DC_TRANCHES = "vehicles.dc_spv.tranches"
# Rules of the financing mechanics, on the small book with MECHANICS (tests/builders.py).
MECHANICS_CASES = {
    "tranches overlap": (
        _set(f"{DC_TRANCHES}.senior.attach", 0.08),
        f"{DC_TRANCHES}.senior.attach: overlaps tranche equity (0.0 to 0.1) (got 0.08)",
    ),
    "tranches leave a gap": (
        _set(f"{DC_TRANCHES}.senior.attach", 0.12),
        f"{DC_TRANCHES}.senior.attach: leaves a gap above tranche equity, which detaches at 0.1",
    ),
    "top tranche below 1": (
        _set(f"{DC_TRANCHES}.senior.detach", 0.9),
        f"{DC_TRANCHES}.senior.detach: the highest tranche must detach at 1",
    ),
    "bottom tranche above 0": (
        _set(f"{DC_TRANCHES}.equity.attach", 0.02),
        f"{DC_TRANCHES}.equity.attach: the lowest tranche must attach at 0",
    ),
    "tranche detaches below its attachment": (
        _set("vehicles.gpu_spv.tranches.a.detach", 0.0),
        "vehicles.gpu_spv.tranches.a.detach: must be above attach (0.0) (got 0.0)",
    ),
    "no tranches": (_set("vehicles.gpu_spv.tranches", {}), "vehicles.gpu_spv.tranches: a vehicle"),
    "tranche without class": (
        _delete(f"{DC_TRANCHES}.equity.class"),
        f"{DC_TRANCHES}.equity.class: required key is missing",
    ),
    "unknown vehicle in holdings": (
        _add("institutions.insurer_a.holdings", "nope.senior", 0.5),
        "institutions.insurer_a.holdings.nope.senior: unknown vehicle in a 'VEHICLE.TRANCHE' "
        "holding (got 'nope')",
    ),
    "unknown tranche in holdings": (
        _add("institutions.insurer_a.holdings", "dc_spv.mezzanine", 0.5),
        "institutions.insurer_a.holdings.dc_spv.mezzanine: unknown tranche of dc_spv "
        "(tranches: equity, senior) (got 'mezzanine')",
    ),
    "tranche shares above 1": (
        _add("institutions.bank_a.holdings", "dc_spv.senior", 0.6),
        "vehicles.dc_spv.senior: shares held add up to more than 1 (bank_a 0.6, insurer_a 0.5)",
    ),
    "unknown lessee": (
        _set("vehicles.dc_spv.lessee", "nobody"),
        "vehicles.dc_spv.lessee: unknown obligor (got 'nobody')",
    ),
    "unknown sponsor": (
        _set("vehicles.dc_spv.guarantee.sponsor", "nobody"),
        "vehicles.dc_spv.guarantee.sponsor: unknown obligor (got 'nobody')",
    ),
    "negative guarantee cap": (
        _set("vehicles.dc_spv.guarantee.cap", -1.0),
        "vehicles.dc_spv.guarantee.cap: input should be greater than or equal to 0",
    ),
    "asset value zero": (
        _set("vehicles.dc_spv.asset_value", 0.0),
        "vehicles.dc_spv.asset_value: input should be greater than 0",
    ),
    "recovery above one": (
        _set("vehicles.gpu_spv.recovery.base", 1.2),
        "vehicles.gpu_spv.recovery.base: input should be less than or equal to 1",
    ),
    "recovery unknown factor": (
        _set("vehicles.gpu_spv.recovery.factor", "gpu_rent"),
        "vehicles.gpu_spv.recovery.factor: unknown factor (got 'gpu_rent')",
    ),
    "recovery sensitivity without a factor": (
        _set("vehicles.gpu_spv.recovery", {"base": 0.3, "sensitivity": 0.1}),
        "vehicles.gpu_spv.recovery.sensitivity: needs a 'factor'",
    ),
    "non-renewal probability one": (
        _set("vehicles.dc_spv.non_renewal.probability", 1.0),
        "vehicles.dc_spv.non_renewal.probability: input should be less than 1",
    ),
    "non-renewal unknown factor": (
        _set("vehicles.dc_spv.non_renewal.loadings", {"gpu_rent": 0.3}),
        "vehicles.dc_spv.non_renewal.loadings.gpu_rent: unknown factor",
    ),
    "non-renewal loadings too large": (
        _set("vehicles.dc_spv.non_renewal.loadings", {"ai_demand": 1.2}),
        "vehicles.dc_spv.non_renewal.loadings: systematic variance",
    ),
    "vehicle id with a dot": (
        _add("vehicles", "dc.spv", MECHANICS["vehicles"]["gpu_spv"]),
        "vehicles.dc.spv: ids use letters",
    ),
    "dependency cycle": (
        _set("dependencies.ai_lab_a", {"neocloud_b": {"revenue_share": 0.1, "sensitivity": 1.0}}),
        "dependencies.neocloud_a: revenue dependencies form a cycle, so there is no order to "
        "resolve them in: neocloud_a → ai_lab_a → neocloud_b → neocloud_a",
    ),
    "dependency on itself": (
        _set("dependencies.ai_lab_a", {"ai_lab_a": {"revenue_share": 0.1, "sensitivity": 1.0}}),
        "dependencies.ai_lab_a.ai_lab_a: an obligor cannot depend on itself",
    ),
    "dependency unknown customer": (
        _set("dependencies.neocloud_a", {"lab_x": {"revenue_share": 0.1, "sensitivity": 1.0}}),
        "dependencies.neocloud_a.lab_x: unknown obligor (the customer) (got 'lab_x')",
    ),
    "dependency unknown provider": (
        _set("dependencies.cloud_x", {"ai_lab_a": {"revenue_share": 0.1, "sensitivity": 1.0}}),
        "dependencies.cloud_x: unknown obligor (the provider) (got 'cloud_x')",
    ),
    "revenue shares above 1": (
        _set("dependencies.neocloud_b.hyperscaler_b.revenue_share", 0.6),
        "dependencies.neocloud_b: revenue shares from customers add up to more than 1 (got 1.1)",
    ),
    "negative sensitivity": (
        _set("dependencies.neocloud_a.ai_lab_a.sensitivity", -1.0),
        "dependencies.neocloud_a.ai_lab_a.sensitivity: input should be greater than or equal",
    ),
    "line to an unknown institution": (
        _set("exposures.fund_a_line.institution", "fund_z"),
        "exposures.fund_a_line.institution: unknown institution (got 'fund_z')",
    ),
    "line with an lgd": (
        _set("exposures.fund_a_line.lgd", 0.5),
        "exposures.fund_a_line.lgd: an exposure on an institution loses its share of what the "
        "institution loses beyond its capital; an LGD does not apply (got 0.5)",
    ),
    "exposure on an obligor without lgd": (
        _delete("exposures.neocloud_b_loan.lgd"),
        "exposures.neocloud_b_loan.lgd: required key is missing",
    ),
    "exposure on an obligor and an institution": (
        _set("exposures.neocloud_b_loan.institution", "fund_a"),
        "exposures.neocloud_b_loan: needs exactly one of 'obligor', 'pool' or 'institution'",
    ),
    "lines in a cycle": (
        lambda data: (
            data["exposures"].update(
                bank_a_line={"institution": "bank_a", "class": "bank_line", "ead": 1e9}
            ),
            data["institutions"]["fund_a"]["holdings"].update(bank_a_line=1.0),
        ),
        "institutions.bank_a.holdings: exposures on institutions form a cycle (each holds a line "
        "to the next), so losses beyond capital have no order to pass on in: "
        "bank_a → fund_a → bank_a",
    ),
    "line and contagion claim on the same fund": (
        lambda data: (
            data.update(contagion={"model": "eisenberg-noe"}),
            data["institutions"]["bank_a"].update(claims={"fund_a": 1e9}),
        ),
        "institutions.bank_a.claims.fund_a: bank_a also holds exposure fund_a_line on fund_a, "
        "which passes fund_a's losses beyond its capital on already; model the lending once",
    ),
}


def _invoke(args):
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


ALL_CASES = {**CASES, **{f"mechanics: {k}": v for k, v in MECHANICS_CASES.items()}}


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_invalid_scenario_exits_1_naming_the_field(case, tmp_path: Path):
    change, expected = ALL_CASES[case]
    data = small_scenario(**MECHANICS) if case.startswith("mechanics: ") else small_scenario()
    change(data)
    path = write_scenario(tmp_path, data)
    out = tmp_path / "out"
    for args in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        result = _invoke(args)
        assert result.exit_code == 1, result.output
        assert f"{path}: {expected}" in result.output, result.output
        assert "Traceback" not in result.output
    assert not out.exists(), "a refused run must not write anything"


def test_every_problem_is_reported_one_per_line(tmp_path: Path):
    data = small_scenario()
    data["obligors"]["neocloud_a"]["pd"] = 2.0
    data["exposures"]["ai_lab_a_line"]["ead"] = -5.0
    data["institutions"]["bank_a"]["colour"] = "red"
    path = write_scenario(tmp_path, data)
    result = _invoke(["validate", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 3, result.output
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    result = _invoke(["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: name: required key is missing" in result.output
    assert f"{path}: exposures: the scenario defines no exposures" not in result.output


def test_toml_syntax_error(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[factors\n', encoding="utf-8")
    result = _invoke(["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{path}: not valid TOML" in result.output
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "café"\n'.encode("latin-1"))
    result = _invoke(["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{path}: not valid UTF-8 (TOML files are UTF-8): byte 11 is 0xe9" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("where", ["under a file", "name too long"])
def test_an_output_path_the_system_refuses(small_file: Path, tmp_path: Path, command, where):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub" if where == "under a file" else tmp_path / ("x" * 300)
    options = ["--vary", "correlations.ai_demand.gpu_value=0.2,0.4"] if command == "sweep" else []
    result = _invoke([command, str(small_file), "--out", str(out), "--paths", "100", *options])
    assert result.exit_code == 1
    assert f"{out}: cannot be used as the output directory: " in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "scenario.toml"]


@pytest.mark.parametrize("ead", [1e307, 1.5e308])
def test_a_book_too_large_for_floats_is_refused(tmp_path: Path, ead):
    data = small_scenario()
    for exposure in data["exposures"].values():
        exposure["ead"] = ead
    path = write_scenario(tmp_path, data)
    result = _invoke(["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{path}: exposures: the amounts of the book" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_missing_scenario_names_the_shipped_ones(tmp_path: Path):
    result = _invoke(["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "no such file, and no shipped scenario of that name (shipped: " in result.output
    assert "baseline" in result.output


def test_set_overrides_are_validated_and_marked(small_file: Path, tmp_path: Path):
    result = _invoke(["validate", str(small_file), "--set", "correlations.ai_demand.gpu_value=1.5"])
    assert result.exit_code == 1
    assert (
        "correlations.ai_demand.gpu_value: input should be less than or equal to 1 [set by --set] (got 1.5)"
        in result.output
    )
    bad = _invoke(["validate", str(small_file), "--set", "no-equals-sign"])
    assert bad.exit_code == 1
    assert "--set: expected KEY=VALUE" in bad.output


@pytest.mark.parametrize(
    "text, parts, value",
    [
        ("contagion.model=debtrank", ["contagion", "model"], "debtrank"),
        (" a . b = 3", ["a", "b"], 3),
        (
            'institutions.i.holdings."spv.bonds"=0.5',
            ["institutions", "i", "holdings", "spv.bonds"],
            0.5,
        ),
        ("a.'x=y'=2", ["a", "x=y"], 2),  # the first "=" that ends a key, not the first "="
        ('a.b="x=y"', ["a", "b"], "x=y"),
        ("stress.mode=condition", ["stress", "mode"], "condition"),  # not TOML: a bare string
    ],
)
def test_set_keys_follow_toml_dotted_key_grammar(text, parts, value):
    assert parse_assignment(text) == (parts, value)


@pytest.mark.parametrize(
    "text", ["no-equals-sign", "=3", "a..b=1", 'a."b=1', " =1", "[a]\n[b]\nk=1", "a # b=1"]
)
def test_set_refuses_what_is_not_a_dotted_key(text):
    with pytest.raises(OptionError, match="a part that holds a dot in quotes"):
        parse_assignment(text)


def test_set_reaches_a_tranche_holding_through_a_quoted_key():
    key = 'institutions.insurer_a.holdings."lease_spv_b.bonds"'
    scenario = load_scenario("baseline", [f"{key}=0.3"])
    assert scenario.model.institutions["insurer_a"].holdings["lease_spv_b.bonds"] == 0.3
    bad = _invoke(["validate", "baseline", "--set", f"{key}=1.5"])
    assert bad.exit_code == 1
    assert (
        "institutions.insurer_a.holdings.lease_spv_b.bonds: input should be less than or equal "
        "to 1 [set by --set] (got 1.5)" in bad.output
    )
    # Unquoted, the dot makes a table, which is not a share: refused, the field named.
    unquoted = _invoke(["validate", "baseline", "--set", f"{key.replace(chr(34), '')}=0.3"])
    assert unquoted.exit_code == 1
    assert "institutions.insurer_a.holdings.lease_spv_b: input should be a valid number" in (
        unquoted.output
    )


def test_set_override_changes_the_run(small_file: Path):
    result = _invoke(
        [
            "validate",
            str(small_file),
            "--set",
            "stress.mode=shift",
            "--set",
            "stress.shocks={ ai_demand = -2.0 }",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "shift stress on ai_demand" in result.output


@pytest.mark.parametrize(
    "option, message",
    [
        (["--paths", "0"], "--paths: must be at least 1 (got 0)"),
        (["--block-size", "0"], "--block-size: must be at least 1 (got 0)"),
        (["--threads", "0"], "--threads: must be at least 1 (got 0)"),
        (["--seed", "-3"], "--seed: must be at least 0 (got -3)"),
        (["--kernel", "turbo"], "--kernel: must be one of fast, reference (got 'turbo')"),
    ],
)
def test_bad_option_values_exit_1(small_file: Path, tmp_path: Path, option, message):
    out = tmp_path / "out"
    result = _invoke(["run", str(small_file), "--out", str(out), *option])
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()


def test_usage_errors_exit_2(small_file: Path):
    assert _invoke(["run", str(small_file), "--paths", "many"]).exit_code == 2
    assert _invoke(["run"]).exit_code == 2
    assert _invoke(["report", "x", "--colour"]).exit_code == 2


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a b", ""])
def test_a_scenario_name_is_an_id(tmp_path: Path, monkeypatch, name):
    # It names the default run directory, runs/NAME.
    path = tmp_path / "named.toml"
    text = (Path(__file__).parent.parent / "scenarios" / "gpu-glut.toml").read_text()
    path.write_text(text.replace('name = "gpu-glut"', f"name = {name!r}".replace("'", '"')))
    monkeypatch.chdir(tmp_path)
    result = _invoke(["run", str(path), "--paths", "10"])
    assert result.exit_code == 1
    assert f"{path}: name: " in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() and not Path("/tmp/absolute").exists()
