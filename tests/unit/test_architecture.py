"""The code's shape, as DEVELOPERS.md and issue 7 state it, checked on the source.

- Imports go down the layers only: front ends (cli, commands, analysis, the
  pyserial URL handler) -> experiment -> hosts/drivers -> proto, link, mail,
  results, scenario.
- Protocol events are defined in ``dialsim/proto/`` only.
- No event is dispatched on its class name as a string.
- ``experiment/world.py`` stays under 250 lines and no function is longer than 80.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "dialsim"

LEVEL = {
    "dialsim": 0, "compiled": 0, "proto": 0, "link": 0, "mail": 0, "results": 0, "scenario": 0,
    "hosts": 1, "drivers": 1,
    "experiment": 2,
    "cli": 3, "cli_mailhost": 3, "commands": 3, "analysis": 3, "pyserial": 3, "__main__": 3,
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _package(path: Path) -> str:
    parts = path.relative_to(PKG).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py").replace("__init__",
                                                                                 "dialsim")


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            q = name.split(".")
            if q[0] == "dialsim":
                yield node.lineno, q[1] if len(q) > 1 else "dialsim"


def test_every_package_has_a_layer():
    packages = {_package(p) for p, _t in _modules()}
    assert packages <= set(LEVEL), packages - set(LEVEL)


def test_imports_go_down_the_layers_only():
    upward = []
    for path, tree in _modules():
        src = _package(path)
        for line, dst in _imports(tree):
            if LEVEL[dst] > LEVEL[src]:
                upward.append(f"{path.relative_to(PKG.parent)}:{line}: {src} imports {dst}")
    assert not upward, "\n".join(upward)


def test_protocol_events_are_defined_in_proto_only():
    events = {node.name for node in ast.walk(ast.parse((PKG / "proto" / "events.py").read_text()))
              if isinstance(node, ast.ClassDef)}
    outside = []
    for path, tree in _modules():
        if path.relative_to(PKG).parts[0] == "proto":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                         for b in node.bases}
                if bases & events:
                    outside.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.name}")
    assert not outside, "\n".join(outside)


def test_no_dispatch_on_class_names():
    # Comparing a class's name with a string is dispatch by name; naming an
    # exception's class in an error text is not.
    pattern = re.compile(r"__name__\s*(==|!=|in\b)|(==|!=)\s*type\(.*\)\.__name__"
                         r"|\.__class__\.__name__\s*(==|!=|in\b)")
    hits = [f"{p.relative_to(PKG.parent)}:{i}: {line.strip()}"
            for p, _t in _modules()
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line) and "__main__" not in line]
    assert not hits, "\n".join(hits)


def test_world_is_small():
    assert len((PKG / "experiment" / "world.py").read_text().splitlines()) < 250


@pytest.mark.parametrize("limit", [80])
def test_no_function_is_longer_than_the_limit(limit):
    long = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    long.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.name} ({n})")
    assert not long, "\n".join(long)
