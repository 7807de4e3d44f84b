"""PPP link end (RFC 1661) over async HDLC framing (RFC 1662), sans-IO.

Scope: :class:`PppConnection` composes the RFC 1661 phases (Dead, Establish,
Authenticate, Network, Terminate), the option negotiation automaton of
:mod:`dialsim.proto.ppp_fsm` running LCP (:mod:`dialsim.proto.ppp_lcp`, with
RFC 1570's FCS-Alternatives) and IPCP (:mod:`dialsim.proto.ppp_ipcp`, RFC 1332
+ RFC 1877), PAP / CHAP-MD5 (:mod:`dialsim.proto.ppp_auth`, RFC 1334 / RFC
1994), Van Jacobson TCP/IP header compression (:mod:`dialsim.proto.vj`, RFC
1144) and the framing of :mod:`dialsim.proto.hdlc`.  Protocol-Reject for
unknown protocols in the Network phase, Echo-Request keepalives, loop-back
detection by Magic-Number.

The automata and the authentication machines call nothing back: they queue
what they produce (packets, This-Layer-Up/Down/Finished, the authentication
outcome) and the connection drains each right after it fed it, so effects
follow their causes in order.

LCP packets always go out with Address/Control, a two-octet Protocol field and
the default ACCM (RFC 1662 7.1, RFC 1661 6.6); other frames use what the peer
acked (ACCM, PFC, ACFC) once LCP is Opened.  The FCS the peer acked (16 bits
unless FCS-Alternatives chose 32) applies to every frame while LCP is Opened.
The receiver accepts compressed and uncompressed headers at any time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dialsim.proto import vj as vjmod
from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import Event, FrameReceived, FrameSent, IpPacketReceived, LinkEvent
from dialsim.proto.hdlc import (
    DEFAULT_ACCM,
    DecodedFrame,
    implementation,
    parse_ppp_header,
    ppp_header,
)
from dialsim.proto.octets import DATA_PROTOCOLS, OctetTally, add_frame, add_packet
from dialsim.proto.ppp_auth import (
    AuthFailed,
    AuthSucceeded,
    ChapAuthenticator,
    ChapPeer,
    PapAuthenticator,
    PapPeer,
)
from dialsim.proto.ppp_fsm import (
    ECHO_REPLY,
    ECHO_REQUEST,
    NEGOTIATING,
    PROTOCOL_REJECT,
    AutomatonOutput,
    ExtendedCodeReceived,
    FsmEvent,
    NegotiationAutomaton,
    PacketToSend,
    State,
    ThisLayerDown,
    ThisLayerFinished,
    ThisLayerUp,
    encode_packet,
)
from dialsim.proto.ppp_ipcp import IpcpPolicy
from dialsim.proto.ppp_lcp import (
    PROTO_CHAP,
    PROTO_IP,
    PROTO_IPCP,
    PROTO_LCP,
    PROTO_PAP,
    PROTO_VJ_COMP,
    PROTO_VJ_UNCOMP,
    LcpPolicy,
)

PROTOCOL_KINDS = {
    PROTO_LCP: "lcp",
    PROTO_PAP: "pap",
    PROTO_CHAP: "chap",
    PROTO_IPCP: "ipcp",
    PROTO_IP: "ip",
    PROTO_VJ_COMP: "compressed_tcp",
    PROTO_VJ_UNCOMP: "uncompressed_tcp",
}
_VJ_PROTO = {
    vjmod.TYPE_IP: PROTO_IP,
    vjmod.TYPE_COMPRESSED_TCP: PROTO_VJ_COMP,
    vjmod.TYPE_UNCOMPRESSED_TCP: PROTO_VJ_UNCOMP,
}
_PROTO_VJ = {v: k for k, v in _VJ_PROTO.items()}
assert DATA_PROTOCOLS == frozenset(_VJ_PROTO.values())  # the frames that carry datagrams
# RFC 1144 runs compiled (_vj.c, the twin of vj.py's reference classes); not built: ImportError
VjCompressor, VjDecompressor = vjmod.implementation("c")
# PAP and CHAP codes that go to the side being authenticated (the rest go to the authenticator)
_TO_PEER = {PROTO_PAP: (2, 3), PROTO_CHAP: (1, 3, 4)}

# The framing is the compiled one (dialsim/proto/_hdlc.c, built by `pip install -e .`):
# hdlc.py's hdlc_encode and HdlcDecoder are its reference, the same bytes, records
# and counters (tests/unit/test_hdlc_c.py).
hdlc_encode, HdlcDecoder = implementation("c")

_OPENED = State.OPENED
_LCP_HEADER = ppp_header(PROTO_LCP, acfc=False, pfc=False)  # LCP's frames always have the full header

FLAG_TIME = 1.0  # send an opening flag when the line was idle this long (as Linux ppp_async)

_HEADERS: dict[tuple[int, bool, bool], bytes] = {}


def _header(protocol: int, acfc: bool, pfc: bool) -> bytes:
    """:func:`~dialsim.proto.hdlc.ppp_header`, remembered."""
    key = (protocol, acfc, pfc)
    h = _HEADERS.get(key)
    if h is None:
        h = _HEADERS[key] = ppp_header(protocol, acfc=acfc, pfc=pfc)
    return h


# -- link events ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LcpUp(LinkEvent):
    """LCP reached Opened (This-Layer-Up)."""

    now: float


@dataclass(frozen=True, slots=True)
class LcpDown(LinkEvent):
    """LCP left Opened (This-Layer-Down)."""

    now: float


@dataclass(frozen=True, slots=True)
class IpcpUp(LinkEvent):
    """IPCP reached Opened: the link carries IP (``vj``: we send VJ-compressed TCP)."""

    local_ip: str | None
    peer_ip: str | None
    dns: tuple[str, ...]
    vj: bool
    now: float


@dataclass(frozen=True, slots=True)
class IpcpDown(LinkEvent):
    """IPCP left Opened."""

    now: float


@dataclass(frozen=True, slots=True)
class LinkTerminated(LinkEvent):
    """The link is dead (``reason``: carrier lost, terminated by peer, ...)."""

    reason: str
    now: float


def _new_counters() -> dict[str, int]:
    names = (
        "frames_sent frames_received octets_sent octets_received ip_packets_sent "
        "ip_packets_received ip_dropped_not_up ip_dropped_too_big vj_tossed frames_discarded "
        "protocol_rejects_sent protocol_rejects_received malformed_frames echo_requests_sent "
        "echo_replies_received loopback_echoes"
    )
    return dict.fromkeys(names.split(), 0)


def _lcp_policy(role: str, auth: str, rng: random.Random, **options) -> LcpPolicy:
    """The ISP demands ``auth`` (and would switch to the other of PAP/CHAP); the subscriber accepts it."""
    demand = auth if role == "isp" and auth != "none" else None
    alt = tuple(a for a in ("pap", "chap") if a != auth) if demand else ()
    accept = auth if role == "subscriber" and auth != "none" else None
    return LcpPolicy(rng, demand_auth=demand, accept_auth=accept, alt_auth=alt, **options)


# -- the connection ---------------------------------------------------------


class PppConnection:
    """One end of a PPP link (sans-IO); the machine shape of :mod:`dialsim.proto.machine`.

    ``receive(data, now)`` takes line octets; ``output(now)`` gives the frames
    to write, one per item; ``send_ip(packet, now)`` queues a datagram;
    ``events()`` hands out the link events (:class:`LcpUp`, ...),
    :class:`FrameSent`, :class:`FrameReceived` and :class:`IpPacketReceived`
    (after ``tally_into(sent, received)`` no frame events: the frames are added up there).
    ``open``/``close`` are the administrative events, ``lower_up``/``lower_down``
    the carrier.  ``fcs32``: ask the peer for a 32-bit FCS (RFC 1570).
    See the module docstring and docs/ppp.md.
    """

    def __init__(
        self,
        role: str,
        *,
        rng: random.Random,
        mru: int = 1500,
        accm: int = 0x00000000,
        pfc: bool = True,
        acfc: bool = True,
        magic: bool = True,
        fcs32: bool = False,
        auth: str = "none",
        username: str | None = None,
        password: str | None = None,
        authenticator=None,
        local_ip: str | None = None,
        peer_ip_pool=None,
        dns: tuple[str, ...] | None = ("10.0.0.53", "10.0.0.54"),
        vj: bool = True,
        vj_slots: int = 16,
        restart_timer: float = 3.0,
        max_configure: int = 10,
        max_terminate: int = 2,
        max_failure: int = 5,
        echo_interval: float | None = None,
        echo_failure: int = 4,
        auth_timeout: float = 30.0,
        max_loops: int = 5,
        name: str = "dialsim",
    ) -> None:
        if role not in ("subscriber", "isp"):
            raise LocalProtocolError(f"role must be 'subscriber' or 'isp', not {role!r}")
        if auth not in ("pap", "chap", "none"):
            raise LocalProtocolError(f"auth must be 'pap', 'chap' or 'none', not {auth!r}")
        self.role = role
        self.rng = rng
        self.auth = auth
        self.username = username
        self._password = password
        self.authenticator = authenticator
        self.restart_timer = restart_timer
        self.max_configure = max_configure
        self.echo_interval = echo_interval
        self.echo_failure = echo_failure
        self.auth_timeout = auth_timeout
        self.max_loops = max_loops
        self.name = name
        self.vj_slots = vj_slots
        self.lcp_policy = _lcp_policy(role, auth, rng, mru=mru, accm=accm, pfc=pfc, acfc=acfc, magic=magic, fcs32=fcs32)
        self.ipcp_policy = IpcpPolicy(
            role, local_ip=local_ip, peer_ip_pool=peer_ip_pool, dns=dns, vj=vj, vj_slots=vj_slots
        )
        timers = dict(
            rng=rng, restart_timer=restart_timer, max_configure=max_configure,
            max_terminate=max_terminate, max_failure=max_failure,
        )  # fmt: skip
        self.lcp = NegotiationAutomaton("lcp", self.lcp_policy, protocol=PROTO_LCP, extended=True, **timers)
        self.ipcp = NegotiationAutomaton("ipcp", self.ipcp_policy, protocol=PROTO_IPCP, **timers)
        self._decoder = HdlcDecoder(accm=DEFAULT_ACCM, max_frame=max(mru, 1500) + 8)
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._last_tx: float | None = None
        self._bad_seen = 0
        self._auth_machines: list[tuple[int, PapPeer | PapAuthenticator | ChapPeer | ChapAuthenticator]] = []
        self._network = False
        self._link_alive = False
        self._reason = ""
        self._echo_deadline: float | None = None
        self._echo_outstanding = 0
        self._echo_id = 0
        self._compressor: VjCompressor | None = None
        self._decompressor: VjDecompressor | None = None
        self._tally_sent: OctetTally | None = None
        self._tally_received: OctetTally | None = None
        # next_deadline() remembered: only the inputs that reach the automata, the
        # authentication machines or the echo timer can move it (never a datagram).
        self._deadline: float | None = None
        self._deadline_stale = True
        self._reset_tx()
        self._c = _new_counters()

    @property
    def counters(self) -> dict[str, int]:
        """Frame, octet and error counts, with the decoder's and both automata's (prefixed)."""
        d = self._decoder
        out = dict(self._c)
        out.update(bad_fcs=d.bad_fcs, runts=d.runts, aborts=d.aborts, too_long=d.too_long)
        out["lcp_fcs16_accepted"] = d.lcp_fcs16_accepted
        for name, a in (("lcp", self.lcp), ("ipcp", self.ipcp)):
            out.update({f"{name}_{k}": v for k, v in a.counters.items()})
        for _proto, m in self._auth_machines:
            out["auth_malformed"] = out.get("auth_malformed", 0) + m.malformed
        return out

    def __repr__(self) -> str:
        return f"PppConnection(role={self.role!r}, phase={self.phase!r}, username={self.username!r})"

    # -- state
    @property
    def phase(self) -> str:
        s = self.lcp.state
        if s == State.OPENED:
            return "network" if self._network else "authenticate"
        if s in (State.CLOSING, State.STOPPING):
            return "terminate"
        if s in NEGOTIATING:
            return "establish"
        return "dead"

    @property
    def mtu(self) -> int:
        """Largest datagram we may send: the MRU the peer announced (1500 by default)."""
        return self.lcp_policy.peer_mru

    @property
    def fcs_size(self) -> int:
        """Bits of FCS on the frames we send now (16, or 32 once negotiated and LCP is Opened)."""
        return self._tx_fcs

    def _reset_tx(self) -> None:
        self._set_tx(DEFAULT_ACCM, False, False, 16)

    def _set_tx(self, accm: int, pfc: bool, acfc: bool, fcs: int) -> None:
        """What the frames we send use (LCP's own keep the defaults but the FCS)."""
        self._tx_accm = accm
        self._tx_pfc = pfc
        self._tx_acfc = acfc
        self._tx_fcs = fcs
        self._tx_headers = {p: _header(p, acfc, pfc) for p in DATA_PROTOCOLS}

    def _reset_rx(self) -> None:
        self._decoder.set_accm(DEFAULT_ACCM)
        self._decoder.set_fcs_size(16)

    # -- administrative and lower-layer inputs
    def open(self, now: float) -> None:
        """Administrative Open: negotiate as soon as (or since) the lower layer is up."""
        self._deadline_stale = True
        self._reason = ""
        self.lcp.open(now)
        self._run_lcp(now)
        if self.lcp.state in NEGOTIATING:
            self._link_alive = True

    def close(self, now: float, reason: str = "administrative close") -> None:
        """Administrative Close: Terminate-Request, then LinkTerminated when acked or timed out."""
        self._close(now, reason)

    def lower_up(self, now: float) -> None:
        """Carrier (the modem's DCD) came up."""
        self._deadline_stale = True
        self.lcp.up(now)
        self._run_lcp(now)
        if self.lcp.state in NEGOTIATING:
            self._link_alive = True

    def lower_down(self, now: float) -> None:
        """Carrier lost: LCP Down (RFC 1661 'Down' event); LinkTerminated if a link was alive."""
        self._deadline_stale = True
        self.lcp.down(now)
        self._run_lcp(now)
        self._reset_tx()
        self._decoder.clear()
        self._reset_rx()
        if self._link_alive:
            self._terminated(now, self._reason or "carrier lost")

    def _close(self, now: float, reason: str) -> None:
        self._deadline_stale = True
        if not self._reason:
            self._reason = reason
        self.lcp.close(now, reason)
        self._run_lcp(now)

    # -- output
    def output(self, now: float) -> list[bytes]:
        """The frames to write to the line, oldest first, one per item (flags, escapes, FCS included)."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def tally_into(self, sent: OctetTally | None, received: OctetTally | None) -> None:
        """Add every frame to ``sent`` / ``received`` instead of queueing its
        FrameSent / FrameReceived (see :mod:`dialsim.proto.octets`); None, None: events again."""
        self._tally_sent = sent
        self._tally_received = received

    def _emit_frame(self, protocol: int, info: bytes, now: float, packet: bytes = b"") -> None:
        if protocol == PROTO_LCP:
            header = _LCP_HEADER
            accm = DEFAULT_ACCM
        else:
            header = self._tx_headers.get(protocol) or _header(protocol, self._tx_acfc, self._tx_pfc)
            accm = self._tx_accm
        frame = header + info
        last = self._last_tx
        lead = last is None or now - last >= FLAG_TIME
        self._last_tx = now
        wire = hdlc_encode(frame, accm, fcs_size=self._tx_fcs, leading_flag=lead)
        flags = 2 if lead else 1
        fcs = self._tx_fcs // 8
        self._out.append(wire)
        c = self._c
        c["frames_sent"] += 1
        n = len(wire)
        c["octets_sent"] += n
        t = self._tally_sent
        if t is None:
            kind = PROTOCOL_KINDS.get(protocol) or f"0x{protocol:04x}"
            self._events.append(
                FrameSent(protocol, kind, packet, info, frame, n, len(header), fcs,
                          n - flags - len(frame) - fcs, flags)
            )
        else:
            add_frame(t, protocol, len(info), n)
            if packet:
                add_packet(t, packet)

    def send_ip(self, packet: bytes, now: float) -> None:
        """Queue an IPv4 datagram; dropped (and counted) unless IPCP is Opened."""
        if self.ipcp.state != _OPENED or not self._network:
            self._c["ip_dropped_not_up"] += 1
            return
        if len(packet) > self.lcp_policy.peer_mru:  # self.mtu
            self._c["ip_dropped_too_big"] += 1
            return
        packet = bytes(packet)
        compressor = self._compressor
        if compressor is not None:
            kind, data = compressor.compress(packet)
            proto = _VJ_PROTO[kind]
        else:
            proto, data = PROTO_IP, packet
        self._c["ip_packets_sent"] += 1
        self._emit_frame(proto, data, now, packet)

    # -- input
    def receive(self, data: bytes, now: float) -> None:
        """Raw async-HDLC octets from the serial line."""
        self._c["octets_received"] += len(data)
        # Decode one frame at a time: a frame that opens LCP changes the receive
        # ACCM (and maybe the FCS), and the frames after it in the same read were
        # sent with the new ones (found with slirp, whose IPCP request follows its
        # LCP Ack at once; decoded with the old ACCM its raw control octets were
        # dropped: bad FCS).
        # The flags found with find (memchr), not split (a loop over every octet).
        d = self._decoder
        find = data.find
        start = 0
        flag = find(b"\x7e")
        while flag >= 0:
            f = d.frame_ended(data[start:flag])
            if d.losses != self._bad_seen:
                self._line_error()
            if f is not None:
                self._frame(f, now)
            start = flag + 1
            flag = find(b"\x7e", start)
        if start < len(data):
            d.feed(data[start:])
            if d.losses != self._bad_seen:
                self._line_error()

    def _line_error(self) -> None:
        """A frame was lost on the line: VJ must resynchronise (RFC 1144 4.1)."""
        self._bad_seen = self._decoder.losses
        if self._decompressor is not None:
            self._decompressor.toss()

    def _frame(self, f: DecodedFrame, now: float) -> None:
        c = self._c
        c["frames_received"] += 1
        frame = f.frame
        first = frame[0] if frame else 0
        if first & 1 and first != 0xFF:  # no Address/Control, a one-octet Protocol (ACFC, PFC)
            protocol, off = first, 1
        else:
            parsed = parse_ppp_header(frame)
            if parsed is None:
                c["malformed_frames"] += 1
                return
            protocol, off = parsed
        info = frame[off:]
        t = self._tally_received
        if t is not None and protocol in DATA_PROTOCOLS:  # a datagram, counted
            add_frame(t, protocol, len(info), f.wire_octets)
            if self.lcp.state != _OPENED:
                c["frames_discarded"] += 1
            elif (delivered := self._datagram(protocol, info)) is not None:
                c["ip_packets_received"] += 1
                add_packet(t, delivered)
                self._events.append(IpPacketReceived(delivered))
            return
        self._dispatch(c, f, protocol, off, now)

    def _dispatch(self, c: dict[str, int], f: DecodedFrame, protocol: int, off: int, now: float) -> None:
        """A good frame for the automata, the authentication or VJ (any frame without a tally)."""
        frame = f.frame
        info = frame[off:]
        delivered: bytes | None = None
        # The frame's FrameReceived goes before anything sent because of it (an
        # Ack, a Challenge's Response): its slot is taken now, filled below.
        slot = len(self._events)
        t = self._tally_received
        if t is None:
            self._events.append(None)  # type: ignore[arg-type]
        if protocol not in DATA_PROTOCOLS:
            self._deadline_stale = True
        if protocol == PROTO_LCP:
            self.lcp.receive(info, now, max_reject=max(self.lcp_policy.peer_mru - 4, 4))
            self._run_lcp(now)
            self._after_lcp_input(now)
        elif self.lcp.state != State.OPENED:
            c["frames_discarded"] += 1  # RFC 1661 3.4: only LCP before the link is established
        elif protocol in (PROTO_PAP, PROTO_CHAP):
            self._auth_input(protocol, info, now)
        elif protocol == PROTO_IPCP:
            if self._network:
                self.ipcp.receive(info, now)
                self._run_ipcp(now)
            else:
                c["frames_discarded"] += 1
        elif protocol in (PROTO_IP, PROTO_VJ_COMP, PROTO_VJ_UNCOMP):
            delivered = self._datagram(protocol, info)
        else:
            self._protocol_reject(protocol, info, now)  # RFC 1661 5.7: unknown protocol while LCP is Opened
        if t is not None:
            add_frame(t, protocol, len(info), f.wire_octets)  # control (_frame counted datagrams)
        else:
            kind = PROTOCOL_KINDS.get(protocol) or f"0x{protocol:04x}"
            self._events[slot] = FrameReceived(
                protocol, kind, delivered or b"", bytes(info), bytes(frame),
                f.wire_octets, off, f.fcs_octets, f.escapes, 1,
            )  # fmt: skip
        if delivered is not None:
            c["ip_packets_received"] += 1
            self._events.append(IpPacketReceived(delivered))

    def _datagram(self, protocol: int, info: bytes) -> bytes | None:
        """The IPv4 datagram an IP or VJ frame carries, or None (discarded or tossed, counted)."""
        if not self._network or self.ipcp.state != _OPENED:
            self._c["frames_discarded"] += 1
            return None
        if protocol == PROTO_IP:
            return bytes(info)
        if self._decompressor is None:
            self._c["frames_discarded"] += 1
            return None
        packet = self._decompressor.decompress(_PROTO_VJ[protocol], info)
        if packet is None:
            self._c["vj_tossed"] += 1
        return packet

    def _protocol_reject(self, protocol: int, info: bytes, now: float) -> None:
        self._c["protocol_rejects_sent"] += 1
        room = max(self.lcp_policy.peer_mru - 6, 0)
        self.lcp.send_packet(PROTOCOL_REJECT, protocol.to_bytes(2, "big") + info[:room])
        self._run_lcp(now)

    def _after_lcp_input(self, now: float) -> None:
        pol = self.lcp_policy
        if self.lcp.state not in NEGOTIATING and self.lcp.state != State.OPENED:
            return
        if pol.auth_refused:
            self._events.append(AuthFailed("peer refused to authenticate", now))
            self._close(now, "peer refused to authenticate")
        elif pol.loops_suspected >= self.max_loops:
            self._close(now, "looped back")

    # -- what the automata queued
    def _run_lcp(self, now: float) -> None:
        while batch := self.lcp.events():
            for out in batch:
                self._lcp_output(out, now)

    def _run_ipcp(self, now: float) -> None:
        while batch := self.ipcp.events():
            for out in batch:
                self._ipcp_output(out, now)

    def _lcp_output(self, out: AutomatonOutput, now: float) -> None:
        if isinstance(out, PacketToSend):
            self._emit_frame(PROTO_LCP, out.packet, now)
        elif isinstance(out, ThisLayerUp):
            self._lcp_up(now)
        elif isinstance(out, ThisLayerDown):
            self._lcp_down(out, now)
        elif isinstance(out, ThisLayerFinished):
            if self._link_alive:
                self._terminated(now, self._reason or _finish_reason(out))
        elif isinstance(out, ExtendedCodeReceived):
            self._lcp_extended(out, now)
        # This-Layer-Started needs nothing: the carrier is the driver's business.

    def _ipcp_output(self, out: AutomatonOutput, now: float) -> None:
        if isinstance(out, PacketToSend):
            self._emit_frame(PROTO_IPCP, out.packet, now)
        elif isinstance(out, ThisLayerUp):
            self._ipcp_up(now)
        elif isinstance(out, ThisLayerDown):
            self._compressor = None
            self._decompressor = None
            self._events.append(IpcpDown(now))
        elif isinstance(out, ThisLayerFinished) and self.lcp.state == State.OPENED:
            self._close(now, "IPCP negotiation failed")

    def _lcp_extended(self, out: ExtendedCodeReceived, now: float) -> None:
        data = out.data
        if out.code == PROTOCOL_REJECT:
            self._c["protocol_rejects_received"] += 1
            proto = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            if proto == PROTO_IPCP:
                self.ipcp.event(FsmEvent.RXJ_MINUS, now)
                self._run_ipcp(now)
            elif proto in (PROTO_VJ_COMP, PROTO_VJ_UNCOMP):
                self._compressor = None
        elif out.code == ECHO_REQUEST:
            mine = self.lcp_policy.local_magic
            if mine and len(data) >= 4 and int.from_bytes(data[:4], "big") == mine:
                self._c["loopback_echoes"] += 1
        elif out.code == ECHO_REPLY:
            self._c["echo_replies_received"] += 1
            self._echo_outstanding = 0

    def _lcp_up(self, now: float) -> None:
        pol = self.lcp_policy
        self._set_tx(pol.peer_accm, pol.peer_pfc, pol.peer_acfc, pol.peer_fcs)
        self._decoder.set_accm(pol.got_accm)
        self._decoder.set_fcs_size(pol.got_fcs)
        self._events.append(LcpUp(now))
        if self.echo_interval:
            self._echo_deadline = now + self.echo_interval
            self._echo_outstanding = 0
        self._auth_machines = self._new_auth_machines()
        for _proto, m in self._auth_machines:
            m.start(now)
        if not self._auth_machines:
            self._enter_network(now)
        self._run_auth(now)

    def _new_auth_machines(self) -> list:
        pol = self.lcp_policy
        machines: list = []
        if pol.got_auth == "pap":  # we authenticate the peer
            machines.append((PROTO_PAP, PapAuthenticator(self.authenticator, timeout=self.auth_timeout)))
        elif pol.got_auth == "chap":
            m = ChapAuthenticator(
                self.authenticator, rng=self.rng, name=self.name,
                restart_timer=self.restart_timer, max_attempts=self.max_configure,
            )  # fmt: skip
            machines.append((PROTO_CHAP, m))
        user, secret = self.username or "", self._password or ""
        if pol.peer_auth == "pap":  # the peer authenticates us
            m = PapPeer(user, secret, rng=self.rng, restart_timer=self.restart_timer, max_attempts=self.max_configure)
            machines.append((PROTO_PAP, m))
        elif pol.peer_auth == "chap":
            machines.append((PROTO_CHAP, ChapPeer(user, secret, timeout=self.auth_timeout)))
        return machines

    def _lcp_down(self, out: ThisLayerDown, now: float) -> None:
        if out.cause == FsmEvent.RTR and not self._reason:
            self._reason = "terminated by peer"
        self._events.append(LcpDown(now))
        self._network = False
        self._auth_machines = []
        self._echo_deadline = None
        self.ipcp.down(now)
        self.ipcp.close(now)
        self._run_ipcp(now)
        self._reset_tx()
        self._reset_rx()

    def _terminated(self, now: float, reason: str) -> None:
        self._link_alive = False
        self._events.append(LinkTerminated(reason, now))

    # -- authentication
    def _auth_input(self, protocol: int, info: bytes, now: float) -> None:
        role = "peer" if info[:1] and info[0] in _TO_PEER[protocol] else "authenticator"
        for proto, m in self._auth_machines:
            if proto == protocol and m.role == role:
                m.receive(info, now)
                self._run_auth(now)
                return
        self._c["frames_discarded"] += 1

    def _run_auth(self, now: float) -> None:
        for proto, m in list(self._auth_machines):
            for out in m.events():
                if (proto, m) not in self._auth_machines:
                    break  # LCP went down meanwhile: this machine is gone
                if isinstance(out, PacketToSend):
                    self._emit_frame(proto, out.packet, now)
                else:
                    self._auth_outcome(out, now)

    def _auth_outcome(self, out: Event, now: float) -> None:
        if self._network or self.lcp.state != State.OPENED:
            return
        self._events.append(out)
        if isinstance(out, AuthFailed):
            self._close(now, "authentication failed")
        elif all(m.result is not None and m.result[0] == "ok" for _p, m in self._auth_machines):
            self._enter_network(now)

    def _enter_network(self, now: float) -> None:
        self._network = True
        self.ipcp.open(now)
        self.ipcp.up(now)
        self._run_ipcp(now)

    def _ipcp_up(self, now: float) -> None:
        pol = self.ipcp_policy
        if pol.peer_vj is not None:
            self._compressor = VjCompressor(slots=pol.peer_vj[0] + 1, compress_slot_id=bool(pol.peer_vj[1]))
        else:
            self._compressor = None
        self._decompressor = VjDecompressor(slots=pol.got_vj[0] + 1) if pol.got_vj is not None else None
        dns = tuple(d for d in pol.got_dns if d) if self.role == "subscriber" else pol.dns
        self._events.append(IpcpUp(pol.got_address, pol.peer_address, dns, self._compressor is not None, now))

    # -- timers
    def next_deadline(self) -> float | None:
        if self._deadline_stale:
            self._deadline = self._earliest_deadline()
            self._deadline_stale = False
        return self._deadline

    def _earliest_deadline(self) -> float | None:
        best = self.lcp.next_deadline()
        d = self.ipcp.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
        d = self._echo_deadline
        if d is not None and (best is None or d < best):
            best = d
        for _p, m in self._auth_machines:
            d = m.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def on_timer(self, now: float) -> None:
        self._deadline_stale = True
        self.lcp.on_timer(now)
        self._run_lcp(now)
        self.ipcp.on_timer(now)
        self._run_ipcp(now)
        for _proto, m in list(self._auth_machines):
            m.on_timer(now)
        self._run_auth(now)
        if self._echo_deadline is not None and now >= self._echo_deadline and self.lcp.state == State.OPENED:
            self._keepalive(now)

    def _keepalive(self, now: float) -> None:
        if self._echo_outstanding >= self.echo_failure:
            self._echo_deadline = None
            self._close(now, "peer not answering LCP Echo-Request")
            return
        self._echo_outstanding += 1
        self._echo_id = (self._echo_id + 1) & 0xFF
        self._c["echo_requests_sent"] += 1
        magic = self.lcp_policy.local_magic.to_bytes(4, "big")
        self._emit_frame(PROTO_LCP, encode_packet(ECHO_REQUEST, self._echo_id, magic), now)
        self._echo_deadline = now + (self.echo_interval or 0.0)


def _finish_reason(out: ThisLayerFinished) -> str:
    """Why LCP finished with the link, from the event that finished it."""
    if out.cause == FsmEvent.TO_MINUS and out.previous in NEGOTIATING:
        return "no response to LCP Configure-Request"
    if out.cause == FsmEvent.TO_MINUS and out.previous == State.STOPPING:
        return "terminated by peer"
    if out.cause == FsmEvent.RXJ_MINUS:
        return "LCP rejected by peer"
    return "link terminated"


__all__ = [
    "AuthFailed",
    "AuthSucceeded",
    "FLAG_TIME",
    "IpcpDown",
    "IpcpUp",
    "LcpDown",
    "LcpUp",
    "LinkTerminated",
    "PROTOCOL_KINDS",
    "PppConnection",
]
