"""Colouring a spots layer by one of its features (categorical colours or a colormap)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import keys
from ._spatial import category_colors, rgba_from

__all__ = ["is_categorical", "color_by", "sync_features", "CONTINUOUS_RANGE"]

#: fixed colour ranges for scores with known bounds (others use the data's range)
CONTINUOUS_RANGE = {
    keys.CONFIDENCE: (0.0, 1.0),
    keys.CORRECTNESS: (0.0, 1.0),
    keys.SUGGESTED_PROB: (0.0, 1.0),
    keys.OTHER_CONFIDENCE: (0.0, 1.0),
}
COLORMAPS = {keys.VARIABILITY: "magma", keys.AUM: "coolwarm"}


def is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or series.dtype == bool


def sync_features(layer, adata, overrides: dict | None = None) -> None:
    """Make ``layer.features`` a copy of ``adata.obs`` (plus ``overrides`` columns).

    napari wants a changed copy assigned, never an in-place edit.
    """
    feats = adata.obs.reset_index(drop=True).copy()
    for k, v in (overrides or {}).items():
        feats[k] = np.asarray(v)
    layer.features = feats


def color_by(layer, adata, key: str) -> dict[str, str] | None:
    """Colour ``layer`` by feature ``key``; return the category colours for a legend, if any.

    Categorical columns get their ``uns[f'{key}_colors']`` (or a palette) as direct colours;
    numeric ones a colormap on the feature, with napari's colorbar shown.
    """
    feats = layer.features
    if key not in feats:
        raise KeyError(f"the layer has no feature {key!r}")
    col = feats[key]
    layer.metadata["color_by"] = key
    if is_categorical(col):
        if col.dtype == bool:
            colors = {"False": "#bdbdbd", "True": "#d62728"}
        elif key in adata.obs:
            colors = category_colors(adata, key)
        else:
            raise KeyError(f"{key!r} is not in the AnnData's obs")
        layer.face_color = rgba_from(col.astype(str).to_numpy(), colors)
        layer.face_colorbar.visible = False
        return colors
    values = col.to_numpy(dtype=float)
    lo, hi = CONTINUOUS_RANGE.get(key, (np.nanmin(values), np.nanmax(values)))
    if not hi > lo:
        hi = lo + 1e-9
    layer.face_color = key
    layer.face_colormap = COLORMAPS.get(key, "viridis")
    layer.face_contrast_limits = (float(lo), float(hi))
    layer.refresh_colors(update_color_mapping=False)
    layer.face_colorbar.visible = True
    return None
