"""SLIP (RFC 1055) and CSLIP (SLIP carrying RFC 1144 Van Jacobson compressed TCP/IP).

Scope: the framing of IPv4 datagrams on an asynchronous serial line.  A frame is
the datagram with END (0xC0) and ESC (0xDB) escaped as ESC ESC_END (0xDB 0xDC)
and ESC ESC_ESC (0xDB 0xDD), ended by END.  Like the RFC's sample driver we also
send an END before each frame, which flushes any line noise the receiver has
collected; empty frames that produces are ignored on receipt.

RFC 1055 has no checksum, no type field and no negotiation: a corrupted frame is
passed up and the IPv4 header checksum or TCP checksum has to catch it.  A
frame longer than the receive limit is discarded and counted.  An ESC followed
by anything but ESC_END/ESC_ESC is a protocol violation; as the RFC's sample
code suggests, the byte is kept as it is.

CSLIP (RFC 1144 appendix): the first octet of a frame tells its type: 0x45..
IPv4, 0x70..0x7F an uncompressed-TCP frame whose first octet carries the
connection number, 0x80.. a compressed TCP header.  The compression itself is
done by :mod:`dialsim.proto.vj`; this module only frames it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialsim.proto import vj as vjmod

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

SLIP_DEFAULT_MTU = 1006  # RFC 1055: "the Berkeley UNIX SLIP drivers use ... 1006 bytes"

_END = bytes([END])


def slip_escape(packet: bytes) -> bytes:
    """Escape one datagram (no END bytes added)."""
    return packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")


def slip_unescape(data: bytes) -> bytes:
    """Undo :func:`slip_escape`.

    An escape is always ESC followed by ESC_END or ESC_ESC, and ESC never stands
    unescaped, so two ordered replacements decode exactly.
    """
    return data.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")


def slip_encode(packet: bytes) -> bytes:
    """One datagram as it goes on the line: END, escaped datagram, END."""
    return _END + slip_escape(packet) + _END


class SlipDecoder:
    """Incremental SLIP deframer: feed line bytes, get whole frames back."""

    def __init__(self, max_frame: int = SLIP_DEFAULT_MTU) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self.frames_too_long = 0
        self.bad_escapes = 0
        self.last_wire_lengths: list[int] = []
        self._spare_ends = 0

    def receive(self, data: bytes) -> list[bytes]:
        self.last_wire_lengths = []
        self._buf += data
        if END not in data:
            if len(self._buf) > 2 * self.max_frame + 2:
                # Runaway frame with no END: discard what we hold so far.
                self._buf.clear()
                self.frames_too_long += 1
            return []
        parts = bytes(self._buf).split(_END)
        self._buf = bytearray(parts.pop())
        frames = []
        for raw in parts:
            if not raw:
                self._spare_ends += 1  # the flushing END sent before a frame
                continue
            frame = slip_unescape(raw)
            if len(frame) > self.max_frame:
                self.frames_too_long += 1
                continue
            self.bad_escapes += (
                raw.count(b"\xdb") - raw.count(b"\xdb\xdc") - raw.count(b"\xdb\xdd")
            )
            self.last_wire_lengths.append(len(raw) + 1 + self._spare_ends)
            self._spare_ends = 0
            frames.append(frame)
        return frames


# --------------------------------------------------------------------------
# The link machine: SLIP or CSLIP carrying IPv4 datagrams.


@dataclass(frozen=True, slots=True)
class IpPacketReceived:
    """A whole IPv4 datagram arrived (decompressed if CSLIP)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class FrameSent:
    """A frame went to the line: the datagram, the bytes after header compression,
    and the bytes on the wire (escaped and framed)."""

    packet: bytes
    frame: bytes
    wire_octets: int
    kind: str  # "ip", "uncompressed_tcp", "compressed_tcp"


@dataclass(frozen=True, slots=True)
class FrameReceived:
    frame: bytes
    wire_octets: int
    kind: str


@dataclass(slots=True)
class SlipCounters:
    frames_sent: int = 0
    frames_received: int = 0
    octets_ip_sent: int = 0
    octets_ip_received: int = 0
    octets_frame_sent: int = 0
    octets_frame_received: int = 0
    octets_wire_sent: int = 0
    octets_wire_received: int = 0
    frames_dropped: int = 0
    extra: dict = field(default_factory=dict)


class SlipLink:
    """A SLIP or CSLIP line end (sans-IO).

    ``receive(data, now)`` takes line bytes; ``data_to_send()`` gives line bytes;
    ``send_ip(packet, now)`` queues a datagram; ``events()`` drains
    :class:`IpPacketReceived`, :class:`FrameSent` and :class:`FrameReceived`.
    SLIP has no link negotiation, so the link is up as soon as it exists.
    """

    def __init__(self, *, mtu: int = SLIP_DEFAULT_MTU, vj: bool = False, vj_slots: int = 16) -> None:
        self.mtu = mtu
        self.vj = vj
        self._decoder = SlipDecoder(max_frame=mtu + 8)
        self._out = bytearray()
        self._events: list = []
        self.counters = SlipCounters()
        if vj:
            self._compressor = vjmod.VjCompressor(slots=vj_slots)
            self._decompressor = vjmod.VjDecompressor(slots=vj_slots)

    # -- sending
    def send_ip(self, packet: bytes, now: float = 0.0) -> None:
        if self.vj:
            kind_code, data = self._compressor.compress(packet)
            frame = vjmod.cslip_encode(kind_code, data)
            kind = vjmod.KIND_NAMES[kind_code]
        else:
            frame, kind = packet, "ip"
        wire = slip_encode(frame)
        self._out += wire
        c = self.counters
        c.frames_sent += 1
        c.octets_ip_sent += len(packet)
        c.octets_frame_sent += len(frame)
        c.octets_wire_sent += len(wire)
        self._events.append(FrameSent(packet, frame, len(wire), kind))

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- receiving
    def receive(self, data: bytes, now: float = 0.0) -> None:
        c = self.counters
        c.octets_wire_received += len(data)
        frames = self._decoder.receive(data)
        for frame, wire_len in zip(frames, self._decoder.last_wire_lengths, strict=True):
            c.frames_received += 1
            c.octets_frame_received += len(frame)
            if self.vj:
                kind_code, body = vjmod.cslip_decode(frame)
                packet = self._decompressor.decompress(kind_code, body)
                kind = vjmod.KIND_NAMES.get(kind_code, "error")
            else:
                packet, kind = frame, "ip"
            self._events.append(FrameReceived(frame, wire_len, kind))
            if packet is None:
                c.frames_dropped += 1
                continue
            c.octets_ip_received += len(packet)
            self._events.append(IpPacketReceived(packet))

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        return None
