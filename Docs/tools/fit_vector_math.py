#!/usr/bin/env python3
"""The polynomial coefficients of Sources/LopperRuntime/Kernels/VectorMath.swift.

  python3 Docs/tools/fit_vector_math.py

Weighted least squares at 4000 Chebyshev nodes against mpmath (40 digits), weighted so that the
residual is the error relative to the function's value; prints float32 coefficients (lowest
degree first) and the largest weighted residual with those coefficients.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40


def fit(function, lower, upper, degree, variable, weight):
    k = np.arange(4000)
    xs = (lower + upper) / 2 + (upper - lower) / 2 * np.cos(np.pi * (k + 0.5) / 4000)
    vs = np.array([variable(x) for x in xs])
    ys = np.array([float(function(x)) for x in xs])
    w = np.array([weight(x) for x in xs])
    basis = np.vander(vs, degree + 1, increasing=True)
    coefficients = np.linalg.lstsq(basis * w[:, None], ys * w, rcond=None)[0].astype(np.float32)
    residual = np.max(np.abs((basis @ coefficients.astype(np.float64) - ys) * w))
    return coefficients, residual


FITS = {
    # tanh(x) = x + x³·p(x²) for |x| < 0.625
    "tanh p(x²)": (lambda x: (mp.tanh(x) - x) / x**3, 1e-4, 0.625, 5, lambda x: x * x,
                   lambda x: x * x / float(mp.tanh(x) / x)),
    # erf(x) = x + x·p(x²) for |x| < 1
    "erf p(x²)": (lambda x: mp.erf(x) / x - 1, 1e-4, 1.0, 6, lambda x: x * x, lambda x: float(x / mp.erf(x))),
    # erf(x) = 1 − e^(−x²)·q(x − 2.5) for 1 ≤ x ≤ 4
    "erf q(x − 2.5)": (lambda x: mp.erfc(x) * mp.exp(x * x), 1.0, 4.0, 9, lambda x: x - 2.5,
                       lambda x: float(mp.erfc(x) / mp.erf(x))),
}

for name, arguments in FITS.items():
    coefficients, residual = fit(*arguments)
    print(f"{name}: residual {residual:.2e}: {', '.join(repr(float(c)) for c in coefficients)}")
