"""RFC 1661 option negotiation automaton and the Link Control Protocol's options.

Scope:

- packet format of LCP-like protocols (RFC 1661 5: Code, Identifier, Length,
  Data; octets beyond Length are padding) and their option lists (TLVs);
- :class:`NegotiationAutomaton`: the RFC 1661 4.1 state transition table
  (states Initial .. Opened; events Up, Down, Open, Close, TO+, TO-, RCR+, RCR-,
  RCA, RCN, RTR, RTA, RUC, RXJ+, RXJ-, RXR; actions tlu, tld, tls, tlf, irc, zrc,
  scr, sca, scn, str, sta, scj, ser) kept in one table shared by LCP and IPCP,
  with the Restart timer, Max-Configure, Max-Terminate and Max-Failure
  (section 4.6).  Options are judged by a per-protocol policy object;
- :class:`LcpPolicy`: LCP options (section 6) Maximum-Receive-Unit,
  Async-Control-Character-Map (RFC 1662 7.1), Authentication-Protocol (PAP
  0xC023, CHAP 0xC223 with MD5 algorithm 5), Magic-Number with loop-back
  detection (6.4), Protocol-Field-Compression and
  Address-and-Control-Field-Compression.

The "restart" option of the Open event in Stopped/Stopping/Opened is not
implemented (the link stays as it is), nor is the "passive" option of TO- in
Req-Sent (the automaton gives up and goes to Stopped).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from dialsim.proto.errors import LocalProtocolError

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

PROTO_LCP = 0xC021
PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223
PROTO_IPCP = 0x8021
PROTO_IP = 0x0021
PROTO_VJ_COMP = 0x002D
PROTO_VJ_UNCOMP = 0x002F

# LCP option types (RFC 1661 6)
OPT_MRU = 1
OPT_ACCM = 2
OPT_AUTH = 3
OPT_MAGIC = 5
OPT_PFC = 7
OPT_ACFC = 8

CHAP_MD5 = 5

Option = tuple[int, bytes]  # (type, data without the type/length octets)

STATES = (
    "Initial",
    "Starting",
    "Closed",
    "Stopped",
    "Closing",
    "Stopping",
    "Req-Sent",
    "Ack-Rcvd",
    "Ack-Sent",
    "Opened",
)
EVENTS = ("Up", "Down", "Open", "Close", "TO+", "TO-", "RCR+", "RCR-", "RCA", "RCN", "RTR", "RTA", "RUC", "RXJ+", "RXJ-", "RXR")


def _row(*cells: str | None) -> dict[str, tuple[tuple[str, ...], str] | None]:
    out = {}
    for state, cell in zip(STATES, cells, strict=True):
        if cell is None:
            out[state] = None
            continue
        acts, _, nxt = cell.rpartition("/")
        out[state] = (tuple(a for a in acts.split(",") if a), STATES[int(nxt)])
    return out


# RFC 1661 4.1, one row per event; None is the table's "-" (cannot happen).
# The "r", "p" and "x" annotations of the RFC are dropped (see module docstring).
_BY_EVENT = {
    "Up": _row("/2", "irc,scr/6", None, None, None, None, None, None, None, None),
    "Down": _row(None, None, "/0", "tls/1", "/0", "/1", "/1", "/1", "/1", "tld/1"),
    "Open": _row("tls/1", "/1", "irc,scr/6", "/3", "/5", "/5", "/6", "/7", "/8", "/9"),
    "Close": _row("/0", "tlf/0", "/2", "/2", "/4", "/4", "irc,str/4", "irc,str/4", "irc,str/4", "tld,irc,str/4"),
    "TO+": _row(None, None, None, None, "str/4", "str/5", "scr/6", "scr/6", "scr/8", None),
    "TO-": _row(None, None, None, None, "tlf/2", "tlf/3", "tlf/3", "tlf/3", "tlf/3", None),
    "RCR+": _row(None, None, "sta/2", "irc,scr,sca/8", "/4", "/5", "sca/8", "sca,tlu/9", "sca/8", "tld,scr,sca/8"),
    "RCR-": _row(None, None, "sta/2", "irc,scr,scn/6", "/4", "/5", "scn/6", "scn/7", "scn/6", "tld,scr,scn/6"),
    "RCA": _row(None, None, "sta/2", "sta/3", "/4", "/5", "irc/7", "scr/6", "irc,tlu/9", "tld,scr/6"),
    "RCN": _row(None, None, "sta/2", "sta/3", "/4", "/5", "irc,scr/6", "scr/6", "irc,scr/8", "tld,scr/6"),
    "RTR": _row(None, None, "sta/2", "sta/3", "sta/4", "sta/5", "sta/6", "sta/6", "sta/6", "tld,zrc,sta/5"),
    "RTA": _row(None, None, "/2", "/3", "tlf/2", "tlf/3", "/6", "/6", "/8", "tld,scr/6"),
    "RUC": _row(None, None, "scj/2", "scj/3", "scj/4", "scj/5", "scj/6", "scj/7", "scj/8", "scj/9"),
    "RXJ+": _row(None, None, "/2", "/3", "/4", "/5", "/6", "/6", "/8", "/9"),
    "RXJ-": _row(None, None, "tlf/2", "tlf/3", "tlf/2", "tlf/3", "tlf/3", "tlf/3", "tlf/3", "tld,irc,str/5"),
    "RXR": _row(None, None, "/2", "/3", "/4", "/5", "/6", "/7", "/8", "ser/9"),
}

#: ``TRANSITIONS[state][event] -> (actions, next_state)`` or None where RFC 1661 says "-".
TRANSITIONS: dict[str, dict[str, tuple[tuple[str, ...], str] | None]] = {
    s: {e: _BY_EVENT[e][s] for e in EVENTS} for s in STATES
}

_TIMER_STATES = frozenset({"Closing", "Stopping", "Req-Sent", "Ack-Rcvd", "Ack-Sent"})


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
    """

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


@dataclass(slots=True)
class _Callbacks:
    tlu: Callable[[float], None] | None = None
    tld: Callable[[float], None] | None = None
    tls: Callable[[float], None] | None = None
    tlf: Callable[[float], None] | None = None
    on_extra: Callable[[int, bytes, float], None] | None = None  # LCP codes 8..11


class NegotiationAutomaton:
    """The RFC 1661 option negotiation automaton for one control protocol (sans-IO).

    ``send(packet: bytes)`` is called with every control packet to transmit
    (code/id/length/data, without the PPP protocol field).  The layer actions
    tlu/tld/tls/tlf call the given callbacks with ``now``.  With
    ``extended=True`` (LCP) codes 8..11 are understood: Protocol-Reject (RXJ+,
    or RXJ- when it rejects this protocol), Echo-Request (RXR, answered with an
    Echo-Reply in Opened carrying ``policy.local_magic``), Echo-Reply and
    Discard-Request (RXR); ``on_extra(code, data, now)`` sees each of them
    first.  Other codes are Code-Rejected (RUC).
    """

    def __init__(
        self,
        name: str,
        policy: OptionPolicy,
        send: Callable[[bytes], None],
        *,
        rng: random.Random,
        restart_timer: float = 3.0,
        max_configure: int = 10,
        max_terminate: int = 2,
        max_failure: int = 5,
        tlu: Callable[[float], None] | None = None,
        tld: Callable[[float], None] | None = None,
        tls: Callable[[float], None] | None = None,
        tlf: Callable[[float], None] | None = None,
        protocol: int = 0,
        extended: bool = False,
        on_extra: Callable[[int, bytes, float], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._send = send
        self.restart_timer = restart_timer
        self.max_configure = max_configure
        self.max_terminate = max_terminate
        self.max_failure = max_failure
        self._cb = _Callbacks(tlu, tld, tls, tlf, on_extra)
        self.protocol = protocol
        self.extended = extended
        self.state = "Initial"
        self.restart_count = 0
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
        self.transitions: list[tuple[str, str, str]] = []  # (from, event, to), for tests and traces

    # -- administrative and lower-layer events
    def up(self, now: float) -> None:
        self.event("Up", now)

    def down(self, now: float) -> None:
        self.event("Down", now)

    def open(self, now: float) -> None:
        self.event("Open", now)

    def close(self, now: float, reason: bytes | str = b"") -> None:
        self.term_reason = reason.encode() if isinstance(reason, str) else reason
        self.event("Close", now)

    # -- timers
    def next_deadline(self) -> float | None:
        return self._deadline if self.state in _TIMER_STATES else None

    def on_timer(self, now: float) -> None:
        d = self.next_deadline()
        if d is None or now < d:
            return
        self._deadline = None
        self.counters["timeouts"] += 1
        self.event("TO+" if self.restart_count > 0 else "TO-", now)

    # -- the table
    def event(self, name: str, now: float) -> None:
        """Apply one RFC 1661 event; an event the table says cannot happen is counted and ignored."""
        if name not in _BY_EVENT:
            raise LocalProtocolError(f"unknown automaton event {name!r}")
        cell = TRANSITIONS[self.state][name]
        if cell is None:
            self.counters["illegal_events"] += 1
            return
        actions, nxt = cell
        prev = self.state
        self.state = nxt
        self.transitions.append((prev, name, nxt))
        if nxt not in _TIMER_STATES:
            self._deadline = None
        if "scr" in actions and prev in ("Starting", "Closed", "Stopped"):
            self.policy.reset()
            self._naks_sent = 0
        for act in actions:
            getattr(self, "_act_" + act)(now, "str" in actions)

    # actions
    def _act_tlu(self, now: float, _t: bool) -> None:
        if self._cb.tlu:
            self._cb.tlu(now)

    def _act_tld(self, now: float, _t: bool) -> None:
        if self._cb.tld:
            self._cb.tld(now)

    def _act_tls(self, now: float, _t: bool) -> None:
        if self._cb.tls:
            self._cb.tls(now)

    def _act_tlf(self, now: float, _t: bool) -> None:
        if self._cb.tlf:
            self._cb.tlf(now)

    def _act_irc(self, now: float, terminating: bool) -> None:
        self.restart_count = self.max_terminate if terminating else self.max_configure

    def _act_zrc(self, now: float, _t: bool) -> None:
        self.restart_count = 0
        self._deadline = now + self.restart_timer

    def _next_id(self) -> int:
        self._id = (self._id + 1) & 0xFF
        return self._id

    def _act_scr(self, now: float, _t: bool) -> None:
        self._req_options = self.policy.request_options()
        self._req_id = self._next_id()
        self._send(encode_packet(CONFIGURE_REQUEST, self._req_id, encode_options(self._req_options)))
        self.counters["configure_requests_sent"] += 1
        self.restart_count -= 1
        self._deadline = now + self.restart_timer

    def _act_sca(self, now: float, _t: bool) -> None:
        self._send(self._reply or encode_packet(CONFIGURE_ACK, self._rx_id))
        self._reply = None

    def _act_scn(self, now: float, _t: bool) -> None:
        self._send(self._reply or encode_packet(CONFIGURE_NAK, self._rx_id))
        self._reply = None

    def _act_str(self, now: float, _t: bool) -> None:
        self._send(encode_packet(TERMINATE_REQUEST, self._next_id(), self.term_reason))
        self.counters["terminate_requests_sent"] += 1
        self.restart_count -= 1
        self._deadline = now + self.restart_timer

    def _act_sta(self, now: float, _t: bool) -> None:
        self._send(encode_packet(TERMINATE_ACK, self._rx_id))

    def _act_scj(self, now: float, _t: bool) -> None:
        self._send(encode_packet(CODE_REJECT, self._next_id(), self._rx_packet))
        self.counters["code_rejects_sent"] += 1

    def _act_ser(self, now: float, _t: bool) -> None:
        if self._rx_code != ECHO_REQUEST:
            return  # Echo-Reply and Discard-Request need no answer
        magic = getattr(self.policy, "local_magic", 0)
        self._send(encode_packet(ECHO_REPLY, self._rx_id, magic.to_bytes(4, "big") + self._rx_packet[4:]))

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
            self.event("RTR", now)
        elif code == TERMINATE_ACK:
            self.event("RTA", now)
        elif code == CODE_REJECT:
            self.counters["code_rejects_received"] += 1
            rejected = data[0] if data else 0
            self.event("RXJ-" if 1 <= rejected <= 7 else "RXJ+", now)
        elif self.extended and PROTOCOL_REJECT <= code <= DISCARD_REQUEST:
            if self._cb.on_extra is not None:
                self._cb.on_extra(code, data, now)
            if code == PROTOCOL_REJECT:
                self.event("RXJ-" if data[:2] == self.protocol.to_bytes(2, "big") else "RXJ+", now)
            else:
                self._rx_packet = data if code == ECHO_REQUEST else b""
                self.event("RXR", now)
        else:
            length = int.from_bytes(packet[2:4], "big")
            self._rx_packet = bytes(packet[: min(length, max_reject)])
            self.event("RUC", now)

    def _configure_request(self, ident: int, data: bytes, now: float) -> None:
        options = decode_options(data)
        if options is None:
            self.counters["malformed"] += 1
            return
        if self.state in ("Initial", "Starting"):
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
        if good and self.state not in ("Closed", "Closing", "Stopping"):
            self.policy.peer_acked(options)
        self.event("RCR+" if good else "RCR-", now)
        self._reply = None

    def _configure_reply(self, code: int, ident: int, data: bytes, now: float) -> None:
        if ident != self._req_id or self.state in ("Initial", "Starting"):
            self.counters["stale_replies"] += 1
            return
        options = decode_options(data)
        if options is None:
            self.counters["malformed"] += 1
            return
        in_negotiation = self.state in ("Req-Sent", "Ack-Rcvd", "Ack-Sent", "Opened")
        if code == CONFIGURE_ACK:
            if options != self._req_options:
                self.counters["malformed"] += 1  # an Ack must repeat our request exactly
                return
            if in_negotiation:
                self.policy.on_ack(options)
            self._req_id = None  # one reply per request
            self.event("RCA", now)
            return
        if in_negotiation:
            if code == CONFIGURE_NAK:
                self.policy.on_nak(options)
            else:
                self.policy.on_reject(options)
        self._req_id = None
        self.event("RCN", now)


# --------------------------------------------------------------------------
# LCP options


def _u16(d: bytes) -> int:
    return int.from_bytes(d[:2], "big")


def _u32(d: bytes) -> int:
    return int.from_bytes(d[:4], "big")


AUTH_OPTION = {"pap": PROTO_PAP.to_bytes(2, "big"), "chap": PROTO_CHAP.to_bytes(2, "big") + bytes([CHAP_MD5])}


def auth_name(data: bytes) -> str | None:
    """'pap' / 'chap' (MD5 only) for an Authentication-Protocol option's data, else None."""
    if data == AUTH_OPTION["pap"]:
        return "pap"
    if data == AUTH_OPTION["chap"]:
        return "chap"
    return None


class LcpPolicy(OptionPolicy):
    """LCP options for one link end.

    ``demand_auth``: protocol we require of the peer ('pap' | 'chap' | None);
    ``accept_auth``: protocol we agree to authenticate ourselves with (or None);
    ``alt_auth``: protocols we would also demand if the peer Naks ours.
    After negotiation: ``peer_*`` are the peer's options we acked (they govern
    what we send), ``got_*`` ours the peer acked (what we receive).
    """

    MIN_MRU = 64

    def __init__(
        self,
        rng: random.Random,
        *,
        mru: int = 1500,
        accm: int | None = 0,
        pfc: bool = True,
        acfc: bool = True,
        magic: bool = True,
        demand_auth: str | None = None,
        accept_auth: str | None = None,
        alt_auth: tuple[str, ...] = (),
    ) -> None:
        self.rng = rng
        self.mru = mru
        self.accm = accm
        self.pfc = pfc
        self.acfc = acfc
        self.use_magic = magic
        self.demand_auth = demand_auth
        self.accept_auth = accept_auth
        self.alt_auth = alt_auth
        self.loops_suspected = 0
        self.auth_refused = False
        self.magic = 0
        self.peer_clear()
        self.reset()

    def _new_magic(self) -> int:
        m = 0
        while m == 0 or m == self.magic:
            m = self.rng.getrandbits(32)
        return m

    def reset(self) -> None:
        self.want_mru: int | None = self.mru
        self.want_accm: int | None = self.accm
        self.want_auth: str | None = self.demand_auth
        self.want_magic = self.use_magic
        if self.use_magic:
            self.magic = self._new_magic()
        self.want_pfc = self.pfc
        self.want_acfc = self.acfc
        self.auth_refused = False
        self.got_mru = 1500
        self.got_accm = 0xFFFFFFFF
        self.got_auth: str | None = None
        self.got_magic = 0
        self.got_pfc = False
        self.got_acfc = False

    @property
    def local_magic(self) -> int:
        """Our Magic-Number if the peer acked it, else zero (for Echo and Discard packets)."""
        return self.got_magic

    def peer_clear(self) -> None:
        self.peer_mru = 1500
        self.peer_accm = 0xFFFFFFFF
        self.peer_auth: str | None = None
        self.peer_magic = 0
        self.peer_pfc = False
        self.peer_acfc = False

    def request_options(self) -> list[Option]:
        opts: list[Option] = []
        if self.want_mru is not None:
            opts.append((OPT_MRU, self.want_mru.to_bytes(2, "big")))
        if self.want_accm is not None:
            opts.append((OPT_ACCM, self.want_accm.to_bytes(4, "big")))
        if self.want_auth is not None:
            opts.append((OPT_AUTH, AUTH_OPTION[self.want_auth]))
        if self.want_magic:
            opts.append((OPT_MAGIC, self.magic.to_bytes(4, "big")))
        if self.want_pfc:
            opts.append((OPT_PFC, b""))
        if self.want_acfc:
            opts.append((OPT_ACFC, b""))
        return opts

    def check_request(self, options: list[Option]) -> tuple[list[Option], list[Option]]:
        naks: list[Option] = []
        rejects: list[Option] = []
        for t, d in options:
            if t == OPT_MRU and len(d) == 2:
                if _u16(d) < self.MIN_MRU:
                    naks.append((t, self.MIN_MRU.to_bytes(2, "big")))
            elif t == OPT_ACCM and len(d) == 4:
                pass
            elif t == OPT_AUTH and len(d) >= 2:
                name = auth_name(d)
                if self.accept_auth is None:
                    rejects.append((t, d))
                elif name != self.accept_auth:
                    naks.append((t, AUTH_OPTION[self.accept_auth]))
            elif t == OPT_MAGIC and len(d) == 4:
                v = _u32(d)
                if v == 0:
                    naks.append((t, self._new_magic().to_bytes(4, "big")))
                elif self.want_magic and v == self.magic:
                    # Possibly our own request looped back (RFC 1661 6.4).
                    self.loops_suspected += 1
                    naks.append((t, self._new_magic().to_bytes(4, "big")))
            elif t == OPT_PFC and not d:
                if not self.pfc:
                    rejects.append((t, d))
            elif t == OPT_ACFC and not d:
                if not self.acfc:
                    rejects.append((t, d))
            else:
                rejects.append((t, d))
        return naks, rejects

    def peer_acked(self, options: list[Option]) -> None:
        self.peer_clear()
        for t, d in options:
            if t == OPT_MRU:
                self.peer_mru = _u16(d)
            elif t == OPT_ACCM:
                self.peer_accm = _u32(d)
            elif t == OPT_AUTH:
                self.peer_auth = auth_name(d)
            elif t == OPT_MAGIC:
                self.peer_magic = _u32(d)
            elif t == OPT_PFC:
                self.peer_pfc = True
            elif t == OPT_ACFC:
                self.peer_acfc = True

    def on_ack(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_MRU:
                self.got_mru = _u16(d)
            elif t == OPT_ACCM:
                self.got_accm = _u32(d)
            elif t == OPT_AUTH:
                self.got_auth = auth_name(d)
            elif t == OPT_MAGIC:
                self.got_magic = _u32(d)
            elif t == OPT_PFC:
                self.got_pfc = True
            elif t == OPT_ACFC:
                self.got_acfc = True

    def on_nak(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_MRU and len(d) == 2 and self.want_mru is not None:
                self.want_mru = max(self.MIN_MRU, _u16(d))
            elif t == OPT_ACCM and len(d) == 4 and self.want_accm is not None:
                self.want_accm |= _u32(d)
            elif t == OPT_AUTH and self.want_auth is not None:
                name = auth_name(d)
                if name is not None and (name == self.demand_auth or name in self.alt_auth):
                    self.want_auth = name
                else:
                    self.auth_refused = True
            elif t == OPT_MAGIC and self.want_magic:
                self.magic = self._new_magic()

    def on_reject(self, options: list[Option]) -> None:
        for t, _d in options:
            if t == OPT_MRU:
                self.want_mru = None
            elif t == OPT_ACCM:
                self.want_accm = None
            elif t == OPT_AUTH and self.want_auth is not None:
                self.want_auth = None
                self.auth_refused = True
            elif t == OPT_MAGIC:
                self.want_magic = False
            elif t == OPT_PFC:
                self.want_pfc = False
            elif t == OPT_ACFC:
                self.want_acfc = False


__all__ = [
    "STATES",
    "EVENTS",
    "TRANSITIONS",
    "NegotiationAutomaton",
    "OptionPolicy",
    "LcpPolicy",
    "encode_packet",
    "decode_packet",
    "encode_options",
    "decode_options",
    "auth_name",
]
