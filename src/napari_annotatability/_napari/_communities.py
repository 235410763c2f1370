"""Communities dock: build the trainability-aware graph in the background, colour by community."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from magicgui.widgets import Container, FloatSpinBox, SpinBox
from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ..core import keys
from ._dock import DockLink, LayerPicker, on_click, show_colouring
from ._layout import compact, place_when_docked, scrolling
from ._legend import viewer_legend

if TYPE_CHECKING:
    import napari

__all__ = ["CommunitiesWidget"]

_WAITING = "Train first (Annotatability widget): the graph needs the confidence scores."


def _graph_job(adata, params: dict):
    """Run the graph and Leiden on a light view of ``adata``; return what to write back."""
    import anndata as ad

    from ..core import graph

    light = ad.AnnData(X=adata.X, obs=adata.obs[[keys.CONFIDENCE]].copy(),
                       obsm={k: adata.obsm[k] for k in ("X_pca", "spatial") if k in adata.obsm})
    graph.trainability_graph(light, alpha=params["alpha"], n_neighbors=params["n_neighbors"],
                             spatial_weight=params["spatial_weight"], seed=params["seed"])
    graph.communities(light, resolution=params["resolution"], seed=params["seed"])
    return light


class CommunitiesWidget(QWidget):
    """Trainability-aware graph (alpha, neighbours, spatial weight) and its Leiden communities."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.link = DockLink(self, napari_viewer)
        self.model = self.link.model
        self.picker = LayerPicker(self.link, "cells (scored)", require=keys.CONFIDENCE)
        self.layer_combo = self.picker.combo
        self.alpha = FloatSpinBox(label="alpha", value=0.9, min=0.0, max=1.0, step=0.05)
        self.alpha.tooltip = "expression weight of the graph distance: 1 = expression only, 0 = confidence rank only"
        self.n_neighbors = SpinBox(label="neighbours", value=15, min=2, max=200)
        self.spatial_weight = FloatSpinBox(label="spatial weight", value=0.0, min=0.0, max=10.0, step=0.1)
        self.resolution = FloatSpinBox(label="resolution", value=1.0, min=0.01, max=10.0, step=0.1)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.form = Container(widgets=[self.layer_combo, self.alpha, self.n_neighbors, self.spatial_weight,
                                       self.resolution, self.seed])
        self.run_button = QPushButton("Build graph and communities")
        on_click(self.run_button, self.run)
        self.status = QLabel(_WAITING)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(scrolling(self))  # scrolls rather than growing the window
        layout.addWidget(self.form.native)
        layout.addWidget(self.run_button)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.link.connect(self.model.layers_changed, self._reset)
        self.link.connect(self.model.results_changed, self._reset)
        self._reset()
        compact(self)
        place_when_docked(self, napari_viewer)  # the Plugins menu too: a tab of the Inspect group

    def _reset(self, *_a) -> None:
        self.picker.refresh()
        if self.worker is None and self.status.text().startswith(("Train first", "Scored: ")):
            self.status.setText(_WAITING if self.layer_combo.value is None else
                                "Scored: press Build graph and communities.")

    def run(self, *, start: bool = True):
        """Build the graph in a worker thread; returns the worker (None without a scored layer)."""
        from napari.qt.threading import thread_worker
        from napari.utils.notifications import show_error

        self._reset()
        layer = self.layer_combo.value
        if layer is None or self.worker is not None:
            if layer is None:
                show_error("Communities: no scored layer of cells; train with the Annotatability widget first")
            return None
        adata = layer.metadata["adata"]
        params = {"alpha": float(self.alpha.value), "n_neighbors": int(self.n_neighbors.value),
                  "spatial_weight": float(self.spatial_weight.value), "resolution": float(self.resolution.value),
                  "seed": int(self.seed.value)}

        @thread_worker(progress={"total": 0, "desc": "trainability graph"}, ignore_errors=True)
        def job():
            return _graph_job(adata, params)

        worker = job()
        worker.returned.connect(lambda light: self._on_result(layer, light))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.status.setText("Building the graph ...")
        if start:
            worker.start()
        return worker

    def _on_result(self, layer, light) -> None:
        adata = layer.metadata["adata"]
        for k in (keys.CONNECTIVITIES, keys.DISTANCES):
            adata.obsp[k] = light.obsp[k]
        # keep Leiden's categories (0, 1, 2, ... 10): a bare astype("category") sorts them as text
        adata.obs[keys.COMMUNITY] = pd.Categorical(light.obs[keys.COMMUNITY].to_numpy(),
                                                   categories=light.obs[keys.COMMUNITY].cat.categories)
        adata.uns[f"{keys.COMMUNITY}_colors"] = list(light.uns[f"{keys.COMMUNITY}_colors"])
        info = adata.uns.setdefault(keys.UNS, {})
        info["graph"] = dict(light.uns[keys.UNS]["graph"])
        info["communities"] = dict(light.uns[keys.UNS]["communities"])
        if "X_pca" in light.obsm and "X_pca" not in adata.obsm:
            adata.obsm["X_pca"] = light.obsm["X_pca"]
        self.model.notify_results(adata)
        cell = self.model.get(layer)
        if cell is None:  # the layer was closed meanwhile: the AnnData keeps the communities
            self.status.setText(f"{adata.obs[keys.COMMUNITY].nunique()} communities (the layer was closed).")
            return
        colors = cell.color_by(keys.COMMUNITY)
        show_colouring(self.viewer, cell, keys.COMMUNITY, colors)
        self.status.setText(f"{len(colors)} communities; graph in {info['graph']['seconds']:.1f} s.")

    @property
    def legend(self):
        """The viewer's shared legend."""
        return viewer_legend(self.viewer)

    def _on_error(self, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        self.status.setText(f"Failed: {exc}")
        show_error(f"Communities: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
