"""The hand-written training step is the published network trained with autograd + SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_annotatability.core._mlp import LeanMLP, hidden_widths


def test_hidden_widths_follow_the_published_architecture():
    assert hidden_widths(2000, 3) == [1000, 500]
    assert hidden_widths(2000, 4) == [1000, 500, 250]
    assert hidden_widths(2000, 5) == [1000, 500, 250, 125]
    # the published in/4 gives 2 units for 9 markers; the floor keeps the panel learnable
    assert hidden_widths(9, 3, min_hidden=1) == [4, 2]
    assert hidden_widths(9, 3) == [32, 32]
    with pytest.raises(ValueError, match="depth"):
        hidden_widths(100, 6)


@pytest.mark.parametrize("sizes", [[20, 10, 5, 3], [12, 32, 32, 16, 4]])
def test_train_step_matches_autograd_and_torch_sgd(sizes):
    g = torch.Generator().manual_seed(0)
    lean = LeanMLP(sizes, lr=0.05, momentum=0.9, generator=g)
    ref = lean.to_module().double()
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    # varying batch sizes, as at the end of an epoch
    for bsz in [16, 16, 7, 16, 3, 16]:
        x = torch.from_numpy(rng.standard_normal((bsz, sizes[0])).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, sizes[-1], bsz))
        lean.train_step(x, y)
        opt.zero_grad()
        F.cross_entropy(ref(x.double()), y).backward()
        opt.step()
    got = lean.to_module()
    for a, b in zip(got.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_initialisation_matches_nn_linear_bounds():
    g = torch.Generator().manual_seed(0)
    lean = LeanMLP([400, 200, 100, 5], lr=1e-3, momentum=0.9, generator=g)
    for w, b in zip(lean.weights, lean.biases):
        bound = 1 / np.sqrt(w.shape[0])
        assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
        assert float(w.abs().max()) > 0.9 * bound  # uniform over the whole range


def test_evaluate_gives_probability_margin_and_correctness():
    g = torch.Generator().manual_seed(0)
    lean = LeanMLP([6, 32, 32, 4], lr=1e-3, momentum=0.9, generator=g)
    x = torch.randn(50, 6, generator=g)
    y = torch.randint(0, 4, (50,), generator=g)
    (ev,) = lean.evaluate(x, [y])
    z = lean.to_module()(x).detach()
    p = torch.softmax(z, 1)[torch.arange(50), y]
    np.testing.assert_allclose(ev.prob.numpy(), p.numpy(), rtol=1e-5)
    other = z.clone()
    other[torch.arange(50), y] = -np.inf
    np.testing.assert_allclose(ev.margin.numpy(), (z[torch.arange(50), y] - other.max(1).values).numpy(), rtol=1e-5)
    assert torch.equal(ev.correct, z.argmax(1) == y)


def test_evaluate_with_probs_gives_the_same_outputs_and_the_softmax_of_one_pass():
    g = torch.Generator().manual_seed(0)
    lean = LeanMLP([6, 32, 32, 4], lr=1e-3, momentum=0.9, generator=g)
    x = torch.randn(50, 6, generator=g)
    y = torch.randint(0, 4, (50,), generator=g)
    (ev,) = lean.evaluate(x, [y])
    (ev2,), probs = lean.evaluate_with_probs(x, [y])
    for a, b in ((ev.prob, ev2.prob), (ev.margin, ev2.margin), (ev.nll, ev2.nll)):
        assert torch.equal(a, b)
    assert probs.shape == (4, 50)  # (classes, cells)
    np.testing.assert_allclose(probs.t().numpy(), torch.softmax(lean.to_module()(x).detach(), 1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(probs[y, torch.arange(50)].numpy(), ev.prob.numpy(), rtol=1e-6)
