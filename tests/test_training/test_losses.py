"""Every loss against hand-computed toy values and invariances and the torch twins against facecore."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from facecore.vmf import log_vmf_normalizer as np_log_c
from facecore.vmf import mean_resultant_length as np_a
from tests.test_training.vmf_sampling import sample_sphere, sample_vmf
from training.losses import create_loss, list_losses
from training.losses.d_loss import DLoss
from training.losses.functional import log_vmf_normalizer, mean_resultant_length
from training.losses.pd_loss import PDLoss, proxy_decidability, temperature_transform
from training.losses.vmf import el_logits, el_nivmf_logits, nivmf_log_density

C60, S60 = math.cos(math.radians(60)), math.sin(math.radians(60))
C30, S30 = math.cos(math.radians(30)), math.sin(math.radians(30))


# --- torch twins of facecore --------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [3, 8, 64, 128, 512, 1024])
def test_torch_log_c_and_a_equal_facecore(dim: int) -> None:
    k = np.array([0.0, 1e-3, 0.5, 3.0, 40.0, 250.0, 3000.0, 5000.0])
    t64 = torch.tensor(k, dtype=torch.float64)
    assert np.allclose(log_vmf_normalizer(t64, dim).numpy(), np_log_c(k, dim), rtol=0, atol=1e-12)
    assert np.allclose(mean_resultant_length(t64, dim).numpy(), np_a(k, dim), rtol=0, atol=1e-10)
    f32 = log_vmf_normalizer(t64.float(), dim).double().numpy()
    assert np.max(np.abs(f32 - np_log_c(k, dim)) / np.maximum(np.abs(np_log_c(k, dim)), 1.0)) < 1e-5


# --- D-Loss (item 2) ----------------------------------------------------------------------------------------
def test_d_loss_toy_values() -> None:
    x = torch.tensor([[1.0, 0.0], [C30, S30], [0.0, 1.0], [-S30, C30]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    out = DLoss(2, 2, form="reciprocal")(x, y)
    assert out.stats["d_prime"] == pytest.approx(3.0, abs=1e-6)
    assert out.loss.item() == pytest.approx(1 / 3, abs=1e-6)
    assert DLoss(2, 2, form="log")(x, y).loss.item() == pytest.approx(-1.098612, abs=1e-6)
    with pytest.raises(ValueError, match="needs >= 2 genuine and impostor pairs"):
        DLoss(2, 2)(x[:2], y[:2])


# --- PD-Loss (items 3-8) ------------------------------------------------------------------------------------
def toy_scores(ddof: int = 1) -> torch.Tensor:
    proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0], [C60, S60]], dtype=torch.float64)
    return proxy_decidability(x @ proxies.T, torch.tensor([0, 0]), var_eps=0.0, ddof=ddof).loss


def test_pd_loss_toy_values() -> None:
    assert toy_scores(1).item() == pytest.approx(0.802320, abs=1e-6)
    assert toy_scores(0).item() == pytest.approx(0.455746, abs=1e-6)
    d_prime = 0.633975
    assert toy_scores(1).item() + math.log(d_prime) == pytest.approx(0.5 * math.log(2), abs=1e-6)


def random_batch(b: int = 12, c: int = 7, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, PDLoss]:
    g = torch.Generator().manual_seed(seed)
    loss = PDLoss(c, d).double()
    labels = torch.arange(b) % c
    with torch.no_grad():
        # Embeddings near their class proxies, so Delta > 0 and no clamp is active.
        x = loss.proxies.directions()[labels] * 3 + torch.randn(b, d, generator=g, dtype=torch.float64)
    return x.requires_grad_(), labels, loss


@pytest.mark.parametrize("tau", [0.01, 0.1, 1.0, 10.0])
def test_pd_loss_temperature_invariance(tau: float) -> None:
    x, y, loss = random_batch()
    s = loss.scores(x).detach()
    base = proxy_decidability(s, y, var_eps=0.0).loss
    scaled = proxy_decidability(temperature_transform(s, tau, "linear"), y, var_eps=0.0).loss
    assert scaled.item() == pytest.approx(base.item(), abs=1e-10)


def test_pd_loss_norm_blindness() -> None:
    x, y, loss = random_batch()
    out = loss(x, y).loss
    (grad,) = torch.autograd.grad(out, x)
    assert torch.all(torch.abs((grad * x).sum(dim=1)) < 1e-10)
    c = torch.rand(len(x), 1, dtype=torch.float64) * 10 + 0.1
    assert loss(x * c, y).loss.item() == pytest.approx(out.item(), abs=1e-12)
    x32, y32, loss32 = random_batch()
    loss32 = loss32.float()
    x32 = x32.detach().float().requires_grad_()
    (g32,) = torch.autograd.grad(loss32(x32, y32).loss, x32)
    assert torch.all(torch.abs((g32 * x32).sum(dim=1)) < 1e-6)


def test_pd_loss_rotation_and_relabel_invariance() -> None:
    x, y, loss = random_batch()
    base = loss(x, y).loss.item()
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    rotated = PDLoss(7, 16).double()
    with torch.no_grad():
        rotated.proxies.weight.copy_(loss.proxies.weight @ q.T)
    assert rotated(x @ q.T, y).loss.item() == pytest.approx(base, abs=1e-12)
    perm = torch.randperm(7)
    relabelled = PDLoss(7, 16).double()
    with torch.no_grad():
        relabelled.proxies.weight[perm] = loss.proxies.weight
    assert relabelled(x, perm[y]).loss.item() == pytest.approx(base, abs=1e-12)


def test_pd_loss_gradients_match_the_analytic_formulas() -> None:
    x, y, loss = random_batch()
    s = loss.scores(x).detach().requires_grad_()
    terms = proxy_decidability(s, y, var_eps=0.0)
    (grad,) = torch.autograd.grad(terms.loss, s)
    b, c = s.shape
    n_g, n_i = b, b * (c - 1)
    delta, v = (terms.mu_g - terms.mu_i).item(), (terms.var_g + terms.var_i).item()
    genuine = torch.zeros_like(s, dtype=torch.bool)
    genuine[torch.arange(b), y] = True
    expected = torch.where(
        genuine,
        -1 / (n_g * delta) + (s - terms.mu_g) / ((n_g - 1) * v),
        1 / (n_i * delta) + (s - terms.mu_i) / ((n_i - 1) * v),
    )
    assert torch.allclose(grad, expected.detach(), atol=1e-10, rtol=0)
    # Signs: below mu_g a genuine score is pushed up (negative gradient); far above the line it is pushed down.
    g = s.detach()[genuine]
    line = terms.mu_g.item() + (n_g - 1) * v / (n_g * delta)
    assert torch.all(grad[genuine][g < terms.mu_g] < 0)
    assert torch.all(grad[genuine][g > line] > 0) or not torch.any(g > line)
    above = s.detach().clone()
    above[0, y[0]] = line + 1.0  # force one genuine score above the line
    (grad2,) = torch.autograd.grad(proxy_decidability(above.requires_grad_(), y, var_eps=0.0).loss, above)
    terms2 = proxy_decidability(above.detach(), y, var_eps=0.0)
    line2 = terms2.mu_g.item() + (n_g - 1) * (terms2.var_g + terms2.var_i).item() / (
        n_g * (terms2.mu_g - terms2.mu_i).item()
    )
    assert above[0, y[0]].item() > line2 and grad2[0, y[0]].item() > 0


def test_pd_loss_degenerate_guards() -> None:
    # Delta <= 0: finite, and the loss still falls as Delta rises.
    s = torch.tensor([[0.0, 0.5], [0.1, 0.4]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0])
    terms = proxy_decidability(s, y)
    assert torch.isfinite(terms.loss)
    delta = torch.tensor(-0.2, dtype=torch.float64, requires_grad=True)
    from training.losses.pd_loss import log_decidability_loss

    (d_delta,) = torch.autograd.grad(log_decidability_loss(delta, torch.tensor(0.1), 1e-4, 1e-8), delta)
    assert d_delta.item() < 0
    with pytest.raises(ValueError, match="at least 2 samples"):
        proxy_decidability(torch.zeros(1, 3), torch.tensor([0]))
    flat = proxy_decidability(torch.full((4, 3), 0.3, dtype=torch.float64), torch.tensor([0, 1, 2, 0]))
    assert torch.isfinite(flat.loss)


# --- vMF losses (items 13-15, 17) ---------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.2])
def test_el_nivmf_closed_form_matches_monte_carlo(temperature: float) -> None:
    rng = np.random.default_rng(1)
    d, kappa_x = 8, 6.0
    mu = sample_sphere(d, 1, rng)[0]
    p = sample_sphere(d, 1, rng)[0]
    k = rng.uniform(1, 4, d)
    closed = el_nivmf_logits(
        torch.tensor(mu * kappa_x)[None], torch.tensor(p)[None], torch.tensor(k)[None], torch.tensor(temperature)
    ).item()
    b = k * p
    a = float(np_log_c(np.linalg.norm(b), d)) + np.log(k).sum() - np.log(np.linalg.norm(b))
    z = sample_vmf(mu, kappa_x, 200_000, rng)
    mc = logsumexp((a + z @ b) / temperature) - np.log(len(z))
    assert closed == pytest.approx(mc, abs=0.03)
    few = np.mean([logsumexp((a + sample_vmf(mu, kappa_x, 5, rng) @ b) / temperature) - np.log(5) for _ in range(2000)])
    assert few < closed  # the code's 5-sample estimator is biased downward (Jensen)


def test_vmf_el_closed_form_matches_monte_carlo() -> None:
    rng = np.random.default_rng(2)
    d, kappa_x, kappa_c = 8, 6.0, 3.0
    mu, p = sample_sphere(d, 2, rng)
    z = sample_vmf(mu, kappa_x, 200_000, rng)
    mc = np.log(np.mean(np.exp(float(np_log_c(kappa_c, d)) + kappa_c * z @ p)))
    logit = el_logits(
        torch.tensor(mu * kappa_x)[None], torch.tensor(p)[None], torch.tensor([kappa_c]), torch.tensor(1.0)
    ).item()
    assert logit + float(np_log_c(kappa_x, d)) == pytest.approx(mc, abs=0.02)


def test_el_cross_entropy_is_shift_invariant() -> None:
    loss = create_loss("vmf_el", 6, 16).double()
    x = torch.randn(10, 16, dtype=torch.float64) * 5
    y = torch.arange(10) % 6
    logits = el_logits(x, loss.proxies.directions(), loss.kappa(), loss.temperature())
    with_image_term = logits + (log_vmf_normalizer(x.norm(dim=1), 16) / loss.temperature())[:, None]
    ce = torch.nn.functional.cross_entropy
    assert ce(with_image_term, y).item() == pytest.approx(loss(x, y).loss.item(), abs=1e-10)
    assert ce(logits + torch.randn(10, 1, dtype=torch.float64) * 50, y).item() == pytest.approx(
        ce(logits, y).item(), abs=1e-9
    )


def test_norm_acts_as_inverse_temperature() -> None:
    rng = np.random.default_rng(3)
    d, c = 32, 5
    directions = torch.tensor(np.abs(sample_sphere(d, c, rng)))  # non-negative: all cosines >= 0
    mu = torch.tensor(np.abs(sample_sphere(d, 1, rng)[0]))
    kappa_c = torch.full((c,), 10.0, dtype=torch.float64)
    nearest = int(torch.argmax(directions @ mu))
    probs = []
    for kappa_x in (1.0, 5.0, 20.0, 80.0, 300.0):
        logits = el_logits((mu * kappa_x)[None], directions, kappa_c, torch.tensor(1.0, dtype=torch.float64))
        probs.append(torch.softmax(logits, dim=1)[0, nearest].item())
    assert all(b > a for a, b in zip(probs, probs[1:], strict=False))


def test_exact_nivmf_normalises_and_reduces_to_vmf() -> None:
    rng = np.random.default_rng(4)
    d = 8
    p = torch.tensor(sample_sphere(d, 1, rng))
    k = torch.tensor(rng.uniform(1, 4, (1, d)))
    z = torch.tensor(sample_sphere(d, 400_000, rng))
    area = 2 * math.pi ** (d / 2) / math.gamma(d / 2)
    integral = torch.exp(nivmf_log_density(z, p, k)).mean().item() * area
    assert integral == pytest.approx(1.0, abs=0.01)
    iso = torch.full((1, d), 5.0, dtype=torch.float64)
    vmf = log_vmf_normalizer(torch.tensor(5.0, dtype=torch.float64), d) + 5.0 * (z[:100] @ p.T)
    assert torch.allclose(nivmf_log_density(z[:100], p, iso), vmf, atol=1e-10)


# --- the registry -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_losses())
def test_every_loss_trains_a_step_and_reports_finite_values(name: str) -> None:
    torch.manual_seed(0)
    loss = create_loss(name, 6, 16)
    x = (torch.randn(12, 16) * 8).requires_grad_()
    y = torch.arange(12) % 6
    loss.init_proxies(torch.stack([x.detach()[y == c].mean(0) for c in range(6)]))
    out = loss(x, y)
    out.loss.backward()
    assert torch.isfinite(out.loss) and x.grad is not None and torch.isfinite(x.grad).all()
    assert all(math.isfinite(v) for v in out.stats.values())


def test_unknown_loss_lists_the_registered_names() -> None:
    with pytest.raises(ValueError, match="unknown loss 'triplet'; registered: arcface, cosface, d_loss"):
        create_loss("triplet", 2, 4)


def test_pd_vmf_ramps_in_the_el_term() -> None:
    loss = create_loss("pd_vmf", 4, 8, el_weight=0.5, el_start_epoch=1.0, el_ramp_epochs=2.0)
    weights = []
    for epoch in (0.0, 0.99, 1.0, 2.0, 3.0, 9.0):
        loss.set_epoch(epoch)
        weights.append(loss.current_el_weight())
    assert weights == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]
