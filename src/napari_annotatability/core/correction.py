"""Label correction: retrain on the cells the network trusts, predict every cell."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator

import numpy as np
import pandas as pd
import torch

from . import keys
from ._data import get_labels, resolve_device
from ._engine import EpochProgress, drive, run
from ._progress import tqdm_callback
from .categories import _label_key, _train_config
from .errors import AnnotatabilityInputError
from .inputs import make_source

__all__ = ["iter_suggest_labels", "suggest_labels"]


def iter_suggest_labels(
    adata,
    label_key: str | None = None,
    *,
    train_on: tuple[str, ...] = ("correct", "ambiguous"),
    categories=None,
    should_stop: Callable[[], bool] | None = None,
    **train_kwargs,
) -> Generator[EpochProgress, None, tuple[pd.Categorical, np.ndarray, dict]]:
    """Generator form of :func:`suggest_labels`; returns ``(labels, probabilities, info)``.

    ``categories`` (one per cell) replaces ``obs['annot_category']``, for callers that have
    not written their categories yet.
    """
    label_key = _label_key(adata, label_key)
    if categories is None:
        if keys.CATEGORY not in adata.obs:
            raise AnnotatabilityInputError(f"obs[{keys.CATEGORY!r}] is missing: run categorize first")
        categories = adata.obs[keys.CATEGORY]
    bad = set(train_on) - set(keys.CATEGORIES)
    if bad or not train_on:
        raise AnnotatabilityInputError(f"train_on must name categories among {keys.CATEGORIES}, got {train_on!r}")
    cfg, where = _train_config(adata, dict(train_kwargs))
    y, classes = get_labels(adata, label_key)
    mask = pd.Series(np.asarray(categories)).isin(train_on).to_numpy()
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        raise AnnotatabilityInputError(
            f"no cell is in categories {', '.join(train_on)}: nothing to retrain on for label correction"
        )
    counts = np.bincount(y[rows], minlength=len(classes))
    missing = [str(c) for c, k in zip(classes, counts) if k == 0]
    if missing:
        warnings.warn(
            f"label correction: class(es) {', '.join(missing)} have no {'/'.join(train_on)} cell; "
            "they cannot be suggested",
            UserWarning,
            stacklevel=2,
        )
    source, _ = make_source(adata, where["layer"], resolve_device(where["device"]), where["input"],
                            standardize=where["standardize"], seed=cfg.seed)
    out = yield from run(source, y, len(classes), cfg, train_rows=rows, should_stop=should_stop)
    model = out.model
    best = np.empty(source.n_obs, dtype=np.int64)
    prob = np.empty(source.n_obs, dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, source.n_obs, cfg.eval_batch_size):
            e = min(source.n_obs, s + cfg.eval_batch_size)
            p = model.predict_proba(source.slice(s, e))
            if missing:  # never suggest a class the retraining never saw
                p[:, torch.from_numpy(counts == 0).to(p.device)] = 0
                p = p / p.sum(dim=1, keepdim=True)
            pmax, arg = p.max(dim=1)
            best[s:e] = arg.cpu().numpy()
            prob[s:e] = pmax.cpu().numpy()
    labels = pd.Categorical.from_codes(best, categories=classes)
    info = {
        "train_on": list(train_on),
        "n_train": int(rows.size),
        "classes_without_training_cells": missing,
        "epochs": int(cfg.epochs),
        "seed": int(cfg.seed),
    }
    return labels, prob, info


def suggest_labels(
    adata,
    label_key: str | None = None,
    *,
    train_on: tuple[str, ...] = ("correct", "ambiguous"),
    progress: bool = False,
    **train_kwargs,
) -> None:
    """Suggest a label for every cell from a network retrained on trusted cells only.

    As in the paper: retrain the classifier (same recipe as the last
    :func:`training_dynamics` run unless ``train_kwargs`` override it) on the cells whose
    category is in ``train_on`` (by default every cell not flagged erroneous), then predict
    every cell.  Writes ``obs['annot_suggested_label']`` (categorical, the annotation's
    classes) and ``obs['annot_suggested_prob']`` (the network's probability for it).  A class
    with no trusted cell is never suggested, and a warning names it.
    """
    gen = iter_suggest_labels(adata, label_key, train_on=tuple(train_on), **train_kwargs)
    with tqdm_callback(train_kwargs.get("epochs", 50), "label correction", enabled=progress) as cb:
        labels, prob, info = drive(gen, cb)
    write_suggestions(adata, _label_key(adata, label_key), labels, prob, info)


def write_suggestions(adata, label_key: str, labels: pd.Categorical, prob: np.ndarray, info: dict) -> None:
    """Store suggested labels (with the annotation's colours, when it has them)."""
    adata.obs[keys.SUGGESTED_LABEL] = labels
    adata.obs[keys.SUGGESTED_PROB] = prob
    colors = adata.uns.get(f"{label_key}_colors")
    if colors is not None and len(colors) == len(labels.categories):
        adata.uns[f"{keys.SUGGESTED_LABEL}_colors"] = list(colors)
    adata.uns.setdefault(keys.UNS, {})["correction"] = dict(info)
