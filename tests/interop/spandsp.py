"""spandsp's V.42bis through ctypes: an independent implementation to test against.

Debian's ``libspandsp2`` (0.0.6) is loaded as ``libspandsp.so.2``; facts about
its API are in ``/work/shared/interop/README.md``:
``v42bis_init(state, p0, p1, p2, encode_handler, user, max_len, decode_handler,
user, max_len)``, ``v42bis_compress`` / ``v42bis_compress_flush``,
``v42bis_decompress`` / ``v42bis_decompress_flush``; the handlers receive the
output in pieces.  Where spandsp departs from the recommendation:
``docs/v42bis.md``.

The state lives in a buffer this module owns (0.0.6's ``v42bis_free`` does not
release what ``v42bis_init(NULL, ...)`` allocated, later versions do), so
nothing leaks and nothing is freed twice.
"""

from __future__ import annotations

import ctypes

from . import peers

LIBRARY = "libspandsp.so.2"
STATE_OCTETS = 256 * 1024  # sizeof(v42bis_state_t) is about 70 KB in 0.0.6
P0_BOTH_DIRECTIONS = 3
MAX_PIECE = 1024

_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int)


def load() -> ctypes.CDLL:
    """The library with its V.42bis prototypes; skip (fail under CI) when missing."""
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as exc:
        peers.require(False, f"spandsp is not installed (apt: libspandsp2): {exc}")
    lib.v42bis_init.restype = ctypes.c_void_p
    lib.v42bis_init.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        _HANDLER,
        ctypes.c_void_p,
        ctypes.c_int,
        _HANDLER,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    for name in ("v42bis_compress", "v42bis_decompress"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        fn.restype = ctypes.c_int
    for name in ("v42bis_compress_flush", "v42bis_decompress_flush"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p]
        fn.restype = ctypes.c_int
    return lib


class SpandspV42bis:
    """One spandsp V.42bis context, both directions (P0 = 3), dynamic mode."""

    def __init__(self, lib: ctypes.CDLL, p1: int = 2048, p2: int = 32) -> None:
        self._lib = lib
        self._encoded: list[bytes] = []
        self._decoded: list[bytes] = []
        # the callbacks must outlive the context: keep them on the object
        self._on_encoded = _HANDLER(
            lambda _u, msg, n: self._encoded.append(ctypes.string_at(msg, n))
        )
        self._on_decoded = _HANDLER(
            lambda _u, msg, n: self._decoded.append(ctypes.string_at(msg, n))
        )
        self._state = ctypes.create_string_buffer(STATE_OCTETS)
        s = lib.v42bis_init(
            self._state,
            P0_BOTH_DIRECTIONS,
            p1,
            p2,
            self._on_encoded,
            None,
            MAX_PIECE,
            self._on_decoded,
            None,
            MAX_PIECE,
        )
        if not s:
            raise ValueError(f"spandsp refused P1={p1}, P2={p2}")
        self._s = s

    def compress(self, chunk: bytes) -> bytes:
        """Compress and flush one chunk; whatever spandsp handed out meanwhile."""
        self._lib.v42bis_compress(self._s, chunk, len(chunk))
        self._lib.v42bis_compress_flush(self._s)
        out = b"".join(self._encoded)
        self._encoded.clear()
        return out

    def decompress(self, data: bytes) -> bytes:
        """Decompress ``data`` and flush; raises ValueError if spandsp reports an error."""
        if self._lib.v42bis_decompress(self._s, data, len(data)) != 0:
            raise ValueError("spandsp's V.42bis decoder reported an error")
        self._lib.v42bis_decompress_flush(self._s)
        out = b"".join(self._decoded)
        self._decoded.clear()
        return out
