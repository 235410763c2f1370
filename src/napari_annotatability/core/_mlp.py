"""The published Annotatability classifier, trained with a lean hand-written step.

The architecture is the paper's: a ReLU MLP ``in -> in/2 -> in/4 (-> in/8 -> in/16) -> classes``
(depth 3, 4 or 5), initialised like :class:`torch.nn.Linear`, trained with cross-entropy and SGD
with momentum.  Two things differ from the published code, neither of which changes the maths:

* hidden widths have a floor (``min_hidden``) so that low-plex panels (9-60 markers) still
  have a network that can learn: the published ``in/4`` gives two units for nine markers;
* the training step is written out by hand (forward, backward and the momentum update on one
  flat parameter buffer) instead of going through autograd and ``torch.optim``.  For the tiny
  layers of this network the per-operation overhead of autograd, the optimiser and the
  ``DataLoader`` costs more than the arithmetic; the hand-written step does the same
  arithmetic with a handful of fused calls.  ``tests/test_mlp.py`` checks it step for step
  against autograd + ``torch.optim.SGD``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["hidden_widths", "LeanMLP", "EvalOutput"]

_relu_backward = torch.ops.aten.threshold_backward.default


def hidden_widths(n_features: int, depth: int, min_hidden: int = 32) -> list[int]:
    """Hidden layer widths of the published network, with a floor.

    ``depth`` counts the linear layers (3, 4 or 5, as in the paper); the hidden widths are
    ``int(n_features / 2**k)`` for ``k = 1 .. depth-1``, each at least ``min_hidden``.
    """
    if depth not in (3, 4, 5):
        raise ValueError(f"depth must be 3, 4 or 5 (the published architectures), got {depth!r}")
    if min_hidden < 1:
        raise ValueError(f"min_hidden must be a positive integer, got {min_hidden!r}")
    return [max(int(n_features / 2**k), int(min_hidden)) for k in range(1, depth)]


@dataclass
class EvalOutput:
    """What one evaluation pass yields per cell, for one label vector."""

    prob: torch.Tensor  # p(label)
    correct: torch.Tensor  # argmax == label (bool)
    margin: torch.Tensor  # logit[label] - max other logit
    nll: torch.Tensor  # -log p(label)


class LeanMLP:
    """MLP parameters in one flat buffer with a hand-written SGD-momentum training step.

    Weights are stored as ``(in, out)`` views of one contiguous parameter buffer so that the
    forward pass is ``x @ W + b`` (one ``addmm``) and the momentum update is two calls on the
    whole buffer.  Mathematically identical to ``nn.Sequential(Linear, ReLU, ...)`` trained with
    ``F.cross_entropy`` (mean over the batch) and ``torch.optim.SGD(lr, momentum)``.
    """

    def __init__(
        self,
        sizes: list[int],
        *,
        lr: float,
        momentum: float,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        self.sizes = list(sizes)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.device = torch.device(device)
        n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
        self.flat = torch.empty(n_params, dtype=torch.float32)
        self.weights: list[torch.Tensor] = []  # (in, out) views
        self.biases: list[torch.Tensor] = []
        self._views(self.flat, self.weights, self.biases)
        # nn.Linear's default init: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)),
        # bias U(-1/sqrt(in), 1/sqrt(in)).  Drawn from the caller's generator (seeded).
        for w, b in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(w.shape[0])
            w_out_in = torch.empty(w.shape[1], w.shape[0]).uniform_(-bound, bound, generator=generator)
            w.copy_(w_out_in.t())
            b.uniform_(-bound, bound, generator=generator)
        self.flat = self.flat.to(self.device)
        self.weights, self.biases = [], []
        self._views(self.flat, self.weights, self.biases)
        # Momentum buffer, kept multiplied by the batch size (see ``train_step``).
        self.buf = torch.zeros_like(self.flat)
        self.buf_w: list[torch.Tensor] = []
        self.buf_b: list[torch.Tensor] = []
        self._views(self.buf, self.buf_w, self.buf_b)
        self._buf_scale: int | None = None
        self._acts: dict[int, list[torch.Tensor]] = {}
        self._neg: dict[int, torch.Tensor] = {}
        self._one: dict[int, torch.Tensor] = {}

    def _views(self, flat: torch.Tensor, ws: list[torch.Tensor], bs: list[torch.Tensor]) -> None:
        off = 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            ws.append(flat[off : off + i * o].view(i, o))
            off += i * o
            bs.append(flat[off : off + o])
            off += o

    # -- inference -----------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a dense float32 batch (no autograd involved)."""
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b, h, w)
            if k < last:
                h.relu_()
        return h

    def evaluate(self, x: torch.Tensor, labels: list[torch.Tensor]) -> list[EvalOutput]:
        """p(label), correctness, margin and NLL for each label vector in ``labels``."""
        # Work on the (classes, cells) layout: reductions over the few classes then vectorise
        # over cells, several times faster than log_softmax over a short trailing axis.
        zt = self.logits(x).t().contiguous()
        return self._per_label(zt, torch.logsumexp(zt, dim=0), labels)

    @staticmethod
    def _per_label(zt: torch.Tensor, lse: torch.Tensor, labels: list[torch.Tensor]) -> list[EvalOutput]:
        """p(label), correctness, margin and NLL from ``(classes, cells)`` logits and their logsumexp."""
        out = []
        for y in labels:
            y0 = y.view(1, -1)
            zl = zt.gather(0, y0).squeeze(0)
            other = zt.scatter(0, y0, -math.inf).amax(dim=0)
            margin = zl - other
            logp = zl - lse
            # argmax == label  <=>  the label's logit beats every other logit
            out.append(EvalOutput(prob=logp.exp(), correct=margin > 0, margin=margin, nll=-logp))
        return out

    def evaluate_with_probs(
        self, x: torch.Tensor, labels: list[torch.Tensor]
    ) -> tuple[list[EvalOutput], torch.Tensor]:
        """:meth:`evaluate` and the softmax over every class, from one forward pass.

        Returns ``(per-label outputs, probabilities)``, the probabilities as a ``(classes, cells)``
        tensor (the layout the per-label reductions use; transpose it for ``(cells, classes)``).
        """
        zt = self.logits(x).t().contiguous()
        lse = torch.logsumexp(zt, dim=0)
        return self._per_label(zt, lse, labels), (zt - lse).exp_()

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)

    # -- training ------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD-momentum step on the mean cross-entropy of batch ``(x, y)``.

        torch.optim.SGD computes ``buf = m * buf + mean_grad; p -= lr * buf``.  Here the buffer
        holds ``B * buf`` so that the *summed* gradient GEMM can accumulate into it directly
        (``addmm_`` with ``beta = m``: the momentum update costs no extra pass), and the step is
        ``p -= lr / B * buf``.  Forward, backward and update are 3 + 2 x depth GEMMs and a
        handful of element-wise calls, with no autograd.
        """
        bsz = x.shape[0]
        acts = self._acts.get(bsz)
        if acts is None:
            acts = [torch.empty(bsz, o, device=self.device) for o in self.sizes[1:]]
            self._acts[bsz] = acts
        n_layers = len(self.weights)
        h = x
        for k in range(n_layers):
            torch.addmm(self.biases[k], h, self.weights[k], out=acts[k])
            if k < n_layers - 1:
                acts[k].relu_()
            h = acts[k]
        # dL/dz for the summed cross-entropy: softmax - onehot
        g = torch.softmax(acts[-1], dim=1)
        g.scatter_add_(1, y.view(-1, 1), self._minus_ones(bsz))
        beta = self._momentum_beta(bsz)
        for k in range(n_layers - 1, -1, -1):
            inp = x if k == 0 else acts[k - 1]
            # the gradient GEMM accumulates straight into the momentum buffer:
            # buf = momentum * buf + grad  (beta = 0 on the first step, as torch.optim.SGD)
            self.buf_w[k].addmm_(inp.t(), g, beta=beta)
            self.buf_b[k].addmv_(g.t(), self._ones(bsz), beta=beta)
            if k > 0:
                # ReLU backward in one call: keep g where the activation was positive
                g = _relu_backward(torch.mm(g, self.weights[k].t()), acts[k - 1], 0.0)
        self.flat.add_(self.buf, alpha=-self.lr / bsz)

    def _ones(self, bsz: int) -> torch.Tensor:
        t = self._one.get(bsz)
        if t is None:
            t = self._one[bsz] = torch.ones(bsz, device=self.device)
        return t

    def _minus_ones(self, bsz: int) -> torch.Tensor:
        t = self._neg.get(bsz)
        if t is None:
            t = self._neg[bsz] = torch.full((bsz, 1), -1.0, device=self.device)
        return t

    def _momentum_beta(self, bsz: int) -> float:
        """Factor applied to the momentum buffer before this step's gradient is added.

        The buffer holds ``B * buf`` (B = batch size, the gradient is summed, not averaged), so
        a batch of another size (the last one of an epoch) rescales it by ``B_new / B_old``.
        """
        if self._buf_scale is None:
            beta = 0.0
        else:
            beta = self.momentum * bsz / self._buf_scale
        self._buf_scale = bsz
        return beta

    # -- torch interop (tests, users) ------------------------------------------------------
    def to_module(self) -> torch.nn.Sequential:
        """A plain ``nn.Sequential`` with the current weights (for inspection or export)."""
        layers: list[torch.nn.Module] = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(w.t())
                lin.bias.copy_(b)
            layers.append(lin)
            if k < len(self.weights) - 1:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)
