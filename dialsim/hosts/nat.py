"""The ISP's way out to the world, as slirp did it: a user-space NAT for TCP.

A subscriber inside ``dialsim shell`` may reach more than the ISP's mail host:
the machine's own services through the host alias 10.0.2.2 (slirp's: it stands
for the host's 127.0.0.1), and whatever ``--allow HOST:PORT`` opens.  Like slirp,
dialsim terminates the subscriber's TCP connection in its own stack (the
connection is answered from the address it was sent to) and opens a real
socket to the destination; the octets are relayed between the two.  Anything
else is refused: a TCP SYN gets a RST, other datagrams an ICMP unreachable (the
stack's own answers).

Sans-IO: :meth:`NatHost.new_flows` hands the driver each accepted connection
with its :class:`~dialsim.hosts.relay.StreamRelay` and the real destination;
the driver opens the socket and moves the octets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dialsim.hosts.endpoint import AppBinding, IpHost
from dialsim.hosts.relay import StreamRelay
from dialsim.proto.events import Event
from dialsim.proto.ipv4 import PROTO_TCP, ip_to_str, parse_packet
from dialsim.proto.netstack import NetStack

__all__ = ["HOST_ALIAS", "Flow", "NatHost"]

HOST_ALIAS = "10.0.2.2"  # slirp's name for the host's loopback


@dataclass
class Flow:
    """One relayed connection: what the subscriber asked for and where it goes."""

    dst: str
    dport: int
    target: tuple[str, int]
    relay: StreamRelay
    binding: AppBinding
    t_open: float
    extra: dict = field(default_factory=dict)


class NatHost:
    """Datagrams in (those not for the ISP's own hosts), datagrams out.

    ``allow``: (address, port) pairs the subscriber may reach beyond the host
    alias; ``aliases``: address -> real address (10.0.2.2 -> 127.0.0.1).
    """

    def __init__(self, *, rng: random.Random, allow: set[tuple[str, int]] | None = None,
                 aliases: dict[str, str] | None = None, mtu: int = 1500,
                 tcp_options: dict | None = None) -> None:
        self.allow = set(allow or ())
        self.aliases = dict(aliases if aliases is not None else {HOST_ALIAS: "127.0.0.1"})
        # One stack answers for every address the subscriber may reach ("0.0.0.0":
        # any destination; connections are answered from the address they were sent to).
        self.ip = IpHost(NetStack("0.0.0.0", mtu=mtu, rng=rng, tcp_options=tcp_options))
        self._refuse = NetStack("0.0.0.0", mtu=mtu, rng=rng, tcp_options=tcp_options)
        self._new: list[Flow] = []
        self.flows: list[Flow] = []
        self.refused = 0

    def reachable(self, dst: str, dport: int) -> tuple[str, int] | None:
        """The real destination of ``dst:dport``, or None if it may not be reached."""
        if dst in self.aliases:
            return self.aliases[dst], dport
        if (dst, dport) in self.allow:
            return dst, dport
        return None

    def receive(self, packet: bytes, now: float) -> None:
        pkt = parse_packet(packet)
        if pkt is None or pkt.protocol != PROTO_TCP or len(pkt.payload) < 4:
            self._refuse.receive(packet, now)  # ICMP unreachable, as a host without the service
            self.refused += 1
            return
        dport = int.from_bytes(pkt.payload[2:4], "big")
        target = self.reachable(pkt.dst, dport)
        if target is None:
            self._refuse.receive(packet, now)  # no listener there: RST
            self.refused += 1
            return
        stack = self.ip.stack
        if dport not in self.ip.listeners:
            self.ip.listen(dport, self._accept)
        stack.receive(packet, now)

    def _accept(self, conn, now: float) -> AppBinding:
        relay = StreamRelay()
        binding = AppBinding(conn, relay)
        target = self.reachable(conn.local_addr, conn.local_port)
        flow = Flow(conn.local_addr, conn.local_port, target, relay, binding, now)
        self._new.append(flow)
        self.flows.append(flow)
        return binding

    def hung_up(self, now: float) -> None:
        """The call ended: the NAT's connections end with it (slirp itself ended with
        the call), so a subscriber redialling finds its old connections reset."""
        for conn in list(self.ip.stack.connections.values()):
            conn.abort()
        self.ip.output(now)  # the resets go nowhere: the line is down
        self._new.clear()

    def new_flows(self) -> list[Flow]:
        """Connections accepted since the last call: the driver opens their sockets."""
        out, self._new = self._new, []
        return out

    def output(self, now: float) -> list[bytes]:
        return self.ip.output(now) + self._refuse.output(now)

    def events(self) -> list[Event]:
        return self.ip.events()

    def next_deadline(self) -> float | None:
        return self.ip.next_deadline()

    def on_timer(self, now: float) -> None:
        self.ip.on_timer(now)


def datagram_ports(packet: bytes) -> tuple[str, str, int, int, int] | None:
    """(src, dst, protocol, sport, dport) of an IPv4 TCP/UDP datagram, else None."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    if proto not in (6, 17) or len(packet) < ihl + 4:
        return None
    return (ip_to_str(packet[12:16]), ip_to_str(packet[16:20]), proto,
            int.from_bytes(packet[ihl:ihl + 2], "big"), int.from_bytes(packet[ihl + 2:ihl + 4], "big"))
