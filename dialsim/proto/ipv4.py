"""IPv4 datagrams (RFC 791) and the Internet checksum (RFC 1071).

Scope: building and parsing whole IPv4 datagrams for a host that sends and
receives unfragmented datagrams.  Options are skipped on receipt (the header
length says how many octets) and never sent.

Fragments are not reassembled.  :func:`parse_packet` still returns a fragment
(``more_fragments`` or ``fragment_offset`` set, see :attr:`IPv4Packet.is_fragment`)
so that the caller -- :class:`dialsim.proto.netstack.NetStack` -- can drop it and
count it.  :func:`parse_packet` is total: bad input gives ``None``, never an
exception.

Two implementations of the codec give the same octets and records, and the
choice is explicit (:func:`implementation`): the functions here are the
readable reference; their compiled twin is ``dialsim/proto/_tcpip.c``
(``tests/unit/test_tcpip_c.py`` holds the two together).  The per-segment
path (:mod:`dialsim.proto.netstack`) uses the compiled one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from dialsim.compiled import IMPLEMENTATIONS, load, pick

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

IPV4_HEADER_LENGTH = 20

_HEADER = struct.Struct("!BBHHHBBH4s4s")


def internet_checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of ``data`` (an odd length is padded with a zero).

    The one's-complement sum of 16-bit words equals the whole buffer read as one
    big-endian integer reduced modulo 0xFFFF (since 2**16 == 1 mod 0xFFFF), with
    the one's-complement "negative zero" 0xFFFF standing for any non-zero
    multiple of 0xFFFF.  That keeps the work in C: no loop over the words.
    Checking a received header or segment: the checksum over it, checksum
    field included, is 0.  (The same residue lets :func:`build_packet` add
    the header fields as integers instead of packing the header twice.)
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    return ~s & 0xFFFF


@lru_cache(maxsize=256)
def ip_to_bytes(address: str) -> bytes:
    """Dotted quad to 4 octets (``ValueError`` for anything else)."""
    parts = address.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {address!r}")
    return bytes(int(p) for p in parts)


@lru_cache(maxsize=256)
def ip_to_str(octets: bytes) -> str:
    """4 octets to a dotted quad."""
    return ".".join(map(str, octets))


@lru_cache(maxsize=256)
def _addresses(src: str, dst: str) -> tuple[bytes, bytes, int]:
    """Both addresses as octets, and their 16-bit words summed modulo 0xFFFF."""
    s, d = ip_to_bytes(src), ip_to_bytes(dst)
    return s, d, int.from_bytes(s + d, "big") % 0xFFFF


class IPv4Packet(NamedTuple):
    """One parsed (or to-be-built) IPv4 datagram (immutable)."""

    src: str
    dst: str
    protocol: int
    payload: bytes
    ttl: int = 64
    ident: int = 0
    tos: int = 0
    flags_df: bool = False
    header_length: int = IPV4_HEADER_LENGTH
    more_fragments: bool = False
    fragment_offset: int = 0  # in octets

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0

    def to_bytes(self) -> bytes:
        """Build it again (options are not kept: the header is 20 octets)."""
        return build_packet(
            self.src,
            self.dst,
            self.protocol,
            self.payload,
            ttl=self.ttl,
            ident=self.ident,
            tos=self.tos,
            flags_df=self.flags_df,
        )


def build_packet(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
    flags_df: bool = False,
) -> bytes:
    """A whole datagram: a 20-octet header with its checksum, then ``payload``."""
    src_octets, dst_octets, _ = _addresses(src, dst)
    return build_datagram(src_octets, dst_octets, protocol, payload, ttl, ident, tos, flags_df)


def build_datagram(
    src_octets: bytes,
    dst_octets: bytes,
    protocol: int,
    payload: bytes,
    ttl: int = 64,
    ident: int = 0,
    tos: int = 0,
    flags_df: bool = False,
) -> bytes:
    """:func:`build_packet` with the addresses as 4 octets each."""
    total = IPV4_HEADER_LENGTH + len(payload)
    if total > 0xFFFF:
        raise ValueError("IPv4 datagram longer than 65535 octets")
    if len(src_octets) != 4 or len(dst_octets) != 4:
        raise ValueError("IPv4 addresses are 4 octets")
    address_sum = int.from_bytes(bytes(src_octets) + bytes(dst_octets), "big") % 0xFFFF
    tos &= 0xFF
    ident &= 0xFFFF
    frag = 0x4000 if flags_df else 0
    ttl_protocol = (ttl & 0xFF) << 8 | (protocol & 0xFF)
    # The header's words summed modulo 0xFFFF (see internet_checksum); 0 goes out as 0.
    csum = -(0x4500 + tos + total + ident + frag + ttl_protocol + address_sum) % 0xFFFF
    header = _HEADER.pack(
        0x45, tos, total, ident, frag, ttl_protocol >> 8, ttl_protocol & 0xFF, csum,
        bytes(src_octets), bytes(dst_octets),
    )
    return header + payload


def parse_packet(data: bytes) -> IPv4Packet | None:
    """Parse one datagram; ``None`` for a bad version, IHL, length or checksum.

    Octets after the total length (link padding) are ignored.
    """
    size = len(data)
    if size < IPV4_HEADER_LENGTH:
        return None
    vihl = data[0]
    if vihl >> 4 != 4:
        return None
    hlen = (vihl & 0x0F) * 4
    if hlen < IPV4_HEADER_LENGTH or size < hlen:
        return None
    (_, tos, total, ident, frag, ttl, proto, _, src, dst) = _HEADER.unpack_from(data)
    if total < hlen or total > size:
        return None
    if int.from_bytes(data[:hlen], "big") % 0xFFFF:  # checksum (hlen is even; version 4: not 0)
        return None
    # src, dst, protocol, payload, ttl, ident, tos, flags_df, header_length,
    # more_fragments, fragment_offset (positional: a NamedTuple builds faster so)
    return IPv4Packet(
        ip_to_str(src), ip_to_str(dst), proto, bytes(data[hlen:total]), ttl, ident, tos,
        bool(frag & 0x4000), hlen, bool(frag & 0x2000), (frag & 0x1FFF) * 8,
    )


Builder = Callable[..., bytes]
Parser = Callable[[bytes], "IPv4Packet | None"]


def implementation(name: str) -> tuple[Builder, Parser]:
    """(:func:`build_datagram`, :func:`parse_packet`) of implementation ``"c"`` or
    ``"python"`` (the compiled ones take positional arguments only)."""

    def compiled() -> tuple[Builder, Parser]:
        _tcpip = load("dialsim.proto._tcpip", "the compiled IPv4/TCP codec")
        _tcpip.register_packet(IPv4Packet)
        return _tcpip.build_datagram, _tcpip.parse_packet

    return pick(name, "IPv4 codec", (build_datagram, parse_packet), compiled)


__all__ = [
    "IMPLEMENTATIONS",
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "IPV4_HEADER_LENGTH",
    "IPv4Packet",
    "build_datagram",
    "build_packet",
    "implementation",
    "parse_packet",
    "internet_checksum",
    "ip_to_bytes",
    "ip_to_str",
]
