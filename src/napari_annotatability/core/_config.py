"""Hyper-parameters of a training run, validated in one place."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from .errors import AnnotatabilityInputError

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters shared by every training the package runs.

    Defaults are the published ones (Karin et al. 2024): SGD with momentum 0.9, lr 1e-3,
    batch 256, class-balanced sampling with replacement, an MLP of depth 3.  ``balanced`` may
    also be a number ``p`` in [0, 1]: cells are drawn with probability proportional to
    ``count(class) ** -p`` (True = 1: every class equally often; False = 0: a plain shuffle).
    """

    epochs: int = 50
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 256
    depth: int = 3
    balanced: bool | float = True
    min_hidden: int = 32
    seed: int = 0
    eval_batch_size: int = 4096

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "depth", "min_hidden", "seed", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        if not isinstance(self.balanced, bool):
            if not isinstance(self.balanced, numbers.Real) or not 0.0 <= float(self.balanced) <= 1.0:
                raise AnnotatabilityInputError(
                    f"balanced must be True, False or a number in [0, 1] (got {self.balanced!r})")
            object.__setattr__(self, "balanced", float(self.balanced))
        for name in ("lr", "momentum"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise AnnotatabilityInputError(f"{name} must be a number (got {value!r})")
            object.__setattr__(self, name, float(value))
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs must be an integer >= 1"),
            (self.lr > 0, "lr (learning rate) must be > 0"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size must be an integer >= 1"),
            (self.depth in (3, 4, 5), "depth must be 3, 4 or 5 (the published architectures)"),
            (isinstance(self.min_hidden, int) and self.min_hidden >= 1, "min_hidden must be an integer >= 1"),
            (isinstance(self.seed, int) and self.seed >= 0, "seed must be a non-negative integer"),
            (isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise AnnotatabilityInputError(f"{msg} (got {self._field_for(msg)!r})")

    def _field_for(self, msg: str):
        name = msg.split(" ", 1)[0]
        return getattr(self, name, None)

    def as_dict(self) -> dict:
        return asdict(self)
