"""TCP segments (RFC 9293 3.1): header codec, checksum and sequence arithmetic.

Scope:

- :func:`encode_segment` / :func:`build_segment` write a segment with its
  checksum; the only option written is MSS (kind 2, on a SYN).
- :func:`parse_segment` reads the header fields and the MSS option; other
  options (NOP, EOL, any length-delimited kind) are skipped, and a malformed
  option list is ignored from the bad option on.  It is total: a segment too
  short for its header gives ``None``, never an exception.  It does not check
  the checksum: :func:`checksum_ok` does.
- Sequence numbers compare and add modulo 2**32 (RFC 9293 3.4).

The checksum (RFC 9293 3.1, RFC 1071) covers a pseudo-header (source and
destination address, protocol 6, TCP length) and the segment.  The one's
complement sum of 16-bit words is the sum of the words modulo 0xFFFF, and
since 2**16 is 1 modulo 0xFFFF, any even-length run of octets read as one
big-endian integer has that same residue.  So a connection sums its
pseudo-header's addresses once (:func:`pseudo_header_sum`), the header fields
are added as plain integers, and the data is one ``int.from_bytes`` in C: no
concatenation, no loop over words.  A sum of zero is sent as checksum 0.

Two implementations of the codec give the same octets and records, and the
choice is explicit (:func:`implementation`): the functions here are the
readable reference; their compiled twin is ``dialsim/proto/_tcpip.c``
(``tests/unit/test_tcpip_c.py`` holds the two together).
:class:`dialsim.proto.tcp.TcpConnection` uses the compiled one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from dialsim.compiled import IMPLEMENTATIONS, load, pick
from dialsim.proto.ipv4 import PROTO_TCP, ip_to_bytes

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20

DEFAULT_MSS = 536  # RFC 9293 3.7.1 / RFC 1122 4.2.2.6: assumed when no option
TCP_HEADER_LENGTH = 20

_MASK = 0xFFFFFFFF
_HDR = struct.Struct("!HHIIHHHH")  # ports, seq, ack, data offset + flags, window, checksum, urgent
_MSS_OPTION = struct.Struct("!BBH")
_OFFSET_20 = (TCP_HEADER_LENGTH // 4) << 12
_OFFSET_24 = ((TCP_HEADER_LENGTH + 4) // 4) << 12

# -- sequence-number arithmetic modulo 2**32 (RFC 9293 3.4) ------------------


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & _MASK) > 0x7FFFFFFF


def seq_le(a: int, b: int) -> bool:
    return a == b or ((a - b) & _MASK) > 0x7FFFFFFF


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed distance in sequence space."""
    d = (a - b) & _MASK
    return d - 0x100000000 if d & 0x80000000 else d


def seq_add(a: int, n: int) -> int:
    return (a + n) & _MASK


# -- segments ----------------------------------------------------------------


class TcpSegment(NamedTuple):
    """A parsed TCP segment (header fields, MSS option if present, data)."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    data: bytes
    mss: int | None = None
    header_length: int = TCP_HEADER_LENGTH

    @property
    def seg_len(self) -> int:
        """SEG.LEN: data octets plus one each for SYN and FIN."""
        return len(self.data) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)


@lru_cache(maxsize=256)
def pseudo_header_sum(src: str, dst: str) -> int:
    """The pseudo-header's addresses and protocol summed modulo 0xFFFF (the
    same either way round; the TCP length is added per segment)."""
    return int.from_bytes(ip_to_bytes(src) + ip_to_bytes(dst) + bytes((0, PROTO_TCP)), "big") % 0xFFFF


def _octets_sum(octets: bytes) -> int:
    """``octets`` as one integer, padded to even length (congruent to its word sum)."""
    n = int.from_bytes(octets, "big")
    return n << 8 if len(octets) & 1 else n


def checksum_ok(pseudo: int, segment: bytes) -> bool:
    """Does ``segment`` (checksum field included) sum to zero with its pseudo-header?"""
    size = len(segment)
    n = int.from_bytes(segment, "big")
    return (pseudo + size + (n << 8 if size & 1 else n)) % 0xFFFF == 0


def tcp_checksum(src: str, dst: str, segment: bytes) -> int:
    """The checksum over the RFC 9293 3.1 pseudo-header and ``segment`` (0 for a correct one)."""
    return -(pseudo_header_sum(src, dst) + len(segment) + _octets_sum(segment)) % 0xFFFF


def verify_checksum(src: str, dst: str, segment: bytes) -> bool:
    return checksum_ok(pseudo_header_sum(src, dst), segment)


def encode_segment(
    pseudo: int,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    data: bytes = b"",
    mss: int | None = None,
) -> bytes:
    """One raw segment with its checksum, given its pseudo-header's sum (``mss`` adds the option)."""
    seq &= _MASK
    ack &= _MASK
    flags &= 0x3F
    window = 0 if window < 0 else 0xFFFF if window > 0xFFFF else window
    if mss is None:
        word, hlen, opts = _OFFSET_20 | flags, TCP_HEADER_LENGTH, b""
    else:
        word, hlen, opts = _OFFSET_24 | flags, TCP_HEADER_LENGTH + 4, _MSS_OPTION.pack(2, 4, mss)
        pseudo += 0x0204 + mss
    size = len(data)
    n = int.from_bytes(data, "big")
    total = pseudo + hlen + size + src_port + dst_port + seq + ack + word + window
    csum = -(total + (n << 8 if size & 1 else n)) % 0xFFFF
    return _HDR.pack(src_port, dst_port, seq, ack, word, window, csum, 0) + opts + data


def build_segment(
    src: str,
    dst: str,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    data: bytes = b"",
    *,
    mss: int | None = None,
) -> bytes:
    """One raw segment from ``src`` to ``dst`` with its checksum (``mss`` adds the MSS option)."""
    pseudo = pseudo_header_sum(src, dst)
    return encode_segment(pseudo, src_port, dst_port, seq, ack, flags, window, bytes(data), mss)


def parse_segment(segment: bytes) -> TcpSegment | None:
    """Header fields of a raw segment (no checksum check); ``None`` if malformed."""
    size = len(segment)
    if size < TCP_HEADER_LENGTH:
        return None
    sport, dport, seq, ack, word, window, _, _ = _HDR.unpack_from(segment)
    hlen = (word >> 12) * 4
    if hlen < TCP_HEADER_LENGTH or hlen > size:
        return None
    mss = _mss_option(segment[TCP_HEADER_LENGTH:hlen]) if hlen > TCP_HEADER_LENGTH else None
    return TcpSegment(sport, dport, seq, ack, word & 0x3F, window, bytes(segment[hlen:]), mss, hlen)


def checked_segment(pseudo: int, segment: bytes) -> TcpSegment | None:
    """:func:`parse_segment` of a segment whose checksum is right with its
    pseudo-header's sum ``pseudo``; ``None`` for a bad checksum or a malformed one."""
    return parse_segment(segment) if checksum_ok(pseudo, segment) else None


def _mss_option(opts: bytes) -> int | None:
    """The MSS option's value in an option list, if there is one."""
    mss = None
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            break  # malformed option list: ignore the rest
        if kind == 2 and opts[i + 1] == 4:
            mss = int.from_bytes(opts[i + 2 : i + 4], "big")
        i += opts[i + 1]
    return mss


Encoder = Callable[..., bytes]
Parser = Callable[[bytes], "TcpSegment | None"]
CheckedParser = Callable[[int, bytes], "TcpSegment | None"]


def implementation(name: str) -> tuple[Encoder, Parser, CheckedParser]:
    """(:func:`encode_segment`, :func:`parse_segment`, :func:`checked_segment`) of
    implementation ``"c"`` or ``"python"`` (the compiled ones take positional
    arguments only)."""

    def compiled() -> tuple[Encoder, Parser, CheckedParser]:
        _tcpip = load("dialsim.proto._tcpip", "the compiled IPv4/TCP codec")
        _tcpip.register_segment(TcpSegment)
        return _tcpip.encode_segment, _tcpip.parse_segment, _tcpip.checked_segment

    return pick(name, "TCP segment codec", (encode_segment, parse_segment, checked_segment), compiled)


__all__ = [
    "ACK",
    "DEFAULT_MSS",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "TCP_HEADER_LENGTH",
    "URG",
    "TcpSegment",
    "IMPLEMENTATIONS",
    "build_segment",
    "checked_segment",
    "checksum_ok",
    "encode_segment",
    "implementation",
    "parse_segment",
    "pseudo_header_sum",
    "seq_add",
    "seq_diff",
    "seq_le",
    "seq_lt",
    "tcp_checksum",
    "verify_checksum",
]
