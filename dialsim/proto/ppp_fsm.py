"""The RFC 1661 option negotiation automaton (section 4), shared by LCP and IPCP.

Scope:

- the packet format of LCP-like protocols (RFC 1661 section 5: Code,
  Identifier, Length, Data; octets beyond Length are padding) and their option
  lists (type, length, data);
- the automaton's states, events and actions, named as sections 4.2-4.4 name
  them (:class:`State`, :class:`FsmEvent`, :class:`Action`);
- :data:`TRANSITIONS`, the state transition table of section 4.1 written out
  as ``{state: {event: (actions, next_state)}}``, with None where the RFC
  has "-" (the event cannot happen in that state);
- :class:`NegotiationAutomaton`, which applies the table for one control
  protocol with the Restart timer, Max-Terminate, Max-Configure and
  Max-Failure of section 4.6, judging options with an :class:`OptionPolicy`.

The automaton is sans-IO and calls nothing back: what it produces -- control
packets to send (:class:`PacketToSend`), the layer actions This-Layer-Up,
-Down, -Started and -Finished, and (LCP) the Protocol-Reject, Echo and Discard
packets it received -- waits in a queue, in the order the RFC's actions
produce it, until the owner drains it with :meth:`NegotiationAutomaton.events`
(the way h11 and wsproto compose layers).

Not implemented: the "restart" option of the Open event in Stopped, Stopping,
Closing and Opened (the link stays as it is), and the "passive" option of TO-
(the automaton gives up and goes to Stopped).  The "x" cross-connection
annotation of RCA and RCN in Ack-Rcvd and Opened needs no code: the table's
actions are what happens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import Event

# packet codes (RFC 1661 5)
CONFIGURE_REQUEST = 1
CONFIGURE_ACK = 2
CONFIGURE_NAK = 3
CONFIGURE_REJECT = 4
TERMINATE_REQUEST = 5
TERMINATE_ACK = 6
CODE_REJECT = 7
PROTOCOL_REJECT = 8
ECHO_REQUEST = 9
ECHO_REPLY = 10
DISCARD_REQUEST = 11

Option = tuple[int, bytes]  # (type, data without the type/length octets)


class State(StrEnum):
    """The ten states of RFC 1661 4.2."""

    INITIAL = "Initial"
    STARTING = "Starting"
    CLOSED = "Closed"
    STOPPED = "Stopped"
    CLOSING = "Closing"
    STOPPING = "Stopping"
    REQ_SENT = "Req-Sent"
    ACK_RCVD = "Ack-Rcvd"
    ACK_SENT = "Ack-Sent"
    OPENED = "Opened"


class FsmEvent(StrEnum):
    """The events of RFC 1661 4.3."""

    UP = "Up"  # lower layer is Up
    DOWN = "Down"  # lower layer is Down
    OPEN = "Open"  # administrative Open
    CLOSE = "Close"  # administrative Close
    TO_PLUS = "TO+"  # Timeout with counter > 0
    TO_MINUS = "TO-"  # Timeout with counter expired
    RCR_PLUS = "RCR+"  # Receive-Configure-Request (Good)
    RCR_MINUS = "RCR-"  # Receive-Configure-Request (Bad)
    RCA = "RCA"  # Receive-Configure-Ack
    RCN = "RCN"  # Receive-Configure-Nak/Rej
    RTR = "RTR"  # Receive-Terminate-Request
    RTA = "RTA"  # Receive-Terminate-Ack
    RUC = "RUC"  # Receive-Unknown-Code
    RXJ_PLUS = "RXJ+"  # Receive-Code-Reject (permitted) or Receive-Protocol-Reject
    RXJ_MINUS = "RXJ-"  # Receive-Code-Reject (catastrophic) or Receive-Protocol-Reject
    RXR = "RXR"  # Receive-Echo-Request, -Echo-Reply or -Discard-Request


class Action(StrEnum):
    """The actions of RFC 1661 4.4."""

    TLU = "tlu"  # This-Layer-Up
    TLD = "tld"  # This-Layer-Down
    TLS = "tls"  # This-Layer-Started
    TLF = "tlf"  # This-Layer-Finished
    IRC = "irc"  # Initialize-Restart-Count
    ZRC = "zrc"  # Zero-Restart-Count
    SCR = "scr"  # Send-Configure-Request
    SCA = "sca"  # Send-Configure-Ack
    SCN = "scn"  # Send-Configure-Nak/Rej
    STR = "str"  # Send-Terminate-Request
    STA = "sta"  # Send-Terminate-Ack
    SCJ = "scj"  # Send-Code-Reject
    SER = "ser"  # Send-Echo-Reply


S, E, A = State, FsmEvent, Action
Cell = tuple[tuple[Action, ...], State] | None

#: RFC 1661 4.1: ``TRANSITIONS[state][event] -> (actions, next_state)``, None where the RFC says "-".
TRANSITIONS: dict[State, dict[FsmEvent, Cell]] = {
    S.INITIAL: {
        E.UP: ((), S.CLOSED), E.DOWN: None, E.OPEN: ((A.TLS,), S.STARTING), E.CLOSE: ((), S.INITIAL),
        E.TO_PLUS: None, E.TO_MINUS: None, E.RCR_PLUS: None, E.RCR_MINUS: None,
        E.RCA: None, E.RCN: None, E.RTR: None, E.RTA: None,
        E.RUC: None, E.RXJ_PLUS: None, E.RXJ_MINUS: None, E.RXR: None,
    },
    S.STARTING: {
        E.UP: ((A.IRC, A.SCR), S.REQ_SENT), E.DOWN: None, E.OPEN: ((), S.STARTING),
        E.CLOSE: ((A.TLF,), S.INITIAL),
        E.TO_PLUS: None, E.TO_MINUS: None, E.RCR_PLUS: None, E.RCR_MINUS: None,
        E.RCA: None, E.RCN: None, E.RTR: None, E.RTA: None,
        E.RUC: None, E.RXJ_PLUS: None, E.RXJ_MINUS: None, E.RXR: None,
    },
    S.CLOSED: {
        E.UP: None, E.DOWN: ((), S.INITIAL), E.OPEN: ((A.IRC, A.SCR), S.REQ_SENT), E.CLOSE: ((), S.CLOSED),
        E.TO_PLUS: None, E.TO_MINUS: None,
        E.RCR_PLUS: ((A.STA,), S.CLOSED), E.RCR_MINUS: ((A.STA,), S.CLOSED),
        E.RCA: ((A.STA,), S.CLOSED), E.RCN: ((A.STA,), S.CLOSED),
        E.RTR: ((A.STA,), S.CLOSED), E.RTA: ((), S.CLOSED), E.RUC: ((A.SCJ,), S.CLOSED),
        E.RXJ_PLUS: ((), S.CLOSED), E.RXJ_MINUS: ((A.TLF,), S.CLOSED), E.RXR: ((), S.CLOSED),
    },
    S.STOPPED: {
        E.UP: None, E.DOWN: ((A.TLS,), S.STARTING), E.OPEN: ((), S.STOPPED), E.CLOSE: ((), S.CLOSED),
        E.TO_PLUS: None, E.TO_MINUS: None,
        E.RCR_PLUS: ((A.IRC, A.SCR, A.SCA), S.ACK_SENT), E.RCR_MINUS: ((A.IRC, A.SCR, A.SCN), S.REQ_SENT),
        E.RCA: ((A.STA,), S.STOPPED), E.RCN: ((A.STA,), S.STOPPED),
        E.RTR: ((A.STA,), S.STOPPED), E.RTA: ((), S.STOPPED), E.RUC: ((A.SCJ,), S.STOPPED),
        E.RXJ_PLUS: ((), S.STOPPED), E.RXJ_MINUS: ((A.TLF,), S.STOPPED), E.RXR: ((), S.STOPPED),
    },
    S.CLOSING: {
        E.UP: None, E.DOWN: ((), S.INITIAL), E.OPEN: ((), S.STOPPING), E.CLOSE: ((), S.CLOSING),
        E.TO_PLUS: ((A.STR,), S.CLOSING), E.TO_MINUS: ((A.TLF,), S.CLOSED),
        E.RCR_PLUS: ((), S.CLOSING), E.RCR_MINUS: ((), S.CLOSING),
        E.RCA: ((), S.CLOSING), E.RCN: ((), S.CLOSING),
        E.RTR: ((A.STA,), S.CLOSING), E.RTA: ((A.TLF,), S.CLOSED), E.RUC: ((A.SCJ,), S.CLOSING),
        E.RXJ_PLUS: ((), S.CLOSING), E.RXJ_MINUS: ((A.TLF,), S.CLOSED), E.RXR: ((), S.CLOSING),
    },
    S.STOPPING: {
        E.UP: None, E.DOWN: ((), S.STARTING), E.OPEN: ((), S.STOPPING), E.CLOSE: ((), S.CLOSING),
        E.TO_PLUS: ((A.STR,), S.STOPPING), E.TO_MINUS: ((A.TLF,), S.STOPPED),
        E.RCR_PLUS: ((), S.STOPPING), E.RCR_MINUS: ((), S.STOPPING),
        E.RCA: ((), S.STOPPING), E.RCN: ((), S.STOPPING),
        E.RTR: ((A.STA,), S.STOPPING), E.RTA: ((A.TLF,), S.STOPPED), E.RUC: ((A.SCJ,), S.STOPPING),
        E.RXJ_PLUS: ((), S.STOPPING), E.RXJ_MINUS: ((A.TLF,), S.STOPPED), E.RXR: ((), S.STOPPING),
    },
    S.REQ_SENT: {
        E.UP: None, E.DOWN: ((), S.STARTING), E.OPEN: ((), S.REQ_SENT),
        E.CLOSE: ((A.IRC, A.STR), S.CLOSING),
        E.TO_PLUS: ((A.SCR,), S.REQ_SENT), E.TO_MINUS: ((A.TLF,), S.STOPPED),
        E.RCR_PLUS: ((A.SCA,), S.ACK_SENT), E.RCR_MINUS: ((A.SCN,), S.REQ_SENT),
        E.RCA: ((A.IRC,), S.ACK_RCVD), E.RCN: ((A.IRC, A.SCR), S.REQ_SENT),
        E.RTR: ((A.STA,), S.REQ_SENT), E.RTA: ((), S.REQ_SENT), E.RUC: ((A.SCJ,), S.REQ_SENT),
        E.RXJ_PLUS: ((), S.REQ_SENT), E.RXJ_MINUS: ((A.TLF,), S.STOPPED), E.RXR: ((), S.REQ_SENT),
    },
    S.ACK_RCVD: {
        E.UP: None, E.DOWN: ((), S.STARTING), E.OPEN: ((), S.ACK_RCVD),
        E.CLOSE: ((A.IRC, A.STR), S.CLOSING),
        E.TO_PLUS: ((A.SCR,), S.REQ_SENT), E.TO_MINUS: ((A.TLF,), S.STOPPED),
        E.RCR_PLUS: ((A.SCA, A.TLU), S.OPENED), E.RCR_MINUS: ((A.SCN,), S.ACK_RCVD),
        E.RCA: ((A.SCR,), S.REQ_SENT), E.RCN: ((A.SCR,), S.REQ_SENT),
        E.RTR: ((A.STA,), S.REQ_SENT), E.RTA: ((), S.REQ_SENT), E.RUC: ((A.SCJ,), S.ACK_RCVD),
        E.RXJ_PLUS: ((), S.REQ_SENT), E.RXJ_MINUS: ((A.TLF,), S.STOPPED), E.RXR: ((), S.ACK_RCVD),
    },
    S.ACK_SENT: {
        E.UP: None, E.DOWN: ((), S.STARTING), E.OPEN: ((), S.ACK_SENT),
        E.CLOSE: ((A.IRC, A.STR), S.CLOSING),
        E.TO_PLUS: ((A.SCR,), S.ACK_SENT), E.TO_MINUS: ((A.TLF,), S.STOPPED),
        E.RCR_PLUS: ((A.SCA,), S.ACK_SENT), E.RCR_MINUS: ((A.SCN,), S.REQ_SENT),
        E.RCA: ((A.IRC, A.TLU), S.OPENED), E.RCN: ((A.IRC, A.SCR), S.ACK_SENT),
        E.RTR: ((A.STA,), S.REQ_SENT), E.RTA: ((), S.ACK_SENT), E.RUC: ((A.SCJ,), S.ACK_SENT),
        E.RXJ_PLUS: ((), S.ACK_SENT), E.RXJ_MINUS: ((A.TLF,), S.STOPPED), E.RXR: ((), S.ACK_SENT),
    },
    S.OPENED: {
        E.UP: None, E.DOWN: ((A.TLD,), S.STARTING), E.OPEN: ((), S.OPENED),
        E.CLOSE: ((A.TLD, A.IRC, A.STR), S.CLOSING),
        E.TO_PLUS: None, E.TO_MINUS: None,
        E.RCR_PLUS: ((A.TLD, A.SCR, A.SCA), S.ACK_SENT), E.RCR_MINUS: ((A.TLD, A.SCR, A.SCN), S.REQ_SENT),
        E.RCA: ((A.TLD, A.SCR), S.REQ_SENT), E.RCN: ((A.TLD, A.SCR), S.REQ_SENT),
        E.RTR: ((A.TLD, A.ZRC, A.STA), S.STOPPING), E.RTA: ((A.TLD, A.SCR), S.REQ_SENT),
        E.RUC: ((A.SCJ,), S.OPENED), E.RXJ_PLUS: ((), S.OPENED),
        E.RXJ_MINUS: ((A.TLD, A.IRC, A.STR), S.STOPPING), E.RXR: ((A.SER,), S.OPENED),
    },
}  # fmt: skip

#: States in which the Restart timer runs (RFC 1661 4.6).
TIMER_STATES = frozenset({S.CLOSING, S.STOPPING, S.REQ_SENT, S.ACK_RCVD, S.ACK_SENT})
#: States in which a Configure-Request is being negotiated.
NEGOTIATING = frozenset({S.REQ_SENT, S.ACK_RCVD, S.ACK_SENT})


# -- what the automaton hands its owner --------------------------------------


@dataclass(frozen=True, slots=True)
class AutomatonOutput(Event):
    """Something the automaton produced for its owner (PppConnection)."""


@dataclass(frozen=True, slots=True)
class PacketToSend(AutomatonOutput):
    """A control packet (Code .. Data, without the PPP Protocol field) to send."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class LayerAction(AutomatonOutput):
    """One of the layer actions tlu/tld/tls/tlf, with the event that caused it
    and the state that event arrived in."""

    now: float
    cause: FsmEvent
    previous: State


@dataclass(frozen=True, slots=True)
class ThisLayerUp(LayerAction):
    """tlu: the automaton entered Opened; the upper layers may start."""


@dataclass(frozen=True, slots=True)
class ThisLayerDown(LayerAction):
    """tld: the automaton left Opened."""


@dataclass(frozen=True, slots=True)
class ThisLayerStarted(LayerAction):
    """tls: the automaton needs the lower layer."""


@dataclass(frozen=True, slots=True)
class ThisLayerFinished(LayerAction):
    """tlf: the automaton is done with the lower layer."""


@dataclass(frozen=True, slots=True)
class ExtendedCodeReceived(AutomatonOutput):
    """(LCP) a Protocol-Reject, Echo-Request, Echo-Reply or Discard-Request arrived;
    queued before the actions of the RXJ or RXR event it causes."""

    code: int
    data: bytes
    now: float


_LAYER_ACTIONS: dict[Action, type[LayerAction]] = {
    A.TLU: ThisLayerUp,
    A.TLD: ThisLayerDown,
    A.TLS: ThisLayerStarted,
    A.TLF: ThisLayerFinished,
}


# -- packets and options -------------------------------------------------------


def encode_packet(code: int, ident: int, data: bytes = b"") -> bytes:
    return bytes([code, ident & 0xFF]) + (len(data) + 4).to_bytes(2, "big") + data


def decode_packet(packet: bytes) -> tuple[int, int, bytes] | None:
    """(code, identifier, data) or None if malformed (too short, bad Length)."""
    if len(packet) < 4:
        return None
    length = int.from_bytes(packet[2:4], "big")
    if length < 4 or length > len(packet):
        return None
    return packet[0], packet[1], bytes(packet[4:length])


def encode_options(options: list[Option]) -> bytes:
    return b"".join(bytes([t, len(d) + 2]) + d for t, d in options)


def decode_options(data: bytes) -> list[Option] | None:
    """Parse an option list; None if an option's length is < 2 or overruns."""
    out: list[Option] = []
    i, n = 0, len(data)
    while i < n:
        if i + 2 > n:
            return None
        t, ln = data[i], data[i + 1]
        if ln < 2 or i + ln > n:
            return None
        out.append((t, bytes(data[i + 2 : i + ln])))
        i += ln
    return out


class OptionPolicy:
    """What one protocol asks for and accepts; the automaton calls these.

    ``check_request`` returns ``(naks, rejects)``; both empty means Ack.
    ``local_magic`` is the Magic-Number an Echo-Reply carries (LCP; zero here).
    """

    local_magic: int = 0

    def reset(self) -> None: ...

    def request_options(self) -> list[Option]:
        return []

    def check_request(self, options: list[Option]) -> tuple[list[Option], list[Option]]:
        return [], list(options)

    def peer_acked(self, options: list[Option]) -> None:
        """We sent a Configure-Ack for these (the peer's) options."""

    def on_ack(self, options: list[Option]) -> None: ...

    def on_nak(self, options: list[Option]) -> None: ...

    def on_reject(self, options: list[Option]) -> None: ...


# -- the automaton ---------------------------------------------------------------


class NegotiationAutomaton:
    """The RFC 1661 option negotiation automaton for one control protocol (sans-IO).

    Inputs: ``up``/``down``/``open``/``close`` (lower layer and administrative
    events), ``receive(packet, now)`` (a control packet, the PPP Information
    field), ``on_timer(now)``; ``event(name, now)`` applies one
    :class:`FsmEvent` directly.  Outputs wait in order for :meth:`events`:
    :class:`PacketToSend` and the :class:`LayerAction` subclasses.  With
    ``extended=True`` (LCP) codes 8..11 are understood: Protocol-Reject (RXJ+,
    or RXJ- when it rejects this protocol), Echo-Request (RXR, answered with an
    Echo-Reply in Opened carrying ``policy.local_magic``), Echo-Reply and
    Discard-Request (RXR), each first queued as :class:`ExtendedCodeReceived`.
    Other codes are Code-Rejected (RUC).
    """

    def __init__(
        self,
        name: str,
        policy: OptionPolicy,
        *,
        rng: random.Random,
        restart_timer: float = 3.0,
        max_configure: int = 10,
        max_terminate: int = 2,
        max_failure: int = 5,
        protocol: int = 0,
        extended: bool = False,
    ) -> None:
        self.name = name
        self.policy = policy
        self.restart_timer = restart_timer
        self.max_configure = max_configure
        self.max_terminate = max_terminate
        self.max_failure = max_failure
        self.protocol = protocol
        self.extended = extended
        self.state = S.INITIAL
        self.restart_count = 0
        self._queue: list[AutomatonOutput] = []
        self._deadline: float | None = None
        self._id = rng.randrange(256)
        self._req_id: int | None = None  # identifier of our last Configure-Request
        self._req_options: list[Option] = []
        self._naks_sent = 0
        self._reply: bytes | None = None  # Configure-Ack/Nak/Reject prepared for sca/scn
        self._rx_id = 0
        self._rx_code = 0
        self._rx_packet = b""
        self.term_reason = b""
        self.counters: dict[str, int] = {
            "illegal_events": 0,
            "malformed": 0,
            "stale_replies": 0,
            "configure_requests_sent": 0,
            "terminate_requests_sent": 0,
            "code_rejects_sent": 0,
            "code_rejects_received": 0,
            "configure_naks_sent": 0,
            "configure_rejects_sent": 0,
            "timeouts": 0,
        }
        self.transitions: list[tuple[State, FsmEvent, State]] = []  # (from, event, to), for tests and traces
        self._actions = {
            A.IRC: self._irc, A.ZRC: self._zrc, A.SCR: self._scr, A.SCA: self._sca, A.SCN: self._scn,
            A.STR: self._str, A.STA: self._sta, A.SCJ: self._scj, A.SER: self._ser,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"NegotiationAutomaton({self.name!r}, state={self.state.value!r})"

    # -- outputs
    def events(self) -> list[AutomatonOutput]:
        """What was produced since the last call, oldest first."""
        out, self._queue = self._queue, []
        return out

    def send_packet(self, code: int, data: bytes) -> None:
        """Queue a packet outside the table (Protocol-Reject) with the next Identifier."""
        self._queue.append(PacketToSend(encode_packet(code, self._next_id(), data)))

    # -- administrative and lower-layer events
    def up(self, now: float) -> None:
        self.event(E.UP, now)

    def down(self, now: float) -> None:
        self.event(E.DOWN, now)

    def open(self, now: float) -> None:
        self.event(E.OPEN, now)

    def close(self, now: float, reason: bytes | str = b"") -> None:
        self.term_reason = reason.encode() if isinstance(reason, str) else reason
        self.event(E.CLOSE, now)

    # -- timers
    def next_deadline(self) -> float | None:
        return self._deadline if self.state in TIMER_STATES else None

    def on_timer(self, now: float) -> None:
        d = self.next_deadline()
        if d is None or now < d:
            return
        self._deadline = None
        self.counters["timeouts"] += 1
        self.event(E.TO_PLUS if self.restart_count > 0 else E.TO_MINUS, now)

    # -- the table
    def event(self, name: FsmEvent | str, now: float) -> None:
        """Apply one RFC 1661 event; an event the table says cannot happen is counted and ignored."""
        try:
            ev = FsmEvent(name)
        except ValueError:
            raise LocalProtocolError(f"unknown automaton event {name!r}") from None
        cell = TRANSITIONS[self.state][ev]
        if cell is None:
            self.counters["illegal_events"] += 1
            return
        actions, nxt = cell
        prev = self.state
        self.state = nxt
        self.transitions.append((prev, ev, nxt))
        if nxt not in TIMER_STATES:
            self._deadline = None
        if A.SCR in actions and prev in (S.STARTING, S.CLOSED, S.STOPPED):
            self.policy.reset()
            self._naks_sent = 0
        terminating = A.STR in actions
        for act in actions:
            layer = _LAYER_ACTIONS.get(act)
            if layer is not None:
                self._queue.append(layer(now, ev, prev))
            else:
                self._actions[act](now, terminating)

    # -- actions
    def _irc(self, now: float, terminating: bool) -> None:
        self.restart_count = self.max_terminate if terminating else self.max_configure

    def _zrc(self, now: float, _t: bool) -> None:
        self.restart_count = 0
        self._deadline = now + self.restart_timer

    def _next_id(self) -> int:
        self._id = (self._id + 1) & 0xFF
        return self._id

    def _send(self, packet: bytes) -> None:
        self._queue.append(PacketToSend(packet))

    def _scr(self, now: float, _t: bool) -> None:
        self._req_options = self.policy.request_options()
        self._req_id = self._next_id()
        self._send(encode_packet(CONFIGURE_REQUEST, self._req_id, encode_options(self._req_options)))
        self.counters["configure_requests_sent"] += 1
        self.restart_count -= 1
        self._deadline = now + self.restart_timer

    def _sca(self, now: float, _t: bool) -> None:
        self._send(self._reply or encode_packet(CONFIGURE_ACK, self._rx_id))
        self._reply = None

    def _scn(self, now: float, _t: bool) -> None:
        self._send(self._reply or encode_packet(CONFIGURE_NAK, self._rx_id))
        self._reply = None

    def _str(self, now: float, _t: bool) -> None:
        self._send(encode_packet(TERMINATE_REQUEST, self._next_id(), self.term_reason))
        self.counters["terminate_requests_sent"] += 1
        self.restart_count -= 1
        self._deadline = now + self.restart_timer

    def _sta(self, now: float, _t: bool) -> None:
        self._send(encode_packet(TERMINATE_ACK, self._rx_id))

    def _scj(self, now: float, _t: bool) -> None:
        self._send(encode_packet(CODE_REJECT, self._next_id(), self._rx_packet))
        self.counters["code_rejects_sent"] += 1

    def _ser(self, now: float, _t: bool) -> None:
        if self._rx_code != ECHO_REQUEST:
            return  # Echo-Reply and Discard-Request need no answer
        magic = self.policy.local_magic.to_bytes(4, "big")
        self._send(encode_packet(ECHO_REPLY, self._rx_id, magic + self._rx_packet[4:]))

    # -- received packets
    def receive(self, packet: bytes, now: float, *, max_reject: int = 1500) -> None:
        """One control packet (the PPP Information field). Never raises on peer input."""
        parsed = decode_packet(packet)
        if parsed is None:
            self.counters["malformed"] += 1
            return
        code, ident, data = parsed
        self._rx_id = ident
        self._rx_code = code
        if code == CONFIGURE_REQUEST:
            self._configure_request(ident, data, now)
        elif code in (CONFIGURE_ACK, CONFIGURE_NAK, CONFIGURE_REJECT):
            self._configure_reply(code, ident, data, now)
        elif code == TERMINATE_REQUEST:
            self.event(E.RTR, now)
        elif code == TERMINATE_ACK:
            self.event(E.RTA, now)
        elif code == CODE_REJECT:
            self.counters["code_rejects_received"] += 1
            rejected = data[0] if data else 0
            self.event(E.RXJ_MINUS if 1 <= rejected <= 7 else E.RXJ_PLUS, now)
        elif self.extended and PROTOCOL_REJECT <= code <= DISCARD_REQUEST:
            self._queue.append(ExtendedCodeReceived(code, data, now))
            if code == PROTOCOL_REJECT:
                ours = data[:2] == self.protocol.to_bytes(2, "big")
                self.event(E.RXJ_MINUS if ours else E.RXJ_PLUS, now)
            else:
                self._rx_packet = data if code == ECHO_REQUEST else b""
                self.event(E.RXR, now)
        else:
            length = int.from_bytes(packet[2:4], "big")
            self._rx_packet = bytes(packet[: min(length, max_reject)])
            self.event(E.RUC, now)

    def _configure_request(self, ident: int, data: bytes, now: float) -> None:
        options = decode_options(data)
        if options is None:
            self.counters["malformed"] += 1
            return
        if self.state in (S.INITIAL, S.STARTING):
            self.counters["illegal_events"] += 1
            return
        naks, rejects = self.policy.check_request(options)
        if not rejects and naks and self._naks_sent >= self.max_failure:
            rejects = [o for o in options if o[0] in {t for t, _ in naks}]
        if rejects:
            self._reply = encode_packet(CONFIGURE_REJECT, ident, encode_options(rejects))
            self.counters["configure_rejects_sent"] += 1
            good = False
        elif naks:
            self._reply = encode_packet(CONFIGURE_NAK, ident, encode_options(naks))
            self._naks_sent += 1
            self.counters["configure_naks_sent"] += 1
            good = False
        else:
            self._reply = encode_packet(CONFIGURE_ACK, ident, data)
            self._naks_sent = 0
            good = True
        if good and self.state not in (S.CLOSED, S.CLOSING, S.STOPPING):
            self.policy.peer_acked(options)
        self.event(E.RCR_PLUS if good else E.RCR_MINUS, now)
        self._reply = None

    def _configure_reply(self, code: int, ident: int, data: bytes, now: float) -> None:
        if ident != self._req_id or self.state in (S.INITIAL, S.STARTING):
            self.counters["stale_replies"] += 1
            return
        options = decode_options(data)
        if options is None:
            self.counters["malformed"] += 1
            return
        in_negotiation = self.state in NEGOTIATING or self.state == S.OPENED
        if code == CONFIGURE_ACK:
            if options != self._req_options:
                self.counters["malformed"] += 1  # an Ack must repeat our request exactly
                return
            if in_negotiation:
                self.policy.on_ack(options)
            self._req_id = None  # one reply per request
            self.event(E.RCA, now)
            return
        if in_negotiation:
            if code == CONFIGURE_NAK:
                self.policy.on_nak(options)
            else:
                self.policy.on_reject(options)
        self._req_id = None
        self.event(E.RCN, now)


__all__ = [
    "Action",
    "AutomatonOutput",
    "ExtendedCodeReceived",
    "FsmEvent",
    "LayerAction",
    "NEGOTIATING",
    "NegotiationAutomaton",
    "Option",
    "OptionPolicy",
    "PacketToSend",
    "State",
    "TIMER_STATES",
    "TRANSITIONS",
    "ThisLayerDown",
    "ThisLayerFinished",
    "ThisLayerStarted",
    "ThisLayerUp",
    "decode_options",
    "decode_packet",
    "encode_options",
    "encode_packet",
]
