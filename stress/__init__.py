"""ai-stress: Monte Carlo stress testing of the credit risk of the AI-infrastructure build-out.

The data flow is one way: scenario file -> validated :class:`~stress.scenario.Scenario` ->
compiled arrays (:mod:`stress.compile`) -> Numba kernels (:mod:`kernels`) -> block results
(:mod:`stress.engine`) -> Parquet and summary (:mod:`stress.io`, :mod:`stress.metrics`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai-stress")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
