"""Run directories: layout, schemas, provenance, reproducibility and crash safety."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stress import io as sio
from stress.cli import app
from stress.metrics import tail_rank
from stress.run import run_scenario
from stress.scenario import load_scenario

from builders import MECHANICS, small_scenario, write_scenario

runner = CliRunner()


def _run(scenario, out, **options):
    options.setdefault("paths", 4_000)
    options.setdefault("block_size", 1_000)
    return run_scenario(scenario, out=out, **options)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    path = write_scenario(folder, small_scenario())
    result = _run(path, folder / "out", threads=2)
    return path, result


def test_layout_and_manifest(finished):
    _, result = finished
    out = result.out
    assert sorted(p.name for p in out.iterdir()) == [
        "classes",
        "institutions",
        "manifest.json",
        "paths",
        "scenario.toml",
        "summary.parquet",
        "vehicles",
    ]
    assert sorted(p.name for p in (out / "paths").iterdir()) == [
        f"part-{b:06d}.parquet" for b in range(4)
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["blocks_done"] == manifest["blocks_total"] == 4
    assert manifest["paths"] == 4_000 and manifest["block_size"] == 1_000
    assert set(manifest["versions"]) >= {"ai_stress", "numpy", "numba", "pyarrow"}
    assert manifest["command"].startswith("ai-stress run ")
    assert not list(out.rglob("*.tmp"))


def test_schemas_round_trip_with_provenance(finished):
    path, result = finished
    scenario = load_scenario(path)
    paths = pq.read_table(result.out / "paths")
    expected = sio.paths_schema(scenario.factor_names)
    assert paths.schema.remove_metadata().equals(expected)
    assert paths.column_names[-3:] == [
        "factor_ai_demand",
        "factor_gpu_value",
        "factor_credit_spread",
    ]
    assert paths.column("path").to_pylist() == list(range(4_000))
    institutions = pq.read_table(result.out / "institutions")
    assert institutions.schema.remove_metadata().equals(sio.INSTITUTIONS_SCHEMA)
    assert institutions.num_rows == 4_000 * 3
    classes = pq.read_table(result.out / "classes")
    assert classes.schema.remove_metadata().equals(sio.CLASSES_SCHEMA)
    assert classes.num_rows == 4_000 * 5  # five classes
    summary = pq.read_table(result.out / "summary.parquet")
    assert summary.schema.remove_metadata().equals(sio.SUMMARY_SCHEMA)
    part = result.out / "paths" / "part-000002.parquet"
    provenance = sio.read_provenance(part)
    assert provenance["scenario_hash"] == scenario.hash
    assert provenance["seed"] == 11 and provenance["block_size"] == 1_000
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"


def test_summary_agrees_with_the_path_data(finished):
    _, result = finished
    system = pq.read_table(result.out / "paths", columns=["system_loss"]).column(0).to_numpy()
    rows = pq.read_table(result.out / "summary.parquet").to_pylist()

    def value(scope, name, metric, level=None):
        (row,) = [
            r
            for r in rows
            if (r["scope"], r["name"], r["metric"]) == (scope, name, metric) and r["level"] == level
        ]
        return row

    n = system.size
    assert value("system", "system", "el")["value"] == pytest.approx(system.mean(), rel=1e-12)
    assert value("system", "system", "sd")["value"] == pytest.approx(system.std(ddof=1), rel=1e-10)
    ordered = np.sort(system)
    for level in (0.95, 0.99, 0.999):
        var = ordered[tail_rank(n, level) - 1]
        es = var + np.clip(system - var, 0, None).sum() / (n * (1 - level))
        assert value("system", "system", "var", level)["value"] == var
        assert value("system", "system", "es", level)["value"] == pytest.approx(es, rel=1e-12)
        assert value("system", "system", "var", level)["std_error"] > 0

    table = ds.dataset(result.out / "institutions").to_table()
    for name in ("bank_a", "fund_a", "insurer_a"):
        mine = table.filter(ds.field("institution") == name)
        loss = mine.column("first_round_loss").to_numpy()
        defaulted = mine.column("defaulted").to_numpy()
        assert value("institution", name, "el")["value"] == pytest.approx(loss.mean(), rel=1e-12)
        assert value("institution", name, "p_default")["value"] == defaulted.mean()
    assert value("institution", "fund_a", "p_default")["value"] > 0
    bank_types = value("type", "bank", "el")["value"]
    assert bank_types == pytest.approx(value("institution", "bank_a", "el")["value"], rel=1e-12)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_one_thread_equals_two_bit_for_bit(tmp_path: Path, kernel):
    book = small_scenario(**MECHANICS, simulation={"copula": "t", "dof": 5.0})
    path = write_scenario(tmp_path, book)
    one = _run(path, tmp_path / "one", threads=1, paths=5_500, kernel=kernel).out
    two = _run(path, tmp_path / "two", threads=2, paths=5_500, kernel=kernel).out
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 4 * 6 + 3  # paths, institutions, classes, vehicles
    for relative in files:
        if relative.suffix == ".parquet":
            assert (one / relative).read_bytes() == (two / relative).read_bytes(), relative
    # scenario.toml differs only in the --out of the reproduce command in its header.
    resolved = [tomllib.loads((d / "scenario.toml").read_text()) for d in (one, two)]
    assert resolved[0] == resolved[1]


def test_the_printed_command_reproduces_the_run_from_anywhere(
    small_file: Path, tmp_path: Path, monkeypatch
):
    import shlex

    # Started from the scenario's folder with relative paths; the command is run as printed
    # from elsewhere, and writes beside the run rather than over it.
    monkeypatch.chdir(small_file.parent)
    args = ["run", small_file.name, "--out", "rel", "--paths", "3000", "--block-size", "1000"]
    assert runner.invoke(app, [*args, "--set", "simulation.seed=7"]).exit_code == 0
    command = json.loads((small_file.parent / "rel" / "manifest.json").read_text())["command"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    words = shlex.split(command)
    assert words[:2] == ["ai-stress", "run"] and Path(words[2]).is_absolute()
    again = runner.invoke(app, words[1:])
    assert again.exit_code == 0, again.output
    run, rerun = small_file.parent / "rel", Path(f"{small_file.parent / 'rel'}-reproduced")
    for name in (
        "summary.parquet",
        "paths/part-000002.parquet",
        "institutions/part-000000.parquet",
    ):
        assert (run / name).read_bytes() == (rerun / name).read_bytes(), name


def test_resolved_scenario_reproduces_the_run(finished, tmp_path: Path):
    _, result = finished
    again = _run(result.out / "scenario.toml", tmp_path / "again", threads=1)
    assert again.manifest["scenario"]["hash"] == result.manifest["scenario"]["hash"]
    for name in ("summary.parquet", "paths/part-000003.parquet"):
        assert (again.out / name).read_bytes() == (result.out / name).read_bytes()


def test_refuses_a_non_empty_directory(small_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["run", str(small_file), "--out", str(out), "--paths", "100"])
    assert result.exit_code == 1
    assert "directory is not empty; pass --overwrite" in result.output
    forced = runner.invoke(
        app, ["run", str(small_file), "--out", str(out), "--paths", "100", "--overwrite"]
    )
    assert forced.exit_code == 1
    assert "--overwrite only replaces an ai-stress run" in forced.output
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_a_previous_run(small_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = ["run", str(small_file), "--out", str(out), "--block-size", "500"]
    assert runner.invoke(app, [*args, "--paths", "2000"]).exit_code == 0
    assert runner.invoke(app, [*args, "--paths", "1000"]).exit_code == 1
    replaced = runner.invoke(app, [*args, "--paths", "1000", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert len(list((out / "paths").iterdir())) == 2
    assert json.loads((out / "manifest.json").read_text())["paths"] == 1000


def test_overwrite_needs_a_manifest_that_ai_stress_wrote(small_file: Path, tmp_path: Path):
    # Entries named like a run's, under a manifest ai-stress did not write: not a run.
    out = tmp_path / "project"
    (out / "paths").mkdir(parents=True)
    (out / "paths" / "notes.txt").write_text("keep me")
    (out / "manifest.json").write_text('{"mine": 1}')
    (out / "scenario.toml").write_text("# my own scenario")
    result = runner.invoke(
        app, ["run", str(small_file), "--out", str(out), "--paths", "100", "--overwrite"]
    )
    assert result.exit_code == 1
    assert "no manifest.json written by ai-stress" in result.output
    assert "nothing was deleted" in result.output
    assert (out / "paths" / "notes.txt").read_text() == "keep me"
    assert (out / "manifest.json").read_text() == '{"mine": 1}'
    assert (out / "scenario.toml").read_text() == "# my own scenario"


@pytest.mark.parametrize("extra", ["file in a dataset", "link"])
def test_overwrite_refuses_what_a_run_does_not_write(small_file: Path, tmp_path: Path, extra):
    out = tmp_path / "out"
    args = ["run", str(small_file), "--out", str(out), "--paths", "1000"]
    assert runner.invoke(app, args).exit_code == 0
    if extra == "link":
        (tmp_path / "elsewhere").mkdir()
        (out / "linked").symlink_to(tmp_path / "elsewhere")
        named = "linked"
    else:
        (out / "classes" / "extra.txt").write_text("keep me")
        named = "classes/extra.txt"
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 1
    assert f"holds {named}; nothing was deleted" in result.output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_the_manifest_says_running_from_before_the_first_part(small_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    seen = []

    def progress(done, total):
        seen.append(json.loads((out / "manifest.json").read_text())["status"])

    _run(small_file, out, progress=progress, threads=1)
    assert seen == ["running"] * 4
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_sigterm_stops_a_run_as_interrupted_with_whole_blocks(small_file: Path, tmp_path: Path):
    import os
    import signal

    from stress.cli import Terminated, _terminate

    out = tmp_path / "out"

    def terminate_after_two_blocks(done, total):
        if done == 2_000:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises in this, the main thread

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with pytest.raises(Terminated):
            _run(small_file, out, progress=terminate_after_two_blocks, threads=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["status"], manifest["blocks_done"]) == ("interrupted", 2)
    assert "SIGTERM" in manifest["error"]
    for dataset in ("paths", "institutions", "classes", "vehicles"):
        assert len(list((out / dataset).iterdir())) == 2
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 1
    assert "status 'interrupted'" in report.output


def test_more_blocks_than_allowed_are_refused_before_anything_is_written(
    small_file: Path, tmp_path: Path
):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(small_file), "--out", str(out), "--paths", str(10**14)])
    assert result.exit_code == 1
    assert "more than 1,000,000 (a part file per block and dataset)" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_crash_leaves_a_failed_manifest_and_no_half_files(
    small_file: Path, tmp_path: Path, monkeypatch
):
    out = tmp_path / "out"
    real = sio.write_parquet
    calls = {"n": 0}

    def disk_full_on_the_fifth_file(table, final):
        calls["n"] += 1
        if calls["n"] == 5:
            sio.temporary_name(final).write_bytes(b"PAR1 half")
            raise OSError(28, "No space left on device")
        real(table, final)

    monkeypatch.setattr(sio, "write_parquet", disk_full_on_the_fifth_file)
    with pytest.raises(OSError):
        _run(small_file, out, threads=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["blocks_done"] == 1  # four parts a block: the fifth file is block 1's
    assert "No space left" in manifest["error"]
    for part in out.rglob("*.parquet"):
        pq.read_metadata(part)  # every file with a final name is whole
    # Whole blocks only, in every dataset alike: block 1's parts and the temporary file went.
    for dataset in ("paths", "institutions", "classes", "vehicles"):
        assert sorted(p.name for p in (out / dataset).iterdir()) == ["part-000000.parquet"]
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 1
    assert "the run did not complete (status 'failed'" in report.output


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_report_formats(finished, fmt):
    _, result = finished
    shown = runner.invoke(app, ["report", str(result.out), "--format", fmt])
    assert shown.exit_code == 0, shown.output
    if fmt == "json":
        data = json.loads(shown.output)
        assert data["manifest"]["status"] == "complete"
        assert {r["metric"] for r in data["summary"]} == {
            "el",
            "sd",
            "var",
            "es",
            "p_default",
            "p_distress",
            "el_first_round",
            "el_contagion",
            "el_fire_sale",
            "expected_defaults",
            "p_defaults_at_least",
            "amplification",
            "amplification_tail",
            "capital",
        }
    else:
        for name in ("bank_a", "fund_a", "insurer_a", "gpu_backed_loan", "private_credit_fund"):
            assert name in shown.output
        assert "±" in shown.output
        assert "Reproduce: ai-stress run" in shown.output


def test_report_errors(tmp_path: Path):
    missing = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no such run directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "no manifest.json" in empty.output
    bad = runner.invoke(app, ["report", str(tmp_path / "empty"), "--format", "html"])
    assert bad.exit_code == 1 and "--format: must be table, markdown or json" in bad.output
    # A manifest that says complete but is not one ai-stress wrote.
    for text, message in (
        ('{"status": "complete"}', "not a complete ai-stress manifest (missing scenario, paths"),
        ("[1, 2]", "not an ai-stress manifest (not a JSON object)"),
    ):
        (tmp_path / "empty" / "manifest.json").write_text(text)
        tampered = runner.invoke(app, ["report", str(tmp_path / "empty")])
        assert tampered.exit_code == 1 and message in tampered.output, tampered.output


def test_one_path_has_no_standard_errors(small_file: Path, tmp_path: Path):
    # One draw says nothing about the spread of the estimator: no error, rather than ± 0.
    out = tmp_path / "one"
    _run(small_file, out, paths=1, threads=1)
    rows = pq.read_table(out / "summary.parquet").to_pylist()
    assert all(row["std_error"] is None for row in rows)
    for fmt in ("table", "markdown", "json"):
        shown = runner.invoke(app, ["report", str(out), "--format", fmt])
        assert shown.exit_code == 0, shown.output
        assert "± 0 " not in shown.output and "± 0\n" not in shown.output


def test_a_narrow_terminal_gets_every_digit(finished):
    # Tables wider than the terminal are cut into several, each repeating the row names,
    # instead of cells shortened to an ellipsis.
    import io

    from rich.console import Console

    from stress.report import _print_fitted, _tables, load_run

    summary = load_run(finished[1].out)
    for width in (60, 80, 200):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, color_system=None)
        for title, header, body in _tables(summary):
            _print_fitted(console, title, header, body)
            text = buffer.getvalue()
            assert "…" not in text
            assert max(len(line) for line in text.splitlines()) <= width
            for row in body:
                for cell in row:
                    assert cell in text, (title, cell, width)
