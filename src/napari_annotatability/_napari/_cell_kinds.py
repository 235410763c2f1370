"""The two kinds of cell layers: spots (Points) and a segmentation mask (Labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _colors
from ._cells import CellLayer
from ._selection import to_world

__all__ = ["SpotCells", "MaskCells", "SELECTION_COLOR"]

#: colour of the outline of the selected cells on a mask
SELECTION_COLOR = (1.0, 1.0, 0.0, 1.0)


class SpotCells(CellLayer):
    """A Points layer: one point per shown obs row; ``layer.features`` mirrors obs."""

    kind = "spots"

    def __init__(self, model, layer) -> None:
        super().__init__(model, layer)
        self._slot = lambda *_a: self._emit_selection()
        layer.selected_data.events.items_changed.connect(self._slot)

    def detach(self) -> None:
        super().detach()
        self.layer.selected_data.events.items_changed.disconnect(self._slot)

    def world_positions(self) -> np.ndarray:
        return to_world(self.layer, self.layer.data)

    def _diameter_of(self, row: int) -> float:
        size = np.asarray(self.layer.size, dtype=float)
        pos = int(self.positions([row])[0])
        return float(size[pos] if size.ndim else size) * abs(float(self.layer.scale[-1]))

    def row_at_world(self, position) -> int | None:
        """The obs row of the spot nearest to world ``position``, if within its radius."""
        tree = self._kdtree()
        if tree.n == 0:
            return None
        dist, pos = tree.query(np.asarray(position, dtype=float)[-2:])
        if not np.isfinite(dist) or dist > self._diameter_of(int(self.rows[pos])) / 2:
            return None
        return int(self.rows[pos])

    def selection(self) -> np.ndarray:
        return self.rows[np.asarray(sorted(self.layer.selected_data), dtype=np.int64)]

    def select(self, rows) -> None:
        """Make these obs rows the selected points (one ``selection_changed``)."""
        pos = self.positions(rows)
        wanted = set(pos[pos >= 0].tolist())
        if set(self.layer.selected_data) == wanted:
            return
        with self._quietly():
            self.layer.selected_data = wanted
        self._emit_selection()

    def sync(self, overrides: dict | None = None) -> None:
        """``layer.features`` = the shown obs rows (+ ``overrides``), a changed copy as napari wants."""
        _colors.sync_features(self.layer, self.adata, overrides)

    def color_by(self, key: str) -> dict | None:
        if key not in self.layer.features and key in self.adata.obs:
            self.sync()
        return _colors.color_by(self.layer, self.adata, key)

    def live_update(self, key: str, values) -> None:
        """Show ``values`` (per obs row) as ``key`` and recolour by them, cheaply after the first."""
        self.sync({key: values})
        if self.layer.metadata.get("color_by") == key and self.layer.face_colorbar.visible:  # on its colormap
            self.layer.refresh_colors(update_color_mapping=False)
        else:
            self.color_by(key)

    def shown_values(self, key: str) -> pd.Series:
        feats = self.layer.features
        return feats[key].reset_index(drop=True) if key in feats else self.values(key)


class MaskCells(CellLayer):
    """A Labels layer of a segmentation: ``metadata['mask']`` (a ``CellMask``) and ``['centroids']``.

    The mask's rows are the layer's positions when it shows some rows (``metadata['rows']``) and
    has one label id per shown row; otherwise obs rows.  The selected cells are outlined by a
    second Labels layer over ``mask.selection_levels()`` (made on the first selection).
    """

    kind = "cells"

    def __init__(self, model, layer) -> None:
        super().__init__(model, layer)
        self._selected = np.zeros(0, dtype=np.int64)
        self.outline = None  # the Labels layer outlining the selection
        # the layer shows colour classes, not cell ids (see _mask.py): napari's status bar and tooltip
        # would report a colour code under the cursor; they name the cell and its value instead
        # (napari's own methods of the class, never another wrapper's: no chain if a layer is re-attached)
        self._napari_status = type(layer).get_status.__get__(layer)
        self._napari_tooltip = type(layer)._get_tooltip_text.__get__(layer)
        layer.get_status, layer._get_tooltip_text = self._status, self._tooltip

    @property
    def mask(self):
        return self.layer.metadata["mask"]

    def owns(self, layer) -> bool:
        return layer is self.layer or (layer is not None and layer is self.outline)

    def detach(self) -> None:
        super().detach()
        for name, ours in (("get_status", self._status), ("_get_tooltip_text", self._tooltip)):
            if self.layer.__dict__.get(name) == ours:  # back to napari's own, unless another took over
                del self.layer.__dict__[name]
        outline, self.outline = self.outline, None
        if outline is not None and outline in self.viewer.layers:
            self.viewer.layers.remove(outline)

    # -- rows of the mask ---------------------------------------------------------------------------
    def _local(self) -> bool:
        """Whether the mask's (and centroids') rows are this layer's positions, not obs rows."""
        return self.layer.metadata.get("rows") is not None and self.mask.n_obs == self.n

    def _to_mask(self, rows) -> np.ndarray:
        if self._local():
            pos = self.positions(rows)
            return pos[pos >= 0]
        return np.asarray(rows, dtype=np.int64)

    def _from_mask(self, mask_row: int) -> int:
        return int(self.rows[mask_row]) if self._local() else int(mask_row)

    def world_positions(self) -> np.ndarray:
        cents = np.asarray(self.layer.metadata["centroids"], dtype=np.float64)[:, -2:]
        if len(cents) == self.n:
            return cents
        return cents[self.rows]

    def row_at_world(self, position) -> int | None:
        """The obs row of the cell under world ``position`` (the mask at full resolution)."""
        data = np.asarray(self.layer.world_to_data(np.asarray(position, dtype=float)), dtype=float)[-2:]
        index = np.round(data).astype(np.int64)
        shape = self.mask.levels[0].shape[-2:]
        if (index < 0).any() or index[0] >= shape[0] or index[1] >= shape[1]:
            return None
        row = self.mask.row_at(tuple(int(i) for i in index))
        return None if row is None else self._from_mask(int(row))

    def clicked(self, row: int) -> None:
        self.select([row])
        super().clicked(row)

    # -- what the cursor is over --------------------------------------------------------------------
    def describe(self, row: int | None) -> str:
        """``"cell_12 · annot_category: erroneous"`` (the value the layer is coloured by), or "no cell"."""
        if row is None:
            return "no cell"
        # napari asks from its status thread, possibly while a training swaps obs columns: never raise
        try:
            text = str(self.adata.obs_names[row])
            key = self.layer.metadata.get("color_by")
            value = self.adata.obs[key].iloc[row] if key and key in self.adata.obs else None
        except (IndexError, KeyError):
            return "no cell"
        if value is not None:
            value = f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
            text += f" · {key}: {value}"
        return text

    def _row_under(self, position, world: bool) -> int | None:
        if position is None:
            return None
        position = np.asarray(position, dtype=float)
        return self.row_at_world(position if world else self.layer.data_to_world(position))

    def _status(self, position=None, *, view_direction=None, dims_displayed=None, world=False, value=None):
        status = self._napari_status(position, view_direction=view_direction, dims_displayed=dims_displayed,
                                     world=world, value=value)
        text = self.describe(self._row_under(position, world))
        status["value"] = text
        status["coordinates"] = f"{status.get('coords', '')}: {text}"
        return status

    def _tooltip(self, position, *, view_direction=None, dims_displayed=None, world=False) -> str:
        row = self._row_under(position, world)
        return "" if row is None else self.describe(row)

    # -- selection ----------------------------------------------------------------------------------
    def selection(self) -> np.ndarray:
        return self._selected.copy()

    def select(self, rows) -> None:
        """Select these obs rows (those shown here) and outline them on the mask."""
        rows = np.unique(np.asarray(rows, dtype=np.int64).ravel())
        rows = rows[self.positions(rows) >= 0]
        if np.array_equal(rows, self._selected):
            return
        self._selected = rows
        self.mask.set_selected(self._to_mask(rows))
        self._show_outline()
        self._emit_selection()

    def _show_outline(self) -> None:
        from napari.layers import Labels
        from napari.utils.colormaps import DirectLabelColormap

        any_selected = bool(self._selected.size)
        if self.outline is None or self.outline not in self.viewer.layers:
            if not any_selected:
                return
            levels = self.mask.selection_levels()
            lyr = self.layer
            colormap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: SELECTION_COLOR})
            self.outline = Labels(levels if len(levels) > 1 else levels[0], multiscale=len(levels) > 1,
                                  name=f"{lyr.name} (selected)", colormap=colormap, opacity=1.0,
                                  scale=lyr.scale, translate=lyr.translate, rotate=lyr.rotate, shear=lyr.shear,
                                  affine=lyr.affine.affine_matrix, metadata={"selection_of": lyr.name})
            self.outline.contour = 1  # the outline of each selected cell, not its area
            self.outline.mouse_drag_callbacks.append(self._on_click)
            active = self.viewer.layers.selection.active
            self.viewer.layers.append(self.outline)
            if active is not None and active in self.viewer.layers:
                self.viewer.layers.selection.active = active
        else:
            levels = self.mask.selection_levels()
            self.outline.data = levels if len(levels) > 1 else levels[0]
        self.outline.visible = any_selected and self.layer.visible

    def set_shown(self, shown: bool) -> None:
        super().set_shown(shown)
        if self.outline is not None:
            self.outline.visible = bool(shown) and bool(self._selected.size)

    # -- colours ------------------------------------------------------------------------------------
    def sync(self, overrides: dict | None = None) -> None:
        """Keep live ``overrides`` (key -> values per obs row) for :meth:`color_by`; none: obs again."""
        _colors.sync_features(self.layer, self.adata, overrides)

    def shown_values(self, key: str) -> pd.Series:
        live = (self.layer.metadata.get("live") or {}).get(key)
        if live is None:
            return self.values(key)
        live = np.asarray(live)
        return pd.Series(live[self.rows] if len(live) == self.adata.n_obs != self.n else live)

    def color_by(self, key: str) -> dict | None:
        """Colour every cell by ``key`` (obs, or live values) through the mask's colour lookup."""
        return _colors.color_by(self.layer, self.adata, key)

    def live_update(self, key: str, values) -> None:
        """Recolour the cells by ``values`` (one per obs row) shown as ``key``."""
        self.sync({key: values})
        self.color_by(key)
