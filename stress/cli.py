"""The ``ai-stress`` command line: thin wrappers over importable functions.

Exit codes: 0 success; 1 a user error (bad scenario, bad option value, refused overwrite),
printed one problem per line without a traceback; 2 command-line usage errors (from Click).
"""

from __future__ import annotations

import functools
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
    """Turn a :class:`StressError` into its message on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except StressError as err:
            typer.echo(str(err), err=True)
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
    typer.echo(
        f"{loaded.source}: valid: {len(model.factors)} factors, {len(model.obligors)} obligors, "
        f"{len(model.pools)} pools, {len(model.exposures)} exposures, "
        f"{len(model.institutions)} institutions; {sim.copula} copula; {stress}"
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
