"""Load a scenario file (YAML 1.1 via PyYAML's safe loader) into a validated :class:`Scenario`.

Errors come out as :class:`ScenarioError` whose ``str()`` is one line,
``FILE:LINE: field.path: problem; accepted values/format``.  The line comes from
the YAML node of the offending key (or list item): :class:`LineLoader` records
the start line of every mapping key and sequence item by path, and a pydantic
error's ``loc`` is looked up there, falling back to its parent (so a missing key
points at the mapping that lacks it).  Duplicate keys, which YAML would quietly
resolve to the last one, are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dialsim.scenario.errors import ScenarioError, field_path, one_line
from dialsim.scenario.schema import Scenario

__all__ = ["LineLoader", "ScenarioError", "load_scenario", "scenario_from_text"]

Path_ = tuple[Any, ...]

_YAML_HINT = "check indentation, colons and quoting (YAML)"


class LineLoader(yaml.SafeLoader):
    """A safe loader that also records, per key path, the 1-based line of each key and item."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[Path_, int] = {}
        self.duplicate: tuple[Path_, int] | None = None

    def load_with_lines(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self.lines[()] = node.start_mark.line + 1
        self._walk(node, ())
        return self.construct_document(node)

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool | type(None)):
                    key = str(key)
                line = key_node.start_mark.line + 1
                if key in seen and self.duplicate is None:
                    self.duplicate = (path + (key,), line)
                seen.add(key)
                self.lines.setdefault(path + (key,), line)
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines.setdefault(path + (i,), item.start_mark.line + 1)
                self._walk(item, path + (i,))


def _line_for(lines: dict[Path_, int], loc: Path_) -> int:
    for n in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:n]))
        if line is not None:
            return line
    return 1


def scenario_from_text(text: str, path: str | Path = "<scenario>") -> Scenario:
    """Parse and validate scenario text; ``path`` names it in errors and anchors relative paths."""
    path = Path(path)
    where = str(path)
    loader = LineLoader(text)
    try:
        data = loader.load_with_lines()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(e.problem or e.context or "syntax error").split())
        raise ScenarioError(
            f"{where}:{line}: (yaml): {problem}; {_YAML_HINT}",
            file=where,
            line=line,
            field="(yaml)",
            problem=problem,
        ) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{where}:1: (yaml): {' '.join(str(e).split())}; {_YAML_HINT}") from None
    finally:
        loader.dispose()

    if loader.duplicate is not None:
        loc, line = loader.duplicate
        fp = field_path(loc)
        raise ScenarioError(
            f"{where}:{line}: {fp}: duplicate key; give each key once",
            file=where,
            line=line,
            field=fp,
        )
    if not isinstance(data, dict):
        what = "empty file" if data is None else f"bad value {type(data).__name__}"
        keys = ", ".join(Scenario.model_fields)
        raise ScenarioError(
            f"{where}:1: (top level): {what}; expected a mapping with keys {keys}",
            file=where,
            line=1,
            field="(top level)",
        )
    if data.get("name") is None:
        data["name"] = path.stem
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        text_ = one_line(e, Scenario, lambda loc: _line_for(loader.lines, loc))
        line_s, fp, problem = text_.split(": ", 2)
        raise ScenarioError(
            f"{where}:{text_}", file=where, line=int(line_s), field=fp, problem=problem
        ) from None
    sc._scenario_text = text
    sc._source_path = path.resolve() if path.name != "<scenario>" else None
    md_path = sc.isp.maildrop.path
    if md_path is not None and not (sc.source_dir / md_path).exists():
        loc = ("isp", "maildrop", "path")
        line = _line_for(loader.lines, loc)
        raise ScenarioError(
            f"{where}:{line}: isp.maildrop.path: no such Maildir or mbox {md_path!r}; "
            "give a path relative to the scenario file",
            file=where,
            line=line,
            field="isp.maildrop.path",
        )
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.  Raises :class:`ScenarioError` (one line) for a
    bad scenario, ``FileNotFoundError`` when there is no such file."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioError(
            f"{path}:{line}: (file): not UTF-8 text; save the scenario as UTF-8",
            file=str(path),
            line=line,
        ) from None
    return scenario_from_text(text, path)
