"""TCP (RFC 9293) for one connection, sans-IO, segment-oriented.

Scope and RFCs:

- RFC 9293: the state machine (all eleven states), the three-way handshake with
  simultaneous open, segment acceptability and trimming, cumulative ACKs,
  out-of-order segments queued and reassembled, FIN close from every state,
  TIME-WAIT for 2*MSL, RST generation and handling (RFC 5961-style challenge
  ACK for a SYN or an inexact RST in a synchronized state).  Options: MSS only
  (sent on our SYN, respected from the peer's, 536 when absent).  No window
  scaling, timestamps, SACK or urgent data (the urgent pointer is ignored).
- RFC 6298: RTO from SRTT/RTTVAR (K=4), initial RTO 1 s, minimum 1 s, maximum
  60 s, Karn's rule (no samples from retransmitted segments), exponential
  backoff; 3 s after a handshake whose SYN was retransmitted (rule 5.7).  After
  ``max_retries`` consecutive expiries (``max_syn_retries`` in SYN states) the
  connection gives up: :class:`ConnectionTimedOut`.
- RFC 5681 / RFC 6582: slow start (initial window per RFC 5681 3.1), congestion
  avoidance, fast retransmit on the third duplicate ACK and NewReno fast
  recovery with partial ACKs; go-back-N from SND.UNA after an RTO.
- RFC 1122: delayed ACKs (200 ms; every second full-sized segment, an
  out-of-order segment, a FIN and a segment filling a hole are ACKed at once),
  Nagle's algorithm (RFC 896; off with ``nodelay=True``), receiver SWS
  avoidance, zero-window probing with a persist timer (one octet at SND.UNA,
  backed off like the RTO; never counted as a retransmission limit unless no
  ACK at all comes back).

Checksums: :meth:`TcpConnection.receive_segment` verifies the checksum itself
against the pseudo-header built from the connection's addresses (a bad one is
counted in ``counters["bad_segments"]`` and dropped); segments it hands out
carry a correct checksum.

Flow control towards the application: data handed out in
:class:`DataReceived` events counts as unread until :meth:`events` drains it,
so an application that does not call ``events()`` closes the window.

Events: :class:`Connected`, :class:`DataReceived`, :class:`PeerClosed` (FIN
received: no more data will come), :class:`Closed` (our side is done: emitted
when TIME-WAIT is entered, when LAST-ACK's FIN is acknowledged, on a RST in
CLOSING or LAST-ACK, and on ``close()`` before the handshake or ``abort()``;
the later TIME-WAIT -> CLOSED step emits nothing), :class:`ConnectionReset`
(RST in any other synchronized state, or an acceptable RST in SYN-SENT),
:class:`ConnectionTimedOut`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.ipv4 import PROTO_TCP, internet_checksum, ip_to_bytes

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20

DEFAULT_MSS = 536  # RFC 9293 3.7.1 / RFC 1122 4.2.2.6: assumed when no option
TCP_HEADER_LENGTH = 20

_MASK = 0xFFFFFFFF
_HDR = struct.Struct("!HHIIBBHHH")

# -- sequence-number arithmetic modulo 2**32 (RFC 9293 3.4) ------------------


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & _MASK) > 0x7FFFFFFF


def seq_le(a: int, b: int) -> bool:
    return a == b or ((a - b) & _MASK) > 0x7FFFFFFF


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed distance in sequence space."""
    d = (a - b) & _MASK
    return d - 0x100000000 if d & 0x80000000 else d


def seq_add(a: int, n: int) -> int:
    return (a + n) & _MASK


# -- segments ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """A parsed TCP segment (header fields, MSS option if present, data)."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    data: bytes
    mss: int | None = None
    header_length: int = TCP_HEADER_LENGTH

    @property
    def seg_len(self) -> int:
        """SEG.LEN: data octets plus one each for SYN and FIN."""
        return len(self.data) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)


def tcp_checksum(src: str, dst: str, segment: bytes) -> int:
    """Checksum over the RFC 9293 3.1 pseudo-header and ``segment``."""
    pseudo = ip_to_bytes(src) + ip_to_bytes(dst) + bytes((0, PROTO_TCP)) + len(segment).to_bytes(2, "big")
    return internet_checksum(pseudo + bytes(segment))


def verify_checksum(src: str, dst: str, segment: bytes) -> bool:
    return tcp_checksum(src, dst, segment) == 0


def build_segment(
    src: str,
    dst: str,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    data: bytes = b"",
    *,
    mss: int | None = None,
) -> bytes:
    """One raw segment with its checksum (``mss`` adds the MSS option)."""
    opts = b"" if mss is None else b"\x02\x04" + mss.to_bytes(2, "big")
    hlen = TCP_HEADER_LENGTH + len(opts)
    head = _HDR.pack(
        src_port,
        dst_port,
        seq & _MASK,
        ack & _MASK,
        (hlen // 4) << 4,
        flags & 0x3F,
        max(0, min(window, 0xFFFF)),
        0,
        0,
    )
    seg = head + opts + bytes(data)
    csum = tcp_checksum(src, dst, seg)
    return seg[:16] + csum.to_bytes(2, "big") + seg[18:]


def parse_segment(segment: bytes) -> TcpSegment | None:
    """Header fields of a raw segment (no checksum check); ``None`` if malformed."""
    if len(segment) < TCP_HEADER_LENGTH:
        return None
    sport, dport, seq, ack, off, flags, window, _, _ = _HDR.unpack_from(segment)
    hlen = (off >> 4) * 4
    if hlen < TCP_HEADER_LENGTH or hlen > len(segment):
        return None
    mss = None
    if hlen > TCP_HEADER_LENGTH:
        opts = segment[TCP_HEADER_LENGTH:hlen]
        i = 0
        while i < len(opts):
            kind = opts[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
                break  # malformed option list: ignore the rest
            if kind == 2 and opts[i + 1] == 4:
                mss = int.from_bytes(opts[i + 2 : i + 4], "big")
            i += opts[i + 1]
    return TcpSegment(sport, dport, seq, ack, flags & 0x3F, window, bytes(segment[hlen:]), mss, hlen)


# -- events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """The three-way handshake completed (ESTABLISHED)."""


@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order data for the application."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer's FIN arrived: it will send no more data."""


@dataclass(frozen=True, slots=True)
class Closed:
    """Our side is finished (TIME-WAIT entered, LAST-ACK acknowledged, or closed
    before the handshake / aborted)."""


@dataclass(frozen=True, slots=True)
class ConnectionReset:
    """The peer reset the connection (RST)."""


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut:
    """Retransmissions went unanswered ``max_retries`` times: the connection is gone."""


# States (RFC 9293 3.3.2).
CLOSED = "CLOSED"
LISTEN = "LISTEN"
SYN_SENT = "SYN-SENT"
SYN_RECEIVED = "SYN-RECEIVED"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT_1 = "FIN-WAIT-1"
FIN_WAIT_2 = "FIN-WAIT-2"
CLOSE_WAIT = "CLOSE-WAIT"
CLOSING = "CLOSING"
LAST_ACK = "LAST-ACK"
TIME_WAIT = "TIME-WAIT"

# The FIN-driven part of the automaton, one table (RFC 9293 figure 5).
# state -> next state when the application calls close()
_ON_CLOSE = {ESTABLISHED: FIN_WAIT_1, CLOSE_WAIT: LAST_ACK}
# state -> next state when our FIN is acknowledged
_ON_FIN_ACKED = {FIN_WAIT_1: FIN_WAIT_2, CLOSING: TIME_WAIT, LAST_ACK: CLOSED}
# state -> next state when the peer's FIN arrives (in order)
_ON_PEER_FIN = {
    ESTABLISHED: CLOSE_WAIT,
    FIN_WAIT_1: CLOSING,
    FIN_WAIT_2: TIME_WAIT,
    CLOSE_WAIT: CLOSE_WAIT,
    CLOSING: CLOSING,
    LAST_ACK: LAST_ACK,
    TIME_WAIT: TIME_WAIT,
}

_SYNCHRONIZED = frozenset(
    {ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT}
)
# States in which we may (re)send data and our FIN.
_SENDING = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
# States in which arriving data is for the application.
_RECEIVING = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})

_COUNTER_NAMES = (
    "segments_sent",
    "bytes_sent",
    "segments_retransmitted",
    "bytes_retransmitted",
    "segments_received",
    "bytes_received",
    "dup_acks",
    "fast_retransmits",
    "rto_firings",
    "persist_probes",
    "bad_segments",
    "out_of_order_segments",
    "duplicate_segments",
    "rst_sent",
    "rst_received",
    "send_after_close",
)


class TcpConnection:
    """One TCP connection (sans-IO).

    Open actively with :meth:`connect` or passively with :meth:`listen` (the
    stack does that and feeds the SYN).  Feed segments with
    :meth:`receive_segment`, collect segments with :meth:`segments_to_send`,
    drain :meth:`events`, drive timers with :meth:`next_deadline` and
    :meth:`on_timer`.
    """

    def __init__(
        self,
        local_addr: str,
        local_port: int,
        remote_addr: str,
        remote_port: int,
        *,
        iss: int,
        mss: int = DEFAULT_MSS,
        rcv_buffer: int = 16384,
        nodelay: bool = False,
        delayed_ack: float = 0.2,
        initial_rto: float = 1.0,
        min_rto: float = 1.0,
        max_rto: float = 60.0,
        max_retries: int = 12,
        max_syn_retries: int = 6,
        msl: float = 30.0,
        clock_granularity: float = 0.001,
    ) -> None:
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.mss = mss  # what we advertise (and the most we send)
        self.rcv_buffer = min(rcv_buffer, 0xFFFF)
        self.nodelay = nodelay
        self.delayed_ack = delayed_ack
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.max_retries = max_retries
        self.max_syn_retries = max_syn_retries
        self.msl = msl
        # RFC 6298 2.3: RTO = SRTT + max(G, 4*RTTVAR).  A BSD stack of the 1990s
        # ticked its retransmit timer every 500 ms (tcp_slowtimo): G = 0.5.
        self.clock_granularity = clock_granularity
        self.state = CLOSED
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)

        # send side
        self.iss = iss & _MASK
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.snd_max = self.iss  # highest sequence number sent + 1
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.snd_mss = DEFAULT_MSS if mss > DEFAULT_MSS else mss
        self._sndbuf = bytearray()
        self._sndbuf_seq = seq_add(self.iss, 1)  # sequence number of _sndbuf[0]
        self._fin_queued = False  # close() was called: FIN follows the data
        self._syn_retransmitted = False

        # receive side
        self.irs = 0
        self.rcv_nxt = 0
        self._rcv_adv = 0  # right edge of the window we advertised
        self._ooo: list[tuple[int, bytes]] = []  # out-of-order (seq, data)
        self._ooo_fin: int | None = None  # sequence number of an early FIN
        self._unread = 0

        # congestion control (RFC 5681 / 6582)
        self.cwnd = 0
        self.ssthresh = 0xFFFF
        self._dupacks = 0
        self._in_recovery = False
        self._recover = self.iss
        self._retransmit_una = False  # fast / partial-ACK retransmission due

        # RTT estimation (RFC 6298)
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = initial_rto
        self._rtt_seq: int | None = None  # the timed segment is ACKed when ACK > this
        self._rtt_time = 0.0
        self._retries = 0

        # timers
        self._rto_at: float | None = None
        self._delack_at: float | None = None
        self._persist_at: float | None = None
        self._persist_backoff = 0
        self._persist_unanswered = 0
        self._probe_only = False  # a persist probe is the only thing in flight
        self._timewait_at: float | None = None

        # ACK policy
        self._ack_now = False
        self._full_segments_unacked = 0
        self._rcv_mss_est = self.mss  # lowered to the sender's segment size as seen

        self._out: list[bytes] = []
        self._events: list = []

    # ------------------------------------------------------------------ API

    def __repr__(self) -> str:
        return (
            f"<TcpConnection {self.local_addr}:{self.local_port} -> "
            f"{self.remote_addr}:{self.remote_port} {self.state}>"
        )

    def connect(self, now: float) -> None:
        """Active open: send a SYN (SYN-SENT)."""
        if self.state != CLOSED:
            raise LocalProtocolError(f"connect() in {self.state}")
        self.state = SYN_SENT

    def listen(self) -> None:
        """Passive open: wait for a SYN (LISTEN)."""
        if self.state != CLOSED:
            raise LocalProtocolError(f"listen() in {self.state}")
        self.state = LISTEN

    def send(self, data: bytes) -> None:
        """Queue data; it goes out as the windows and Nagle allow.

        Allowed from SYN-SENT (queued until ESTABLISHED) through CLOSE-WAIT.
        After our own ``close()`` it is a :class:`LocalProtocolError`; on a
        connection that is already gone (reset, timed out) the data is dropped
        and counted in ``counters["send_after_close"]``.
        """
        if self._fin_queued:
            raise LocalProtocolError("send() after close()")
        if self.state in (CLOSED, LISTEN, TIME_WAIT):
            self.counters["send_after_close"] += len(data)
            return
        self._sndbuf += data

    def close(self, now: float | None = None) -> None:
        """Send a FIN once the queued data is out.  A no-op when already closing/closed."""
        if self._fin_queued or self.state in (CLOSED, TIME_WAIT):
            return
        if self.state in (LISTEN, SYN_SENT):
            self._go_closed()
            self._events.append(Closed())
            return
        self._fin_queued = True
        self.state = _ON_CLOSE.get(self.state, self.state)  # SYN-RECEIVED: at ESTABLISHED

    def abort(self) -> None:
        """Send a RST (if synchronized) and drop everything (CLOSED, emits :class:`Closed`)."""
        if self.state in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            self._send_rst(self.snd_nxt, 0, False)
        if self.state != CLOSED:
            self._go_closed()
            self._events.append(Closed())

    def events(self) -> list:
        """Drain the events; data handed out here counts as read by the application."""
        ev = self._events
        self._events = []
        if self._unread:
            before = self._advertised_remaining()
            self._unread = 0
            # Window update when the window we last offered was small and opens by
            # at least min(buffer/2, MSS) (RFC 1122 4.2.3.3).
            if (
                self.state in _RECEIVING
                and before < self.rcv_buffer // 2
                and self._rcv_window() - before >= min(self.rcv_buffer // 2, self.mss)
            ):
                self._ack_now = True
        return ev

    def segments_to_send(self, now: float) -> list[bytes]:
        """Raw segments (checksums filled) to put in IPv4 datagrams, oldest first."""
        self._output(now)
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        ds = [
            d
            for d in (self._rto_at, self._delack_at, self._persist_at, self._timewait_at)
            if d is not None
        ]
        return min(ds) if ds else None

    def on_timer(self, now: float) -> None:
        if self._timewait_at is not None and self._timewait_at <= now:
            self._timewait_at = None
            self._go_closed()
            return
        if self._delack_at is not None and self._delack_at <= now:
            self._delack_at = None
            self._ack_now = True
        if self._rto_at is not None and self._rto_at <= now:
            self._on_rto(now)
        if self._persist_at is not None and self._persist_at <= now:
            self._on_persist(now)

    @property
    def bytes_in_flight(self) -> int:
        return seq_diff(self.snd_max, self.snd_una)

    @property
    def send_queue_length(self) -> int:
        """Octets queued and not yet acknowledged."""
        return len(self._sndbuf)

    # ---------------------------------------------------------------- input

    def receive_segment(self, segment: bytes, now: float) -> None:
        """One raw TCP segment for this connection (checksum verified here)."""
        c = self.counters
        if not verify_checksum(self.remote_addr, self.local_addr, segment):
            c["bad_segments"] += 1
            return
        seg = parse_segment(segment)
        if seg is None:
            c["bad_segments"] += 1
            return
        c["segments_received"] += 1
        c["bytes_received"] += len(seg.data)
        if seg.flags & RST:
            c["rst_received"] += 1
        st = self.state
        if st == CLOSED:
            return
        if st == LISTEN:
            self._in_listen(seg, now)
        elif st == SYN_SENT:
            self._in_syn_sent(seg, now)
        else:
            self._in_other(seg, now)

    def _in_listen(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        if f & RST:
            return
        if f & ACK:
            self._send_rst(seg.ack, 0, False)
            return
        if not f & SYN:
            return
        self._take_syn(seg)
        self.state = SYN_RECEIVED
        self.snd_nxt = self.iss  # output sends SYN-ACK

    def _take_syn(self, seg: TcpSegment) -> None:
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self._rcv_adv = seq_add(self.rcv_nxt, self._rcv_window())
        peer_mss = seg.mss if seg.mss else DEFAULT_MSS
        self.snd_mss = max(1, min(peer_mss, self.mss))
        self.snd_wnd = seg.window
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        smss = self.snd_mss
        self.cwnd = 2 * smss if smss > 2190 else 3 * smss if smss > 1095 else 4 * smss
        self.ssthresh = 0xFFFF

    def _in_syn_sent(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        ack_ok = False
        if f & ACK:
            if seq_le(seg.ack, self.iss) or seq_lt(self.snd_max, seg.ack):
                if not f & RST:
                    self._send_rst(seg.ack, 0, False)
                return
            ack_ok = True
        if f & RST:
            if ack_ok:
                self._go_closed()
                self._events.append(ConnectionReset())
            return
        if not f & SYN:
            return
        self._take_syn(seg)
        if ack_ok:
            self.snd_una = seg.ack
            self._rtt_sample(seg.ack, now)
            self._established(now)
            self._ack_now = True
            self._process_data_and_fin(seg, now, syn_consumed=True)
        else:
            # Simultaneous open: SYN-ACK with our original ISS.
            self.state = SYN_RECEIVED
            self.snd_nxt = self.iss
            self._rtt_seq = None

    def _established(self, now: float) -> None:
        self.state = ESTABLISHED
        self._retries = 0
        self._rto_at = None
        if self.srtt is None and self._syn_retransmitted:
            self.rto = max(self.rto, 3.0)  # RFC 6298 5.7
        self._events.append(Connected())
        if self._fin_queued:
            self.state = FIN_WAIT_1

    def _in_other(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        seq = seg.seq
        data = seg.data
        seg_len = seg.seg_len
        # SYN-RECEIVED and the peer's SYN again (our SYN-ACK was lost): answer at once.
        if self.state == SYN_RECEIVED and f & SYN and not f & (ACK | RST) and seq == self.irs:
            self.snd_nxt = self.iss
            self._rtt_seq = None
            return
        # 1. acceptability (RFC 9293 3.10.7.4)
        # RCV.WND: what we advertised, or more if the application has read since.
        wnd = max(seq_diff(self._rcv_adv, self.rcv_nxt), self._rcv_window(), 0)
        if seg_len == 0:
            ok = (
                seq == self.rcv_nxt
                if wnd == 0
                else seq_le(self.rcv_nxt, seq) and seq_lt(seq, seq_add(self.rcv_nxt, wnd))
            )
        elif wnd == 0:
            ok = False
        else:
            end = seq_add(self.rcv_nxt, wnd)
            last = seq_add(seq, seg_len - 1)
            ok = (seq_le(self.rcv_nxt, seq) and seq_lt(seq, end)) or (
                seq_le(self.rcv_nxt, last) and seq_lt(last, end)
            )
        if not ok:
            if f & RST:
                return
            if seg_len == 0 and f & ACK:
                # A stale pure ACK (sent before the peer went back to SND.UNA): its
                # ACK field still counts, but it is not answered -- answering would
                # let two retransmitting ends trade unacceptable ACKs forever.  A
                # keepalive (SEQ = RCV.NXT - 1) is answered.
                if seq == seq_add(self.rcv_nxt, -1):
                    self._ack_now = True
                if self.state != SYN_RECEIVED:
                    self._process_ack(seg, 0, now)
                return
            # A zero-window probe: its ACK still counts (RFC 9293 "special allowance").
            if wnd == 0 and seq == self.rcv_nxt and f & ACK and not f & SYN:
                self._ack_now = True
                seg = TcpSegment(seg.src_port, seg.dst_port, seq, seg.ack, f & ~FIN, seg.window, b"")
                f = seg.flags
                data = b""
            else:
                if seq_lt(seq, self.rcv_nxt):
                    self.counters["duplicate_segments"] += 1
                self._ack_now = True
                return
        if wnd and seq_lt(self._rcv_adv, seq_add(self.rcv_nxt, wnd)):
            self._rcv_adv = seq_add(self.rcv_nxt, wnd)
        # 2. RST
        if f & RST:
            if seq != self.rcv_nxt:
                self._ack_now = True  # challenge ACK (RFC 5961 3.2)
                return
            prior = self.state
            self._go_closed()
            if prior in (CLOSING, LAST_ACK):
                # RFC 9293 3.10.7.4: just CLOSED -- we had finished; the peer has
                # forgotten the connection (e.g. its TIME-WAIT ran out).
                self._events.append(Closed())
            elif prior != TIME_WAIT:
                self._events.append(ConnectionReset())
            return
        # trim to the window: old octets in front, octets beyond the right edge
        syn = bool(f & SYN)
        fin = bool(f & FIN)
        if seq_lt(seq, self.rcv_nxt):
            skip = seq_diff(self.rcv_nxt, seq)
            if syn:
                syn = False
                skip -= 1
            if skip > len(data):
                fin = False  # the FIN is old too
            data = data[skip:]
            seq = self.rcv_nxt
        # 3. SYN in a synchronized state: challenge ACK (RFC 5961 4.2)
        if syn:
            self._ack_now = True
            return
        room = seq_diff(self._rcv_adv, seq)
        if len(data) > room:
            data = data[: max(room, 0)]
            fin = False
        # 4. ACK
        if not f & ACK:
            return
        if self.state == SYN_RECEIVED:
            if seq_lt(self.snd_una, seg.ack) and seq_le(seg.ack, self.snd_max):
                self.snd_wnd = seg.window
                self.snd_wl1 = seq
                self.snd_wl2 = seg.ack
                self.snd_una = seg.ack
                self._rtt_sample(seg.ack, now)
                self._established(now)
            else:
                self._send_rst(seg.ack, 0, False)
                return
        elif not self._process_ack(seg, len(seg.data) + (1 if f & (SYN | FIN) else 0), now):
            return
        if self.state == CLOSED:
            return
        # 5. data and FIN
        flags = (f & ~(FIN | SYN)) | (FIN if fin else 0)
        trimmed = TcpSegment(seg.src_port, seg.dst_port, seq, seg.ack, flags, seg.window, data)
        self._process_data_and_fin(trimmed, now)

    def _process_ack(self, seg: TcpSegment, payload_len: int, now: float) -> bool:
        """ACK processing for synchronized states; False if the segment is dropped."""
        ack = seg.ack
        seq = seg.seq
        if seq_lt(self.snd_max, ack):
            self._ack_now = True  # ACK of something never sent
            return False
        self._persist_unanswered = 0
        if self._probe_only:
            self._probe_only = False
            if ack == self.snd_una:
                self.snd_max = self.snd_una  # the probe octet was refused
        smss = self.snd_mss
        if seq_lt(self.snd_una, ack):
            acked = seq_diff(ack, self.snd_una)
            self._rtt_sample(ack, now)
            # drop acknowledged octets from the send buffer
            nbuf = min(max(seq_diff(ack, self._sndbuf_seq), 0), len(self._sndbuf))
            if nbuf:
                del self._sndbuf[:nbuf]
                self._sndbuf_seq = seq_add(self._sndbuf_seq, nbuf)
            self.snd_una = ack
            if seq_lt(self.snd_nxt, ack):
                self.snd_nxt = ack
            self._retries = 0
            # congestion control
            if self._in_recovery:
                if seq_le(self._recover, ack):  # full ACK: leave fast recovery
                    self.cwnd = min(self.ssthresh, max(self.bytes_in_flight, smss) + smss)
                    self._in_recovery = False
                else:  # partial ACK (RFC 6582 3.2 step 3)
                    self._retransmit_una = True
                    self.cwnd = max(self.cwnd - acked + smss, smss)
            elif self.cwnd < self.ssthresh:
                self.cwnd += min(acked, smss)
            else:
                self.cwnd += max(1, smss * smss // self.cwnd)
            self._dupacks = 0
            self._rto_at = now + self.rto if self.snd_una != self.snd_max else None
            self._fin_acked_check(now)
        elif (
            ack == self.snd_una
            and payload_len == 0
            and seg.window == self.snd_wnd
            and seg.window != 0
            and self.snd_una != self.snd_max
        ):
            self._dupacks += 1
            self.counters["dup_acks"] += 1
            if self._in_recovery:
                self.cwnd += smss
            elif self._dupacks == 3 and seq_le(self._recover, ack):
                self.ssthresh = max(self.bytes_in_flight // 2, 2 * smss)
                self.cwnd = self.ssthresh + 3 * smss
                self._recover = self.snd_max
                self._in_recovery = True
                self._retransmit_una = True
                self.counters["fast_retransmits"] += 1
        # window update (RFC 9293 3.10.7.4, fifth check)
        if seq_lt(self.snd_wl1, seq) or (self.snd_wl1 == seq and seq_le(self.snd_wl2, ack)):
            was_zero = self.snd_wnd == 0
            self.snd_wnd = seg.window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if was_zero and self.snd_wnd:
                self._persist_at = None
                self._persist_backoff = 0
                if self.snd_una != self.snd_max and self._rto_at is None:
                    self._rto_at = now + self.rto
        return True

    def _fin_acked_check(self, now: float) -> None:
        if not self._fin_queued:
            return
        fin_seq = seq_add(self._sndbuf_seq, len(self._sndbuf))
        if self.snd_una != seq_add(fin_seq, 1):
            return
        nxt = _ON_FIN_ACKED.get(self.state)
        if nxt is None:
            return
        if nxt == CLOSED:
            self._go_closed()
            self._events.append(Closed())
        elif nxt == TIME_WAIT:
            self._enter_time_wait(now)
        else:
            self.state = nxt

    def _process_data_and_fin(self, seg: TcpSegment, now: float, syn_consumed: bool = False) -> None:
        data = seg.data
        fin = bool(seg.flags & FIN)
        seq = seq_add(seg.seq, 1) if syn_consumed else seg.seq
        if self.state not in _RECEIVING:
            data = b""
            if self.state in (CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT) and fin:
                self._ack_now = True  # a retransmitted FIN
                if self.state == TIME_WAIT:
                    self._timewait_at = now + 2 * self.msl
            return
        if not data and not fin:
            return
        if seq != self.rcv_nxt:
            # out of order: keep it, ACK at once (a duplicate ACK for the sender)
            self.counters["out_of_order_segments"] += 1
            if data:
                self._ooo.append((seq, bytes(data)))
            if fin:
                self._ooo_fin = seq_add(seq, len(data))
            self._emit(self._pure_ack_seq(), 0, False, now)  # one duplicate ACK per segment
            return
        had_hole = bool(self._ooo) or self._ooo_fin is not None
        if data:
            self._deliver(data)
            # "Full-sized" is judged against the sender's segment size as seen
            # (as Linux estimates rcv_mss): a peer whose segments are smaller
            # than our MSS (slirp sends 512) still gets an ACK every second one.
            # A segment without PSH is the middle of a bulk write: its length is
            # the sender's segment size.
            n = min(len(data), self.mss)
            if not seg.flags & PSH and n < self._rcv_mss_est:
                self._rcv_mss_est = n
            self._rcv_mss_est = max(self._rcv_mss_est, n)
            if len(data) >= self._rcv_mss_est:
                self._full_segments_unacked += 1
        if had_hole:
            self._drain_ooo()
            self._ack_now = True  # a segment that fills (part of) a hole is ACKed at once
        fin_here = fin and seq_add(seq, len(data)) == self.rcv_nxt
        if self._ooo_fin is not None and self._ooo_fin == self.rcv_nxt:
            fin_here = True
        if fin_here:
            self.rcv_nxt = seq_add(self.rcv_nxt, 1)
            self._ooo.clear()
            self._ooo_fin = None
            self._events.append(PeerClosed())
            self._ack_now = True
            nxt = _ON_PEER_FIN[self.state]
            if nxt == TIME_WAIT:
                self._enter_time_wait(now)
            else:
                self.state = nxt
            return
        if self._ack_now:
            return
        if self._full_segments_unacked >= 2 or self.delayed_ack <= 0:
            self._ack_now = True
        elif self._delack_at is None:
            self._delack_at = now + self.delayed_ack

    def _deliver(self, data: bytes) -> None:
        self.rcv_nxt = seq_add(self.rcv_nxt, len(data))
        self._unread += len(data)
        self._events.append(DataReceived(bytes(data)))

    def _drain_ooo(self) -> None:
        progressed = True
        while progressed and self._ooo:
            progressed = False
            keep = []
            for s, d in self._ooo:
                off = seq_diff(self.rcv_nxt, s)
                if off < 0:
                    keep.append((s, d))
                elif off < len(d):
                    self._deliver(d[off:])
                    progressed = True
                # else: entirely old, dropped
            self._ooo = keep
            if progressed:
                self._ooo.sort(key=lambda e: seq_diff(e[0], self.rcv_nxt))

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._rto_at = None
        self._persist_at = None
        self._timewait_at = now + 2 * self.msl
        self._events.append(Closed())

    def _go_closed(self) -> None:
        self.state = CLOSED
        self._rto_at = self._delack_at = self._persist_at = self._timewait_at = None
        self._ack_now = False
        self._retransmit_una = False

    # ------------------------------------------------------------------ RTT

    def _rtt_sample(self, ack: int, now: float) -> None:
        if self._rtt_seq is None or not seq_lt(self._rtt_seq, ack):
            return
        r = max(now - self._rtt_time, 0.0)
        self._rtt_seq = None
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = min(max(self.srtt + max(self.clock_granularity, 4 * self.rttvar), self.min_rto), self.max_rto)

    # --------------------------------------------------------------- timers

    def _on_rto(self, now: float) -> None:
        self._rto_at = None
        if self.snd_una == self.snd_max:
            return
        c = self.counters
        c["rto_firings"] += 1
        self._retries += 1
        syn_state = self.state in (SYN_SENT, SYN_RECEIVED)
        if self._retries > (self.max_syn_retries if syn_state else self.max_retries):
            self._go_closed()
            self._events.append(ConnectionTimedOut())
            return
        self.rto = min(self.rto * 2, self.max_rto)
        self._rtt_seq = None  # Karn
        if syn_state:
            self._syn_retransmitted = True
            self.snd_nxt = self.iss
        else:
            self.ssthresh = max(self.bytes_in_flight // 2, 2 * self.snd_mss)
            self.cwnd = self.snd_mss
            self._in_recovery = False
            self._dupacks = 0
            self._recover = self.snd_max
            self.snd_nxt = self.snd_una  # go back N
        self._rto_at = now + self.rto

    def _on_persist(self, now: float) -> None:
        self._persist_at = None
        if self.snd_wnd != 0 or self.state not in _SENDING:
            return
        self._persist_unanswered += 1
        if self._persist_unanswered > self.max_retries:
            self._go_closed()
            self._events.append(ConnectionTimedOut())
            return
        off = seq_diff(self.snd_una, self._sndbuf_seq)
        if 0 <= off < len(self._sndbuf):
            self.counters["persist_probes"] += 1
            # A forced octet at SND.UNA; SND.NXT stays, so a refused probe is simply
            # sent again once the window opens.
            probe_only = self.snd_max == self.snd_una
            self._emit(self.snd_una, 1, False, now)
            if probe_only:
                self._rtt_seq = None  # a probe's answer may wait for the window: no sample
                self.snd_max = seq_add(self.snd_una, 1)
                self._probe_only = True
        self._persist_backoff += 1
        self._persist_at = now + min(self.rto * (2**self._persist_backoff), self.max_rto)

    # --------------------------------------------------------------- output

    def _rcv_window(self) -> int:
        return max(0, self.rcv_buffer - self._unread)

    def _advertised_remaining(self) -> int:
        return max(0, seq_diff(self._rcv_adv, self.rcv_nxt))

    def _window_to_advertise(self) -> int:
        free = self._rcv_window()
        cur = self._advertised_remaining()
        # Receiver SWS avoidance (RFC 1122 4.2.3.3); never shrink the right edge.
        if free - cur >= min(self.rcv_buffer // 2, self.mss) or free >= cur and free == self.rcv_buffer:
            return free
        return cur

    def _emit(self, seq: int, n: int, fin: bool, now: float, flags: int = ACK) -> None:
        """Build and queue one segment at ``seq`` with ``n`` octets from the buffer."""
        off = seq_diff(seq, self._sndbuf_seq)
        data = bytes(self._sndbuf[off : off + n]) if n else b""
        if fin:
            flags |= FIN
        if data and off + n >= len(self._sndbuf):
            flags |= PSH
        wnd = self._window_to_advertise()
        self._rcv_adv = seq_add(self.rcv_nxt, wnd)
        self._out.append(
            build_segment(
                self.local_addr,
                self.remote_addr,
                self.local_port,
                self.remote_port,
                seq,
                self.rcv_nxt,
                flags,
                wnd,
                data,
            )
        )
        c = self.counters
        c["segments_sent"] += 1
        c["bytes_sent"] += len(data)
        seg_end = seq_add(seq, len(data) + (1 if fin else 0))
        if seg_end != seq and seq_lt(seq, self.snd_max):
            c["segments_retransmitted"] += 1
            c["bytes_retransmitted"] += len(data)
            self._rtt_seq = None  # Karn: no sample while a retransmission is out
        elif self._rtt_seq is None and seg_end != seq:
            self._rtt_seq = seq
            self._rtt_time = now
        self._ack_sent()

    def _pure_ack_seq(self) -> int:
        # Like BSD: a segment with no data and no SYN/FIN carries SND.MAX, so it
        # stays acceptable to the peer while we are going back N.
        return self.snd_nxt if self._probe_only else self.snd_max

    def _ack_sent(self) -> None:
        self._ack_now = False
        self._delack_at = None
        self._full_segments_unacked = 0

    def _send_rst(self, seq: int, ack: int, with_ack: bool) -> None:
        flags = RST | (ACK if with_ack else 0)
        self._out.append(
            build_segment(
                self.local_addr,
                self.remote_addr,
                self.local_port,
                self.remote_port,
                seq,
                ack,
                flags,
                0,
            )
        )
        self.counters["rst_sent"] += 1
        self.counters["segments_sent"] += 1

    def _output(self, now: float) -> None:
        st = self.state
        if st in (CLOSED, LISTEN):
            return
        if st in (SYN_SENT, SYN_RECEIVED):
            if self.snd_nxt == self.iss:
                flags = SYN | (ACK if st == SYN_RECEIVED else 0)
                retx = self.snd_max != self.iss
                wnd = self._rcv_window()
                if st == SYN_RECEIVED:
                    self._rcv_adv = seq_add(self.rcv_nxt, wnd)
                self._out.append(
                    build_segment(
                        self.local_addr,
                        self.remote_addr,
                        self.local_port,
                        self.remote_port,
                        self.iss,
                        self.rcv_nxt if st == SYN_RECEIVED else 0,
                        flags,
                        wnd,
                        mss=self.mss,
                    )
                )
                c = self.counters
                c["segments_sent"] += 1
                if retx:
                    c["segments_retransmitted"] += 1
                    self._rtt_seq = None
                else:
                    self._rtt_seq = self.iss
                    self._rtt_time = now
                self.snd_nxt = seq_add(self.iss, 1)
                self.snd_max = self.snd_nxt
                self._ack_sent()
                if self._rto_at is None:
                    self._rto_at = now + self.rto
            elif self._ack_now and st == SYN_RECEIVED:
                self._emit(self.snd_nxt, 0, False, now)
            return
        sent = False
        if st in _SENDING:
            sent = self._output_data(now)
        if self._ack_now and not sent:
            self._emit(self._pure_ack_seq(), 0, False, now)
        if self.snd_una != self.snd_max and self._rto_at is None and self.snd_wnd:
            self._rto_at = now + self.rto

    def _output_data(self, now: float) -> bool:
        sent = False
        smss = self.snd_mss
        buf_end = seq_add(self._sndbuf_seq, len(self._sndbuf))
        if self._retransmit_una:
            self._retransmit_una = False
            if self.snd_una != self.snd_max:
                n = max(0, min(smss, seq_diff(buf_end, self.snd_una)))
                fin = self._fin_queued and seq_add(self.snd_una, n) == buf_end and seq_lt(buf_end, self.snd_max)
                self._emit(self.snd_una, n, fin, now)
                sent = True
        while True:
            unsent = seq_diff(buf_end, self.snd_nxt)
            if unsent > 0:
                wnd = min(self.snd_wnd, self.cwnd)
                usable = seq_diff(seq_add(self.snd_una, wnd), self.snd_nxt)
                n = min(smss, unsent, usable)
                outstanding = self.snd_nxt != self.snd_una
                if n <= 0:
                    break
                if n < smss:
                    if n < unsent:
                        # window-limited piece: only when nothing is in flight
                        if outstanding:
                            break
                    elif (
                        outstanding
                        and not self.nodelay
                        and not self._fin_queued
                        and not seq_lt(self.snd_nxt, self.snd_max)
                    ):
                        break  # Nagle (RFC 896): hold a small tail while data is unacknowledged
                fin = self._fin_queued and n == unsent
                self._emit(self.snd_nxt, n, fin, now)
                self.snd_nxt = seq_add(self.snd_nxt, n + (1 if fin else 0))
                if seq_lt(self.snd_max, self.snd_nxt):
                    self.snd_max = self.snd_nxt
                sent = True
            elif unsent == 0 and self._fin_queued:
                self._emit(self.snd_nxt, 0, True, now)
                self.snd_nxt = seq_add(self.snd_nxt, 1)
                if seq_lt(self.snd_max, self.snd_nxt):
                    self.snd_max = self.snd_nxt
                sent = True
            else:
                break
        # persist timer: data waits behind a zero window and nothing is in flight to elicit an ACK
        if (
            self.snd_wnd == 0
            and seq_diff(buf_end, self.snd_una) > 0
            and self._persist_at is None
        ):
            self._rto_at = None
            self._persist_at = now + min(self.rto * (2**self._persist_backoff), self.max_rto)
        return sent


__all__ = [
    "TcpConnection",
    "TcpSegment",
    "Connected",
    "DataReceived",
    "PeerClosed",
    "Closed",
    "ConnectionReset",
    "ConnectionTimedOut",
    "build_segment",
    "parse_segment",
    "tcp_checksum",
    "verify_checksum",
    "seq_lt",
    "seq_le",
    "seq_diff",
    "seq_add",
    "FIN",
    "SYN",
    "RST",
    "PSH",
    "ACK",
    "URG",
    "DEFAULT_MSS",
]
