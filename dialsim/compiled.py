"""dialsim's compiled modules and their pure-Python references (DEVELOPERS.md,
"Compiled code"): which one runs is named, ``"c"`` or ``"python"``, and a
compiled module that is not built is an ImportError naming the command that
builds it -- never the reference in its place.  V.42bis (``link/v42bis.py``),
the async-HDLC framing (``proto/hdlc.py``), VJ (``proto/vj.py``), the IPv4/TCP
segment codec (``proto/ipv4.py``, ``proto/tcp_segment.py``) and the TCP payload
count (``proto/octets.py``) choose through here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

IMPLEMENTATIONS = ("c", "python")

T = TypeVar("T")


def not_built(module: str, what: str) -> ImportError:
    """The error for compiled ``module`` (``what`` it is) missing from this checkout."""
    return ImportError(
        f"{module} ({what}) is not built in this checkout: "
        "run `pip install -e .` (or `python setup.py build_ext --inplace`) there"
    )


def load(module: str, what: str) -> ModuleType:
    """Import compiled ``module``, or raise :func:`not_built`'s error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise not_built(module, what) from exc


def pick(name: str, family: str, python: T, compiled: Callable[[], T]) -> T:
    """``python`` for ``"python"``, ``compiled()`` for ``"c"``; anything else is a
    ValueError naming ``family`` (e.g. "VJ") and the choices."""
    if name == "python":
        return python
    if name == "c":
        return compiled()
    raise ValueError(f"{family} implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
