"""Reference samplers for the tests: Wood's (1994) vMF rejection sampler and uniform sphere points (numpy)."""

from __future__ import annotations

import numpy as np


def sample_vmf(mu: np.ndarray, kappa: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from vMF(mu, kappa) on S^{d-1} (Wood 1994)."""
    d = mu.shape[0]
    b = (d - 1) / (2 * kappa + np.sqrt(4 * kappa**2 + (d - 1) ** 2))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + (d - 1) * np.log(1 - x0**2)
    w = np.empty(0)
    while w.size < n:
        z = rng.beta((d - 1) / 2, (d - 1) / 2, size=2 * n)
        cand = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        u = rng.uniform(size=2 * n)
        ok = kappa * cand + (d - 1) * np.log(1 - x0 * cand) - c >= np.log(u)
        w = np.concatenate([w, cand[ok]])
    w = w[:n]
    v = rng.normal(size=(n, d))
    v -= (v @ mu)[:, None] * mu
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return w[:, None] * mu + np.sqrt(np.clip(1 - w**2, 0, None))[:, None] * v


def sample_sphere(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform points on S^{d-1}."""
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
