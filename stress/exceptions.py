"""The domain errors of ai-stress.

Everything a user can get wrong (a scenario, an option, an output directory) raises a
subclass of :class:`StressError`. The CLI catches the base class once, prints the message
without a traceback and exits 1; any other exception is a bug and surfaces as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class StressError(Exception):
    """Base class of every error caused by user input."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where, what, and the offending value."""

    path: str
    message: str
    value: object = None
    has_value: bool = False

    def render(self, source: str) -> str:
        where = f"{self.path}: " if self.path else ""
        got = f" (got {_show(self.value)})" if self.has_value else ""
        return f"{source}: {where}{self.message}{got}"


def problem(path: str, message: str, *value: object) -> Problem:
    """Build a :class:`Problem`; pass the offending value as a third argument to quote it."""
    if value:
        return Problem(path, message, value[0], True)
    return Problem(path, message)


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ScenarioError(StressError):
    """A scenario file that cannot be read or is invalid; carries every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))


class OptionError(StressError):
    """A command-line or API option with a value outside its rule."""


class OutputError(StressError):
    """An output directory that cannot be written without losing something."""


class RunDirError(StressError):
    """A run directory that cannot be read (missing, incomplete or not an ai-stress run)."""
