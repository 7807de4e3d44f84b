"""The subscriber's own kernel as the IP host above the dial-up link (``dialsim shell``).

Instead of dialsim's TCP/IP stack, the layer above the subscriber's PPP or SLIP
is a real kernel behind a TUN device: the datagrams it sends are framed and
cross the simulated line; the datagrams that arrive are handed to it.  This is
the sans-IO part -- two queues in the machine shape; the driver moves them to
and from the TUN descriptor, and :attr:`KernelHost.flows` keeps per-flow octets
and times from what crosses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialsim.hosts.nat import datagram_ports
from dialsim.proto.events import Event

__all__ = ["FlowRecord", "KernelHost"]


@dataclass
class FlowRecord:
    """One TCP or UDP flow as seen on the line (the subscriber's side first)."""

    protocol: str
    src: str
    sport: int
    dst: str
    dport: int
    t_first_s: float
    t_last_s: float
    octets_up: int = 0
    octets_down: int = 0
    packets_up: int = 0
    packets_down: int = 0


class KernelHost:
    """Datagrams between the link and a kernel: ``from_kernel`` / ``for_kernel`` for the
    driver; ``receive``/``output`` for the link below."""

    def __init__(self) -> None:
        self._to_link: deque[bytes] = deque()
        self._to_kernel: deque[bytes] = deque()
        self.flows: dict[tuple, FlowRecord] = {}

    # -- the kernel's side (the driver)
    def from_kernel(self, packet: bytes, now: float) -> None:
        if packet and packet[0] >> 4 == 4:  # IPv6 housekeeping stays home
            self._to_link.append(packet)
            self._count(packet, now, up=True)

    def for_kernel(self) -> list[bytes]:
        out = list(self._to_kernel)
        self._to_kernel.clear()
        return out

    # -- the link's side (the machine shape)
    def receive(self, packet: bytes, now: float) -> None:
        self._to_kernel.append(packet)
        self._count(packet, now, up=False)

    def output(self, now: float) -> list[bytes]:
        out = list(self._to_link)
        self._to_link.clear()
        return out

    def events(self) -> list[Event]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        return None

    def _count(self, packet: bytes, now: float, *, up: bool) -> None:
        ports = datagram_ports(packet)
        if ports is None:
            return
        src, dst, proto, sport, dport = ports
        key = (proto, src, sport, dst, dport) if up else (proto, dst, dport, src, sport)
        rec = self.flows.get(key)
        if rec is None:
            name = "tcp" if proto == 6 else "udp"
            rec = self.flows[key] = FlowRecord(name, key[1], key[2], key[3], key[4], now, now)
        rec.t_last_s = now
        if up:
            rec.octets_up += len(packet)
            rec.packets_up += 1
        else:
            rec.octets_down += len(packet)
            rec.packets_down += 1
