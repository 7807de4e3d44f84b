"""PPP link end (RFC 1661) over async HDLC framing (RFC 1662), sans-IO.

Scope: :class:`PppConnection` composes the RFC 1661 phases (Dead, Establish,
Authenticate, Network, Terminate), LCP and IPCP (:mod:`dialsim.proto.ppp_lcp`,
:mod:`dialsim.proto.ppp_ipcp`, RFC 1332 + RFC 1877), PAP / CHAP-MD5
(:mod:`dialsim.proto.ppp_auth`, RFC 1334 / RFC 1994), Van Jacobson TCP/IP
header compression (:mod:`dialsim.proto.vj`, RFC 1144) and the framing of
:mod:`dialsim.proto.hdlc`.  Protocol-Reject for unknown protocols in the
Network phase, Echo-Request keepalives, loop-back detection by Magic-Number.

LCP packets always go out with Address/Control, a two-octet Protocol field and
the default ACCM (RFC 1662 7.1, RFC 1661 6.6); other frames use what the peer
acked (ACCM, PFC, ACFC) once LCP is Opened.  The receiver accepts compressed
and uncompressed headers at any time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dialsim.proto import vj as vjmod
from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.hdlc import DEFAULT_ACCM, HdlcDecoder, hdlc_encode, parse_ppp_header, ppp_header
from dialsim.proto.ppp_auth import ChapAuthenticator, ChapPeer, PapAuthenticator, PapPeer
from dialsim.proto.ppp_ipcp import IpcpPolicy
from dialsim.proto.ppp_lcp import (
    ECHO_REPLY,
    ECHO_REQUEST,
    PROTO_CHAP,
    PROTO_IP,
    PROTO_IPCP,
    PROTO_LCP,
    PROTO_PAP,
    PROTO_VJ_COMP,
    PROTO_VJ_UNCOMP,
    PROTOCOL_REJECT,
    LcpPolicy,
    NegotiationAutomaton,
    encode_packet,
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

FLAG_TIME = 1.0  # send an opening flag when the line was idle this long (as Linux ppp_async)


# -- events ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LcpUp:
    now: float


@dataclass(frozen=True, slots=True)
class LcpDown:
    now: float


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    user: str
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class AuthFailed:
    reason: str
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class IpcpUp:
    local_ip: str | None
    peer_ip: str | None
    dns: tuple[str, ...]
    vj: bool = False  # we send VJ-compressed TCP
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class IpcpDown:
    now: float


@dataclass(frozen=True, slots=True)
class IpPacketReceived:
    """An IPv4 datagram arrived (already VJ-decompressed)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class LinkTerminated:
    reason: str
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameSent:
    """A frame went to the line.

    ``packet``: the IPv4 datagram carried (b"" for control frames); ``frame``:
    the Information field (after VJ compression); ``capture``: the PPP frame
    as on the line, un-escaped, without FCS (for a LINKTYPE_PPP_WITH_DIR pcap);
    ``wire_octets``: flags + escaped frame + FCS.  So the overhead splits into
    ``header_octets`` (address/control/protocol), ``fcs_octets``,
    ``escape_octets`` and ``flag_octets``.
    """

    protocol: int
    kind: str
    packet: bytes
    frame: bytes
    capture: bytes
    wire_octets: int
    header_octets: int
    fcs_octets: int
    escape_octets: int
    flag_octets: int


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A good frame arrived (fields as in :class:`FrameSent`; ``packet`` is the datagram
    after VJ decompression, b"" for control frames or if it was tossed)."""

    protocol: int
    kind: str
    packet: bytes
    frame: bytes
    capture: bytes
    wire_octets: int
    header_octets: int
    fcs_octets: int
    escape_octets: int
    flag_octets: int


# -- the connection ---------------------------------------------------------


class PppConnection:
    """One end of a PPP link (sans-IO).  See module docstring and docs/ppp.md."""

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
        isp = role == "isp"
        demand = auth if isp and auth != "none" else None
        alt = tuple(a for a in ("pap", "chap") if a != auth) if demand else ()
        accept = auth if not isp and auth != "none" else None
        self.lcp_policy = LcpPolicy(
            rng, mru=mru, accm=accm, pfc=pfc, acfc=acfc, magic=magic, demand_auth=demand, accept_auth=accept, alt_auth=alt
        )
        common = dict(
            rng=rng,
            restart_timer=restart_timer,
            max_configure=max_configure,
            max_terminate=max_terminate,
            max_failure=max_failure,
        )
        self.lcp = NegotiationAutomaton(
            "lcp",
            self.lcp_policy,
            self._send_lcp,
            protocol=PROTO_LCP,
            extended=True,
            tlu=self._lcp_up,
            tld=self._lcp_down,
            tls=self._lcp_started,
            tlf=self._lcp_finished,
            on_extra=self._lcp_extra,
            **common,
        )
        self.ipcp_policy = IpcpPolicy(
            role, local_ip=local_ip, peer_ip_pool=peer_ip_pool, dns=dns, vj=vj, vj_slots=vj_slots
        )
        self.ipcp = NegotiationAutomaton(
            "ipcp",
            self.ipcp_policy,
            self._send_ipcp,
            protocol=PROTO_IPCP,
            tlu=self._ipcp_up,
            tld=self._ipcp_down,
            tlf=self._ipcp_finished,
            **common,
        )
        self._decoder = HdlcDecoder(accm=DEFAULT_ACCM, max_frame=max(mru, 1500) + 8)
        self._out = bytearray()
        self._events: list = []
        self._now = 0.0
        self._last_tx: float | None = None
        self._bad_seen = 0
        self._auth_machines: list = []
        self._network = False
        self._link_alive = False
        self._lower_is_up = False
        self._reason = ""
        self._echo_deadline: float | None = None
        self._echo_outstanding = 0
        self._echo_id = 0
        self._compressor: vjmod.VjCompressor | None = None
        self._decompressor: vjmod.VjDecompressor | None = None
        self._reset_tx()
        self._c: dict[str, int] = {
            "frames_sent": 0,
            "frames_received": 0,
            "octets_sent": 0,
            "octets_received": 0,
            "ip_packets_sent": 0,
            "ip_packets_received": 0,
            "ip_dropped_not_up": 0,
            "ip_dropped_too_big": 0,
            "vj_tossed": 0,
            "frames_discarded": 0,
            "protocol_rejects_sent": 0,
            "protocol_rejects_received": 0,
            "malformed_frames": 0,
            "echo_requests_sent": 0,
            "echo_replies_received": 0,
            "loopback_echoes": 0,
        }

    @property
    def counters(self) -> dict[str, int]:
        """Frame, octet and error counts, with the decoder's and both automata's (prefixed)."""
        d = self._decoder
        out = dict(self._c)
        out.update(bad_fcs=d.bad_fcs, runts=d.runts, aborts=d.aborts, too_long=d.too_long)
        for name, a in (("lcp", self.lcp), ("ipcp", self.ipcp)):
            out.update({f"{name}_{k}": v for k, v in a.counters.items()})
        for m in self._auth_machines:
            out["auth_malformed"] = out.get("auth_malformed", 0) + m.malformed
        return out

    def __repr__(self) -> str:
        return f"PppConnection(role={self.role!r}, phase={self.phase!r}, username={self.username!r})"

    # -- state
    @property
    def phase(self) -> str:
        s = self.lcp.state
        if s == "Opened":
            return "network" if self._network else "authenticate"
        if s in ("Closing", "Stopping"):
            return "terminate"
        if s in ("Req-Sent", "Ack-Rcvd", "Ack-Sent"):
            return "establish"
        return "dead"

    @property
    def mtu(self) -> int:
        """Largest datagram we may send: the MRU the peer announced (1500 by default)."""
        return self.lcp_policy.peer_mru

    def _reset_tx(self) -> None:
        self._tx_accm = DEFAULT_ACCM
        self._tx_pfc = False
        self._tx_acfc = False

    # -- administrative and lower-layer inputs
    def open(self, now: float) -> None:
        """Administrative Open: negotiate as soon as (or since) the lower layer is up."""
        self._now = now
        self._reason = ""
        self.lcp.open(now)
        if self.lcp.state in ("Req-Sent", "Ack-Rcvd", "Ack-Sent"):
            self._link_alive = True

    def close(self, now: float, reason: str = "administrative close") -> None:
        """Administrative Close: Terminate-Request, then LinkTerminated when acked or timed out."""
        self._now = now
        self._close(now, reason)

    def lower_up(self, now: float) -> None:
        """Carrier (the modem's DCD) came up."""
        self._now = now
        self._lower_is_up = True
        self.lcp.up(now)
        if self.lcp.state in ("Req-Sent", "Ack-Rcvd", "Ack-Sent"):
            self._link_alive = True

    def lower_down(self, now: float) -> None:
        """Carrier lost: LCP Down (RFC 1661 'Down' event); LinkTerminated if a link was alive."""
        self._now = now
        self._lower_is_up = False
        self.lcp.down(now)
        self._reset_tx()
        self._decoder.clear()
        self._decoder.set_accm(DEFAULT_ACCM)
        if self._link_alive:
            self._terminated(now, self._reason or "carrier lost")

    def _close(self, now: float, reason: str) -> None:
        if not self._reason:
            self._reason = reason
        self.lcp.close(now, reason)

    # -- output
    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def _emit_frame(self, protocol: int, info: bytes, *, packet: bytes = b"", kind: str | None = None) -> None:
        if protocol == PROTO_LCP:
            header = ppp_header(protocol)
            accm = DEFAULT_ACCM
        else:
            header = ppp_header(protocol, acfc=self._tx_acfc, pfc=self._tx_pfc)
            accm = self._tx_accm
        frame = header + info
        now = self._now
        lead = self._last_tx is None or now - self._last_tx >= FLAG_TIME
        self._last_tx = now
        wire = hdlc_encode(frame, accm, leading_flag=lead)
        flags = 2 if lead else 1
        escapes = len(wire) - flags - len(frame) - 2
        self._out += wire
        c = self._c
        c["frames_sent"] += 1
        c["octets_sent"] += len(wire)
        self._events.append(
            FrameSent(
                protocol,
                kind or PROTOCOL_KINDS.get(protocol, f"0x{protocol:04x}"),
                packet,
                info,
                frame,
                len(wire),
                len(header),
                2,
                escapes,
                flags,
            )
        )

    def _send_lcp(self, packet: bytes) -> None:
        self._emit_frame(PROTO_LCP, packet)

    def _send_ipcp(self, packet: bytes) -> None:
        self._emit_frame(PROTO_IPCP, packet)

    def send_ip(self, packet: bytes, now: float) -> None:
        """Queue an IPv4 datagram; dropped (and counted) unless IPCP is Opened."""
        self._now = now
        if self.ipcp.state != "Opened" or not self._network:
            self._c["ip_dropped_not_up"] += 1
            return
        if len(packet) > self.mtu:
            self._c["ip_dropped_too_big"] += 1
            return
        packet = bytes(packet)
        if self._compressor is not None:
            kind, data = self._compressor.compress(packet)
            proto = _VJ_PROTO[kind]
        else:
            proto, data = PROTO_IP, packet
        self._c["ip_packets_sent"] += 1
        self._emit_frame(proto, data, packet=packet)

    # -- input
    def receive(self, data: bytes, now: float) -> None:
        """Raw async-HDLC octets from the serial line."""
        self._now = now
        self._c["octets_received"] += len(data)
        dec = self._decoder
        # Decode one frame at a time: a frame that opens LCP changes the receive
        # ACCM, and the frames after it in the same read were sent with the new
        # ACCM (found with slirp, whose IPCP request follows its LCP Ack at once;
        # decoded with the old ACCM its raw control octets were dropped: bad FCS).
        pieces = data.split(b"\x7e")
        last = pieces.pop()
        for piece in pieces:
            self._decode(piece + b"\x7e", now)
        if last:
            self._decode(last, now)
        bad = dec.bad_fcs + dec.aborts + dec.runts + dec.too_long
        if bad != self._bad_seen:
            self._bad_seen = bad
            if self._decompressor is not None:
                self._decompressor.toss()

    def _decode(self, data: bytes, now: float) -> None:
        dec = self._decoder
        for f in dec.receive_frames(data):
            bad = dec.bad_fcs + dec.aborts + dec.runts + dec.too_long
            if bad != self._bad_seen:
                self._bad_seen = bad
                if self._decompressor is not None:
                    self._decompressor.toss()
            self._frame(f.frame, f.wire_octets, f.escapes, now)
        bad = dec.bad_fcs + dec.aborts + dec.runts + dec.too_long
        if bad != self._bad_seen:
            self._bad_seen = bad
            if self._decompressor is not None:
                self._decompressor.toss()

    def _frame(self, frame: bytes, wire: int, escapes: int, now: float) -> None:
        c = self._c
        c["frames_received"] += 1
        parsed = parse_ppp_header(frame)
        if parsed is None:
            c["malformed_frames"] += 1
            return
        protocol, off = parsed
        info = frame[off:]
        packet = b""
        state = self.lcp.state
        delivered: bytes | None = None
        if protocol == PROTO_LCP:
            self.lcp.receive(info, now, max_reject=max(self.lcp_policy.peer_mru - 4, 4))
            self._after_lcp_input(now)
        elif state != "Opened":
            c["frames_discarded"] += 1  # RFC 1661 3.4: only LCP before the link is established
        elif protocol in (PROTO_PAP, PROTO_CHAP):
            m = self._auth_for(protocol)
            if m is None:
                c["frames_discarded"] += 1
            else:
                m.receive(info, now)
                self._check_auth(now)
        elif protocol == PROTO_IPCP:
            if self._network:
                self.ipcp.receive(info, now)
            else:
                c["frames_discarded"] += 1
        elif protocol in (PROTO_IP, PROTO_VJ_COMP, PROTO_VJ_UNCOMP):
            if not self._network or self.ipcp.state != "Opened":
                c["frames_discarded"] += 1
            elif protocol == PROTO_IP:
                delivered = bytes(info)
            elif self._decompressor is None:
                c["frames_discarded"] += 1
            else:
                delivered = self._decompressor.decompress(_PROTO_VJ[protocol], info)
                if delivered is None:
                    c["vj_tossed"] += 1
        else:
            self._protocol_reject(protocol, info)  # RFC 1661 5.7: unknown protocol while LCP is Opened
        if delivered is not None:
            packet = delivered
        self._events.append(
            FrameReceived(
                protocol,
                PROTOCOL_KINDS.get(protocol, f"0x{protocol:04x}"),
                packet,
                bytes(info),
                bytes(frame),
                wire,
                off,
                2,
                escapes,
                1,
            )
        )
        if delivered is not None:
            c["ip_packets_received"] += 1
            self._events.append(IpPacketReceived(delivered))

    def _protocol_reject(self, protocol: int, info: bytes) -> None:
        self._c["protocol_rejects_sent"] += 1
        room = max(self.lcp_policy.peer_mru - 6, 0)
        self.lcp._id = (self.lcp._id + 1) & 0xFF
        self._send_lcp(encode_packet(PROTOCOL_REJECT, self.lcp._id, protocol.to_bytes(2, "big") + info[:room]))

    def _lcp_extra(self, code: int, data: bytes, now: float) -> None:
        if code == PROTOCOL_REJECT:
            self._c["protocol_rejects_received"] += 1
            proto = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            if proto == PROTO_IPCP:
                self.ipcp.event("RXJ-", now)
            elif proto in (PROTO_VJ_COMP, PROTO_VJ_UNCOMP):
                self._compressor = None
        elif code == ECHO_REQUEST:
            mine = self.lcp_policy.local_magic
            if mine and len(data) >= 4 and int.from_bytes(data[:4], "big") == mine:
                self._c["loopback_echoes"] += 1
        elif code == ECHO_REPLY:
            self._c["echo_replies_received"] += 1
            self._echo_outstanding = 0

    def _after_lcp_input(self, now: float) -> None:
        pol = self.lcp_policy
        if self.lcp.state in ("Closing", "Stopping", "Closed", "Stopped", "Initial", "Starting"):
            return
        if pol.auth_refused:
            self._events.append(AuthFailed("peer refused to authenticate", now))
            self._close(now, "peer refused to authenticate")
        elif pol.loops_suspected >= self.max_loops:
            self._close(now, "looped back")

    # -- layer actions
    def _lcp_started(self, now: float) -> None:
        pass

    def _lcp_up(self, now: float) -> None:
        pol = self.lcp_policy
        self._tx_accm = pol.peer_accm
        self._tx_pfc = pol.peer_pfc
        self._tx_acfc = pol.peer_acfc
        self._decoder.set_accm(pol.got_accm)
        self._events.append(LcpUp(now))
        self._auth_machines = []
        if self.echo_interval:
            self._echo_deadline = now + self.echo_interval
            self._echo_outstanding = 0
        if pol.got_auth is not None:  # we authenticate the peer
            if pol.got_auth == "pap":
                m = PapAuthenticator(self._send_pap, self.authenticator, timeout=self.auth_timeout)
            else:
                m = ChapAuthenticator(
                    self._send_chap,
                    self.authenticator,
                    rng=self.rng,
                    name=self.name,
                    restart_timer=self.restart_timer,
                    max_attempts=self.max_configure,
                )
            m.role = "authenticator"
            self._auth_machines.append(m)
        if pol.peer_auth is not None:  # the peer authenticates us
            if pol.peer_auth == "pap":
                m = PapPeer(
                    self._send_pap,
                    self.username or "",
                    self._password or "",
                    rng=self.rng,
                    restart_timer=self.restart_timer,
                    max_attempts=self.max_configure,
                )
            else:
                m = ChapPeer(self._send_chap, self.username or "", self._password or "", timeout=self.auth_timeout)
            m.role = "peer"
            self._auth_machines.append(m)
        for m in self._auth_machines:
            m.start(now)
        self._check_auth(now)

    def _send_pap(self, packet: bytes) -> None:
        self._emit_frame(PROTO_PAP, packet)

    def _send_chap(self, packet: bytes) -> None:
        self._emit_frame(PROTO_CHAP, packet)

    def _auth_for(self, protocol: int):
        want = PapAuthenticator if protocol == PROTO_PAP else ChapAuthenticator
        want_peer = PapPeer if protocol == PROTO_PAP else ChapPeer
        for m in self._auth_machines:
            if isinstance(m, want | want_peer):
                return m
        return None

    def _check_auth(self, now: float) -> None:
        if self._network or self.lcp.state != "Opened":
            return
        pending = False
        for m in self._auth_machines:
            if m.result is None:
                pending = True
            elif m.result[0] == "fail":
                if not getattr(m, "_reported", False):
                    m._reported = True
                    self._events.append(AuthFailed(m.result[1], now))
                    self._close(now, "authentication failed")
                return
        if pending:
            return
        for m in self._auth_machines:
            if not getattr(m, "_reported", False):
                m._reported = True
                self._events.append(AuthSucceeded(m.result[1], now))
        self._network = True
        self.ipcp.open(now)
        self.ipcp.up(now)

    def _lcp_down(self, now: float) -> None:
        last = self.lcp.transitions[-1] if self.lcp.transitions else ("", "", "")
        if last[1] == "RTR" and not self._reason:
            self._reason = "terminated by peer"
        self._events.append(LcpDown(now))
        self._network = False
        self._auth_machines = []
        self._echo_deadline = None
        self.ipcp.down(now)
        self.ipcp.close(now)
        self._reset_tx()
        self._decoder.set_accm(DEFAULT_ACCM)

    def _lcp_finished(self, now: float) -> None:
        if self._link_alive:
            self._terminated(now, self._reason or self._default_reason())

    def _default_reason(self) -> str:
        last = self.lcp.transitions[-1] if self.lcp.transitions else ("", "", "")
        if last[1] == "TO-" and last[0] in ("Req-Sent", "Ack-Rcvd", "Ack-Sent"):
            return "no response to LCP Configure-Request"
        if last[1] == "TO-" and last[0] == "Stopping":
            return "terminated by peer"
        if last[1] == "RXJ-":
            return "LCP rejected by peer"
        return "link terminated"

    def _terminated(self, now: float, reason: str) -> None:
        self._link_alive = False
        self._events.append(LinkTerminated(reason, now))

    def _ipcp_up(self, now: float) -> None:
        pol = self.ipcp_policy
        if pol.peer_vj is not None:
            self._compressor = vjmod.VjCompressor(slots=pol.peer_vj[0] + 1, compress_slot_id=bool(pol.peer_vj[1]))
        else:
            self._compressor = None
        self._decompressor = vjmod.VjDecompressor(slots=pol.got_vj[0] + 1) if pol.got_vj is not None else None
        dns = tuple(d for d in pol.got_dns if d) if self.role == "subscriber" else pol.dns
        self._events.append(IpcpUp(pol.got_address, pol.peer_address, dns, self._compressor is not None, now))

    def _ipcp_down(self, now: float) -> None:
        self._compressor = None
        self._decompressor = None
        self._events.append(IpcpDown(now))

    def _ipcp_finished(self, now: float) -> None:
        if self.lcp.state == "Opened":
            self._close(now, "IPCP negotiation failed")

    # -- timers
    def next_deadline(self) -> float | None:
        ds = [self.lcp.next_deadline(), self.ipcp.next_deadline(), self._echo_deadline]
        ds += [m.next_deadline() for m in self._auth_machines if m.result is None]
        ds = [d for d in ds if d is not None]
        return min(ds) if ds else None

    def on_timer(self, now: float) -> None:
        self._now = now
        self.lcp.on_timer(now)
        self.ipcp.on_timer(now)
        for m in list(self._auth_machines):
            if m.result is None:
                m.on_timer(now)
        self._check_auth(now)
        if self._echo_deadline is not None and now >= self._echo_deadline and self.lcp.state == "Opened":
            if self._echo_outstanding >= self.echo_failure:
                self._echo_deadline = None
                self._close(now, "peer not answering LCP Echo-Request")
                return
            self._echo_outstanding += 1
            self._echo_id = (self._echo_id + 1) & 0xFF
            self._c["echo_requests_sent"] += 1
            self._send_lcp(encode_packet(ECHO_REQUEST, self._echo_id, self.lcp_policy.local_magic.to_bytes(4, "big")))
            self._echo_deadline = now + (self.echo_interval or 0.0)


__all__ = [
    "PppConnection",
    "LcpUp",
    "LcpDown",
    "AuthSucceeded",
    "AuthFailed",
    "IpcpUp",
    "IpcpDown",
    "IpPacketReceived",
    "LinkTerminated",
    "FrameSent",
    "FrameReceived",
    "PROTOCOL_KINDS",
]
