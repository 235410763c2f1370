"""Keyboard shortcuts of the curation dock, and which of them the viewer may take too."""

from __future__ import annotations

__all__ = ["DOCK_KEYS", "taken_keys", "bind_viewer_keys"]

#: keys while the dock has focus: key -> method name
DOCK_KEYS = {
    "A": "accept", "S": "skip", "N": "next_cell", "P": "previous_cell",
    "Ctrl+Z": "undo", "Ctrl+Shift+Z": "redo",
}


def taken_keys(viewer) -> set[str]:
    """Every key napari binds by default (layer modes, viewer, menus), as normalised strings."""
    from app_model.types import KeyBinding
    from napari import layers
    from napari.components import ViewerModel
    from napari.utils.shortcuts import default_shortcuts

    def norm(k):
        try:
            return str(KeyBinding.validate(k))
        except (TypeError, ValueError):
            return str(k)

    out = {norm(k) for binds in default_shortcuts.values() for k in binds}
    for cls in (layers.Points, layers.Labels, layers.Shapes, layers.Image, layers.Surface, layers.Tracks,
                layers.Vectors):
        out |= {norm(k) for k in cls.class_keymap}
    out |= {norm(k) for k in ViewerModel.class_keymap} | {norm(k) for k in viewer.keymap}
    try:
        from app_model import Application

        out |= {norm(kb.keybinding) for kb in Application.get_app("napari").keybindings}
    except Exception:  # noqa: BLE001 - no app registered: the menus' keys are not known
        pass
    return out


def bind_viewer_keys(viewer, widget, link=None) -> list[str]:
    """Bind on ``viewer`` the dock keys napari leaves free (none of A, S, P, Ctrl+Z is); returns them.

    They are unbound when ``widget`` is destroyed, or closed (``link``: its ``_dock.DockLink``).
    """
    taken = taken_keys(viewer)
    bound = []
    for key, method in DOCK_KEYS.items():
        if key in taken:
            continue
        viewer.bind_key(key, lambda _viewer, m=method: getattr(widget, m)(), overwrite=False)
        bound.append(key)
    keys_ = list(bound)

    def unbind(*_a) -> None:
        for k in _keymap_keys(viewer, keys_):
            viewer.keymap.pop(k, None)

    widget.destroyed.connect(unbind)
    if link is not None:
        link.on_close(unbind)
    return bound


def _keymap_keys(viewer, wanted: list[str]) -> list:
    """The keymap entries of ``viewer`` for these key strings."""
    from app_model.types import KeyBinding

    want = {str(KeyBinding.validate(k)) for k in wanted}
    return [k for k in list(viewer.keymap) if str(KeyBinding.validate(k)) in want]
