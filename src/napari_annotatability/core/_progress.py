"""Console progress for long runs (tqdm, already a scanpy dependency)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def tqdm_callback(total: int, desc: str, *, enabled: bool = True):
    """A callback that advances a tqdm bar by one epoch per call and shows the loss."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="epoch", leave=False)

    def update(p) -> None:
        if bar.total != p.n_epochs:  # the run may use a stored recipe with other epochs
            bar.total = p.n_epochs
        bar.update(p.epoch - bar.n)
        if p.loss == p.loss:  # not NaN
            bar.set_postfix(loss=f"{p.loss:.3f}")

    try:
        yield update
    finally:
        bar.close()
