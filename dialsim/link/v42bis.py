"""ITU-T V.42bis data compression for the link model: the public encoder and decoder.

Scope: one direction's V.42bis (01/1990) encoder and decoder, as the modems
of a call run them (one of each per direction, the dictionary kept for the
whole call).  The procedure and its parameters are described in
:mod:`dialsim.link.v42bis_ref`; where spandsp differs, ``docs/v42bis.md``.

Two implementations produce the same bytes, and the choice is explicit:

- ``"c"``: :class:`V42bisEncoder` / :class:`V42bisDecoder`, compiled from
  ``_v42bis.c`` by ``pip install -e .``; the link model uses these;
- ``"python"``: :class:`dialsim.link.v42bis_ref.V42bisEncoder` / ``V42bisDecoder``,
  the readable reference (a per-octet Python loop: never on a hot path).

:func:`implementation` returns the (encoder, decoder) classes of either.
``encoder.encode(chunk)`` returns the chunk's octets on the line, flushed so
that the chunk decodes on its own, in order; ``decoder.decode(data)`` the
octets that ``data`` completes.  Both count ``octets_in``, ``octets_out`` and
their mode switches (``counters()``); ``transparent`` is the current mode.

If the compiled module is not built, the compiled names raise ImportError
with the command that builds it; the reference always imports.
"""

from __future__ import annotations

from dialsim.compiled import IMPLEMENTATIONS, not_built, pick
from dialsim.link import v42bis_ref
from dialsim.link.v42bis_ref import (
    P1_DEFAULT,
    P1_RANGE,
    P2_DEFAULT,
    P2_RANGE,
    V42bisError,
    check_parameters,
)

__all__ = [
    "IMPLEMENTATIONS",
    "P1_DEFAULT",
    "P1_RANGE",
    "P2_DEFAULT",
    "P2_RANGE",
    "V42bisDecoder",
    "V42bisEncoder",
    "V42bisError",
    "check_parameters",
    "implementation",
]

try:
    from dialsim.link import _v42bis
except ImportError as exc:  # not built in this checkout
    _v42bis = None
    _BUILD_ERROR: ImportError | None = exc
else:
    _BUILD_ERROR = None

    class V42bisEncoder(v42bis_ref.Counters, _v42bis.Encoder):
        """``V42bisEncoder(p1=2048, p2=32)``: the compiled encoder of one direction."""

        COUNTERS = v42bis_ref.V42bisEncoder.COUNTERS

    class V42bisDecoder(v42bis_ref.Counters, _v42bis.Decoder):
        """``V42bisDecoder(p1=2048, p2=32)``: the compiled decoder of one direction."""

        COUNTERS = v42bis_ref.V42bisDecoder.COUNTERS


def _not_built() -> ImportError:
    return not_built("dialsim.link._v42bis", "the compiled V.42bis")


def __getattr__(name: str):
    if name in ("V42bisEncoder", "V42bisDecoder"):
        raise _not_built() from _BUILD_ERROR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def implementation(name: str) -> tuple[type, type]:
    """The (encoder, decoder) classes of implementation ``"c"`` or ``"python"``."""

    def compiled() -> tuple[type, type]:
        if _v42bis is None:
            raise _not_built() from _BUILD_ERROR
        return V42bisEncoder, V42bisDecoder

    return pick(name, "V.42bis", (v42bis_ref.V42bisEncoder, v42bis_ref.V42bisDecoder), compiled)
