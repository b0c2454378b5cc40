"""Draw the systematic factors and the t-copula mixing scale of each path."""

from __future__ import annotations

import math

import numpy as np

from kernels._jit import jit


@jit
def draw_factors(rng, mean, loading, dof, out_factors, out_scale):
    """Fill one block's factor draws.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's generator; consumed in path order: K standard normals, then (t copula)
        one χ²_dof variate.
    mean : (K,) float64
    loading : (K, K) float64
        ``Y = mean + loading @ z`` with ``z ~ N(0, I)``.
    dof : float
        Degrees of freedom of the t copula; 0 for the Gaussian copula.
    out_factors : (n, K) float64, written
    out_scale : (n,) float64, written
        ``sqrt(dof / W)`` per path (1 for the Gaussian copula): every latent variable of the
        path is multiplied by it.

    Inputs are not checked.
    """
    n, k = out_factors.shape
    z = np.empty(k)
    for p in range(n):
        for j in range(k):
            z[j] = rng.standard_normal()
        for i in range(k):
            acc = mean[i]
            for j in range(k):
                acc += loading[i, j] * z[j]
            out_factors[p, i] = acc
        if dof > 0.0:
            out_scale[p] = math.sqrt(dof / rng.chisquare(dof))
        else:
            out_scale[p] = 1.0
