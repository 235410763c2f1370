"""``napari-annotatability demo``: napari with the synthetic sample and the widget, ready to train."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["HEADLESS_PLATFORMS", "missing_display", "open_demo", "main"]

#: Qt platform plugins (``QT_QPA_PLATFORM``) that draw without an X11 or Wayland display
HEADLESS_PLATFORMS = frozenset(
    {"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "directfb", "webgl", "vkkhrdisplay"}
)


def missing_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a napari window cannot open here, or None when it can (as far as the environment tells).

    On Linux and the BSDs, Qt needs an X11 (``DISPLAY``) or Wayland (``WAYLAND_DISPLAY``)
    session unless ``QT_QPA_PLATFORM`` names a platform that needs none (offscreen, vnc ...);
    without one it aborts the whole process (SIGABRT, exit status 134) instead of raising.
    macOS and Windows always have their native platform.  Reads only the environment: it
    imports neither Qt nor napari.
    """
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    if not system.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "")
    # "a;b" is a fallback list, "name:option=value" passes options to the plugin
    names = [part.split(":", 1)[0].strip().lower() for part in qpa.split(";") if part.strip()]
    if any(name in HEADLESS_PLATFORMS for name in names):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    needs = f"QT_QPA_PLATFORM={qpa} needs a display, and " if names else ""
    return (
        f"the napari demo opens a window, but there is no display: {needs}neither DISPLAY (X11) nor "
        "WAYLAND_DISPLAY (Wayland) is set (an ssh session without -X, a container or a batch job?).\n"
        "  without a window:    napari-annotatability demo --headless\n"
        "  on a virtual screen: xvfb-run -a napari-annotatability demo"
    )


def open_demo(viewer=None):
    """Open the synthetic sample in ``viewer`` (a new one if None) and dock the widget."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-annotatability demo")
    viewer.open_sample("napari-annotatability", "synthetic")
    _, widget = viewer.window.add_plugin_dock_widget("napari-annotatability", "Annotatability")
    return viewer, widget


def main() -> int:
    """Open the demo window and run napari's event loop until it is closed.

    Raises :class:`~napari_annotatability.core.errors.AnnotatabilityInputError` when there is
    no display (see :func:`missing_display`), before Qt is imported, since Qt would abort.
    """
    problem = missing_display()
    if problem is not None:
        from ..core.errors import AnnotatabilityInputError

        raise AnnotatabilityInputError(problem)
    import napari

    open_demo()
    napari.run()
    return 0
