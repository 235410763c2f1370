"""Draw a table's cells as their segmentation: a label image (e.g. a TIFF) + a table keyed by label id.

Platforms written as SpatialData bring their masks with them.  Many imaging pipelines (CellProfiler,
Cellpose, Mesmer, steinbock, QuPath exports) write a label image and a per-cell table instead: open
the label image in napari as Labels (*File ▸ Open*, then *Convert to labels* if napari opened it as
an image), open the table (.h5ad, one row per cell) with this plugin, and attach the two here.  The
result is a Labels layer of cells that every Annotatability dock works on, as on spots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import Container

from ..core.errors import AnnotatabilityInputError
from ._colors import color_by
from ._mask import CellMask
from ._transforms import data_to_world

if TYPE_CHECKING:
    import napari

__all__ = ["attach_mask", "id_columns", "AttachMaskWidget", "ID_COLUMN_GUESSES"]

#: obs columns tried first as the label id of each cell
ID_COLUMN_GUESSES = ("cell_id", "label", "label_id", "object_id", "ObjectNumber", "instance_id", "mask_id", "id")


def id_columns(adata) -> list[str]:
    """Obs columns that can hold mask label ids (non-negative integers, unique); best guesses first."""
    out = []
    for col in adata.obs.columns:
        s = adata.obs[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(s) or s.dtype == bool:
            continue
        v = s.to_numpy()
        if not np.isfinite(v).all() or (v < 0).any() or not np.array_equal(v, np.round(v)) or not s.is_unique:
            continue
        out.append(col)
    if adata.obs_names.str.fullmatch(r"\d+").all():
        out.append("obs_names")
    rank = {c: i for i, c in enumerate(ID_COLUMN_GUESSES)}
    return sorted(out, key=lambda c: rank.get(c, len(rank)))


def _ids(adata, column: str) -> np.ndarray:
    if column == "obs_names":
        return adata.obs_names.astype(np.int64).to_numpy()
    if column not in adata.obs:
        raise AnnotatabilityInputError(f"obs has no column {column!r} (the cells' label ids)")
    if column not in id_columns(adata):
        raise AnnotatabilityInputError(
            f"obs[{column!r}] cannot be label ids: they must be unique non-negative integers")
    return adata.obs[column].to_numpy().astype(np.int64)


def attach_mask(viewer, labels_layer, cells_layer, id_column: str, *, name: str | None = None):
    """Add a Labels layer drawing ``cells_layer``'s table as the cells of ``labels_layer``.

    Parameters
    ----------
    labels_layer
        A napari Labels layer: the segmentation, one label id per cell (multiscale allowed).
    cells_layer
        A layer tied to the table (``metadata['adata']``), e.g. spots or centroids opened by this plugin.
    id_column
        The obs column holding each cell's label id in the mask (``"obs_names"`` for numeric names).

    Returns the new layer; the source layers are kept (the label image is hidden).  Cells of the table
    absent from the mask are reported; mask ids without a table row stay transparent.
    """
    from napari.layers import Labels

    if not isinstance(labels_layer, Labels):
        raise AnnotatabilityInputError(f"{labels_layer.name!r} is not a Labels layer")
    adata = cells_layer.metadata.get("adata")
    if adata is None:
        raise AnnotatabilityInputError(f"{cells_layer.name!r} has no table (open it with Annotatability)")
    levels = list(labels_layer.data) if labels_layer.multiscale else [labels_layer.data]
    try:
        mask = CellMask(levels, _ids(adata, id_column))
    except ValueError as err:
        raise AnnotatabilityInputError(str(err)) from None
    centres = mask.centroids()
    missing = np.isnan(centres).any(axis=1)
    if missing.all():
        raise AnnotatabilityInputError(
            f"none of the {adata.n_obs} label ids in obs[{id_column!r}] occurs in {labels_layer.name!r}")
    world = np.full_like(centres, np.nan)
    world[~missing] = data_to_world(labels_layer, centres[~missing])[:, -2:]
    key = cells_layer.metadata.get("color_by")
    layer = viewer.add_labels(
        mask.display_levels() if len(levels) > 1 else mask.display_levels()[0],
        multiscale=len(levels) > 1,
        name=name or f"{cells_layer.name} (mask)",
        affine=labels_layer.affine.affine_matrix,
        scale=labels_layer.scale, translate=labels_layer.translate,
        rotate=labels_layer.rotate, shear=labels_layer.shear,
        metadata={"adata": adata, "mask": mask, "rows": cells_layer.metadata.get("rows"), "centroids": world,
                  "units": labels_layer.metadata.get("units", cells_layer.metadata.get("units", "pixel")),
                  "color_by": key, "source_path": cells_layer.metadata.get("source_path")},
    )
    if key is not None and key in adata.obs:
        color_by(layer, adata, key)
    labels_layer.visible = False
    if missing.any():
        from napari.utils.notifications import show_warning

        show_warning(f"Annotatability: {int(missing.sum())} of {adata.n_obs} cells of the table have no pixel "
                     f"in {labels_layer.name!r}; they are not drawn")
    return layer


class AttachMaskWidget(Container):
    """A small form: label image + table layer + id column -> a Labels layer of cells.

    It listens to the viewer's layer list through bound methods, which napari holds weakly: a
    closed, collected form leaves no callback behind.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from magicgui.widgets import ComboBox, Label, PushButton

        self.viewer = napari_viewer
        self.masks = ComboBox(label="segmentation", choices=self._mask_choices, nullable=True)
        self.cells = ComboBox(label="table of cells", choices=self._cell_choices, nullable=True)
        self.column = ComboBox(label="label id column", choices=self._column_choices, nullable=True)
        self.button = PushButton(text="Draw cells as the mask")
        self.status = Label(value="")
        super().__init__(widgets=[self.masks, self.cells, self.column, self.button, self.status])
        self.cells.changed.connect(self._on_cells)
        self.button.changed.connect(self._on_button)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def _mask_choices(self, _w=None) -> list:
        from napari.layers import Labels

        return [lyr for lyr in self.viewer.layers if isinstance(lyr, Labels) and "mask" not in lyr.metadata]

    def _cell_choices(self, _w=None) -> list:
        return [lyr for lyr in self.viewer.layers if "adata" in lyr.metadata and "mask" not in lyr.metadata]

    def _column_choices(self, _w=None) -> list:
        layer = self.cells.value if hasattr(self, "cells") else None
        return id_columns(layer.metadata["adata"]) if layer is not None else []

    def refresh(self, _event=None) -> None:
        """Offer the layers now in the viewer (the first suitable one of each kind by default)."""
        for w in (self.masks, self.cells, self.column):
            w.reset_choices()
            options = [c for c in w.choices if c is not None]
            if w.value is None and options:
                w.value = options[0]

    def _on_cells(self, _value=None) -> None:
        self.column.reset_choices()
        options = [c for c in self.column.choices if c is not None]
        if self.column.value is None and options:
            self.column.value = options[0]

    def _on_button(self, _value=None) -> None:
        self.run()

    def run(self):
        """Attach with the form's choices; returns the new layer (None, with the reason shown, if not)."""
        if self.masks.value is None or self.cells.value is None or self.column.value is None:
            self.status.value = "Pick a segmentation, a table of cells and its label id column."
            return None
        try:
            layer = attach_mask(self.viewer, self.masks.value, self.cells.value, self.column.value)
        except AnnotatabilityInputError as err:
            self.status.value = f"Not attached: {err}"
            return None
        self.status.value = f"{layer.name}: {layer.metadata['mask'].n_obs} cells"
        return layer
