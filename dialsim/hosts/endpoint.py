"""One end of the serial line as a computer sees it: framing + IPv4/TCP stack + applications.

Still sans-IO: an :class:`IpEndpoint` is fed the bytes its modem delivered
(``receive_line``) and the time, and hands back the chunks to write to its
modem (``line_output``), one chunk per link frame so the link model can time
each frame.  Applications are sans-IO text-protocol machines (POP3, SMTP) bound
to TCP connections by :class:`AppBinding`.

The endpoint also keeps the per-layer byte account the results tables report:
application payload, TCP/IP headers, link framing (headers, FCS, escapes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialsim.proto.events import CloseRequested, Effect, Event
from dialsim.proto.tcp import (
    Closed,
    Connected,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    PeerClosed,
)


def _ev_name(ev) -> str:
    return type(ev).__name__


@dataclass(slots=True)
class LayerBytes:
    """Octets one direction of one endpoint put on (or took off) the line, by layer.

    ``frame_octets`` are the link-layer payloads (datagrams, after VJ header
    compression when on); ``wire_octets`` the same frames as they cross the
    serial port, with framing, FCS and escapes.  So TCP/IP header octets are
    ``frame_octets - app`` and framing octets ``wire_octets - frame_octets``.
    """

    app: int = 0
    frame_octets: int = 0
    wire_octets: int = 0
    packets: int = 0
    control_octets: int = 0  # link control frames on the wire (LCP, PAP/CHAP, IPCP, echoes)

    @property
    def tcpip_headers(self) -> int:
        return self.frame_octets - self.app

    @property
    def framing(self) -> int:
        return self.wire_octets - self.frame_octets

    def as_dict(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}_app_octets": self.app,
            f"{prefix}_tcpip_header_octets": self.tcpip_headers,
            f"{prefix}_framing_octets": self.framing,
            f"{prefix}_link_control_octets": self.control_octets,
            f"{prefix}_packets": self.packets,
        }


def ip_payload_length(packet: bytes) -> int:
    """Bytes of TCP payload in an IPv4/TCP datagram (0 for anything else)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return 0
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    if packet[9] != 6 or len(packet) < ihl + 20:
        return 0
    doff = (packet[ihl + 12] >> 4) * 4
    return max(0, min(total, len(packet)) - ihl - doff)


def answer_effects(machine, carry_out: Callable[[Effect], object], now: float) -> list[Event]:
    """Answer ``machine``'s storage effects at once, in the same instant (a
    simulated scratch store), until it asks for nothing more; returns its other
    events in order.  ``carry_out(effect)`` returns the answer or raises."""
    others: list[Event] = []
    for _ in range(1_000_000):
        events = machine.events()
        if not events:
            break
        for ev in events:
            if isinstance(ev, Effect):
                try:
                    result = carry_out(ev)
                except Exception as exc:  # the store failed: the server answers per its RFC
                    result = exc
                machine.complete(ev, result, now)
            else:
                others.append(ev)
    return others


class AppBinding:
    """Binds a sans-IO application machine to one TCP connection.

    The machine offers ``receive(data, now)``, ``output(now)``, ``events()``
    and optionally ``connection_lost(now)``, ``next_deadline()``, ``on_timer(now)``.
    Machine events are handed to ``on_event(ev, now)``; a ``CloseRequested``
    closes the connection once its data is queued.  The machine's storage
    effects are answered at once by ``carry_out`` (simulated time does not
    pass while a scratch store works).
    """

    def __init__(
        self,
        conn,
        machine,
        on_event: Callable[[object, float], None] | None = None,
        carry_out: Callable[[Effect], object] | None = None,
    ):
        self.conn = conn
        self.machine = machine
        self.on_event = on_event
        self.carry_out = carry_out
        self.closed = False
        self.connected = False
        self.close_requested = False
        self._events: list[Event] = []  # machine events taken out while answering effects

    def pump(self, now: float) -> bool:
        progressed = False
        peer_closed = False
        for ev in self.conn.events():
            progressed = True
            if isinstance(ev, DataReceived):
                self.machine.receive(ev.data, now)
                self._settle(now)
            elif isinstance(ev, Connected):
                self.connected = True
            elif isinstance(ev, PeerClosed):
                peer_closed = True
            elif isinstance(ev, Closed | ConnectionReset | ConnectionTimedOut):
                if not self.closed:
                    self.closed = True
                    self._lost(now)
            if self.on_event is not None:
                self.on_event(ev, now)
        # Answer what arrived (a QUIT may come in the same segment as the FIN)
        # before any close: TCP takes no data after our own FIN.
        progressed |= self._flush(now)
        self._settle(now)
        events, self._events = self._events, []
        for ev in events:
            progressed = True
            if isinstance(ev, CloseRequested):
                self._close(now)
            if self.on_event is not None:
                self.on_event(ev, now)
        if peer_closed:
            # The peer will send no more: the session is over; close our side too.
            self._lost(now)
            self._flush(now)
            self._close(now)
        return progressed

    def _settle(self, now: float) -> bool:
        """Take the machine's events, answering its storage effects at once;
        True if there were any."""
        if self.carry_out is not None:
            events = answer_effects(self.machine, self.carry_out, now)
        else:
            events = self.machine.events()
        self._events += events
        return bool(events)

    def _lost(self, now: float) -> None:
        if hasattr(self.machine, "connection_lost"):
            self.machine.connection_lost(now)
            self._settle(now)

    def _flush(self, now: float) -> bool:
        # All the machine has to say in this instant, in one send: a server
        # hands out its replies piece by piece and answers commands it held
        # back as they are taken (simulated time does not pass meanwhile).
        chunks: list[bytes] = []
        for _ in range(1_000_000):
            out = self.machine.output(now)
            if not out and not self._settle(now):
                break
            chunks += out
        out = b"".join(chunks)
        if out and not self.closed and not self.close_requested:
            self.conn.send(out)
            return True
        return False

    def _close(self, now: float) -> None:
        if not self.close_requested:
            self._flush(now)
            self.close_requested = True
            if not self.closed:
                self.conn.close()

    def next_deadline(self) -> float | None:
        f = getattr(self.machine, "next_deadline", None)
        return f() if f else None

    def on_timer(self, now: float) -> None:
        # A server whose reply is still queued or in flight in TCP is writing,
        # not idle: its inactivity timer must not log the client out mid-RETR.
        busy = getattr(self.machine, "transport_busy", None)
        if busy is not None and not self.closed and (
            getattr(self.conn, "send_queue_length", 0) or getattr(self.conn, "bytes_in_flight", 0)
        ):
            busy(now)
        f = getattr(self.machine, "on_timer", None)
        if f:
            f(now)
            self._settle(now)


@dataclass
class FrameLog:
    """Frames seen at this endpoint, for a capture: (t, sent?, frame bytes, kind)."""

    frames: list[tuple[float, bool, bytes, str]] = field(default_factory=list)
    packets_only: bool = False  # SLIP/CSLIP: log the IPv4 datagrams; PPP: the PPP frames


class IpEndpoint:
    """framing (SLIP/CSLIP/PPP) + NetStack + bound applications."""

    def __init__(self, framing, stack, *, capture: FrameLog | None = None) -> None:
        self.framing = framing
        self.stack = stack
        self.bindings: list[AppBinding] = []
        self.listeners: dict[int, Callable[[object, float], AppBinding]] = {}
        self.sent = LayerBytes()
        self.received = LayerBytes()
        self.capture = capture
        self.link_event_handler: Callable[[object, float], None] | None = None
        self.link_up = False

    # -- applications
    def listen(self, port: int, factory: Callable[[object, float], AppBinding]) -> None:
        self.stack.listen(port)
        self.listeners[port] = factory

    def connect(self, addr: str, port: int, now: float, make_binding) -> AppBinding:
        conn = self.stack.connect(addr, port, now)
        binding = make_binding(conn, now)
        self.bindings.append(binding)
        return binding

    # -- line side
    def receive_line(self, data: bytes, now: float) -> None:
        self.framing.receive(data, now)

    def line_output(self, now: float) -> list[bytes]:
        """Run everything to quiescence; return chunks to write to the modem."""
        chunks: list[bytes] = []
        for _ in range(10_000):
            progressed = self._framing_events(now)
            for ev in self.stack.events():
                progressed = True
                if _ev_name(ev) == "ConnectionAccepted":
                    conn = ev.conn
                    factory = self.listeners.get(conn.local_port)
                    if factory is not None:
                        self.bindings.append(factory(conn, now))
            for b in self.bindings:
                progressed |= b.pump(now)
            self.bindings = [b for b in self.bindings if not (b.closed and b.conn.state == "CLOSED")]
            ctl = self.framing.data_to_send()
            if ctl:
                chunks.append(ctl)
                progressed = True
            for pkt in self.stack.packets_to_send(now):
                progressed = True
                self.framing.send_ip(pkt, now)
                chunk = self.framing.data_to_send()
                if chunk:
                    chunks.append(chunk)
            progressed |= self._framing_events(now)
            if not progressed:
                break
        return chunks

    def _framing_events(self, now: float) -> bool:
        progressed = False
        for ev in self.framing.events():
            name = _ev_name(ev)
            if name == "IpPacketReceived":
                progressed = True
                pkt = ev.packet
                self.received.packets += 1
                self.received.app += ip_payload_length(pkt)
                if self.capture is not None and self.capture.packets_only:
                    self.capture.frames.append((now, False, pkt, "ip"))
                self.stack.receive_packet(pkt, now)
            elif name == "FrameSent":
                self._account(self.sent, ev)
                if ev.packet:
                    self.sent.packets += 1
                    self.sent.app += ip_payload_length(ev.packet)
                if self.capture is not None:
                    if self.capture.packets_only:
                        if ev.packet:
                            self.capture.frames.append((now, True, ev.packet, "ip"))
                    else:
                        self.capture.frames.append((now, True, _capture_bytes(ev), ev.kind))
            elif name == "FrameReceived":
                self._account(self.received, ev)
                if self.capture is not None and not self.capture.packets_only:
                    self.capture.frames.append((now, False, _capture_bytes(ev), ev.kind))
            else:
                progressed = True
                if self.link_event_handler is not None:
                    self.link_event_handler(ev, now)
        return progressed

    @staticmethod
    def _account(side: LayerBytes, ev) -> None:
        if getattr(ev, "protocol", 0x21) not in (0x21, 0x2D, 0x2F):
            side.control_octets += ev.wire_octets
            return
        side.frame_octets += len(ev.frame)
        side.wire_octets += ev.wire_octets

    # -- timers
    def next_deadline(self) -> float | None:
        ds = [self.stack.next_deadline(), self.framing.next_deadline()]
        ds += [b.next_deadline() for b in self.bindings]
        ds = [d for d in ds if d is not None]
        return min(ds) if ds else None

    def on_timer(self, now: float) -> None:
        d = self.stack.next_deadline()
        if d is not None and d <= now:
            self.stack.on_timer(now)
        d = self.framing.next_deadline()
        if d is not None and d <= now:
            self.framing.on_timer(now)
        for b in self.bindings:
            d = b.next_deadline()
            if d is not None and d <= now:
                b.on_timer(now)


def _capture_bytes(ev) -> bytes:
    return getattr(ev, "capture", None) or ev.frame


__all__ = ["IpEndpoint", "AppBinding", "LayerBytes", "FrameLog", "ip_payload_length"]
