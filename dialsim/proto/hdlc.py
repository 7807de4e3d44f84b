"""RFC 1662 "PPP in HDLC-like Framing", asynchronous (octet-stuffed) framing only.

Scope: the 16-bit and 32-bit Frame Check Sequences (RFC 1662 appendix C), the
encoder (flag 0x7E, Control Escape 0x7D with XOR 0x20 of 0x7E, 0x7D and every
control character flagged in the transmit Async-Control-Character-Map, section
4.2 and 7.1) and an incremental decoder that removes received control
characters flagged in the receive ACCM, un-escapes, checks the FCS and counts
bad FCS, runts, aborts and too-long frames without ever raising.

Frames here are "PPP frames without FCS": the Address/Control field (if
present), the Protocol field and the Information field.  The Address/Control
and Protocol Field Compression (ACFC/PFC) of RFC 1661 are done by
:func:`ppp_header`; the decoder hands back what was on the line.

No per-octet Python work: a frame with few escapes is escaped with
``bytes.replace`` per distinct octet present and un-escaped with one
``re.split`` whose escaped octets are mapped through a dict by ``map`` (in C);
an escape-heavy frame goes through numpy in a fixed number of array
operations.  The FCS is ``binascii.crc_hqx``/``zlib.crc32``.

FCS size: 16 bits unless RFC 1570's FCS-Alternatives negotiated 32 bits
(:meth:`HdlcDecoder.set_fcs_size`).  A decoder in 32-bit mode also takes an LCP
frame (FF 03 C0 21) whose 16-bit FCS is good: the peer's LCP goes back to the
default FCS when it leaves Opened, before it sends the Terminate-Request or the
new Configure-Request that the link must still understand.

Two implementations give the same bytes, records and counters, and the choice
is explicit (:func:`implementation`):

- ``"python"``: :func:`hdlc_encode` and :class:`HdlcDecoder` here, the
  readable reference, importable without a compiler;
- ``"c"``: ``encode`` and ``Decoder`` of ``dialsim/proto/_hdlc.c``, built by
  ``pip install -e .``; :mod:`dialsim.proto.ppp` frames with these.
"""

from __future__ import annotations

import binascii
import re
import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from dialsim.compiled import IMPLEMENTATIONS, load, pick

FLAG = 0x7E
ESCAPE = 0x7D
DEFAULT_ACCM = 0xFFFFFFFF

PPP_INITFCS16 = 0xFFFF
PPP_GOODFCS16 = 0xF0B8
PPP_INITFCS32 = 0xFFFFFFFF
PPP_GOODFCS32 = 0xDEBB20E3

_FLAG = b"\x7e"
_LCP_HEADER = b"\xff\x03\xc0\x21"  # LCP frames always carry address, control and 2 protocol octets

# Bit-reversal of every octet: the reflected CRC-16 of RFC 1662 equals the
# non-reflected CCITT CRC (binascii.crc_hqx) over bit-reversed octets.
_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _rev16(x: int) -> int:
    return (_REVERSE[x & 0xFF] << 8) | _REVERSE[x >> 8]


def fcs16(data: bytes, fcs: int = PPP_INITFCS16) -> int:
    """RFC 1662 C.2 ``pppfcs16``: the FCS register after ``data`` (chainable).

    The value transmitted is ``fcs16(frame) ^ 0xFFFF``, low octet first; running
    the register over a frame plus its FCS gives :data:`PPP_GOODFCS16`.
    ``fcs16(b"123456789") ^ 0xFFFF == 0x906E`` (the CRC-16/X-25 check value).
    """
    rev = _REVERSE
    r = binascii.crc_hqx(bytes(data).translate(rev), (rev[fcs & 0xFF] << 8) | rev[fcs >> 8])
    return (rev[r & 0xFF] << 8) | rev[r >> 8]


def fcs32(data: bytes, fcs: int = PPP_INITFCS32) -> int:
    """RFC 1662 C.3 ``pppfcs32``: the 32-bit FCS register after ``data`` (chainable).

    ``zlib.crc32`` is the same CRC with the register complemented on entry and
    exit.  Transmit ``fcs32(frame) ^ 0xFFFFFFFF`` low octet first; the register
    over frame plus FCS is :data:`PPP_GOODFCS32`.
    """
    return zlib.crc32(data, fcs ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def fcs_bytes(frame: bytes, fcs_size: int = 16) -> bytes:
    """The FCS field (complemented register, least significant octet first) for ``frame``."""
    if fcs_size == 32:
        return (fcs32(frame) ^ 0xFFFFFFFF).to_bytes(4, "little")
    return (fcs16(frame) ^ 0xFFFF).to_bytes(2, "little")


def ppp_header(protocol: int, *, acfc: bool = False, pfc: bool = False) -> bytes:
    """Address/Control (0xFF 0x03 unless ACFC) and Protocol field (one octet if PFC and < 0x100)."""
    head = b"" if acfc else b"\xff\x03"
    if pfc and protocol < 0x100:
        return head + bytes([protocol])
    return head + protocol.to_bytes(2, "big")


def parse_ppp_header(frame: bytes) -> tuple[int, int] | None:
    """(protocol, offset of the Information field) of a PPP frame, or None if malformed.

    Accepts frames with or without Address/Control and with one- or two-octet
    Protocol fields (a Protocol field's least significant octet is odd, RFC 1661 2).
    """
    i = 2 if frame[:2] == b"\xff\x03" else 0
    if len(frame) <= i:
        return None
    first = frame[i]
    if first & 1:
        return first, i + 1
    if len(frame) < i + 2 or not frame[i + 1] & 1:
        return None
    return (first << 8) | frame[i + 1], i + 2


def _escape_set(accm: int) -> bytes:
    return bytes([c for c in range(32) if accm >> c & 1] + [ESCAPE, FLAG])


# Frames with more escaped octets than this go through numpy, whose fixed cost
# (some 15 us a frame) only pays off when there are many.
_NUMPY_ESCAPES = 48

_ESCAPE_SETS: dict[int, tuple[bytes, np.ndarray]] = {}


def _escape_tables(accm: int) -> tuple[bytes, np.ndarray]:
    """(octets that need no escape, a 256-entry mask of those that do) for a transmit ACCM, cached."""
    t = _ESCAPE_SETS.get(accm)
    if t is None:
        esc = _escape_set(accm)
        mask = np.zeros(256, dtype=bool)
        mask[list(esc)] = True
        t = _ESCAPE_SETS[accm] = (bytes(c for c in range(256) if c not in esc), mask)
    return t


def hdlc_escape(data: bytes, accm: int = DEFAULT_ACCM) -> bytes:
    """Octet-stuff ``data`` (RFC 1662 4.2): 0x7D, 0x7E and ACCM-flagged control chars."""
    keep, mask = _escape_tables(accm)
    data = bytes(data)
    to_escape = data.translate(None, keep)  # the octets that need escaping, at C speed
    if not to_escape:
        return data
    if len(to_escape) > _NUMPY_ESCAPES:
        return _escape_numpy(data, mask, len(to_escape))
    present = set(to_escape)
    out = data
    if ESCAPE in present:  # first, so later inserted 0x7D are not re-escaped
        out = out.replace(b"\x7d", b"\x7d\x5d")
        present.discard(ESCAPE)
    for c in present:
        out = out.replace(bytes([c]), bytes([ESCAPE, c ^ 0x20]))
    return out


def _escape_numpy(data: bytes, mask: np.ndarray, count: int) -> bytes:
    octets = np.frombuffer(data, dtype=np.uint8)
    escaped = mask[octets]
    # each octet moves right by the number of escapes inserted before it (and at it)
    where = np.arange(len(octets)) + np.cumsum(escaped)
    out = np.full(len(octets) + count, ESCAPE, dtype=np.uint8)
    out[where] = octets ^ (escaped.astype(np.uint8) << 5)
    return out.tobytes()


_UNESCAPE_RE = re.compile(rb"\x7d(.)", re.DOTALL)
_UNESCAPED = {bytes([c]): bytes([c ^ 0x20]) for c in range(256)}


def hdlc_unescape(data: bytes) -> bytes:
    """Undo octet stuffing: 0x7D x -> x ^ 0x20 (any x, as RFC 1662 requires).

    A 0x7D at the very end (the first half of an abort sequence) is dropped.
    """
    data = bytes(data)
    count = data.count(b"\x7d")
    if not count:
        return data
    if count > _NUMPY_ESCAPES:
        return _unescape_numpy(data)
    # re.split scans left to right, so in 7D 7D 7D 5D the first 7D escapes the
    # second and the third escapes 5D; the escaped octets land at odd indexes.
    pieces = _UNESCAPE_RE.split(data)
    pieces[1::2] = map(_UNESCAPED.__getitem__, pieces[1::2])
    # only an escape with nothing after it is left in a piece: the last one
    pieces[-1] = pieces[-1].removesuffix(b"\x7d")
    return b"".join(pieces)


def _unescape_numpy(data: bytes) -> bytes:
    octets = np.frombuffer(data, dtype=np.uint8)
    is_escape = octets == ESCAPE
    index = np.arange(len(octets))
    # In a run of 0x7D octets the 1st, 3rd, ... are Control Escapes and the
    # 2nd, 4th, ... escaped data: the parity of the position in the run decides.
    starts = is_escape.copy()
    starts[1:] &= ~is_escape[:-1]
    run_start = np.maximum.accumulate(np.where(starts, index, 0))
    marker = is_escape & ((index - run_start) & 1 == 0)
    flipped = np.zeros(len(octets), dtype=np.uint8)
    flipped[1:] = marker[:-1]
    return (octets ^ (flipped << 5))[~marker].tobytes()


def hdlc_encode(
    frame: bytes, accm: int = DEFAULT_ACCM, *, fcs_size: int = 16, leading_flag: bool = True
) -> bytes:
    """One frame as it goes on the line: [flag], escaped frame + FCS, flag."""
    frame = bytes(frame)
    if fcs_size == 16:
        rev = _REVERSE
        r = binascii.crc_hqx(frame.translate(rev), 0xFFFF)  # fcs16(frame), bit-reversed
        body = hdlc_escape(frame + bytes((rev[r >> 8] ^ 0xFF, rev[r & 0xFF] ^ 0xFF)), accm)
    else:
        body = hdlc_escape(frame + fcs_bytes(frame, fcs_size), accm)
    return (_FLAG + body + _FLAG) if leading_flag else (body + _FLAG)


class DecodedFrame(NamedTuple):
    """A good frame off the line: PPP frame without FCS, and what it cost on the wire."""

    frame: bytes
    wire_octets: int  # escaped frame + FCS + closing flag
    escapes: int  # Control Escape octets in it
    fcs_octets: int = 2  # 4 with a 32-bit FCS


class HdlcDecoder:
    """Incremental RFC 1662 async-HDLC deframer (never raises on line input).

    ``receive(data)`` returns the good frames (without FCS) completed by ``data``.
    ``receive_frames(data)`` does the same with :class:`DecodedFrame` records.
    Counters: ``bad_fcs``, ``runts``, ``aborts``, ``too_long``, ``frames``,
    ``lcp_fcs16_accepted`` (LCP frames taken with a 16-bit FCS in 32-bit mode);
    ``losses`` is the sum of the first four (a frame lost on the line).

    A caller that splits the line's octets at flags itself can feed the pieces
    with :meth:`frame_ended` (octets before a flag) and :meth:`feed` (octets
    with no flag), which is what :meth:`receive_frames` does.
    """

    def __init__(self, *, accm: int = DEFAULT_ACCM, max_frame: int = 1500 + 8, fcs_size: int = 16) -> None:
        self.max_frame = max_frame  # longest frame (address .. FCS) accepted
        self.set_fcs_size(fcs_size)
        self.frames = 0
        self.lcp_fcs16_accepted = 0
        self.bad_fcs = 0
        self.runts = 0
        self.aborts = 0
        self.too_long = 0
        self.losses = 0
        self.octets_discarded = 0
        self._buf = bytearray()
        self._discarding = False  # a too-long frame is being skipped until the next flag
        self.set_accm(accm)

    def set_accm(self, accm: int) -> None:
        """Receive ACCM: control chars flagged here are dropped if they arrive un-escaped."""
        self.accm = accm
        self._drop = bytes(c for c in range(32) if accm >> c & 1)

    def set_fcs_size(self, bits: int) -> None:
        """The FCS the peer sends: 16 (the default) or 32 bits (RFC 1570 FCS-Alternatives)."""
        if bits not in (16, 32):
            raise ValueError(f"FCS size must be 16 or 32 bits, not {bits!r}")
        self.fcs_size = bits

    def receive(self, data: bytes) -> list[bytes]:
        return [f.frame for f in self.receive_frames(data)]

    def receive_frames(self, data: bytes) -> list[DecodedFrame]:
        if FLAG not in data:
            self.feed(data)
            return []
        parts = data.split(_FLAG)
        out: list[DecodedFrame] = []
        for piece in parts[:-1]:
            f = self.frame_ended(piece)
            if f is not None:
                out.append(f)
        self.feed(parts[-1])
        return out

    def feed(self, data: bytes) -> None:
        """Octets with no flag in them: the middle of a frame."""
        if self._discarding:
            self.octets_discarded += len(data)
            return
        buf = self._buf
        buf += data
        if len(buf) > 2 * self.max_frame + 2:
            self.too_long += 1
            self.losses += 1
            self.octets_discarded += len(buf)
            buf.clear()
            self._discarding = True

    def frame_ended(self, data: bytes) -> DecodedFrame | None:
        """Octets up to a flag: they end the frame begun by what was fed before
        (the good frame, or None for inter-frame fill and lost frames)."""
        if self._discarding:  # the rest of a too-long frame
            self.octets_discarded += len(data)
            self._discarding = False
            self._buf.clear()
            return None
        buf = self._buf
        if buf:
            raw = bytes(buf) + data
            buf.clear()
        else:
            raw = data
        return self._frame(raw) if raw else None

    def _frame(self, raw: bytes) -> DecodedFrame | None:
        if (len(raw) - len(raw.rstrip(b"\x7d"))) & 1:  # 0x7D 0x7E: abort sequence (RFC 1662 4.4.1)
            self.aborts += 1
            self.losses += 1
            self.octets_discarded += len(raw) + 1
            return None
        clean = raw.translate(None, self._drop) if self._drop else raw
        body = hdlc_unescape(clean)
        n_fcs = 4 if self.fcs_size == 32 else 2
        if len(body) < n_fcs + 2:
            self.runts += 1
            self.losses += 1
            self.octets_discarded += len(raw) + 1
            return None
        if len(body) > self.max_frame:
            self.too_long += 1
            self.losses += 1
            self.octets_discarded += len(raw) + 1
            return None
        if self.fcs_size == 32 and fcs32(body) != PPP_GOODFCS32:
            n_fcs = 2  # the peer's LCP may already be back on the default FCS
            if not (body.startswith(_LCP_HEADER) and fcs16(body) == PPP_GOODFCS16):
                n_fcs = 0
            else:
                self.lcp_fcs16_accepted += 1
        elif self.fcs_size == 16 and fcs16(body) != PPP_GOODFCS16:
            n_fcs = 0
        if not n_fcs:
            self.bad_fcs += 1
            self.losses += 1
            self.octets_discarded += len(raw) + 1
            return None
        self.frames += 1
        return DecodedFrame(body[:-n_fcs], len(raw) + 1, len(clean) - len(body), n_fcs)

    def clear(self) -> None:
        """Forget a partly received frame (the line dropped); counters are kept."""
        self._buf.clear()
        self._discarding = False

    @property
    def pending(self) -> int:
        """Octets held of a frame not yet closed by a flag."""
        return len(self._buf)


def implementation(name: str) -> tuple[Callable[..., bytes], type]:
    """(encoder, decoder class) of implementation ``"c"`` or ``"python"``.

    Both take :func:`hdlc_encode`'s arguments and :class:`HdlcDecoder`'s.  The
    compiled one raises ImportError with the command that builds it when it
    is not built: never a silent switch to the reference.
    """

    def compiled() -> tuple[Callable[..., bytes], type]:
        _hdlc = load("dialsim.proto._hdlc", "the compiled async-HDLC framing")
        return _hdlc.encode, _hdlc.Decoder

    return pick(name, "HDLC", (hdlc_encode, HdlcDecoder), compiled)


__all__ = [
    "IMPLEMENTATIONS",
    "implementation",
    "FLAG",
    "ESCAPE",
    "DEFAULT_ACCM",
    "PPP_GOODFCS16",
    "PPP_GOODFCS32",
    "fcs16",
    "fcs32",
    "fcs_bytes",
    "ppp_header",
    "parse_ppp_header",
    "hdlc_escape",
    "hdlc_unescape",
    "hdlc_encode",
    "DecodedFrame",
    "HdlcDecoder",
]
