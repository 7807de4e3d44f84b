"""Human units in scenario files, converted at the edge into dialsim's internal units.

Scope: the quantities a scenario file states (DESIGN.md, "Units inside the code"):

- durations -> seconds (float): ``"45 s"``, ``"45s"``, ``"250 ms"``, ``"1.5 min"``,
  ``"2 h"``, ``"1 d"``; a bare number is seconds;
- sizes -> octets (int): ``"512 B"``, ``"4 kB"`` (SI, 1000), ``"4 KiB"`` (IEC,
  1024), ``"1 MiB"``, ``"2 MB"``; a bare integer is octets;
- rates -> bits per second (float): ``"28.8k"``, ``"28800"``, ``"33.6 kbps"``,
  ``"56k"``, ``"115200 bps"``, ``"2400 bit/s"``, ``"1.5 Mbps"`` (SI prefixes, as
  ITU-T V-series rates are always stated);
- event rates -> events per second (float): ``"6 /h"``, ``"6/h"``, ``"0.5 /min"``.

Each parser raises :class:`ValueError` whose text names the bad input and what is
accepted, so a pydantic error built from it reads as one useful line.  The
``Annotated`` types (:data:`Duration`, :data:`Size`, :data:`Rate`,
:data:`EventRate`) plug the parsers into pydantic models.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = [
    "Duration",
    "EventRate",
    "Rate",
    "Size",
    "DURATION_HINT",
    "EVENT_RATE_HINT",
    "RATE_HINT",
    "SIZE_HINT",
    "parse_duration",
    "parse_event_rate",
    "parse_rate",
    "parse_size",
]

DURATION_HINT = 'use a number with s, ms, min, h or d (e.g. "45 s")'
SIZE_HINT = 'use a whole number of bytes or a number with B, kB, KiB, MB, MiB, GB or GiB (e.g. "4 KiB")'
RATE_HINT = 'use bits per second: a number, optionally with k or M and bps or bit/s (e.g. "28.8k", "115200 bps")'
EVENT_RATE_HINT = 'use a number per s, min, h or d (e.g. "6 /h", "0.5/min")'

_NUMBER = r"(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"

_DURATION_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}

# Case matters for sizes only where it must (b vs B is not ambiguous here: no
# one measures mail in bits), so sizes are matched case-insensitively.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "octet": 1,
    "octets": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}

_RATE_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6}
_RATE_SUFFIX = {"", "bps", "b/s", "bit/s", "bits/s"}

_PER_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}

_DURATION_RE = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>[A-Za-z]*)\s*$")
_SIZE_RE = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>[A-Za-z]*)\s*$")
_RATE_RE = re.compile(rf"^\s*{_NUMBER}\s*(?P<prefix>[kKmM]?)\s*(?P<suffix>[A-Za-z/]*)\s*$")
_EVENT_RATE_RE = re.compile(rf"^\s*{_NUMBER}\s*(?:/|per\s+)\s*(?P<unit>[A-Za-z]+)\s*$")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_non_negative(x: float, what: str, value: object, hint: str) -> float:
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"bad {what} {value!r}; must not be negative ({hint})")
    return x


def parse_duration(value: object) -> float:
    """A duration in seconds (float >= 0) from a number (seconds) or a string with a unit."""
    if _is_number(value):
        return _finite_non_negative(float(value), "duration", value, DURATION_HINT)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            factor = _DURATION_UNITS.get(m["unit"].lower())
            if factor is not None:
                return _finite_non_negative(float(m["num"]) * factor, "duration", value, DURATION_HINT)
    raise ValueError(f"bad duration {value!r}; {DURATION_HINT}")


def parse_size(value: object) -> int:
    """A size in octets (int >= 0) from an integer (octets) or a string with a unit."""
    if _is_number(value):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"bad size {value!r}; {SIZE_HINT}")
        return int(_finite_non_negative(float(value), "size", value, SIZE_HINT))
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            factor = _SIZE_UNITS.get(m["unit"].lower())
            if factor is not None:
                x = _finite_non_negative(float(m["num"]) * factor, "size", value, SIZE_HINT)
                if factor == 1 and not x.is_integer():
                    raise ValueError(f"bad size {value!r}; {SIZE_HINT}")
                return round(x)
    raise ValueError(f"bad size {value!r}; {SIZE_HINT}")


def parse_rate(value: object) -> float:
    """A line or DTE rate in bits per second (float > 0)."""
    if _is_number(value):
        x = float(value)
    elif isinstance(value, str) and (m := _RATE_RE.match(value)) and m["suffix"].lower() in _RATE_SUFFIX:
        x = float(m["num"]) * _RATE_PREFIX[m["prefix"].lower()]
    else:
        raise ValueError(f"bad rate {value!r}; {RATE_HINT}")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"bad rate {value!r}; must be greater than 0 ({RATE_HINT})")
    return x


def parse_event_rate(value: object) -> float:
    """Events per second (float >= 0) from ``"N /unit"``; a bare number is refused
    because "6" alone could mean per second or per hour."""
    if isinstance(value, str) and (m := _EVENT_RATE_RE.match(value)):
        unit = m["unit"].lower()
        if unit.endswith("s") and unit not in _PER_UNITS:
            unit = unit[:-1]
        per = _PER_UNITS.get(unit)
        if per is not None:
            return _finite_non_negative(float(m["num"]) / per, "rate", value, EVENT_RATE_HINT)
    raise ValueError(f"bad rate {value!r}; {EVENT_RATE_HINT}")


def format_duration(seconds: float) -> str:
    """A short human form, the inverse of :func:`parse_duration` up to rounding."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.12g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.12g} min"
    if 0 < seconds < 1:
        return f"{seconds * 1000:.12g} ms"
    return f"{seconds:.12g} s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts "45 s", "250 ms", "1.5 min", "2 h", "1 d" or a bare number of seconds."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""Octets; accepts "512 B", "4 kB" (1000), "4 KiB" (1024), "1 MiB" or a bare integer."""

Rate = Annotated[float, BeforeValidator(parse_rate)]
"""Bits per second; accepts "28.8k", "33.6 kbps", "115200 bps", "2400 bit/s" or a number."""

EventRate = Annotated[float, BeforeValidator(parse_event_rate)]
"""Events per second; accepts "6 /h", "6/h", "0.5 /min"."""
