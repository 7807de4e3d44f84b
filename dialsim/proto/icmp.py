"""ICMP for IPv4 (RFC 792): echo request / reply, destination unreachable.

Scope: what a small host needs -- answer pings, build echo requests, and build
"destination unreachable" (protocol 2, port 3) quoting the offending datagram's
IP header and first 8 data octets (RFC 792; RFC 1122 3.2.2 allows more).
:func:`parse_icmp` is total: a short message or a bad checksum gives ``None``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dialsim.proto.ipv4 import internet_checksum

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11

CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3

_HDR = struct.Struct("!BBHHH")


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """A parsed ICMP message.  ``ident``/``seq`` are the second header word's two
    halves (meaningful for echo); ``data`` is everything after the 8-octet header."""

    type: int
    code: int
    ident: int
    seq: int
    data: bytes


def _build(type_: int, code: int, word1: int, word2: int, data: bytes) -> bytes:
    body = _HDR.pack(type_, code, 0, word1 & 0xFFFF, word2 & 0xFFFF) + bytes(data)
    csum = internet_checksum(body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


def build_echo_request(ident: int, seq: int, data: bytes = b"") -> bytes:
    return _build(ICMP_ECHO_REQUEST, 0, ident, seq, data)


def build_echo_reply(ident: int, seq: int, data: bytes = b"") -> bytes:
    return _build(ICMP_ECHO_REPLY, 0, ident, seq, data)


def echo_reply_for(request: IcmpMessage) -> bytes:
    """The reply to an echo request: same identifier, sequence number and data."""
    return build_echo_reply(request.ident, request.seq, request.data)


def build_dest_unreachable(code: int, datagram: bytes) -> bytes:
    """Destination unreachable quoting ``datagram``'s IP header + 8 data octets."""
    hlen = (datagram[0] & 0x0F) * 4 if datagram else 0
    return _build(ICMP_DEST_UNREACHABLE, code, 0, 0, bytes(datagram[: hlen + 8]))


def build_port_unreachable(datagram: bytes) -> bytes:
    return build_dest_unreachable(CODE_PORT_UNREACHABLE, datagram)


def build_protocol_unreachable(datagram: bytes) -> bytes:
    return build_dest_unreachable(CODE_PROTOCOL_UNREACHABLE, datagram)


def parse_icmp(data: bytes) -> IcmpMessage | None:
    """Parse an ICMP message (the IPv4 payload); ``None`` if short or corrupt."""
    if len(data) < _HDR.size or internet_checksum(data) != 0:
        return None
    type_, code, _, w1, w2 = _HDR.unpack_from(data)
    return IcmpMessage(type_, code, w1, w2, bytes(data[_HDR.size :]))


def is_error_type(type_: int) -> bool:
    """ICMP error messages (never answered with another ICMP error, RFC 1122 3.2.2)."""
    return type_ in (3, 4, 5, 11, 12)


__all__ = [
    "ICMP_ECHO_REPLY",
    "ICMP_DEST_UNREACHABLE",
    "ICMP_ECHO_REQUEST",
    "ICMP_TIME_EXCEEDED",
    "CODE_PROTOCOL_UNREACHABLE",
    "CODE_PORT_UNREACHABLE",
    "IcmpMessage",
    "build_echo_request",
    "build_echo_reply",
    "echo_reply_for",
    "build_dest_unreachable",
    "build_port_unreachable",
    "build_protocol_unreachable",
    "parse_icmp",
    "is_error_type",
]
