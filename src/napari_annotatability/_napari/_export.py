"""Exporting a layer of cells and saving a figure, from the training widget's buttons."""

from __future__ import annotations

from ..core.errors import AnnotatabilityError

__all__ = ["EXPORT_FILTERS", "export_layer", "save_figure", "ask_export_path", "ask_figure_path"]

#: export file filters -> the extension each adds (the longest matching extension picks the writer)
EXPORT_FILTERS = {
    "AnnData with all results (*.h5ad)": ".h5ad",
    "Cells table (*.csv)": ".csv",
    "Cells GeoJSON: polygons or circles (*.geojson)": ".geojson",
    "Cell groups for Xenium Explorer (*.groups.csv)": ".groups.csv",
}


def _writer_for(path: str):
    from . import _writer

    writers = {".groups.csv": _writer.write_cell_groups, ".h5ad": _writer.write_h5ad, ".csv": _writer.write_csv,
               ".geojson": _writer.write_geojson}
    name = str(path).lower()
    return next((w for ext, w in writers.items() if name.endswith(ext)), None)


def export_layer(layer, path) -> str | None:
    """Export ``layer`` by the file's extension (.h5ad, .csv, .geojson, .groups.csv).

    The same writers as *File > Save Selected Layers*: atomic, never over the file the layer was
    read from, refused while a training runs (each refusal is a notification).
    """
    from napari.utils.notifications import show_error

    if layer is None:
        show_error("Annotatability: no layer of cells to export")
        return None
    write = _writer_for(str(path))
    if write is None:
        suffix = "." + str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
        show_error(f"Annotatability: cannot export to {suffix or 'a file without extension'}; "
                   "use .h5ad, .csv, .geojson or .groups.csv")
        return None
    data, meta, _ = layer.as_layer_data_tuple()
    written = write(str(path), data, meta)
    return written[0] if written else None


def ask_export_path(parent, layer):
    """A save dialog for :func:`export_layer`; the chosen path (with its extension) or None."""
    from qtpy.QtWidgets import QFileDialog

    stem = layer.name.replace(" ", "_") if layer is not None else "cells"
    path, chosen = QFileDialog.getSaveFileName(parent, "Export cells", f"{stem}.h5ad", ";;".join(EXPORT_FILTERS))
    if not path:
        return None
    suffix = EXPORT_FILTERS.get(chosen)
    if suffix and not path.lower().endswith(suffix):
        path += suffix
    return path


def ask_figure_path(parent):
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, "Save figure", "annotatability.png", "PNG image (*.png)")
    return path or None


def save_figure(viewer, path) -> str | None:
    """Save the current view of the canvas as a PNG (atomically); None and a notification on error."""
    from napari.utils.notifications import show_error

    from ..core.io import atomic_write, check_output_path

    try:
        out = check_output_path(path)
        if out.suffix.lower() != ".png":
            out = out.with_suffix(".png")
        atomic_write(out, lambda tmp: viewer.screenshot(path=tmp, canvas_only=True, flash=False), suffix=".png")
    except AnnotatabilityError as err:
        show_error(f"Annotatability: figure not saved: {err}")
        return None
    return str(out)
