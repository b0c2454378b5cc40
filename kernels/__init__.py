"""Numba kernels of ai-stress: arrays in, arrays out.

No I/O and no validation here: inputs are checked once at the Python boundary
(:mod:`stress.scenario`) and compiled to arrays (:mod:`stress.compile`). Randomness is explicit:
every kernel that draws takes a ``numpy.random.Generator`` owned by one block of paths.
"""

from kernels.factors import draw_factors
from kernels.fast import simulate_losses_fast
from kernels.reference import simulate_losses_reference

__all__ = ["draw_factors", "simulate_losses_fast", "simulate_losses_reference"]
