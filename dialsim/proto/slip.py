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
done by :mod:`dialsim.proto.vj` (its compiled classes); this module only frames it.

No per-octet Python work: escaping and un-escaping are ``bytes.replace``, the
decoder splits what arrived on END once and counts escapes with
``bytes.count``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialsim.proto import vj as vjmod
from dialsim.proto.events import Event, FrameReceived, FrameSent, IpPacketReceived
from dialsim.proto.octets import OctetTally, add_frame, add_packet

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

SLIP_DEFAULT_MTU = 1006  # RFC 1055: "the Berkeley UNIX SLIP drivers use ... 1006 bytes"

_END = bytes([END])
ESC_OCTET = b"\xdb"
# RFC 1144 runs compiled (_vj.c, the twin of vj.py's reference classes); not built: ImportError
VjCompressor, VjDecompressor = vjmod.implementation("c")


def slip_escape(packet: bytes) -> bytes:
    """Escape one datagram (no END bytes added)."""
    # `in` looks with memchr; replace would count octet by octet even when there are none
    if ESC_OCTET in packet:
        packet = packet.replace(b"\xdb", b"\xdb\xdd")
    if END in packet:
        packet = packet.replace(b"\xc0", b"\xdb\xdc")
    return packet


def slip_unescape(data: bytes) -> bytes:
    """Undo :func:`slip_escape`.

    An escape is always ESC followed by ESC_END or ESC_ESC, and ESC never stands
    unescaped, so two ordered replacements decode exactly.
    """
    return data.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")


def slip_encode(packet: bytes) -> bytes:
    """One datagram as it goes on the line: END, escaped datagram, END."""
    return _END + slip_escape(packet) + _END


@dataclass(frozen=True, slots=True)
class SlipFrame:
    """A frame off the line, un-escaped, and what it cost on the wire."""

    frame: bytes
    wire_octets: int  # escaped frame + its END + any spare ENDs before it
    escapes: int  # ESC octets removed
    end_octets: int  # the ENDs counted in wire_octets


class SlipDecoder:
    """Incremental SLIP deframer: feed line bytes, get whole frames back."""

    def __init__(self, max_frame: int = SLIP_DEFAULT_MTU) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self.frames_too_long = 0
        self.bad_escapes = 0
        self._spare_ends = 0

    def receive(self, data: bytes) -> list[bytes]:
        return [f.frame for f in self.receive_frames(data)]

    def receive_frames(self, data: bytes) -> list[SlipFrame]:
        """The frames completed by ``data`` with their wire accounting."""
        self._buf += data
        if END not in data:
            if len(self._buf) > 2 * self.max_frame + 2:
                # Runaway frame with no END: discard what we hold so far.
                self._buf.clear()
                self.frames_too_long += 1
            return []
        buf = bytes(self._buf)
        frames = []
        start = 0
        end = buf.find(_END)  # memchr, where split would look at every octet
        while end >= 0:
            raw = buf[start:end]
            start = end + 1
            end = buf.find(_END, start)
            if not raw:
                self._spare_ends += 1  # the flushing END sent before a frame
                continue
            escaped = ESC_OCTET in raw
            frame = slip_unescape(raw) if escaped else raw
            if len(frame) > self.max_frame:
                self.frames_too_long += 1
                continue
            if escaped:
                self.bad_escapes += (
                    raw.count(b"\xdb") - raw.count(b"\xdb\xdc") - raw.count(b"\xdb\xdd")
                )
            ends = 1 + self._spare_ends
            self._spare_ends = 0
            frames.append(SlipFrame(frame, len(raw) + ends, len(raw) - len(frame), ends))
        self._buf = bytearray(buf[start:])
        return frames


# --------------------------------------------------------------------------
# The link machine: SLIP or CSLIP carrying IPv4 datagrams.

# What a SLIP frame carries, as the PPP protocol number of the same thing.
KIND_PROTOCOLS = {"ip": 0x0021, "compressed_tcp": 0x002D, "uncompressed_tcp": 0x002F, "error": 0}


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


class SlipLink:
    """A SLIP or CSLIP line end (sans-IO); the machine shape of :mod:`dialsim.proto.machine`.

    ``receive(data, now)`` takes line bytes; ``output(now)`` gives the frames
    to write, one per item; ``send_ip(packet, now)`` queues a datagram;
    ``events()`` hands out :class:`FrameSent`, :class:`FrameReceived` and
    :class:`IpPacketReceived` (``capture`` is the datagram; ``flag_octets``
    the END octets; after ``tally_into(sent, received)`` no frame events, the
    frames are added up there).  SLIP has no link negotiation, so the link is up as soon
    as it exists, and no timer.
    """

    def __init__(self, *, mtu: int = SLIP_DEFAULT_MTU, vj: bool = False, vj_slots: int = 16) -> None:
        self.mtu = mtu
        self.vj = vj
        self._decoder = SlipDecoder(max_frame=mtu + 8)
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self.counters = SlipCounters()
        self._tally_sent: OctetTally | None = None
        self._tally_received: OctetTally | None = None
        if vj:
            self._compressor = VjCompressor(slots=vj_slots)
            self._decompressor = VjDecompressor(slots=vj_slots)

    def tally_into(self, sent: OctetTally | None, received: OctetTally | None) -> None:
        """Add every frame to ``sent`` / ``received`` instead of queueing its
        FrameSent / FrameReceived (see :mod:`dialsim.proto.octets`); None, None: events again."""
        self._tally_sent = sent
        self._tally_received = received

    # -- sending
    def send_ip(self, packet: bytes, now: float) -> None:
        packet = bytes(packet)
        if self.vj:
            kind_code, data = self._compressor.compress(packet)
            frame = vjmod.cslip_encode(kind_code, data)
            kind = vjmod.KIND_NAMES[kind_code]
        else:
            frame, kind = packet, "ip"
        wire = slip_encode(frame)
        self._out.append(wire)
        c = self.counters
        c.frames_sent += 1
        c.octets_ip_sent += len(packet)
        c.octets_frame_sent += len(frame)
        c.octets_wire_sent += len(wire)
        t = self._tally_sent
        if t is None:
            escapes = len(wire) - 2 - len(frame)
            self._events.append(
                FrameSent(KIND_PROTOCOLS[kind], kind, packet, frame, packet, len(wire),
                          escape_octets=escapes, flag_octets=2)
            )  # fmt: skip
        else:
            add_frame(t, KIND_PROTOCOLS[kind], len(frame), len(wire))
            if packet:
                add_packet(t, packet)

    def output(self, now: float) -> list[bytes]:
        """The frames to write to the line, oldest first, one per item."""
        out, self._out = self._out, []
        return out

    # -- receiving
    def receive(self, data: bytes, now: float) -> None:
        c = self.counters
        c.octets_wire_received += len(data)
        for f in self._decoder.receive_frames(data):
            frame = f.frame
            c.frames_received += 1
            c.octets_frame_received += len(frame)
            if self.vj:
                kind_code, body = vjmod.cslip_decode(frame)
                packet = self._decompressor.decompress(kind_code, body)
                kind = vjmod.KIND_NAMES.get(kind_code, "error")
            else:
                packet, kind = frame, "ip"
            t = self._tally_received
            if t is None:
                self._events.append(
                    FrameReceived(
                        KIND_PROTOCOLS[kind], kind, packet or b"", frame, packet or b"", f.wire_octets,
                        escape_octets=f.escapes, flag_octets=f.end_octets,
                    )  # fmt: skip
                )
            else:  # a CSLIP frame of no known type counts as control
                add_frame(t, KIND_PROTOCOLS[kind], len(frame), f.wire_octets)
            if packet is None:
                c.frames_dropped += 1
                continue
            c.octets_ip_received += len(packet)
            if t is not None:
                add_packet(t, packet)
            self._events.append(IpPacketReceived(packet))

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        return None
