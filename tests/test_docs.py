"""The CLI synopsis in docs/api.md cannot drift from the parser in cli.py.

Every option of every subcommand must appear in the synopsis, the synopsis must name no option
the parser lacks, a value written after an option must be its default (or its choices, ``a|b``),
and the synopsis lists exactly the parser's subcommands.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pytest

from napari_annotatability import cli

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
#: an option followed by a value: ``--noise 0.1``, ``--depth 3|4|5``, ``--out OUT.h5ad``
OPTION_VALUE = re.compile(r"(--[a-z][a-z0-9-]*)[ =]([^\s\[\]()]+)")
NUMBER = r"[-+]?(\d+\.?\d*(e[-+]?\d+)?|inf)"


def _synopsis() -> dict[str, str]:
    """Subcommand ('' for the program itself) -> its synopsis text, from docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)
    assert len(section) == 2, "docs/api.md has no '## Command line' section"
    block = re.search(r"```[^\n]*\n(.*?)```", section[1], flags=re.S)
    assert block, "docs/api.md's '## Command line' section has no code block"
    out: dict[str, list[str]] = {}
    current = None
    for line in block.group(1).splitlines():
        if line.startswith(cli.PROG):
            words = line.split()
            current = words[1] if len(words) > 1 and not words[1].startswith("-") else ""
            out.setdefault(current, [])
        assert current is not None, f"synopsis line before any '{cli.PROG} ...' line: {line!r}"
        out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Subcommand ('' for the program itself) -> its parser, from cli._parser()."""
    parser = cli._parser()
    out = {"": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings
            if s.startswith("--") and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))}


def test_synopsis_lists_exactly_the_subcommands():
    assert set(_synopsis()) - {""} == set(_parsers()) - {""}
    assert {"score", "graph", "demo"} <= set(_parsers())


@pytest.mark.parametrize("command", ["", "score", "graph", "demo"])
def test_synopsis_names_every_option_and_no_other(command):
    parser, doc = _parsers()[command], _synopsis().get(command, "")
    have = set(_options(parser))
    named = set(OPTION.findall(doc))
    where = f"docs/api.md, '{cli.PROG} {command}'".replace("  ", " ")
    assert not have - named, f"{where}: options of cli.py missing from the synopsis: {sorted(have - named)}"
    assert not named - have, f"{where}: options in the synopsis that cli.py lacks: {sorted(named - have)}"


@pytest.mark.parametrize("command", ["", "score", "graph", "demo"])
def test_synopsis_values_are_the_defaults_and_choices(command):
    """A value after an option is its default, its choices or a METAVAR, never a stale number.

    ``--noise 0.1``: the parser's default; ``--rule calibrated|paper``: the choices in order (one of
    them alone, e.g. ``(with --rule paper)``, must be a choice); ``--epochs N``: a placeholder.  An
    option whose parser default is None may show the value its help names as the default
    (``--quality-percentile 75``: "default: core.rules.ERRONEOUS_PERCENTILE, 75").
    """
    options, doc = _options(_parsers()[command]), _synopsis().get(command, "")
    checked = 0
    for name, value in OPTION_VALUE.findall(doc):
        action = options.get(name)
        if action is None or action.nargs == 0:
            continue  # unknown options fail above; flags take no value
        checked += 1
        where = f"docs/api.md: '{name} {value}'"
        if action.choices is not None:
            parts = value.split("|")
            if len(parts) > 1:
                assert parts == [str(c) for c in action.choices], f"{where}: the choices are {action.choices}"
            else:
                assert value in {str(c) for c in action.choices}, f"{where}: the choices are {action.choices}"
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*(\.h5ad)?", value):
            continue  # a placeholder
        elif action.default is not None:
            first = value.split("|")[0]  # --device auto|cpu|cuda|mps: the default first
            if re.fullmatch(NUMBER, first):
                assert math.isclose(float(first), float(action.default)), f"{where}: the default is {action.default!r}"
            else:
                assert first == str(action.default), f"{where}: the default is {action.default!r}"
        else:
            assert re.search(rf"default[^)]*(?<![\w.]){re.escape(value)}(?![\w.])", action.help or ""), (
                f"{where}: cli.py's default is None and its help names no default {value}; write a METAVAR")
    assert checked or command == "", "no option value checked: did the synopsis format change?"
