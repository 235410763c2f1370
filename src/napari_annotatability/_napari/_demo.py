"""``napari-annotatability demo``: napari with the synthetic sample and the widget, ready to train."""

from __future__ import annotations


def open_demo(viewer=None):
    """Open the synthetic sample in ``viewer`` (a new one if None) and dock the widget."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-annotatability demo")
    viewer.open_sample("napari-annotatability", "synthetic")
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    return viewer, widget


def main() -> int:
    import napari

    open_demo()
    napari.run()
    return 0
