"""One end of the serial line as a computer sees it: framing + IPv4/TCP stack + applications.

Still sans-IO: an :class:`IpEndpoint` is fed the bytes its modem delivered
(``receive``) and the time, and hands back the chunks to write to its modem
(``output``), one chunk per link frame so the link model can time each frame.
It is a :class:`LinkInterface` (the framing, its byte account and capture)
under an :class:`IpHost` (the TCP/IP stack and its applications), the two
halves an ISP's mail host shares across many lines.  Applications are sans-IO text-protocol machines (POP3, SMTP) bound
to TCP connections by :class:`AppBinding`.

The endpoint also keeps the per-layer byte account the results tables report:
application payload, TCP/IP headers, link framing (headers, FCS, escapes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialsim.proto import octets
from dialsim.proto.events import (
    CloseRequested,
    Effect,
    Event,
    FrameReceived,
    FrameSent,
    IpPacketReceived,
)
from dialsim.proto.machine import fire_due
from dialsim.proto.netstack import ConnectionAccepted
from dialsim.proto.octets import add_frame, add_packet
from dialsim.proto.tcp import (
    Closed,
    Connected,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    PeerClosed,
)

# Bytes of TCP payload in an IPv4/TCP datagram (0 for anything else): what the
# framings count with (compiled; dialsim/proto/octets.py has the reference)
ip_payload_length = octets.implementation("c")


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
        # After a pump: True when the machine's output is drained and nothing is
        # left to hand out, so pumping again before new input would do nothing.
        self.settled = False
        self._events: list[Event] = []  # machine events taken out while answering effects
        self._machine_deadline = getattr(machine, "next_deadline", None)

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
        # before any close: TCP takes no data after our own FIN.  _flush ends
        # once the machine has neither output nor events: nothing to settle.
        progressed |= self._flush(now)
        events, self._events = self._events, []
        # An event handler may give the machine more to say (the next command).
        settled = not (events and self.on_event is not None)
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
            settled = False
        self.settled = settled and not self._events
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
        f = self._machine_deadline
        return f() if f is not None else None

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


class LinkInterface:
    """One serial line's link layer at one host: a framing machine (SLIP, CSLIP,
    PPP), the per-layer byte account of what crosses it, and its capture.

    ``events()`` hands up what the layer above needs: the datagrams that arrived
    (:class:`IpPacketReceived`) and the link's state changes (:class:`LinkEvent`);
    the frame events stay here, counted and captured.  Without a capture a
    framing that can (``tally_into``, :mod:`dialsim.proto.octets`) adds its
    frames up itself, into :attr:`sent` and :attr:`received`, and queues no
    frame events: the same sums, without an event per frame.
    """

    def __init__(self, framing, *, capture: FrameLog | None = None) -> None:
        self.framing = framing
        self.capture = capture
        self.sent = LayerBytes()
        self.received = LayerBytes()
        # The framing that adds its frames up itself (it is not replaced meanwhile)
        self._tallying = None
        tally_into = getattr(framing, "tally_into", None)
        if capture is None and tally_into is not None:
            tally_into(self.sent, self.received)
            self._tallying = framing

    def receive(self, data: bytes, now: float) -> None:
        self.framing.receive(data, now)

    def send_ip(self, packet: bytes, now: float) -> None:
        self.framing.send_ip(packet, now)

    def output(self, now: float) -> list[bytes]:
        return self.framing.output(now)

    def events(self) -> list[Event]:
        framing = self.framing
        evs = framing.events()
        if not evs or framing is self._tallying:
            return evs
        up: list[Event] = []
        capture = self.capture
        for ev in evs:
            if isinstance(ev, FrameSent):
                add_frame(self.sent, ev.protocol, len(ev.frame), ev.wire_octets)
                if ev.packet:
                    add_packet(self.sent, ev.packet)
                if capture is not None and (ev.packet or not capture.packets_only):
                    item = ev.packet if capture.packets_only else ev.capture or ev.frame
                    capture.frames.append((self._now, True, item, ev.kind))
            elif isinstance(ev, FrameReceived):
                add_frame(self.received, ev.protocol, len(ev.frame), ev.wire_octets)
                if capture is not None and not capture.packets_only:
                    capture.frames.append((self._now, False, ev.capture or ev.frame, ev.kind))
            elif isinstance(ev, IpPacketReceived):
                add_packet(self.received, ev.packet)
                if capture is not None and capture.packets_only:
                    capture.frames.append((self._now, False, ev.packet, "ip"))
                up.append(ev)
            else:
                up.append(ev)
        return up

    _now = 0.0  # the time frame events are stamped with in the capture

    def stamp(self, now: float) -> None:
        self._now = now

    def next_deadline(self) -> float | None:
        return self.framing.next_deadline()

    def on_timer(self, now: float) -> None:
        fire_due(self.framing, now)


class IpHost:
    """The upper half of an IPv4 host: its TCP/IP stack and the application
    machines bound to its connections (listening servers, connecting clients).

    Datagrams in (``receive``), datagrams out (``output``): one object serves a
    subscriber's computer behind one link and an ISP's mail host behind many.

    ``output(now, again=True)`` is the same call made again within one turn
    of a driver's loop (nothing outside the host ran since): it wakes the stack
    and the applications only when something could have changed since the
    last call that found nothing to do -- a datagram, a timer, a new
    connection, or work done by that last call itself (an application's event
    handler may have queued a command).
    """

    def __init__(self, stack) -> None:
        self.stack = stack
        self.bindings: list[AppBinding] = []
        self.listeners: dict[int, Callable[[object, float], AppBinding]] = {}
        self._quiet = False  # the last output() found nothing to do, and nothing came since
        self._events: list[Event] = []  # the stack's other events (an ICMP echo reply)

    def listen(self, port: int, factory: Callable[[object, float], AppBinding]) -> None:
        self.stack.listen(port)
        self.listeners[port] = factory
        self._quiet = False

    def connect(self, addr: str, port: int, now: float, make_binding) -> AppBinding:
        conn = self.stack.connect(addr, port, now)
        binding = make_binding(conn, now)
        self.bindings.append(binding)
        self._quiet = False
        return binding

    def receive(self, packet: bytes, now: float) -> None:
        self._quiet = False
        self.stack.receive(packet, now)

    def output(self, now: float, *, again: bool = False) -> list[bytes]:
        """Let the applications answer what arrived; the datagrams that result."""
        if again and self._quiet:
            return []
        stack = self.stack
        events = stack.events()
        for ev in events:
            if isinstance(ev, ConnectionAccepted):
                factory = self.listeners.get(ev.conn.local_port)
                if factory is not None:
                    self.bindings.append(factory(ev.conn, now))
            else:
                self._events.append(ev)
        progressed = False
        settled = True
        for b in self.bindings:  # a binding made meanwhile is pumped too
            if b.pump(now):
                progressed = True
            if not getattr(b, "settled", False):  # a binding of another kind: assume work
                settled = False
        if progressed:
            self.bindings = [b for b in self.bindings if not (b.closed and b.conn.state == "CLOSED")]
        # The segments this makes change nothing a second call would see: only
        # new input or an unsettled application can give the stack more to do.
        self._quiet = settled and not events
        return stack.output(now)

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        best = self.stack.next_deadline()
        for b in self.bindings:
            d = b.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def on_timer(self, now: float) -> None:
        # Safe to call when nothing is due: only a timer that fires wakes the
        # stack and the applications for the next output().
        if fire_due(self.stack, now):
            self._quiet = False
        for b in self.bindings:
            d = b.next_deadline()
            if d is not None and d <= now:
                b.on_timer(now)
                self._quiet = False


class IpEndpoint:
    """A computer on one serial line: a :class:`LinkInterface` under an :class:`IpHost`.

    A line host of the project's one shape: ``receive`` takes what the modem
    delivered, ``output`` runs every layer until nothing moves and returns the
    frames for the modem, one chunk per frame so the link model can time each;
    ``events()`` hands out the link's state changes (PPP's LCP/IPCP up and down,
    authentication).
    """

    def __init__(self, framing, stack=None, *, capture: FrameLog | None = None,
                 ip=None) -> None:
        self.link = LinkInterface(framing, capture=capture)
        # The IP host above: dialsim's stack, or any machine over datagrams (a
        # kernel behind a TUN device, hosts/kernel.py).
        self.ip = ip if ip is not None else IpHost(stack)
        # Only dialsim's own host knows a repeated pass of one turn (output(again=)).
        self._knows_again = isinstance(self.ip, IpHost)
        self._events: list[Event] = []

    # the parts, by their old names
    @property
    def framing(self):
        return self.link.framing

    @framing.setter
    def framing(self, framing) -> None:
        self.link.framing = framing

    @property
    def stack(self):
        return self.ip.stack

    @property
    def bindings(self) -> list[AppBinding]:
        return self.ip.bindings

    @property
    def sent(self) -> LayerBytes:
        return self.link.sent

    @property
    def capture(self) -> FrameLog | None:
        return self.link.capture

    @property
    def received(self) -> LayerBytes:
        return self.link.received

    def listen(self, port: int, factory: Callable[[object, float], AppBinding]) -> None:
        self.ip.listen(port, factory)

    def connect(self, addr: str, port: int, now: float, make_binding) -> AppBinding:
        return self.ip.connect(addr, port, now, make_binding)

    # -- the machine
    def receive(self, data: bytes, now: float) -> None:
        self.link.stamp(now)
        self.link.receive(data, now)

    def output(self, now: float) -> list[bytes]:
        link, ip = self.link, self.ip
        link._now = now
        framing = link.framing
        chunks: list[bytes] = []
        # What the line brought since the last call; each turn below then takes
        # the link's events of its own frames, so a turn starts with none.
        moved = self._link_events(now)
        for turn in range(10_000):
            packets = ip.output(now, again=turn > 0) if self._knows_again else ip.output(now)
            if packets:
                moved = True
                send = framing.send_ip
                for pkt in packets:
                    send(pkt, now)
            elif turn:
                # The framing hands out only what receive, send_ip and on_timer
                # queued, and the last turn took it all: nothing more to move.
                break
            frames = framing.output(now)
            if frames:
                chunks += frames
                moved = True
            if self._link_events(now):
                moved = True
            if not moved:
                break
            moved = False
        self._events += ip.events()
        return chunks

    def _link_events(self, now: float) -> bool:
        evs = self.link.events()
        for ev in evs:
            if isinstance(ev, IpPacketReceived):
                self.ip.receive(ev.packet, now)
            else:
                self._events.append(ev)
        return bool(evs)

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        a = self.ip.next_deadline()
        b = self.link.framing.next_deadline()
        return a if b is None or (a is not None and a <= b) else b

    def on_timer(self, now: float) -> None:
        self.link.stamp(now)
        self.ip.on_timer(now)
        self.link.on_timer(now)


__all__ = [
    "AppBinding",
    "FrameLog",
    "IpEndpoint",
    "IpHost",
    "LayerBytes",
    "LinkInterface",
    "answer_effects",
    "ip_payload_length",
]
