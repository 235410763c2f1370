"""Generated blocks in the docs: a benchmark's table between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

Every table a benchmark prints can be written into the page that quotes it, so the docs never
carry a figure that no script printed (``--write-docs`` of the scripts, ``run_all.py --write-docs``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["markers", "has_block", "write_block"]


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _pattern(start: str, end: str):
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)


def has_block(path: Path, name: str) -> bool:
    """Whether ``path`` has a block ``name`` to rewrite."""
    return Path(path).exists() and bool(_pattern(*markers(name)).search(Path(path).read_text()))


def write_block(path: Path, name: str, text: str) -> None:
    """Replace block ``name`` of ``path`` with ``text`` (atomically); a missing block is an error."""
    path = Path(path)
    start, end = markers(name)
    doc = path.read_text()
    pattern = _pattern(start, end)
    if not pattern.search(doc):
        raise SystemExit(f"{path}: no {start} ... {end} block to rewrite")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(pattern.sub(lambda _m: f"{start}\n{text.strip()}\n{end}", doc))
    os.replace(tmp, path)
