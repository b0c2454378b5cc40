"""The ``ai-stress`` command line: thin wrappers over importable functions.

Exit codes: 0 success; 1 a user error (bad scenario, bad option value, refused overwrite),
printed one problem per line without a traceback; 2 command-line usage errors (from Click).
"""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from stress import __version__
from stress.exceptions import StressError

app = typer.Typer(
    name="ai-stress",
    help="Monte Carlo stress testing of the credit risk of the AI-infrastructure build-out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def user_errors(command):
    """Turn a :class:`StressError`, a file the system refuses to read or write (no
    permission, disk full, a path under a file), or a block too large for memory, into its
    message on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except StressError as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(1) from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            typer.echo(f"{where}{err.strerror or err}", err=True)
            raise typer.Exit(1) from None
        except MemoryError as err:
            # NumPy says how much it could not allocate; a block's arrays scale with its size.
            detail = f" ({err})" if str(err) else ""
            typer.echo(
                f"out of memory{detail}: use a smaller --block-size (or fewer paths per block)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ai-stress {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Monte Carlo stress testing of the credit risk of the AI-infrastructure build-out."""


ScenarioArg = Annotated[
    str,
    typer.Argument(help="A scenario file, or the name of a shipped scenario.", show_default=False),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a scenario value by dotted TOML key, e.g. "
        "correlations.ai_demand.gpu_value=0.7 (repeatable).",
    ),
]


@app.command()
@user_errors
def run(
    scenario: ScenarioArg,
    paths: Annotated[int | None, typer.Option(help="Number of paths [scenario's]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed [scenario's]")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory [runs/NAME]")] = None,
    threads: Annotated[int | None, typer.Option(help="Worker threads [all cores]")] = None,
    block_size: Annotated[int | None, typer.Option(help="Paths per block [scenario's]")] = None,
    set_: SetOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing ai-stress run in --out.")
    ] = False,
    kernel: Annotated[
        str, typer.Option(help="fast (conditional independence) | reference (per obligor)")
    ] = "fast",
    repair_correlations: Annotated[
        bool,
        typer.Option(
            "--repair-correlations",
            help="Run on the nearest correlation matrix if the scenario's is not PSD "
            "(audit in the manifest).",
        ),
    ] = False,
) -> None:
    """Run a scenario: Monte Carlo losses to a Parquet run directory."""
    from stress.run import run_scenario

    with _progress() as progress:
        result = run_scenario(
            scenario,
            out=out,
            paths=paths,
            seed=seed,
            block_size=block_size,
            threads=threads,
            overrides=set_ or [],
            overwrite=overwrite,
            progress=progress,
            kernel=kernel,
            repair_correlations=repair_correlations,
        )
    m = result.manifest
    typer.echo(
        f"{m['scenario']['name']}: {m['paths']:,} paths in {m['timings']['simulate_s']:.2f} s "
        f"({m['timings']['paths_per_s']:,.0f} paths/s) -> {result.out}"
    )
    typer.echo(f"report: ai-stress report {result.out}")


@app.command()
@user_errors
def validate(scenario: ScenarioArg, set_: SetOption = None) -> None:
    """Check a scenario and print what it contains; exit 1 listing every problem."""
    from stress.scenario import load_scenario

    loaded = load_scenario(scenario, set_ or [])
    model = loaded.model
    sim = model.simulation
    stress = (
        f"{model.stress.mode} stress on {', '.join(model.stress.shocks)}"
        if model.stress
        else "no stress"
    )
    tranches = sum(len(v.tranches) for v in model.vehicles.values())
    dependencies = sum(len(d) for d in model.dependencies.values())
    lines = sum(e.institution is not None for e in model.exposures.values())
    typer.echo(
        f"{loaded.source}: valid: {len(model.factors)} factors, {len(model.obligors)} obligors, "
        f"{len(model.pools)} pools, {len(model.exposures)} exposures ({lines} lines to "
        f"institutions), {len(model.vehicles)} vehicles ({tranches} tranches), "
        f"{dependencies} revenue dependencies, {len(model.institutions)} institutions; "
        f"{sim.copula} copula; {stress}"
    )


@app.command()
@user_errors
def scenarios() -> None:
    """List the shipped scenarios."""
    from stress.scenario import read_resolved, shipped_scenarios

    for name, path in shipped_scenarios().items():
        data, _ = read_resolved(path)
        typer.echo(f"{name}: {data.get('description', '').strip()}")


@app.command()
@user_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by ai-stress run.")],
    format_: Annotated[str, typer.Option("--format", help="table | markdown | json")] = "table",
) -> None:
    """Report EL, SD, VaR, ES and default probabilities of a run, with standard errors."""
    from stress.exceptions import OptionError
    from stress.report import report as render

    if format_ not in ("table", "markdown", "json"):
        raise OptionError(f"--format: must be table, markdown or json (got {format_!r})")
    text = render(run_dir, format_)  # type: ignore[arg-type]
    if text is not None:
        typer.echo(text, nl=False)


@app.command()
@user_errors
def sweep(
    scenario: ScenarioArg,
    vary: Annotated[
        list[str],
        typer.Option(
            metavar="KEY=V1,V2,...",
            help="A scenario key and its values (repeatable: the grid is the product).",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Sweep directory (point=NN/ per grid point).")],
    paths: Annotated[int | None, typer.Option(help="Paths per point [scenario's]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed shared by all points [scenario's]")] = None,
    threads: Annotated[int | None, typer.Option(help="Worker threads [all cores]")] = None,
    block_size: Annotated[int | None, typer.Option(help="Paths per block [scenario's]")] = None,
    set_: SetOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing ai-stress sweep in --out.")
    ] = False,
    kernel: Annotated[str, typer.Option(help="fast | reference")] = "fast",
) -> None:
    """Run a grid of overrides with common random numbers; report with `ai-stress report`."""
    from stress.sweep import run_sweep

    def progress(done: int, total: int) -> None:
        typer.echo(f"point {done}/{total} done", err=True)

    result = run_sweep(
        scenario,
        vary,
        out,
        paths,
        seed,
        block_size,
        threads,
        set_ or [],
        overwrite,
        kernel,
        progress,
    )
    typer.echo(f"{len(result.points)} points -> {result.out}")
    typer.echo(f"report: ai-stress report {result.out}")


correlations_app = typer.Typer(
    help="Inspect, repair and fit the factor correlation matrix.", no_args_is_help=True
)
app.add_typer(correlations_app, name="correlations")


@correlations_app.command("show")
@user_errors
def correlations_show(
    scenario: ScenarioArg,
    set_: SetOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write heat maps as PNG, PDF or SVG (needs the plot extra)."),
    ] = None,
    obligors: Annotated[
        str | None, typer.Option(help="Comma-separated obligors to compare pairwise.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write every matrix, long form, as Parquet.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out and --plot.")
    ] = False,
) -> None:
    """Factor matrix, eigenvalues, and the correlations it implies between classes."""
    from stress.tuning import (
        check_plot_path,
        correlation_report,
        plot_correlation,
        refuse_existing,
        render_correlation_report,
        write_correlation_report,
    )

    # Both outputs refused, if at all, before either is written.
    if plot is not None:
        check_plot_path(plot, overwrite)
    if out is not None:
        refuse_existing([out], overwrite)
    loaded = _load_for_inspection(scenario, set_ or [])
    names = [o.strip() for o in obligors.split(",") if o.strip()] if obligors else []
    report = correlation_report(loaded, names)
    typer.echo(render_correlation_report(report), nl=False)
    if plot is not None:
        plot_correlation(report, plot)
        typer.echo(f"heat maps: {plot}")
    if out is not None:
        write_correlation_report(report, out, overwrite)
        typer.echo(f"matrices: {out}")


def _load_for_inspection(scenario: str, overrides: list[str]):
    """A scenario for inspection: a matrix that is not PSD is shown repaired, and said so."""
    from stress.scenario import load_scenario

    loaded = load_scenario(scenario, overrides, repair_correlations=True)
    if loaded.repair is not None:
        typer.echo(
            f"note: the scenario's correlation matrix is not positive semi-definite (smallest "
            f"eigenvalue {loaded.repair.min_eigenvalue_before:.4g}); shown below repaired to "
            f"the nearest correlation matrix (distance {loaded.repair.frobenius_distance:.4g}).",
            err=True,
        )
    return loaded


@correlations_app.command("repair")
@user_errors
def correlations_repair(
    scenario: ScenarioArg,
    out: Annotated[Path, typer.Option(help="The repaired scenario file to write.")],
    fix: Annotated[
        list[str] | None,
        typer.Option(metavar="FACTOR:FACTOR", help="Hold this pair at its input value."),
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(metavar="FACTOR=W", help="Weight of a factor's row (W-norm)."),
    ] = None,
    eigen_floor: Annotated[
        float, typer.Option(help="Smallest eigenvalue of the result (0: nearest, singular).")
    ] = 0.0,
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
) -> None:
    """Nearest correlation matrix (Higham 2002): write the repaired scenario and an audit."""
    from stress.tuning import repair_scenario_file

    outcome = repair_scenario_file(
        scenario, out, fix or [], weight or [], eigen_floor, set_ or [], overwrite
    )
    changed = [row for row in outcome.audit if row["change"] != 0.0]
    typer.echo(f"{'pair':<40}{'input':>10}{'repaired':>10}{'change':>10}")
    for row in changed:
        pair = f"{row['first']} ~ {row['second']}"
        typer.echo(
            f"{pair:<40}{row['input']:>10.4f}{row['repaired']:>10.4f}{row['change']:>+10.4f}"
        )
    status = "" if outcome.converged else " (did NOT converge: check --fix)"
    typer.echo(
        f"Frobenius distance {outcome.frobenius_distance:.6g}; smallest eigenvalue "
        f"{outcome.min_eigenvalue_before:.6g} -> {outcome.min_eigenvalue_after:.6g}; "
        f"{outcome.iterations} iterations{status}; {len(changed)} pairs changed"
    )
    typer.echo(f"repaired scenario: {outcome.scenario_path}\naudit: {outcome.audit_path}")


@correlations_app.command("fit")
@user_errors
def correlations_fit(
    data: Annotated[Path, typer.Argument(help="CSV (header of factor names) or Parquet.")],
    out: Annotated[Path, typer.Option(help="TOML file to write.")],
    method: Annotated[str, typer.Option(help="pearson | spearman | kendall")] = "pearson",
    shrinkage: Annotated[
        str | None, typer.Option(help="ledoit-wolf to shrink towards the identity.")
    ] = None,
    into: Annotated[
        str | None, typer.Option(help="Write this scenario with the fitted correlations.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
) -> None:
    """Estimate factor correlations from time series, with standard errors."""
    from stress.tuning import fit_file

    outcome = fit_file(data, out, method, shrinkage, into, overwrite)
    result = outcome.result
    names = outcome.factor_names
    typer.echo(f"{result.n_obs} observations ({result.dropped} dropped), method {method}")
    typer.echo(f"{'pair':<40}{'estimate':>10}{'s.e.':>10}   95 % interval")
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            pair = f"{first} ~ {names[j]}"
            typer.echo(
                f"{pair:<40}{result.matrix[i, j]:>10.4f}{result.standard_error[i, j]:>10.4f}"
                f"   [{result.interval_low[i, j]:.4f}, {result.interval_high[i, j]:.4f}]"
            )
    typer.echo(f"written: {outcome.toml_path}\nestimates: {outcome.estimates_path}")


@correlations_app.command("calibrate")
@user_errors
def correlations_calibrate(
    scenario: ScenarioArg,
    target: Annotated[
        list[str],
        typer.Option(metavar="A:B=VALUE", help="Obligors or classes A, B and the target."),
    ],
    out: Annotated[Path, typer.Option(help="The calibrated scenario file to write.")],
    kind: Annotated[str, typer.Option(help="default | asset correlation")] = "default",
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
) -> None:
    """Scale loadings so implied default (or asset) correlations hit targets."""
    from stress.tuning import calibrate_file

    outcome = calibrate_file(scenario, target, out, kind, set_ or [], overwrite)
    typer.echo(f"{'pair':<44}{'target':>10}{'achieved':>10}")
    for row in outcome.rows:
        pair = f"{row['first']} ~ {row['second']}"
        note = "" if row["met"] else "   NOT MET within aᵀRa ≤ 0.99"
        typer.echo(f"{pair:<44}{row['target']:>10.4f}{row['achieved']:>10.4f}{note}")
    for group, factor in outcome.multipliers.items():
        others = outcome.elsewhere[group]
        note = f" ({others} of its names follow a later target)" if others else ""
        typer.echo(f"loadings of {group} scaled by {factor:.6g}{note}")
    for group in outcome.shadowed:
        typer.echo(f"{group}: no names of its own to scale (each follows a later target)")
    typer.echo(f"calibrated scenario: {outcome.scenario_path}")


class _progress:
    """A rich progress bar with paths/s and ETA on a terminal; nothing otherwise."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("paths  {task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = None
        return self._update

    def _update(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._bar.add_task("run", total=total, rate="")
        task = next(t for t in self._bar.tasks if t.id == self._task)
        speed = task.speed
        rate = f"{speed:,.0f} paths/s" if speed else ""
        self._bar.update(self._task, completed=done, rate=rate)

    def __exit__(self, *exc) -> None:
        if sys.stderr.isatty():
            self._bar.stop()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run or sweep stops as on Ctrl-C: whole
    blocks kept, the manifest saying "interrupted"."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    app()


if __name__ == "__main__":
    main()
