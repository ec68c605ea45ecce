"""facecore.vmf against a 50-digit mpmath oracle and independently computed values."""

import mpmath as mp
import numpy as np
import pytest

from facecore.vmf import (
    embedding_to_vmf,
    expected_cosine,
    log_expected_likelihood,
    log_vmf_normalizer,
    mean_resultant_length,
)

KAPPAS = [0.0, 1e-3, 0.1, 1.0, 5.0, 10.0, 50.0, 100.0, 300.0, 1000.0, 2000.0, 5000.0]
DIMS = [64, 128, 256, 512, 1024]


def oracle_log_c(kappa: float, dim: int) -> float:
    with mp.workdps(50):
        nu = mp.mpf(dim) / 2 - 1
        if kappa == 0:
            return float(mp.loggamma(mp.mpf(dim) / 2) - mp.log(2) - mp.mpf(dim) / 2 * mp.log(mp.pi))
        k = mp.mpf(kappa)
        return float(nu * mp.log(k) - mp.mpf(dim) / 2 * mp.log(2 * mp.pi) - mp.log(mp.besseli(nu, k)))


def oracle_a(kappa: float, dim: int) -> float:
    with mp.workdps(50):
        nu = mp.mpf(dim) / 2 - 1
        return float(mp.besseli(nu + 1, kappa) / mp.besseli(nu, kappa))


@pytest.mark.parametrize(
    ("kappa", "dim", "expected"),
    [
        (0.0, 128, 127.053457),
        (0.0, 512, 867.968103),
        (100.0, 128, 95.061469),
        (100.0, 512, 858.379265),
        (1000.0, 512, 327.709187),
    ],
)
def test_log_normalizer_reference_values(kappa: float, dim: int, expected: float) -> None:
    assert float(log_vmf_normalizer(kappa, dim)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dim", DIMS)
def test_log_normalizer_matches_mpmath_oracle(dim: int) -> None:
    ours = log_vmf_normalizer(np.array(KAPPAS), dim)
    ref = np.array([oracle_log_c(k, dim) for k in KAPPAS])
    assert np.max(np.abs(ours - ref)) < 1e-6


def test_log_normalizer_float32_relative_error() -> None:
    k = np.array(KAPPAS[1:], dtype=np.float32)
    for dim in DIMS:
        ref = np.array([oracle_log_c(float(x), dim) for x in k])
        ours32 = log_vmf_normalizer(k.astype(np.float32), dim).astype(np.float32)
        assert np.max(np.abs(ours32 - ref) / np.abs(ref)) < 1e-5


def test_log_normalizer_is_finite_and_smooth_at_zero() -> None:
    for dim in DIMS:
        values = log_vmf_normalizer(np.array([0.0, 1e-8, 1e-4]), dim)
        assert np.all(np.isfinite(values))
        assert abs(values[1] - values[0]) < 1e-12


@pytest.mark.parametrize(("dim", "expected"), [(128, 0.548329), (512, 0.188405)])
def test_mean_resultant_reference_values(dim: int, expected: float) -> None:
    assert float(mean_resultant_length(100.0, dim)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dim", DIMS)
def test_mean_resultant_is_minus_derivative_and_matches_oracle(dim: int) -> None:
    k = np.array([0.5, 3.0, 40.0, 250.0, 3000.0])
    h = 1e-4 * np.maximum(k, 1.0)
    numeric = -(log_vmf_normalizer(k + h, dim) - log_vmf_normalizer(k - h, dim)) / (2 * h)
    a = mean_resultant_length(k, dim)
    assert np.allclose(a, numeric, rtol=1e-6, atol=1e-9)
    assert np.allclose(a, [oracle_a(float(x), dim) for x in k], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dim", DIMS)
def test_mean_resultant_is_in_amos_bracket_and_increasing(dim: int) -> None:
    k = np.linspace(0.0, 5000.0, 2001)
    a = mean_resultant_length(k, dim)
    nu = dim / 2 - 1
    lower = k / (nu + 0.5 + np.sqrt((nu + 1.5) ** 2 + k**2))
    upper = k / (nu + 0.5 + np.sqrt((nu + 0.5) ** 2 + k**2))
    assert a[0] == 0.0
    assert np.all(a[1:] > 0) and np.all(a < 1)
    assert np.all(np.diff(a) > 0)
    assert np.all(a >= lower - 1e-12) and np.all(a <= upper + 1e-12)


def test_d3_closed_form_values() -> None:
    assert float(log_vmf_normalizer(1.0, 3)) == pytest.approx(-2.692464, abs=1e-6)
    assert float(log_vmf_normalizer(2.0, 3)) == pytest.approx(-3.126244, abs=1e-6)
    assert float(log_vmf_normalizer(0.0, 3)) == pytest.approx(-np.log(4 * np.pi), abs=1e-12)
    assert float(mean_resultant_length(2.0, 3)) == pytest.approx(1 / np.tanh(2.0) - 0.5, abs=1e-12)


def test_expected_likelihood_d3_values_symmetry_and_monotonicity() -> None:
    assert float(log_expected_likelihood(1.0, 1.0, 1.0, 3)) == pytest.approx(-2.258683, abs=1e-6)
    assert float(log_expected_likelihood(-1.0, 1.0, 1.0, 3)) == pytest.approx(-2.853903, abs=1e-6)
    cos = np.linspace(-1, 1, 41)
    for dim in (3, 128, 512):
        ab = log_expected_likelihood(cos, 7.0, 30.0, dim)
        ba = log_expected_likelihood(cos, 30.0, 7.0, dim)
        assert np.allclose(ab, ba)
        assert np.all(np.diff(ab) > 0)


def test_expected_likelihood_matches_numerical_integration_d3() -> None:
    # On S^2 integrate vMF(z; mu_a, ka) vMF(z; mu_b, kb) over the polar angle around mu_a.
    ka, kb, angle = 2.5, 4.0, 1.1
    theta = np.linspace(0, np.pi, 4001)
    phi = np.linspace(0, 2 * np.pi, 4001)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    z = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
    mu_a = np.array([0.0, 0.0, 1.0])
    mu_b = np.array([np.sin(angle), 0.0, np.cos(angle)])
    log_ca, log_cb = log_vmf_normalizer(ka, 3), log_vmf_normalizer(kb, 3)
    dens = np.exp(log_ca + ka * z @ mu_a + log_cb + kb * z @ mu_b) * np.sin(t)
    integral = np.trapezoid(np.trapezoid(dens, phi, axis=1), theta)
    assert float(log_expected_likelihood(np.cos(angle), ka, kb, 3)) == pytest.approx(np.log(integral), abs=1e-5)


def test_expected_cosine_matches_monte_carlo() -> None:
    # E[z_a . z_b] = A(ka) A(kb) cos for independent vMF samples (D = 3 has an exact inverse-CDF sampler).
    rng = np.random.default_rng(0)

    def sample(mu: np.ndarray, kappa: float, n: int) -> np.ndarray:
        u = rng.uniform(size=n)
        w = 1 + np.log(u + (1 - u) * np.exp(-2 * kappa)) / kappa
        v = rng.normal(size=(n, 3))
        v -= (v @ mu)[:, None] * mu
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return w[:, None] * mu + np.sqrt(1 - w**2)[:, None] * v

    mu_a, mu_b = np.array([0.0, 0.0, 1.0]), np.array([0.6, 0.0, 0.8])
    za, zb = sample(mu_a, 3.0, 400_000), sample(mu_b, 8.0, 400_000)
    mc = float(np.mean(np.sum(za * zb, axis=1)))
    assert float(expected_cosine(0.8, 3.0, 8.0, 3)) == pytest.approx(mc, abs=3e-3)


def test_embedding_split_and_bad_inputs() -> None:
    mu, kappa = embedding_to_vmf([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    assert np.allclose(mu[0], [0.6, 0.8, 0.0]) and kappa[0] == 5.0
    assert kappa[1] == 0.0 and np.all(mu[1] == 0)
    with pytest.raises(ValueError, match="dim >= 3"):
        log_vmf_normalizer(1.0, 2)
    with pytest.raises(ValueError, match="kappa must be finite and >= 0"):
        log_vmf_normalizer(-1.0, 128)
