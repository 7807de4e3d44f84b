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

import copy
import itertools
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dialsim.scenario.errors import (
    ScenarioError,
    describe_error,
    field_path,
    model_keys,
    unknown_key,
)
from dialsim.scenario.schema import Scenario

__all__ = [
    "LineLoader",
    "ScenarioError",
    "apply_overrides",
    "load_scenario",
    "masked_text",
    "plain_value",
    "scenario_from_text",
    "sweep_points",
]

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
    source = path.resolve() if path.name != "<scenario>" else None
    return _validated(data, loader.lines, text, where, source, {}, "")


def _validated(data: dict, lines: dict, text: str, where: str, source: Path | None,
               overrides: dict[str, Any], origin: str) -> Scenario:
    """The one validation of a scenario mapping, for a file and for overrides alike.

    An error on a key that ``overrides`` set is blamed on ``origin``; any other
    (say a connect rate in the file that an overridden profile cannot reach) on
    its line in the file, naming ``origin`` too.
    """
    def line_of(loc: Path_) -> int:
        return _line_for(lines, loc)

    def fail(loc: Path_, problem: str) -> ScenarioError:
        fp = field_path(loc)
        mine = [k for k in overrides if fp == k or fp.startswith(k + ".") or k.startswith(fp + ".")]
        if mine:
            return ScenarioError(f"{origin}: {fp}: {problem}", field=fp, problem=problem)
        line = line_of(loc)
        # a sweep point names its own line in the file: "FILE:8: line 17: sweep ..."
        shown = origin.replace(f"{where}:", "line ", 1) if origin.startswith(f"{where}:") else origin
        via = f" {shown}:" if origin else ""
        return ScenarioError(f"{where}:{line}:{via} {fp}: {problem}", file=where, line=line,
                             field=fp, problem=problem)

    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        loc, problem = min((describe_error(err, Scenario) for err in e.errors()),
                           key=lambda d: line_of(d[0]))
        raise fail(loc, problem) from None
    sc._data = data
    sc._lines = lines
    sc._overrides = dict(overrides)
    sc._source_path = source
    sc._scenario_text = text if not overrides else _text_as_run(data, overrides)
    md_path = sc.isp.maildrop.path
    if md_path is not None and not (sc.source_dir / md_path).exists():
        raise fail(("isp", "maildrop", "path"),
                   f"no such Maildir or mbox {md_path!r}; give a path relative to the scenario file")
    if sc.sweep:
        sweep_points(sc, [])  # every point is checked now, before anything runs
    return sc


def plain_value(v: Any) -> Any:
    """A value as a table cell or a JSON scalar shows it (a mapping, as a swept
    section is given, as ``key=value`` pairs)."""
    if isinstance(v, dict):
        return " ".join(f"{k}={plain_value(x)}" for k, x in v.items())
    return v if isinstance(v, int | float | str | bool) or v is None else str(v)


def _without_sweep(sc: Scenario) -> Scenario:
    data = copy.deepcopy(sc._data)
    data.pop("sweep", None)
    where = str(sc.source_path) if sc.source_path is not None else "<scenario>"
    return _validated(data, sc._lines, sc._scenario_text, where, sc.source_path,
                      dict(sc._overrides), "")


def sweep_points(sc: Scenario, extra: list[tuple[str, list[Any]]]
                 ) -> list[tuple[dict[str, Any], Scenario]]:
    """Every point of the product of ``sc.sweep`` and ``extra`` (``--vary``; a key in
    both takes ``extra``'s values): ``(settings, scenario)``, each scenario the file
    without its sweep block, with those keys set and validated exactly as the file
    is.  A bad value is blamed on its line in the sweep block (or on the command
    line); a bad combination on the block."""
    block = dict(sc.sweep or {})
    vary = dict(extra)
    keys = {**block, **vary}
    base = _without_sweep(sc)
    where = str(sc.source_path) if sc.source_path is not None else "<scenario>"

    def line(*loc: Any) -> str:
        return f"{where}:{_line_for(sc._lines, ('sweep', *loc))}: sweep"

    for key, values in block.items():
        if key in vary:
            continue
        for j, value in enumerate(values):
            base.with_overrides({key: value}, origin=line(key, j))
    points = []
    for i, combo in enumerate(itertools.product(*keys.values())):
        settings = dict(zip(keys, combo, strict=True))
        shown = ", ".join(f"{k}={plain_value(v)}" for k, v in settings.items())
        head = "" if vary else line() + " "
        points.append((settings, base.with_overrides(
            settings, origin=f"{head}sweep point {i} ({shown})")))
    return points


def _text_as_run(data: dict, overrides: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    head = f"# scenario as run, with {shown}\n" if overrides else ""
    return head + yaml.safe_dump(data, sort_keys=False)


def _set_in(data: dict, path: str, value: Any, origin: str) -> None:
    """Set a dotted key in the raw mapping, refusing a key the schema does not have."""
    parts = path.split(".")
    node = data
    for i, part in enumerate(parts):
        keys = model_keys(Scenario, tuple(parts[:i]))
        if part not in keys:
            where = ".".join(parts[: i + 1])
            if i < len(parts) - 1 or not keys:
                raise ScenarioError(f"{origin}: {path}: {where} is not a section of this "
                                    f"scenario; {unknown_key(part, keys, 'section')}")
            raise ScenarioError(f"{origin}: {path}: {unknown_key(part, keys)}")
        if i == len(parts) - 1:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child


def apply_overrides(sc: Scenario, overrides: dict[str, Any], origin: str) -> Scenario:
    """``sc`` with dotted keys set as the file would set them, validated exactly as the file."""
    data = copy.deepcopy(sc._data)
    for path, value in overrides.items():
        _set_in(data, path, value, origin)
    where = str(sc.source_path) if sc.source_path is not None else "<scenario>"
    return _validated(data, sc._lines, sc._scenario_text, where, sc.source_path,
                      {**sc._overrides, **overrides}, origin)


def masked_text(sc: Scenario) -> str:
    """The scenario as run with the subscriber's password masked wherever it appears
    (the password key, a login chat's send step), as valid YAML that ``dialsim
    validate`` accepts and that re-runs: the mask has the password's length (PAP,
    CHAP, the chat and POP3 carry the same octet counts).  The file's own text,
    comments and all, is kept when nothing overrode it and the password appears
    only on its own line."""
    secret = sc.subscriber.password
    mask = "*" * len(secret)
    line = sc._lines.get(("subscriber", "password"))
    text = sc.scenario_text
    other = sc.subscriber.pop3_password
    if other:  # the mail client's own password, masked the same way
        def both(x: Any) -> Any:
            return _masked(_masked(x, secret, mask), other, "*" * len(other))

        return "# passwords masked (same length)\n" + _text_as_run(both(sc._data),
                                                                    both(sc._overrides))
    if not sc._overrides and line is not None and text.count(secret) == 1:
        rows = text.split("\n")
        rows[line - 1] = rows[line - 1].replace(secret, f"'{mask}'")
        candidate = "\n".join(rows)
        try:
            same = _masked(yaml.safe_load(text), secret, mask) == yaml.safe_load(candidate)
        except yaml.YAMLError:
            same = False
        if same and secret not in candidate:
            return candidate
    data = _masked(sc._data, secret, mask)
    return "# password masked (same length)\n" + _text_as_run(data, _masked(sc._overrides, secret,
                                                                             mask))


def _masked(value: Any, secret: str, mask: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, mask)
    if isinstance(value, dict):
        return {k: _masked(v, secret, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secret, mask) for v in value]
    return value


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
