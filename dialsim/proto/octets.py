"""The octets a serial line's data frames carry, by layer: the tally a framing
(PPP, SLIP, CSLIP) can keep for the host above it instead of an event per frame.

A host that only adds frames up (and keeps no capture) hands the framing one
:class:`OctetTally` per direction; the framing then adds each data frame
(IP, VJ-compressed or uncompressed TCP) to it as it sends or takes it, and
queues a :class:`~dialsim.proto.events.FrameSent` or
:class:`~dialsim.proto.events.FrameReceived` only for the other frames (link
control, a frame it discards).  The sums are those the frame events give:
``frame_octets`` the link-layer payloads (after VJ compression),
``wire_octets`` the same frames on the line (flags, escapes, FCS), ``packets``
the datagrams, ``app`` their TCP payload (:func:`tcp_payload_length`, the
reference; the links count with its compiled twin in ``_vj.c``,
:func:`implementation`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from dialsim.compiled import load, not_built, pick

__all__ = ["DATA_PROTOCOLS", "OctetTally", "add_frame", "add_packet", "implementation",
           "tcp_payload_length"]

# Frames that carry datagrams (PPP's IP and VJ protocol numbers, which SLIP's
# frames use too); any other frame is link control.
DATA_PROTOCOLS = frozenset((0x21, 0x2D, 0x2F))


class OctetTally(Protocol):
    """One direction's sums (``hosts.endpoint.LayerBytes`` is one)."""

    app: int
    frame_octets: int
    wire_octets: int
    packets: int
    control_octets: int


_IP_FIELDS = struct.Struct("!BxH5xB")  # version/IHL, total length, protocol


def tcp_payload_length(packet: bytes) -> int:
    """Bytes of TCP payload in an IPv4/TCP datagram (0 for anything else)."""
    size = len(packet)
    if size < 20:
        return 0
    vihl, total, protocol = _IP_FIELDS.unpack_from(packet)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or protocol != 6 or size < ihl + 20:
        return 0
    n = (total if total < size else size) - ihl - (packet[ihl + 12] >> 4) * 4
    return n if n > 0 else 0


def implementation(name: str) -> Callable[[bytes], int]:
    """:func:`tcp_payload_length` of implementation ``"c"`` (``dialsim.proto._vj``'s,
    built by ``pip install -e .``; tests/unit/test_link_tally.py holds it to the
    reference) or ``"python"`` (the reference above).  Not built: ImportError."""

    def compiled() -> Callable[[bytes], int]:
        _vj = load("dialsim.proto._vj", "the compiled VJ header compression")
        try:
            return _vj.tcp_payload_length
        except AttributeError as exc:  # built before it had one
            raise not_built("dialsim.proto._vj", "the compiled TCP payload length") from exc

    return pick(name, "TCP payload length", tcp_payload_length, compiled)


# What the tallies count a datagram's TCP payload with
_payload_length = implementation("c")


def add_frame(tally: OctetTally, protocol: int, frame_octets: int, wire_octets: int) -> None:
    """One frame on the line: a data frame's payload (``frame_octets``, after VJ
    compression) and its octets on the wire, or a link control frame's wire octets."""
    if protocol in DATA_PROTOCOLS:
        tally.frame_octets += frame_octets
        tally.wire_octets += wire_octets
    else:
        tally.control_octets += wire_octets


def add_packet(tally: OctetTally, packet: bytes) -> None:
    """One datagram carried, and its TCP payload."""
    tally.packets += 1
    tally.app += _payload_length(packet)
