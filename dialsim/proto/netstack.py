"""A small host IPv4 stack (RFC 791, RFC 792, RFC 9293, RFC 1122), sans-IO.

Composes :mod:`dialsim.proto.ipv4`, :mod:`dialsim.proto.icmp` and
:class:`dialsim.proto.tcp.TcpConnection` into one host with one address:

- whole IPv4 datagrams in (:meth:`NetStack.receive`) and out
  (:meth:`NetStack.output`; TTL 64, incrementing IP identification) -- the
  machine interface of :mod:`dialsim.proto.machine`;
- a bad IP header checksum, a bad version/length, a datagram for another
  address and a fragment (never reassembled) are dropped and counted;
- ICMP echo requests are answered; UDP gets "port unreachable" and other
  protocols "protocol unreachable" (never in answer to an ICMP error);
- TCP is demultiplexed by (remote address, remote port, local port); a SYN to
  a listening port creates a connection in LISTEN, feeds it the SYN and queues
  :class:`ConnectionAccepted`; any other segment to no connection gets a RST
  (RFC 9293 3.10.7.1) unless it is a RST itself or its checksum is bad;
- MSS = mtu - 40; ISS and ephemeral ports come from the ``rng`` given;
- connections that reach CLOSED are reaped once their last segments are out
  (the application still holds its own reference, and its events).

``address`` may be assigned later (PPP's IPCP gives it); while it is
``"0.0.0.0"`` datagrams to any address are accepted.

Events (:class:`~dialsim.proto.events.NetworkEvent`): :class:`ConnectionAccepted`,
:class:`EchoReplyReceived`.  Each connection hands out its own events.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Any

from dialsim.proto import icmp, ipv4
from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import NetworkEvent
from dialsim.proto.ipv4 import (
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    internet_checksum,
    ip_to_bytes,
)
from dialsim.proto.machine import fire_due
from dialsim.proto.tcp import CLOSED, TcpConnection
from dialsim.proto.tcp_segment import (
    ACK,
    RST,
    SYN,
    build_segment,
    parse_segment,
    seq_add,
    verify_checksum,
)

# ipv4.py's functions are the reference of the compiled codec (_tcpip.c):
# the same octets and records (tests/unit/test_tcpip_c.py).
build_datagram, parse_packet = ipv4.implementation("c")

EPHEMERAL_LOW = 49152
EPHEMERAL_HIGH = 65535

_PORTS = struct.Struct("!HH")

_COUNTERS = (
    "ip_in",
    "ip_out",
    "ip_bad_checksum",
    "ip_bad_header",
    "ip_not_for_us",
    "ip_fragments_dropped",
    "icmp_in",
    "icmp_bad",
    "icmp_echo_replies_sent",
    "icmp_unreachable_sent",
    "tcp_in",
    "tcp_bad_segments",
    "tcp_closed_port",
    "tcp_rst_sent",
    "tcp_connections_accepted",
    "tcp_connections_opened",
    "tcp_connections_reaped",
    "udp_in",
    "unknown_protocol_in",
)


@dataclass(frozen=True, slots=True)
class ConnectionAccepted(NetworkEvent):
    """A SYN reached a listening port; ``conn`` is the new connection (SYN-RECEIVED)."""

    conn: TcpConnection


@dataclass(frozen=True, slots=True)
class EchoReplyReceived(NetworkEvent):
    """An ICMP echo reply arrived (answer to :meth:`NetStack.ping`)."""

    src: str
    ident: int
    seq: int
    data: bytes


class NetStack:
    """One host's IPv4 + ICMP + TCP, fed and drained whole datagrams."""

    def __init__(
        self,
        address: str,
        *,
        mtu: int = 1500,
        rng: random.Random,
        tcp_options: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.mtu = mtu
        self.rng = rng
        self.tcp_options = dict(tcp_options or {})
        self.counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.connections: dict[tuple[str, int, int], TcpConnection] = {}
        self._listening: set[int] = set()
        self._ident = rng.randrange(0x10000)
        self._next_port = rng.randrange(EPHEMERAL_LOW, EPHEMERAL_HIGH + 1)
        self._out: list[bytes] = []
        self._events: list = []

    @property
    def mss(self) -> int:
        return self.mtu - 40

    # ------------------------------------------------------------ app side

    def listen(self, port: int) -> None:
        self._listening.add(port)

    def unlisten(self, port: int) -> None:
        self._listening.discard(port)

    def connect(
        self, remote_addr: str, remote_port: int, now: float, *, local_port: int | None = None
    ) -> TcpConnection:
        """Active open; the SYN leaves with the next :meth:`output`."""
        if local_port is None:
            local_port = self._ephemeral_port(remote_addr, remote_port)
        key = (remote_addr, remote_port, local_port)
        if key in self.connections:
            raise LocalProtocolError(f"connection {key} exists")
        conn = self._new_connection(self.address, local_port, remote_addr, remote_port)
        conn.connect(now)
        self.connections[key] = conn
        self.counters["tcp_connections_opened"] += 1
        return conn

    def ping(self, dst: str, ident: int, seq: int, data: bytes = b"") -> None:
        """Queue an ICMP echo request; the reply becomes :class:`EchoReplyReceived`."""
        self._send_ip(dst, PROTO_ICMP, icmp.build_echo_request(ident, seq, data))

    def events(self) -> list[NetworkEvent]:
        """The stack's own events since the last call."""
        ev = self._events
        self._events = []
        return ev

    # ----------------------------------------------------------- link side

    def receive(self, packet: bytes, now: float) -> None:
        """One whole IPv4 datagram from the link."""
        c = self.counters
        c["ip_in"] += 1
        pkt = parse_packet(packet)
        if pkt is None:
            if _header_checksum_is_bad(packet):
                c["ip_bad_checksum"] += 1
            else:
                c["ip_bad_header"] += 1
            return
        src, dst, protocol, payload, _, _, _, _, _, more_fragments, fragment_offset = pkt
        if dst != self.address and self.address != "0.0.0.0":
            c["ip_not_for_us"] += 1
            return
        if more_fragments or fragment_offset:  # is_fragment, without a call
            c["ip_fragments_dropped"] += 1
            return
        if protocol == PROTO_TCP:
            c["tcp_in"] += 1
            if len(payload) >= 4:  # a segment of a connection (the common case), inline
                conn = self.connections.get((src, *_PORTS.unpack_from(payload)))
                if conn is not None and conn.state != CLOSED:
                    conn.receive(payload, now)  # verifies the checksum itself
                    return
            self._receive_tcp(src, dst, payload, now)
        elif protocol == PROTO_ICMP:
            self._receive_icmp(src, payload)
        elif protocol == PROTO_UDP:
            c["udp_in"] += 1
            self._unreachable(src, icmp.CODE_PORT_UNREACHABLE, packet)
        else:
            c["unknown_protocol_in"] += 1
            self._unreachable(src, icmp.CODE_PROTOCOL_UNREACHABLE, packet)

    def output(self, now: float) -> list[bytes]:
        """Whole datagrams for the link, from every connection and the stack itself."""
        closed = []
        for key, conn in self.connections.items():
            segments = conn.output(now)
            if segments:  # the addresses converted once per connection, not per segment
                self._send_all(ip_to_bytes(conn.local_addr), ip_to_bytes(conn.remote_addr),
                               PROTO_TCP, segments)
            if conn.state == CLOSED:
                closed.append(key)
        for key in closed:
            del self.connections[key]
            self.counters["tcp_connections_reaped"] += 1
        out = self._out
        if out:
            self._out = []
        return out

    # --------------------------------------------------------------- timers

    def next_deadline(self) -> float | None:
        best = None
        for conn in self.connections.values():
            d = conn.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def on_timer(self, now: float) -> None:
        for conn in list(self.connections.values()):
            fire_due(conn, now)

    # ------------------------------------------------------------ internals

    def _new_connection(
        self, local_addr: str, local_port: int, remote_addr: str, remote_port: int
    ) -> TcpConnection:
        opts = {"mss": self.mss, **self.tcp_options}
        return TcpConnection(
            local_addr,
            local_port,
            remote_addr,
            remote_port,
            iss=self.rng.getrandbits(32),
            **opts,
        )

    def _ephemeral_port(self, remote_addr: str, remote_port: int) -> int:
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            port = self._next_port
            self._next_port = EPHEMERAL_LOW + (port + 1 - EPHEMERAL_LOW) % span
            if port not in self._listening and (remote_addr, remote_port, port) not in self.connections:
                return port
        raise LocalProtocolError("no free ephemeral port")

    def _send_ip(self, dst: str, proto: int, payload: bytes, *, src: str | None = None) -> None:
        self._send_all(ip_to_bytes(src or self.address), ip_to_bytes(dst), proto, (payload,))

    def _send_all(self, src: bytes, dst: bytes, proto: int, payloads) -> None:
        """One datagram per payload from ``src`` to ``dst`` (4 octets each), TTL 64."""
        out, ident = self._out, self._ident
        for payload in payloads:
            out.append(build_datagram(src, dst, proto, payload, 64, ident, 0, False))
            ident = (ident + 1) & 0xFFFF
        self._ident = ident
        self.counters["ip_out"] += len(payloads)

    def _receive_icmp(self, src: str, payload: bytes) -> None:
        c = self.counters
        c["icmp_in"] += 1
        msg = icmp.parse_icmp(payload)
        if msg is None:
            c["icmp_bad"] += 1
            return
        if msg.type == icmp.ICMP_ECHO_REQUEST and msg.code == 0:
            self._send_ip(src, PROTO_ICMP, icmp.echo_reply_for(msg))
            c["icmp_echo_replies_sent"] += 1
        elif msg.type == icmp.ICMP_ECHO_REPLY:
            self._events.append(EchoReplyReceived(src, msg.ident, msg.seq, msg.data))

    def _unreachable(self, src: str, code: int, datagram: bytes) -> None:
        self._send_ip(src, PROTO_ICMP, icmp.build_dest_unreachable(code, datagram))
        self.counters["icmp_unreachable_sent"] += 1

    def _receive_tcp(self, src: str, dst: str, segment: bytes, now: float) -> None:
        """A segment (counted in ``tcp_in``) that is to no open connection."""
        c = self.counters
        if len(segment) < 4:
            c["tcp_bad_segments"] += 1
            return
        sport, dport = _PORTS.unpack_from(segment)
        # No connection: check the segment before answering it.
        if not verify_checksum(src, dst, segment):
            c["tcp_bad_segments"] += 1
            return
        seg = parse_segment(segment)
        if seg is None:
            c["tcp_bad_segments"] += 1
            return
        if seg.flags & RST:
            return
        if dport in self._listening and seg.flags & SYN and not seg.flags & ACK:
            # Answer from the address the SYN was sent to.
            new = self._new_connection(dst, dport, src, sport)
            new.listen()
            self.connections[(src, sport, dport)] = new
            new.receive(segment, now)
            c["tcp_connections_accepted"] += 1
            self._events.append(ConnectionAccepted(new))
            return
        c["tcp_closed_port"] += 1
        # RFC 9293 3.10.7.1: reset for a segment to no connection.
        if seg.flags & ACK:
            rst = build_segment(dst, src, dport, sport, seg.ack, 0, RST, 0)
        else:
            rst = build_segment(dst, src, dport, sport, 0, seq_add(seg.seq, seg.seg_len), RST | ACK, 0)
        self._send_ip(src, PROTO_TCP, rst, src=dst)
        c["tcp_rst_sent"] += 1


def _header_checksum_is_bad(packet: bytes) -> bool:
    """For counting only: does a header that is otherwise well formed fail its checksum?"""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return False
    hlen = (packet[0] & 0x0F) * 4
    if hlen < 20 or len(packet) < hlen:
        return False
    return internet_checksum(packet[:hlen]) != 0


__all__ = ["NetStack", "ConnectionAccepted", "EchoReplyReceived"]
