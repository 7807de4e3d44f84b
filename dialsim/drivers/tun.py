"""The "framing" of a Linux TUN device: whole IPv4 datagrams, no link bytes (RFC 791).

Scope: lets an :class:`dialsim.hosts.endpoint.IpEndpoint` run on a TUN file
descriptor opened with ``IFF_TUN | IFF_NO_PI`` (Linux ``Documentation/networking/
tuntap.rst``), so dialsim's user-space IPv4/TCP stack talks to the kernel's.  A TUN
device carries exactly one IP datagram per ``read``/``write`` and adds no
framing, header or checksum of its own, so this machine only:

- turns each datagram handed to :meth:`TunFraming.send_ip` into one item of
  :meth:`TunFraming.output` (never two merged, since the driver writes each
  item as one datagram);
- turns each chunk read (:meth:`TunFraming.receive`) into one
  :class:`~dialsim.proto.events.IpPacketReceived`; anything that is not IPv4
  (IPv6 router solicitations and other kernel housekeeping, empty reads) is
  dropped and counted, never raised;
- reports :class:`~dialsim.proto.events.FrameSent` and
  :class:`~dialsim.proto.events.FrameReceived` with ``wire_octets`` equal to
  the datagram length (zero framing octets) and ``kind == "ip"``, so the
  endpoint's per-layer byte account works unchanged.

It is sans-IO like the framings in :mod:`dialsim.proto` (no clock, no fd): the
fd itself is driven by :class:`dialsim.drivers.direct.DirectLine` with
``packet_fd=True``.  There is no link negotiation and no timer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialsim.proto.events import Event, FrameReceived, FrameSent, IpPacketReceived

TUN_DEFAULT_MTU = 1500


@dataclass(slots=True)
class TunCounters:
    frames_sent: int = 0
    frames_received: int = 0
    octets_sent: int = 0
    octets_received: int = 0
    non_ipv4_dropped: int = 0  # IPv6 housekeeping, empty or truncated reads
    too_long_dropped: int = 0


class TunFraming:
    """One end of a TUN "line": a datagram in is a datagram out (sans-IO).

    ``send_ip(packet, now)`` queues one datagram; ``output(now)`` returns the
    queued datagrams, one per item; ``receive(data, now)`` takes ONE datagram as read from the device;
    ``events()`` drains :class:`IpPacketReceived`, :class:`FrameSent`,
    :class:`FrameReceived`.  ``mtu`` bounds what is accepted from the device
    (``max_datagram``, default 65535 since the kernel never sends more than the
    device MTU anyway).
    """

    def __init__(self, *, mtu: int = TUN_DEFAULT_MTU, max_datagram: int = 0xFFFF) -> None:
        self.mtu = mtu
        self.max_datagram = max_datagram
        self.counters = TunCounters()
        self._out: deque[bytes] = deque()
        self._events: list[Event] = []

    def __repr__(self) -> str:
        return f"<TunFraming mtu={self.mtu} queued={len(self._out)}>"

    # -- sending
    def send_ip(self, packet: bytes, now: float = 0.0) -> None:
        packet = bytes(packet)
        self._out.append(packet)
        c = self.counters
        c.frames_sent += 1
        c.octets_sent += len(packet)
        self._events.append(FrameSent(0x0021, "ip", packet, packet, packet, len(packet)))

    def output(self, now: float) -> list[bytes]:
        """The queued datagrams, oldest first, one per item: never two in one chunk."""
        out = list(self._out)
        self._out.clear()
        return out

    @property
    def queued(self) -> int:
        """Datagrams waiting for :meth:`output`."""
        return len(self._out)

    # -- receiving
    def receive(self, data: bytes, now: float = 0.0) -> None:
        """One datagram read from the device (IPv4 passed up, anything else dropped)."""
        c = self.counters
        if len(data) < 20 or data[0] >> 4 != 4:
            c.non_ipv4_dropped += 1
            return
        if len(data) > self.max_datagram:
            c.too_long_dropped += 1
            return
        packet = bytes(data)
        c.frames_received += 1
        c.octets_received += len(packet)
        self._events.append(FrameReceived(0x0021, "ip", packet, packet, packet, len(packet)))
        self._events.append(IpPacketReceived(packet))

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    # -- timers (none)
    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        return None


__all__ = ["TunFraming", "TunCounters", "TUN_DEFAULT_MTU"]
