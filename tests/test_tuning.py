"""Correlation tuning from the command line: show, repair (and run with repair), fit."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stress.cli import app
from stress.scenario import load_scenario
from stress.tuning import correlation_report

from builders import small_scenario, write_scenario
from oracles import bivariate_normal_cdf

runner = CliRunner()

# Higham (2002): the nearest correlation matrix to [[1,1,0],[1,1,1],[0,1,1]].
HIGHAM = {
    "ai_demand": {"gpu_value": 1.0, "credit_spread": 0.0},
    "gpu_value": {"credit_spread": 1.0},
}
HIGHAM_REPAIRED = np.array([[1, 0.7607, 0.1573], [0.7607, 1, 0.7607], [0.1573, 0.7607, 1]])


def _invalid_matrix_scenario(tmp_path: Path) -> Path:
    data = small_scenario(correlations=HIGHAM)
    # Loadings small enough that aᵀRa < 1 under the input and the repaired matrix.
    data["obligors"]["neocloud_a"]["loadings"] = {"ai_demand": 0.4, "gpu_value": 0.2}
    return write_scenario(tmp_path, data, "hand-written.toml")


def test_invalid_matrix_is_an_error_without_repair(tmp_path: Path):
    path = _invalid_matrix_scenario(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "not positive semi-definite" in result.output
    assert "ai-stress correlations repair" in result.output
    assert not (tmp_path / "out").exists()


def test_repair_writes_the_nearest_matrix_and_an_audit(tmp_path: Path):
    path = _invalid_matrix_scenario(tmp_path)
    out = tmp_path / "repaired.toml"
    result = runner.invoke(app, ["correlations", "repair", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Frobenius distance 0.52779" in result.output
    repaired = load_scenario(out)
    np.testing.assert_allclose(repaired.correlation, HIGHAM_REPAIRED, atol=5e-5)
    assert np.linalg.eigvalsh(repaired.correlation)[0] > -1e-12
    audit = pq.read_table(tmp_path / "repaired.audit.parquet").to_pylist()
    assert {(r["first"], r["second"]) for r in audit} == {
        ("ai_demand", "gpu_value"),
        ("ai_demand", "credit_spread"),
        ("gpu_value", "credit_spread"),
    }
    for row in audit:
        assert row["change"] == pytest.approx(row["repaired"] - row["input"])
    again = runner.invoke(app, ["correlations", "repair", str(path), "--out", str(out)])
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output


def test_repair_holds_fixed_pairs(tmp_path: Path):
    path = _invalid_matrix_scenario(tmp_path)
    out = tmp_path / "fixed.toml"
    result = runner.invoke(
        app,
        [
            "correlations",
            "repair",
            str(path),
            "--out",
            str(out),
            "--fix",
            "ai_demand:credit_spread",
        ],
    )
    assert result.exit_code == 0, result.output
    matrix = load_scenario(out).correlation
    assert matrix[0, 2] == 0.0
    bad = runner.invoke(
        app,
        [
            "correlations",
            "repair",
            str(path),
            "--out",
            str(tmp_path / "x.toml"),
            "--fix",
            "ai_demand:nope",
        ],
    )
    assert bad.exit_code == 1 and "--fix: unknown factor 'nope'" in bad.output


def test_run_with_repair_records_the_audit_and_reproduces(tmp_path: Path):
    path = _invalid_matrix_scenario(tmp_path)
    out = tmp_path / "run"
    args = ["run", str(path), "--out", str(out), "--paths", "2000", "--block-size", "500"]
    result = runner.invoke(app, [*args, "--repair-correlations"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    repair = manifest["correlation_repair"]
    assert repair["frobenius_distance"] == pytest.approx(0.52779, abs=1e-5)
    assert len(repair["pairs"]) == 3
    assert "--repair-correlations" in manifest["command"]
    resolved = tomllib.loads((out / "scenario.toml").read_text())
    assert resolved["correlations"]["ai_demand"]["gpu_value"] == pytest.approx(0.7607, abs=5e-5)
    # The resolved scenario runs as written, no repair needed, to the same numbers.
    again = runner.invoke(
        app,
        [
            "run",
            str(out / "scenario.toml"),
            "--out",
            str(tmp_path / "again"),
            "--paths",
            "2000",
            "--block-size",
            "500",
        ],
    )
    assert again.exit_code == 0, again.output
    for name in ("summary.parquet", "paths/part-000003.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_show_reports_eigenvalues_and_implied_correlations(tmp_path: Path):
    out = tmp_path / "matrices.parquet"
    result = runner.invoke(
        app,
        [
            "correlations",
            "show",
            "baseline",
            "--obligors",
            "neocloud_a,ai_lab_a",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    kinds = {r["matrix"] for r in rows}
    assert kinds == {
        "factor",
        "class_asset",
        "class_default",
        "obligor_asset",
        "obligor_default",
        "eigenvalue",
    }
    assert sum(r["matrix"] == "eigenvalue" for r in rows) == 10
    assert "The matrix is positive semi-definite." in result.output
    assert "Implied default correlation between exposure classes" in result.output
    assert "Default correlation between obligors" in result.output
    bad = runner.invoke(app, ["correlations", "show", "baseline", "--obligors", "nobody"])
    assert bad.exit_code == 1 and "unknown obligor 'nobody'" in bad.output


def test_implied_default_correlation_matches_the_bivariate_normal():
    scenario = load_scenario("baseline")
    report = correlation_report(scenario, ["neocloud_a", "ai_lab_a"])
    ob = scenario.model.obligors
    names = scenario.factor_names
    a = np.array([[ob[o].loadings.get(f, 0.0) for f in names] for o in ("neocloud_a", "ai_lab_a")])
    rho = float(a[0] @ scenario.correlation @ a[1])
    p = [ob["neocloud_a"].pd, ob["ai_lab_a"].pd]
    from scipy.stats import norm

    joint = bivariate_normal_cdf(norm.ppf(p[0]), norm.ppf(p[1]), rho)
    expected = (joint - p[0] * p[1]) / np.sqrt(p[0] * (1 - p[0]) * p[1] * (1 - p[1]))
    assert report.obligor_asset[0, 1] == pytest.approx(rho, abs=1e-12)
    assert report.obligor_default[0, 1] == pytest.approx(expected, abs=1e-10)


def test_show_t_copula_adds_tail_dependence():
    result = runner.invoke(
        app,
        [
            "correlations",
            "show",
            "baseline",
            "--set",
            "simulation.copula=t",
            "--set",
            "simulation.dof=4.0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "t-copula tail dependence between exposure classes" in result.output


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_fit_recovers_a_known_matrix_from_csv(tmp_path: Path, method):
    truth = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    rng = np.random.default_rng(7)
    draws = rng.multivariate_normal(np.zeros(3), truth, size=4_000)
    csv = tmp_path / "series.csv"
    lines = ["ai_demand,gpu_value,credit_spread"] + [
        ",".join(f"{v:.10g}" for v in row) for row in draws
    ]
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fitted.toml"
    result = runner.invoke(
        app, ["correlations", "fit", str(csv), "--out", str(out), "--method", method]
    )
    assert result.exit_code == 0, result.output
    block = tomllib.loads(out.read_text())["correlations"]
    estimates = pq.read_table(tmp_path / "fitted.estimates.parquet").to_pylist()
    for row in estimates:
        i, j = (
            ["ai_demand", "gpu_value", "credit_spread"].index(n)
            for n in (row["first"], row["second"])
        )
        assert abs(row["estimate"] - truth[i, j]) <= 4 * row["std_error"]
        assert block[row["first"]][row["second"]] == pytest.approx(row["estimate"])


def test_fit_into_a_scenario_writes_a_runnable_scenario(tmp_path: Path, small_file: Path):
    rng = np.random.default_rng(8)
    draws = rng.multivariate_normal(np.zeros(2), [[1.0, 0.5], [0.5, 1.0]], size=500)
    csv = tmp_path / "series.csv"
    csv.write_text("ai_demand,gpu_value\n" + "\n".join(f"{a},{b}" for a, b in draws) + "\n")
    out = tmp_path / "merged.toml"
    result = runner.invoke(
        app, ["correlations", "fit", str(csv), "--out", str(out), "--into", str(small_file)]
    )
    assert result.exit_code == 0, result.output
    merged = load_scenario(out)
    assert merged.correlation[0, 2] == -0.3  # the pair not in the data is kept
    assert merged.correlation[0, 1] == pytest.approx(np.corrcoef(draws.T)[0, 1], abs=1e-12)


def test_fit_rejects_bad_data(tmp_path: Path):
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n3,x\n")
    result = runner.invoke(
        app, ["correlations", "fit", str(csv), "--out", str(tmp_path / "o.toml")]
    )
    assert result.exit_code == 1
    assert "line 3, column 'b': not a number (got 'x')" in result.output


def test_calibrate_hits_reachable_targets_and_reports_the_rest(tmp_path: Path):
    out = tmp_path / "calibrated.toml"
    result = runner.invoke(
        app,
        [
            "correlations",
            "calibrate",
            "baseline",
            "--out",
            str(out),
            "--target",
            "gpu_backed_loan:gpu_backed_loan=0.2",
            "--target",
            "neocloud_a:ai_lab_a=0.1",
            "--target",
            "hyperscaler_bond:hyperscaler_bond=0.9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "NOT MET" in result.output.splitlines()[3]
    calibrated = load_scenario(out)
    report = correlation_report(calibrated, ["neocloud_a", "ai_lab_a"])
    gpu = report.classes.index("gpu_backed_loan")
    assert report.default[gpu, gpu] == pytest.approx(0.2, abs=1e-6)
    assert report.obligor_default[0, 1] == pytest.approx(0.1, abs=1e-6)
    # Every loading stays inside the bound that keeps b = sqrt(1 − aᵀRa) away from 0.
    names = calibrated.factor_names
    for table in (calibrated.model.obligors, calibrated.model.pools):
        for item in table.values():
            a = np.array([item.loadings.get(f, 0.0) for f in names])
            assert a @ calibrated.correlation @ a <= 0.99 + 1e-9


def test_calibrate_rejects_bad_targets(tmp_path: Path):
    out = str(tmp_path / "c.toml")
    for target, message in [
        ("gpu_backed_loan=0.2", "expected A:B=VALUE"),
        ("nobody:ai_lab_a=0.1", "'nobody' is neither an obligor nor an exposure class"),
        ("neocloud_a:gpu_backed_loan=0.1", "pair two obligors or two classes"),
        ("neocloud_a:ai_lab_a=1.5", "must be in (-1, 1)"),
        ("neocloud_a:neocloud_a=0.1", "an obligor's correlation with itself is 1"),
        ("bank_line:gpu_backed_loan=0.1", "class 'bank_line' has no exposures on obligors"),
    ]:
        result = runner.invoke(
            app, ["correlations", "calibrate", "baseline", "--out", out, "--target", target]
        )
        assert result.exit_code == 1, (target, result.output)
        assert message in result.output, (target, result.output)


def test_show_plots_heat_maps(tmp_path: Path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "heat.png"
    result = runner.invoke(app, ["correlations", "show", "baseline", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_names_what_each_multiplier_scales(tmp_path: Path):
    # neocloud_high_yield's names also lend GPU-backed loans: they follow their own class's
    # target (the later one), and the GPU class's multiplier scales its other names only.
    out = tmp_path / "c.toml"
    args = ["correlations", "calibrate", "baseline", "--out", str(out)]
    args += ["--target", "gpu_backed_loan:neocloud_high_yield=0.25"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith("loadings of gpu_backed_loan scaled by")
        and "of its names follow a later target" in line
        for line in lines
    ), result.output
    # A class all of whose names have targets of their own has no multiplier to print.
    shadowed = runner.invoke(
        app,
        [
            *args[:-2],
            "--target",
            "neocloud_high_yield:neocloud_high_yield=0.2",
            "--target",
            "neocloud_a:neocloud_b=0.1",
            "--target",
            "neocloud_c:ai_lab_a=0.1",
            "--target",
            "ai_lab_b:neocloud_a=0.1",
            "--overwrite",
        ],
    )
    assert shadowed.exit_code == 0, shadowed.output
    assert "neocloud_high_yield: no names of its own to scale" in shadowed.output


def test_show_with_no_exposures_on_obligors_or_pools(tmp_path: Path):
    # A vehicle leased to an obligor: a valid book, but no exposure with loadings of its own.
    path = tmp_path / "vehicle.toml"
    path.write_text(
        'name = "vehicle"\n[factors.a]\n[obligors.o1]\npd = 0.05\nloadings = { a = 0.5 }\n'
        '[vehicles.v]\nasset_value = 100.0\nlessee = "o1"\n[vehicles.v.recovery]\n'
        'base = 0.5\n[vehicles.v.tranches.eq]\nclass = "spv_equity"\nattach = 0.0\n'
        "detach = 1.0\n"
    )
    result = runner.invoke(app, ["correlations", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_show_refuses_its_outputs_before_writing_either(tmp_path: Path):
    png, table = tmp_path / "heat.png", tmp_path / "m.parquet"
    png.write_text("precious")
    show = ["correlations", "show", "baseline", "--plot", str(png), "--out", str(table)]
    result = runner.invoke(app, show)
    assert result.exit_code == 1
    assert f"{png}: exists; pass --overwrite to replace it" in result.output
    assert png.read_text() == "precious" and not table.exists()
    text = tmp_path / "heat.txt"
    result = runner.invoke(app, ["correlations", "show", "baseline", "--plot", str(text)])
    assert result.exit_code == 1
    assert "--plot: the file name ends in one of .png, .pdf, .svg" in result.output
    folder = tmp_path / "folder"
    folder.mkdir()
    result = runner.invoke(
        app, ["correlations", "show", "baseline", "--out", str(folder), "--overwrite"]
    )
    assert result.exit_code == 1 and f"{folder}: is a directory" in result.output
    result = runner.invoke(
        app, ["correlations", "show", "baseline", "--obligors", "ai_lab_a,neocloud_a,ai_lab_a"]
    )
    assert result.exit_code == 1 and "'ai_lab_a' is listed twice" in result.output


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a,a,b\n1,2,3\n2,3,1\n", "column 'a' appears twice"),
        (b"a,,b\n1,2,3\n2,3,1\n", "column '': factor names use letters, digits"),
        (b"a,b c\n1,2\n2,3\n", "column 'b c': factor names use letters, digits"),
        (b"a,b\n1,\xe9\n", "not valid UTF-8 (CSV files are read as UTF-8): byte 6 is 0xe9"),
    ],
)
def test_fit_refuses_columns_that_cannot_be_factors(tmp_path: Path, content, message):
    csv = tmp_path / "series.csv"
    csv.write_bytes(content)
    result = runner.invoke(app, ["correlations", "fit", str(csv), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{csv}: {message}" in result.output
    assert "Traceback" not in result.output


def test_fit_reads_a_csv_with_a_byte_order_mark_and_refuses_a_broken_parquet(tmp_path: Path):
    rng = np.random.default_rng(3)
    rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rng.normal(size=(50, 2)))
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufeffai_demand,gpu_value\n".encode() + rows.encode() + b"\n")
    out = tmp_path / "fit.toml"
    result = runner.invoke(app, ["correlations", "fit", str(csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ai_demand" in tomllib.loads(out.read_text())["correlations"]
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    result = runner.invoke(
        app, ["correlations", "fit", str(broken), "--out", str(tmp_path / "o.toml")]
    )
    assert result.exit_code == 1
    assert f"{broken}: not a readable Parquet file" in result.output


def test_option_errors_name_the_option_or_the_file(tmp_path: Path):
    scenario = _invalid_matrix_scenario(tmp_path)
    out = str(tmp_path / "o.toml")
    for extra, message in [
        (["--weight", "ai_demand=0"], "--weight: must be positive and finite"),
        (["--eigen-floor", "2"], "--eigen-floor: must lie in [0, 1)"),
    ]:
        result = runner.invoke(app, ["correlations", "repair", str(scenario), "--out", out, *extra])
        assert result.exit_code == 1 and message in result.output, result.output
    series = tmp_path / "series.csv"
    series.write_text("a,b\n1,2\n2,3\n3,1\n4,5\n")
    constant = tmp_path / "constant.csv"
    constant.write_text("a,b\n1,2\n1,3\n1,1\n1,5\n")
    for data, extra, message in [
        (series, ["--method", "foo"], "--method: must be one of pearson, spearman, kendall"),
        (series, ["--shrinkage", "foo"], "--shrinkage: must be None or 'ledoit-wolf'"),
        (constant, [], f"{constant}: column 0 is constant"),
    ]:
        result = runner.invoke(app, ["correlations", "fit", str(data), "--out", out, *extra])
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "o.toml").exists()
