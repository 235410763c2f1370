"""Generated blocks in the docs: a benchmark's table between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

Every table a benchmark prints can be written into the page that quotes it, so the docs never
carry a figure that no script printed (``--write-docs`` of the scripts, ``run_all.py --write-docs``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["markers", "has_block", "write_block", "strip_title"]


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _pattern(start: str, end: str):
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)


def has_block(path: Path, name: str) -> bool:
    """Whether ``path`` has a block ``name`` to rewrite."""
    return Path(path).exists() and bool(_pattern(*markers(name)).search(Path(path).read_text()))


def strip_title(text: str) -> str:
    """A script's markdown without its leading ``#`` title (the page's section has its own heading)."""
    lines = text.strip().splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


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


def main(argv=None) -> int:
    """``python benchmarks/_docs.py PAGE NAME TABLE.md "COMMAND"``: write a script's ``--out`` table into a block."""
    import argparse
    from datetime import date

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("page", type=Path, help="the docs page, e.g. docs/benchmarks.md")
    ap.add_argument("name", help="the block's name (<!-- NAME:start --> ... <!-- NAME:end -->)")
    ap.add_argument("table", type=Path, help="the markdown a benchmark wrote with --out")
    ap.add_argument("command", help="the command that wrote it (stamped above the table)")
    args = ap.parse_args(argv)
    write_block(args.page, args.name,
                f"`{args.command}` ({date.today().isoformat()}, {os.cpu_count()} cores):\n\n"
                f"{strip_title(args.table.read_text())}")
    print(f"rewrote block {args.name} in {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
