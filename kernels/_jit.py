"""The one jit decorator of the kernels.

``cache=True`` so a second process starts without recompiling; ``nogil=True`` so blocks run
in parallel on a thread pool; ``error_model="numpy"`` so a division by zero gives inf/nan as
in NumPy instead of raising and paying for the check in inner loops.
"""

from __future__ import annotations

import functools

import numba

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
