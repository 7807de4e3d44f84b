"""Scenario errors as one line: ``FILE:LINE: field.path: problem; what is accepted``.

Turns a pydantic v2 ``ValidationError`` (whose ``loc`` is a path of keys and list
indexes) into that line, naming the accepted keys or values from the schema
itself, so the messages cannot drift from the models.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

__all__ = ["ScenarioError", "describe_error", "field_path", "model_keys", "one_line", "unknown_key"]


class ScenarioError(Exception):
    """A bad scenario; ``str()`` is exactly one line.

    Attributes (any may be None): ``file``, ``line`` (1-based), ``field`` (dotted
    path), ``problem`` (the text after the field).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        problem: str | None = None,
    ) -> None:
        message = " ".join(message.split("\n"))
        super().__init__(message)
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem


def field_path(loc: Sequence[Any]) -> str:
    """``("link", "carrier_loss", "at", 1)`` -> ``"link.carrier_loss.at[1]"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(tp)[0])
    return tp


def _annotation_at(root: type[BaseModel], loc: Sequence[Any]) -> tuple[Any, Any]:
    """(annotation, metadata list) of the field at ``loc``, or (None, None) when unknown."""
    tp: Any = root
    meta: Any = None
    for part in loc:
        tp = _strip_optional(tp)
        if isinstance(part, int):
            if typing.get_origin(tp) is list:
                tp = typing.get_args(tp)[0]
                meta = None
                continue
            return None, None
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            info = tp.model_fields[part]
            tp, meta = info.annotation, info.metadata
            continue
        return None, None
    return tp, meta


def model_keys(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    tp, _ = _annotation_at(root, loc)
    tp = _strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _describe(tp: Any, meta: Any = None) -> str:
    """What a value of this annotation looks like, for 'expected ...'."""
    from dialsim.scenario import units

    hints = {
        units.Duration: "a duration (" + units.DURATION_HINT + ")",
        units.Size: "a size (" + units.SIZE_HINT + ")",
        units.Rate: "a rate (" + units.RATE_HINT + ")",
        units.EventRate: "an event rate (" + units.EVENT_RATE_HINT + ")",
    }
    for known, text in hints.items():
        if tp == known or tp == known | None:
            return text
    tp = _strip_optional(tp)
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if typing.get_origin(tp) is list:
        return "a list of " + _describe(typing.get_args(tp)[0]).removeprefix("a ").removeprefix("an ")
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    return "a valid value"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string (quote it)",
    "list_type": "a list (e.g. [a, b])",
}


def unknown_key(key: str, accepted: Sequence[str], what: str = "key") -> str:
    """``unknown key; did you mean connect_rate? accepted keys: ...`` (the nearest
    accepted name, when one is close enough to be a typo)."""
    near = difflib.get_close_matches(key, list(accepted), n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    return f"unknown {what}; {hint}accepted {what}s: " + ", ".join(accepted)


def describe_error(err: dict[str, Any], root: type[BaseModel]) -> tuple[tuple[Any, ...], str]:
    """(loc, "problem; accepted") for one entry of ``ValidationError.errors()``."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    tp, meta = _annotation_at(root, loc)
    if kind == "extra_forbidden":
        keys = model_keys(root, loc[:-1])
        return loc, unknown_key(str(loc[-1]) if loc else "", keys)
    if kind == "missing":
        return loc, "missing required key; expected " + _describe(tp, meta)
    if kind in ("literal_error", "enum"):
        if typing.get_origin(_strip_optional(tp)) is Literal:
            accepted = ", ".join(str(a) for a in typing.get_args(_strip_optional(tp)))
        else:
            accepted = str(ctx.get("expected", "")).replace("'", "")
        return loc, f"bad value {_show(value)}; accepted values: {accepted}"
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        return loc, msg
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            bound = f"{bound:g}"
        return loc, f"bad value {_show(value)}; must be {sign} {bound}"
    if kind == "too_short":
        return loc, f"bad value {_show(value)}; needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return loc, f"bad value {_show(value)}; at most {ctx.get('max_length')} item(s)"
    if kind == "string_too_short":
        return loc, f"bad value {_show(value)}; must not be empty"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, f"bad value {_show(value)}; expected {_describe(tp, meta)}"
    if kind in _EXPECTED:
        return loc, f"bad value {_show(value)}; expected {_EXPECTED[kind]}"
    return loc, f"{err.get('msg', 'invalid')}; expected {_describe(tp, meta)}"


def one_line(
    error: ValidationError | Exception,
    root: type[BaseModel] | None = None,
    line_of: Callable[[tuple[Any, ...]], int] | None = None,
) -> str:
    """``field.path: problem; accepted`` for the first error (by line when ``line_of``
    is given), prefixed with ``LINE: `` when ``line_of`` is given."""
    if not isinstance(error, ValidationError):
        return " ".join(str(error).split())
    if root is None:
        from dialsim.scenario.schema import Scenario

        root = Scenario
    described = [describe_error(e, root) for e in error.errors()]
    if line_of is None:
        loc, msg = described[0]
        return f"{field_path(loc)}: {msg}"
    loc, msg = min(described, key=lambda d: line_of(d[0]))
    return f"{line_of(loc)}: {field_path(loc)}: {msg}"
