"""The exact methods' start (docs/training.md 3): input directions in the clean points' affine hull when it has
dimension r < d, unchanged when r = d; every boundary through a training sample."""

import numpy as np
import torch

from relu_denoise.network import ShallowDenoiser
from relu_denoise.noise import NoiseSpec, offline_samples
from relu_denoise.recipe import ModelSpec, TrainSpec
from relu_denoise.train import OfflineSamples, Trainer
from relu_denoise.train.start import _directions_in_hull, _hull_basis

SPHERE = NoiseSpec(distribution="sphere", radius=0.1, samples=20)


def _plane_triangle(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three points spanning a random 2-D affine plane of R^d, and a basis of its directions (d, 2)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, 2)))[0]                              # (d, 2)
    offset = rng.standard_normal(d)
    return offset + np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]]) @ basis.T, basis


def _trainer(points, *, width=64, seed=0, **train):
    samples = offline_samples(points, SPHERE, rng=np.random.default_rng(seed))
    return Trainer(points, OfflineSamples(samples), ModelSpec(width=width), TrainSpec(**train),
                   generator=torch.Generator().manual_seed(seed)), samples


def test_hull_basis_finds_the_span_of_the_differences_and_none_at_full_dimension():
    X, basis = _plane_triangle(7)
    U = _hull_basis(torch.as_tensor(X))
    assert U.shape == (7, 2)
    assert np.allclose(U.numpy() @ U.numpy().T, basis @ basis.T, atol=1e-12)         # the same subspace
    assert _hull_basis(torch.tensor([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])) is None  # r = d = 2
    assert _hull_basis(torch.tensor([[0.0], [1.0], [2.5]])) is None                  # r = d = 1
    line = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [3.0, 3.0, 0.0]])         # collinear in R^3
    assert _hull_basis(line).shape == (3, 1)
    assert _hull_basis(torch.zeros(1, 4)).shape == (4, 0)                            # one point: r = 0


def test_directions_start_in_the_hull_span_with_their_drawn_norms_and_boundaries_through_samples():
    X, basis = _plane_triangle(12)
    tr, samples = _trainer(X)
    w = tr.state.p.w.clone()                                                                 # training frame
    off = w - (w @ torch.as_tensor(basis)) @ torch.as_tensor(basis).T
    assert float(off.norm(dim=1).max()) < 1e-12 * float(w.norm(dim=1).min())
    drawn = ShallowDenoiser(64, 12, generator=torch.Generator().manual_seed(0))        # the draw Trainer made
    assert torch.allclose(w.norm(dim=1), drawn.w.detach().norm(dim=1), rtol=1e-12)
    Y = torch.as_tensor(tr.problem.frame.inward(samples.reshape(-1, 12)))                    # (N M, d)
    Z = Y @ w.T + tr.state.p.b.T                                                             # (N M, K)
    assert float(Z.abs().min(dim=0).values.max()) < 1e-12                             # a sample on every boundary


def test_directions_are_uniform_in_the_span():
    X, basis = _plane_triangle(20, seed=1)
    net = ShallowDenoiser(4000, 20, generator=torch.Generator().manual_seed(3))
    _directions_in_hull(net, torch.as_tensor(X))
    u = net.w.detach() / net.w.detach().norm(dim=1, keepdim=True)
    c = u @ torch.as_tensor(basis)                                                     # (K, 2) coordinates in the span
    assert torch.allclose(c.norm(dim=1), torch.ones(4000, dtype=c.dtype))
    second = (c.T @ c / 4000).numpy()                                                  # I / 2 for uniform directions
    assert np.abs(second - np.eye(2) / 2).max() < 0.03


def test_full_dimensional_hull_changes_nothing():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])
    net = ShallowDenoiser(64, 2, generator=torch.Generator().manual_seed(0))
    before = net.w.detach().clone()
    _directions_in_hull(net, torch.as_tensor(X))
    assert torch.equal(net.w.detach(), before)
    tr, _ = _trainer(X)
    drawn = ShallowDenoiser(64, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr.state.p.w, drawn.w.detach())                                       # the draw, bit for bit


def test_weight_decay_keeps_the_networks_own_initialisation():
    X, _ = _plane_triangle(6)
    tr, _ = _trainer(X, method="weight-decay")
    drawn = ShallowDenoiser(64, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr.state.p.w, drawn.w.detach())
