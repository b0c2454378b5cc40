"""Sweeps: the grid, common random numbers, equality with standalone runs, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stress.cli import app
from stress.exceptions import OptionError
from stress.sweep import grid, parse_vary, split_values

runner = CliRunner()
COMMON = ["--paths", "3000", "--block-size", "1000"]


def test_grid_is_the_cartesian_product():
    axes = parse_vary(["a.b=1,2", "c=x,y,z"])
    assert grid(axes) == [
        ["a.b=1", "c=x"],
        ["a.b=1", "c=y"],
        ["a.b=1", "c=z"],
        ["a.b=2", "c=x"],
        ["a.b=2", "c=y"],
        ["a.b=2", "c=z"],
    ]


def test_vary_keys_are_dotted_toml_keys():
    (axis,) = parse_vary(['institutions.i.holdings."spv.bonds"=0.1,0.2'])
    assert grid([axis]) == [
        ['institutions.i.holdings."spv.bonds"=0.1'],
        ['institutions.i.holdings."spv.bonds"=0.2'],
    ]
    with pytest.raises(OptionError, match="varied twice"):
        parse_vary(["a.b=1,2", 'a."b"=3'])  # the same key, written two ways
    with pytest.raises(OptionError, match="expected KEY=V1,V2"):
        parse_vary(["a..b=1,2"])


def test_each_point_equals_a_standalone_run(small_file: Path, tmp_path: Path):
    out = tmp_path / "sweep"
    vary = [
        "--vary",
        "correlations.ai_demand.gpu_value=0.2,0.8",
        "--vary",
        "simulation.dof=4.0,8.0",
    ]
    result = runner.invoke(
        app,
        [
            "sweep",
            str(small_file),
            *vary,
            "--out",
            str(out),
            "--set",
            "simulation.copula=t",
            *COMMON,
        ],
    )
    assert result.exit_code == 0, result.output
    points = pq.read_table(out / "points.parquet").to_pylist()
    assert [p["directory"] for p in points] == [f"point={n:02d}" for n in range(4)]
    assert points[3]["correlations.ai_demand.gpu_value"] == "0.8"
    assert points[3]["simulation.dof"] == "8.0"
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"

    alone = tmp_path / "alone"
    standalone = runner.invoke(
        app,
        [
            "run",
            str(small_file),
            "--out",
            str(alone),
            "--set",
            "simulation.copula=t",
            "--set",
            "correlations.ai_demand.gpu_value=0.8",
            "--set",
            "simulation.dof=8.0",
            *COMMON,
        ],
    )
    assert standalone.exit_code == 0, standalone.output
    for name in (
        "summary.parquet",
        "paths/part-000001.parquet",
        "institutions/part-000002.parquet",
    ):
        assert (out / "point=03" / name).read_bytes() == (alone / name).read_bytes(), name

    files = sorted(str(p) for p in out.glob("point=*/summary.parquet"))
    summaries = ds.dataset(
        files,
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=str(out),
    ).to_table(filter=ds.field("metric") == "el")
    assert set(summaries.column("point").to_pylist()) == {0, 1, 2, 3}

    shown = runner.invoke(app, ["report", str(out), "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert "| point | correlations.ai_demand.gpu_value | simulation.dof | system EL" in shown.output


def test_a_bad_grid_value_is_refused_before_anything_runs(small_file: Path, tmp_path: Path):
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            "sweep",
            str(small_file),
            "--vary",
            "correlations.ai_demand.gpu_value=0.5,1.5",
            "--out",
            str(out),
            *COMMON,
        ],
    )
    assert result.exit_code == 1
    assert (
        "correlations.ai_demand.gpu_value: input should be less than or equal to 1" in result.output
    )
    assert not out.exists()
    bad = runner.invoke(app, ["sweep", str(small_file), "--vary", "nothing", "--out", str(out)])
    assert bad.exit_code == 1 and "--vary: expected KEY=V1,V2,..." in bad.output


def test_sweep_refuses_a_non_empty_directory(small_file: Path, tmp_path: Path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    vary = "correlations.ai_demand.gpu_value=0.2,0.4"
    args = ["sweep", str(small_file), "--vary", vary, "--out", str(out), *COMMON]
    assert runner.invoke(app, args).exit_code == 1
    forced = runner.invoke(app, [*args, "--overwrite"])
    assert forced.exit_code == 1 and "nothing was deleted" in forced.output
    assert (out / "keep.txt").read_text() == "mine"


def test_points_share_their_random_numbers(small_file: Path, tmp_path: Path):
    """Common random numbers: varying a PD leaves every factor draw of every path unchanged."""
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            "sweep",
            str(small_file),
            "--vary",
            "obligors.neocloud_a.pd=0.02,0.08",
            "--out",
            str(out),
            *COMMON,
        ],
    )
    assert result.exit_code == 0, result.output
    first, second = (pq.read_table(out / f"point=0{n}" / "paths") for n in (0, 1))
    assert first.column("factor_ai_demand").equals(second.column("factor_ai_demand"))
    assert not first.column("system_loss").equals(second.column("system_loss"))


def test_values_are_cut_at_top_level_commas_only():
    assert split_values("0.2,0.4") == ["0.2", "0.4"]
    assert split_values("[0.9, 0.99],[0.99, 0.999]") == ["[0.9, 0.99]", "[0.99, 0.999]"]
    assert split_values("{a = 1, b = [1, 2]},\"x,y\",'p,q'") == [
        "{a = 1, b = [1, 2]}",
        '"x,y"',
        "'p,q'",
    ]
    assert split_values('"q\\",r",s') == ['"q\\",r"', "s"]
    axis = parse_vary(["simulation.levels=[0.9, 0.99],[0.99, 0.999]"])[0]
    assert axis.texts == ["[0.9, 0.99]", "[0.99, 0.999]"]


@pytest.mark.parametrize("key", ["simulation.paths", "simulation.seed", "simulation.block_size"])
def test_what_the_points_share_cannot_vary(key):
    with pytest.raises(OptionError, match="the points of a sweep share their paths, seed"):
        parse_vary([f"{key}=1000,2000"])


@pytest.mark.parametrize("option", [["--kernel", "fsat"], ["--paths", "0"], ["--threads", "0"]])
def test_a_bad_option_leaves_an_earlier_sweep_whole(small_file: Path, tmp_path: Path, option):
    out = tmp_path / "sweep"
    args = ["sweep", str(small_file), "--vary", "correlations.ai_demand.gpu_value=0.2,0.4"]
    args += ["--out", str(out), "--paths", "1000", "--block-size", "500"]
    assert runner.invoke(app, args).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    refused = runner.invoke(app, [*args, *option, "--overwrite"])
    assert refused.exit_code == 1
    assert "Traceback" not in refused.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    fresh = tmp_path / "fresh"
    refused = runner.invoke(app, [*args[:-6], "--out", str(fresh), *option])
    assert refused.exit_code == 1 and not fresh.exists()


def test_sweep_levels_that_differ_between_points_are_named_per_row(
    small_file: Path, tmp_path: Path
):
    out = tmp_path / "sweep"
    vary = "simulation.levels=[0.9],[0.999]"
    args = ["sweep", str(small_file), "--vary", vary, "--out", str(out), *COMMON]
    assert runner.invoke(app, args).exit_code == 0
    text = runner.invoke(app, ["report", str(out), "--format", "markdown"]).output
    assert "| point | simulation.levels | level | system EL | system VaR | system ES |" in text
    rows = [
        line for line in text.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")
    ]
    assert "| 90% |" in rows[0] and "| 99.9% |" in rows[1]
    from stress.report import format_amount, load_run

    # Each row's VaR at its own level: the fifth cell, after point, value, level and EL.
    for row, point, level in ((rows[0], "point=00", 0.9), (rows[1], "point=01", 0.999)):
        var = load_run(out / point).get("system", "system", "var", level)
        assert row.split(" | ")[4].startswith(format_amount(var["value"]))


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "not an ai-stress manifest (not a JSON object)"),
        ('{"status": "comp', "cannot be read"),
        ('{"status": "interrupted", "error": "KeyboardInterrupt: "}', "did not complete"),
        (
            '{"status": "complete"}',
            "sweep.json: not a complete ai-stress manifest (missing scenario",
        ),
    ],
)
def test_report_refuses_a_damaged_or_unfinished_sweep(tmp_path: Path, content, message):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text(content)
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
