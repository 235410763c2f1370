"""Colouring a layer of cells by one of its features (categorical colours or a colormap).

Spots (Points) are coloured through ``layer.features`` and napari's face colour / colormap.  Cells
drawn as a segmentation mask (a Labels layer with ``metadata['mask']``, a :class:`._mask.CellMask`)
are coloured per cell through the mask's lookup table; their colormap's range is kept in
``layer.metadata['colorbar']`` for the legend dock (napari has no colorbar for Labels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import keys
from ._spatial import category_colors, rgba_from, series_rgba

__all__ = ["is_categorical", "color_by", "sync_features", "CONTINUOUS_RANGE", "is_mask_layer", "layer_rows",
           "continuous_rgba"]

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


def is_mask_layer(layer) -> bool:
    """A Labels layer of cells (its segmentation, coloured per cell through ``metadata['mask']``)."""
    return "mask" in getattr(layer, "metadata", {}) and type(layer).__name__ == "Labels"


def layer_rows(layer):
    """The obs rows a layer shows (``metadata['rows']``), or None for all of them."""
    rows = layer.metadata.get("rows")
    return None if rows is None else np.asarray(rows, dtype=np.int64)


def sync_features(layer, adata, overrides: dict | None = None) -> None:
    """Make ``layer.features`` a copy of ``adata.obs`` (plus ``overrides`` columns).

    napari wants a changed copy assigned, never an in-place edit.  A layer showing some rows
    (``metadata['rows']``) gets those rows.  A mask layer keeps no copy of obs (its label values
    are colour classes, not cells): its live ``overrides`` are kept in ``metadata['live']`` for
    :func:`color_by`, and dropped when called without overrides (the AnnData is whole again).
    """
    if is_mask_layer(layer):
        layer.metadata["live"] = {k: np.asarray(v) for k, v in (overrides or {}).items()}
        return
    rows = layer_rows(layer)
    obs = adata.obs if rows is None else adata.obs.iloc[rows]
    feats = obs.reset_index(drop=True).copy()
    for k, v in (overrides or {}).items():
        v = np.asarray(v)
        feats[k] = v if rows is None or len(v) == len(feats) else v[rows]
    layer.features = feats


def continuous_rgba(values: np.ndarray, key: str, colormap: str | None = None,
                    limits: tuple[float, float] | None = None) -> tuple[np.ndarray, str, tuple[float, float]]:
    """(n, 4) RGBA of numeric ``values`` through the key's colormap and range; NaN is grey."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if limits is None:
        limits = CONTINUOUS_RANGE.get(key) or ((float(np.nanmin(values)), float(np.nanmax(values)))
                                               if finite.any() else (0.0, 1.0))
    lo, hi = float(limits[0]), float(limits[1])
    if not hi > lo:
        hi = lo + 1e-9
    name = colormap or COLORMAPS.get(key, "viridis")
    rgba = colormaps[name](np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0))
    rgba[~finite] = (0.6, 0.6, 0.6, 1.0)
    return rgba, name, (lo, hi)


def _mask_values(layer, adata, key: str, values=None) -> pd.Series:
    """The values of ``key`` for the rows a mask layer shows (live overrides first; categoricals kept)."""
    rows = layer_rows(layer)
    if values is None:
        values = layer.metadata.get("live", {}).get(key)
    if values is None:
        if key not in adata.obs:
            raise KeyError(f"the layer has no feature {key!r}")
        column = adata.obs[key]
        return (column if rows is None else column.iloc[rows]).reset_index(drop=True)
    values = np.asarray(values)
    if rows is not None and len(values) == adata.n_obs:
        values = values[rows]
    return pd.Series(values)


def _color_mask(layer, adata, key: str, values=None) -> dict[str, str] | None:
    mask = layer.metadata["mask"]
    series = _mask_values(layer, adata, key, values)
    vals = series.to_numpy()
    layer.metadata["color_by"] = key
    if (key in adata.obs and is_categorical(adata.obs[key])) or is_categorical(series):
        if series.dtype == bool or (key in adata.obs and adata.obs[key].dtype == bool):
            colors = {"False": "#bdbdbd", "True": "#d62728"}
        elif key in adata.obs:
            colors = category_colors(adata, key)
        else:
            raise KeyError(f"{key!r} is not in the AnnData's obs")
        rgba = series_rgba(series, colors)
        layer.metadata["colorbar"] = None
        result = colors
    else:
        rgba, name, limits = continuous_rgba(vals, key)
        layer.metadata["colorbar"] = {"key": key, "colormap": name, "limits": limits}
        result = None
    colormap = mask.set_colors(rgba)
    layer.data = mask.display_levels() if len(mask.levels) > 1 else mask.display_levels()[0]
    layer.colormap = colormap
    return result


def color_by(layer, adata, key: str) -> dict[str, str] | None:
    """Colour ``layer`` by feature ``key``; return the category colours for a legend, if any.

    Categorical columns get their ``uns[f'{key}_colors']`` (or a palette) as direct colours;
    numeric ones a colormap on the feature, with napari's colorbar shown.  A mask layer of cells
    is coloured per cell from ``adata.obs`` (and the live values :func:`sync_features` kept).
    """
    if is_mask_layer(layer):
        return _color_mask(layer, adata, key)
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
        layer.metadata["colorbar"] = None
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
    # napari's colorbar has no title: the legend dock names it (see _dock.show_colouring)
    layer.metadata["colorbar"] = {"key": key, "colormap": COLORMAPS.get(key, "viridis"),
                                  "limits": (float(lo), float(hi))}
    return None
