"""TCP (RFC 9293) for one connection, sans-IO, segment-oriented: the state machine.

Scope and RFCs:

- RFC 9293: the state machine (all eleven states), the three-way handshake with
  simultaneous open, segment acceptability and trimming, cumulative ACKs,
  out-of-order segments held and reassembled, FIN close from every state,
  TIME-WAIT for 2*MSL, RST generation and handling (RFC 5961-style challenge
  ACK for a SYN or an inexact RST in a synchronized state).  Options: MSS only
  (sent on our SYN, respected from the peer's, 536 when absent).  No window
  scaling, timestamps, SACK or urgent data (the urgent pointer is ignored).
- RFC 1122: delayed ACKs (200 ms; every second full-sized segment, an
  out-of-order segment, a FIN and a segment filling a hole are ACKed at once),
  Nagle's algorithm (RFC 896; off with ``nodelay=True``), receiver SWS
  avoidance and the window update of 4.2.3.3, zero-window probing with a
  persist timer (one octet at SND.UNA, backed off like the RTO; never counted
  as a retransmission limit unless no ACK at all comes back).
- After ``max_retries`` consecutive RTO expiries (``max_syn_retries`` in SYN
  states) the connection gives up: :class:`ConnectionTimedOut`.

The connection composes one object per concern, each in its own module:

- :mod:`dialsim.proto.tcp_segment`: the segment codec, checksum and sequence
  arithmetic;
- :class:`~dialsim.proto.tcp_rtt.RttEstimator` (``conn.rtt``): RFC 6298 RTO,
  Karn's rule, backoff;
- :class:`~dialsim.proto.tcp_congestion.NewReno` (``conn.congestion``): RFC 5681
  slow start and congestion avoidance, RFC 6582 fast recovery; go-back-N from
  SND.UNA after an RTO is this module's;
- :class:`~dialsim.proto.tcp_reassembly.ReassemblyQueue` (``conn.reassembly``):
  out-of-order segments.

The machine interface (:mod:`dialsim.proto.machine`): :meth:`TcpConnection.receive`
takes one raw segment and verifies its checksum against the pseudo-header of
the connection's addresses (a bad one is counted in ``counters["bad_segments"]``
and dropped); :meth:`TcpConnection.output` hands out raw segments with correct
checksums; :meth:`TcpConnection.events` hands out the queued events and does
nothing else.

Flow control towards the application: data waiting in :class:`DataReceived`
events not yet handed out by :meth:`TcpConnection.events` fills the receive
buffer, so an application that does not call ``events()`` closes the window.
Once it has, :meth:`TcpConnection.output` sends a window update if the window
opened enough (RFC 1122 4.2.3.3).

Events (all :class:`~dialsim.proto.events.ConnectionEvent`): :class:`Connected`,
:class:`DataReceived`, :class:`PeerClosed` (FIN received: no more data will
come), :class:`Closed` (our side is done: emitted when TIME-WAIT is entered,
when LAST-ACK's FIN is acknowledged, on a RST in CLOSING or LAST-ACK, and on
``close()`` before the handshake or ``abort()``; the later TIME-WAIT -> CLOSED
step emits nothing), :class:`ConnectionReset` (RST in any other synchronized
state, or an acceptable RST in SYN-SENT), :class:`ConnectionTimedOut`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import ConnectionEvent
from dialsim.proto.tcp_congestion import NewReno
from dialsim.proto.tcp_reassembly import ReassemblyQueue
from dialsim.proto.tcp_rtt import RttEstimator
from dialsim.proto.tcp_segment import (
    ACK,
    DEFAULT_MSS,
    FIN,
    PSH,
    RST,
    SYN,
    TcpSegment,
    implementation,
    pseudo_header_sum,
    seq_add,
    seq_diff,
    seq_le,
    seq_lt,
)

_MASK = 0xFFFFFFFF

# tcp_segment.py's functions are the reference of the compiled codec (_tcpip.c):
# the same octets and records (tests/unit/test_tcpip_c.py).
encode_segment, _, checked_segment = implementation("c")

# -- events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected(ConnectionEvent):
    """The three-way handshake completed (ESTABLISHED)."""


@dataclass(frozen=True, slots=True)
class DataReceived(ConnectionEvent):
    """In-order data for the application."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PeerClosed(ConnectionEvent):
    """The peer's FIN arrived: it will send no more data."""


@dataclass(frozen=True, slots=True)
class Closed(ConnectionEvent):
    """Our side is finished (TIME-WAIT entered, LAST-ACK acknowledged, or closed
    before the handshake / aborted)."""


@dataclass(frozen=True, slots=True)
class ConnectionReset(ConnectionEvent):
    """The peer reset the connection (RST)."""


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut(ConnectionEvent):
    """Retransmissions went unanswered ``max_retries`` times: the connection is gone."""


class _EventQueue:
    """Events not yet handed out, and the received octets waiting in them.

    Those octets are still in the receive buffer: the window counts them.
    """

    __slots__ = ("items", "data_octets")

    def __init__(self) -> None:
        self.items: list[ConnectionEvent] = []
        self.data_octets = 0

    def put(self, event: ConnectionEvent) -> None:
        self.items.append(event)

    def put_data(self, data: bytes) -> None:
        self.items.append(DataReceived(data))
        self.data_octets += len(data)

    def hand_out(self) -> list[ConnectionEvent]:
        items = self.items
        self.items = []
        self.data_octets = 0
        return items


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
# States in which a FIN arriving again (retransmitted) is answered.
_PEER_FIN_SEEN = frozenset({CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT})
# States in which header prediction may take a segment (data or our FIN in flight).
_PREDICTABLE = _SENDING | _RECEIVING
# States in which abort() sends a RST (RFC 9293 3.10.5).
_ABORT_WITH_RST = frozenset({SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT})

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
    "predicted_segments",  # taken by header prediction
    "rst_sent",
    "rst_received",
    "send_after_close",
)


class TcpConnection:
    """One TCP connection (sans-IO).

    Open actively with :meth:`connect` or passively with :meth:`listen` (the
    stack does that and feeds the SYN).  Feed segments with :meth:`receive`,
    collect segments with :meth:`output`, take :meth:`events`, drive timers
    with :meth:`next_deadline` and :meth:`on_timer`.

    ``clock_granularity`` is G in RFC 6298's RTO = SRTT + max(G, 4*RTTVAR).
    The default, 0.001 s, is a modern millisecond clock.  The simulation
    passes 0.5 s (``TCP_1990S`` in :mod:`dialsim.experiment.world`): the
    500 ms ``tcp_slowtimo`` tick of a 4.4BSD-derived stack of the 1990s, with
    ``initial_rto=3.0`` (RFC 1122 4.2.3.1).
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
        # The socket pair (RFC 9293 2.7) and its pseudo-header, fixed for life.
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self._pseudo = pseudo_header_sum(local_addr, remote_addr)
        self.mss = mss  # what we advertise (and the most we send)
        self.rcv_buffer = min(rcv_buffer, 0xFFFF)
        self.nodelay = nodelay
        self.delayed_ack = delayed_ack
        self.max_retries = max_retries
        self.max_syn_retries = max_syn_retries
        self.msl = msl
        self.state = CLOSED
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)
        self.rtt = RttEstimator(initial_rto, min_rto, max_rto, clock_granularity)
        self.congestion = NewReno(iss & _MASK)
        self.reassembly = ReassemblyQueue()

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
        self._retransmit_una = False  # fast / partial-ACK retransmission due
        self._retries = 0

        # receive side
        self.irs = 0
        self.rcv_nxt = 0
        self._rcv_adv = 0  # right edge of the window we advertised

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
        self._events = _EventQueue()

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
            self._events.put(Closed())
            return
        self._fin_queued = True
        self.state = _ON_CLOSE.get(self.state, self.state)  # SYN-RECEIVED: at ESTABLISHED

    def abort(self) -> None:
        """Send a RST (if synchronized) and drop everything (CLOSED, emits :class:`Closed`)."""
        if self.state in _ABORT_WITH_RST:
            self._send_rst(self.snd_nxt, 0, False)
        if self.state != CLOSED:
            self._go_closed()
            self._events.put(Closed())

    def events(self) -> list[ConnectionEvent]:
        """The events since the last call (handing out data frees receive buffer)."""
        queue = self._events
        if not queue.items:
            return []
        return queue.hand_out()

    def output(self, now: float) -> list[bytes]:
        """Raw segments (checksums filled) to put in IPv4 datagrams, oldest first."""
        st = self.state
        if st in _SYNCHRONIZED:
            if not self._ack_now and st in _RECEIVING:
                # RFC 1122 4.2.3.3: the window we last offered was small and the
                # application's reading has opened it by at least min(buffer/2, MSS):
                # a window update is due (_advertised_remaining and _rcv_window, inline).
                half = self.rcv_buffer // 2
                offered = (self._rcv_adv - self.rcv_nxt) & _MASK
                if offered & 0x80000000:
                    offered = 0
                if offered < half:
                    free = self.rcv_buffer - self._events.data_octets
                    mss = self.mss
                    if (free if free > 0 else 0) - offered >= (half if half < mss else mss):
                        self._ack_now = True
            sent = self._output_data(now) if st in _SENDING else False
            if self._ack_now and not sent:
                self._emit(self.snd_nxt if self._probe_only else self.snd_max, 0, False, now)  # pure ACK
            if self.snd_una != self.snd_max and self._rto_at is None and self.snd_wnd:
                self._rto_at = now + self.rtt.rto
        elif st == SYN_SENT or st == SYN_RECEIVED:
            self._output_syn(now)
        out = self._out
        if out:
            self._out = []
        return out

    def next_deadline(self) -> float | None:
        # called several times per segment: unrolled, no tuple
        best = self._rto_at
        d = self._delack_at
        if d is not None and (best is None or d < best):
            best = d
        d = self._persist_at
        if d is not None and (best is None or d < best):
            best = d
        d = self._timewait_at
        if d is not None and (best is None or d < best):
            best = d
        return best

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

    def receive(self, segment: bytes, now: float) -> None:
        """One raw TCP segment for this connection (checksum verified here)."""
        c = self.counters
        seg = checked_segment(self._pseudo, segment)
        if seg is None:  # a bad checksum, or too short for its header
            c["bad_segments"] += 1
            return
        c["segments_received"] += 1
        c["bytes_received"] += len(seg.data)
        if seg.flags & RST:
            c["rst_received"] += 1
        st = self.state
        if st in _PREDICTABLE:
            if self._predicted(seg, now):
                c["predicted_segments"] += 1
            else:
                self._in_other(seg, now)
        elif st == CLOSED:
            return
        elif st == LISTEN:
            self._in_listen(seg, now)
        elif st == SYN_SENT:
            self._in_syn_sent(seg, now)
        else:
            self._in_other(seg, now)

    def _predicted(self, seg: TcpSegment, now: float) -> bool:
        """Header prediction (Jacobson; 4.3BSD-Reno's ``tcp_input``).

        The two segments of a bulk transfer -- a pure ACK of new data, and
        pure in-sequence data that fits the window while nothing is held out
        of order -- both carrying only ACK (and PSH), the expected sequence
        number and an unchanged, open send window, take these few steps.
        True if the segment was one of them and is done; anything else goes
        the full way (:meth:`_in_other`), which does the same for these two.
        BSD predicts in ESTABLISHED only; here also while closing (a sender
        that closed at once still gets its ACKs predicted), since the steps
        are the full way's in every synchronized state but TIME-WAIT.

        Sequence comparisons are written out (``x < y`` in sequence space is
        ``(x - y) & _MASK > 0x7FFFFFFF``, :func:`~dialsim.proto.tcp_segment.seq_lt`)
        and so are :meth:`_rcv_window` and :meth:`_advertised_remaining`: this
        runs once per segment.
        """
        _, _, seq, ack, flags, window, data, _, _ = seg
        wl1 = self.snd_wl1
        wl2 = self.snd_wl2
        if (
            flags & ~PSH != ACK
            or seq != self.rcv_nxt
            or window != self.snd_wnd
            or not window
            or self._probe_only
            or self.reassembly.pending
            # the window-update check: SND.WL1 < SEG.SEQ, or = and SND.WL2 =< SEG.ACK
            or not (
                (wl1 - seq) & _MASK > 0x7FFFFFFF
                or wl1 == seq and (wl2 == ack or (wl2 - ack) & _MASK > 0x7FFFFFFF)
            )
        ):
            return False
        free = self.rcv_buffer - self._events.data_octets
        if free < 0:
            free = 0
        offered = (self._rcv_adv - seq) & _MASK  # SEG.SEQ is RCV.NXT here
        if offered & 0x80000000:
            offered = 0
        una = self.snd_una
        if data:
            if ack != una or len(data) > (free if free > offered else offered):
                return False
        # a pure ACK must be new: SND.UNA < SEG.ACK =< SND.MAX
        elif ack == una or (una - ack) & _MASK <= 0x7FFFFFFF or (self.snd_max - ack) & _MASK > 0x7FFFFFFF:
            return False
        # As the full way does: acceptable, so RCV.WND may grow; the ACK; the send window.
        if free > offered:
            self._rcv_adv = (seq + free) & _MASK
        self._persist_unanswered = 0
        if not data:
            self._new_ack(ack, now)
        self.snd_wl1 = seq
        self.snd_wl2 = ack
        if data:
            self._process_text(seq, data, False, bool(flags & PSH), now)
        return True

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
        self.reassembly = ReassemblyQueue()  # stream offset 0 is IRS + 1
        self._rcv_adv = seq_add(self.rcv_nxt, self._rcv_window())
        peer_mss = seg.mss if seg.mss else DEFAULT_MSS
        self.snd_mss = max(1, min(peer_mss, self.mss))
        self.snd_wnd = seg.window
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        self.congestion.start(self.snd_mss)

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
                self._events.put(ConnectionReset())
            return
        if not f & SYN:
            return
        self._take_syn(seg)
        if ack_ok:
            self.snd_una = seg.ack
            self.rtt.on_ack(seg.ack, now)
            self._established()
            self._ack_now = True
            self._process_text(seq_add(seg.seq, 1), seg.data, bool(f & FIN), bool(f & PSH), now)
        else:
            # Simultaneous open: SYN-ACK with our original ISS.
            self.state = SYN_RECEIVED
            self.snd_nxt = self.iss
            self.rtt.forget()

    def _established(self) -> None:
        self.state = ESTABLISHED
        self._retries = 0
        self._rto_at = None
        if self._syn_retransmitted:
            self.rtt.syn_was_retransmitted()
        self._events.put(Connected())
        if self._fin_queued:
            self.state = FIN_WAIT_1

    def _in_other(self, seg: TcpSegment, now: float) -> None:
        f = seg.flags
        # SYN-RECEIVED and the peer's SYN again (our SYN-ACK was lost): answer at once.
        if self.state == SYN_RECEIVED and f & SYN and not f & (ACK | RST) and seg.seq == self.irs:
            self.snd_nxt = self.iss
            self.rtt.forget()
            return
        # 1. acceptability (RFC 9293 3.10.7.4)
        seg = self._acceptable(seg, now)
        if seg is None:
            return
        f = seg.flags
        # 2. RST
        if f & RST:
            self._in_rst(seg.seq)
            return
        # trim to the window: old octets in front, octets beyond the right edge
        seq, data, syn, fin = seg.seq, seg.data, bool(f & SYN), bool(f & FIN)
        if seq != self.rcv_nxt and seq_lt(seq, self.rcv_nxt):
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
            if not self._ack_of_syn(seg, now):
                return
        elif not self._process_ack(seg, len(seg.data) + (1 if f & (SYN | FIN) else 0), now):
            return
        if self.state == CLOSED:
            return
        # 5. data and FIN
        self._process_text(seq, data, fin, bool(f & PSH), now)

    def _acceptable(self, seg: TcpSegment, now: float) -> TcpSegment | None:
        """RFC 9293 3.10.7.4, first check: the segment to go on with, or None.

        An unacceptable segment is answered with an ACK (unless it is a RST or
        a stale pure ACK, whose ACK field still counts); a zero-window probe
        goes on without its text, so that its ACK field is processed.
        """
        seq = seg.seq
        rcv_nxt = self.rcv_nxt
        f = seg.flags
        seg_len = len(seg.data) + (1 if f & SYN else 0) + (1 if f & FIN else 0)
        # RCV.WND: what we advertised, or more if the application has read since.
        wnd = self._rcv_window()
        offered = self._advertised_remaining()
        if offered > wnd:
            wnd = offered
        if seq == rcv_nxt:
            ok = seg_len == 0 or wnd > 0
        elif seg_len == 0:
            ok = wnd > 0 and 0 <= seq_diff(seq, rcv_nxt) < wnd
        else:
            ahead = seq_diff(seq, rcv_nxt)
            ok = wnd > 0 and (0 <= ahead < wnd or 0 <= ahead + seg_len - 1 < wnd)
        if not ok:
            if f & RST:
                return None
            if seg_len == 0 and f & ACK:
                # A stale pure ACK (sent before the peer went back to SND.UNA): its
                # ACK field still counts, but it is not answered -- answering would
                # let two retransmitting ends trade unacceptable ACKs forever.  A
                # keepalive (SEQ = RCV.NXT - 1) is answered.
                if seq == seq_add(rcv_nxt, -1):
                    self._ack_now = True
                if self.state != SYN_RECEIVED:
                    self._process_ack(seg, 0, now)
                return None
            self._ack_now = True
            # A zero-window probe: its ACK still counts (RFC 9293 "special allowance").
            if wnd == 0 and seq == rcv_nxt and f & ACK and not f & SYN:
                return seg._replace(flags=f & ~FIN, data=b"")
            if seq_lt(seq, rcv_nxt):
                self.counters["duplicate_segments"] += 1
            return None
        if wnd > offered:
            self._rcv_adv = seq_add(rcv_nxt, wnd)
        return seg

    def _in_rst(self, seq: int) -> None:
        """An acceptable RST in a synchronized state (or SYN-RECEIVED)."""
        if seq != self.rcv_nxt:
            self._ack_now = True  # challenge ACK (RFC 5961 3.2)
            return
        prior = self.state
        self._go_closed()
        if prior in (CLOSING, LAST_ACK):
            # RFC 9293 3.10.7.4: just CLOSED -- we had finished; the peer has
            # forgotten the connection (e.g. its TIME-WAIT ran out).
            self._events.put(Closed())
        elif prior != TIME_WAIT:
            self._events.put(ConnectionReset())

    def _ack_of_syn(self, seg: TcpSegment, now: float) -> bool:
        """SYN-RECEIVED: an ACK of our SYN completes the handshake; any other gets a RST."""
        if seq_lt(self.snd_una, seg.ack) and seq_le(seg.ack, self.snd_max):
            self.snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self.snd_wl2 = seg.ack
            self.snd_una = seg.ack
            self.rtt.on_ack(seg.ack, now)
            self._established()
            return True
        self._send_rst(seg.ack, 0, False)
        return False

    def _process_ack(self, seg: TcpSegment, payload_len: int, now: float) -> bool:
        """ACK processing for synchronized states; False if the segment is dropped."""
        ack = seg.ack
        if seq_lt(self.snd_max, ack):
            self._ack_now = True  # ACK of something never sent
            return False
        self._persist_unanswered = 0
        if self._probe_only:
            self._probe_only = False
            if ack == self.snd_una:
                self.snd_max = self.snd_una  # the probe octet was refused
        if ack != self.snd_una and seq_lt(self.snd_una, ack):
            self._new_ack(ack, now)
        elif (
            ack == self.snd_una
            and payload_len == 0
            and seg.window == self.snd_wnd
            and seg.window != 0
            and self.snd_una != self.snd_max
        ):
            self.counters["dup_acks"] += 1
            if self.congestion.on_duplicate_ack(ack, self.bytes_in_flight, self.snd_mss, self.snd_max):
                self._retransmit_una = True
                self.counters["fast_retransmits"] += 1
        # window update (RFC 9293 3.10.7.4, fifth check)
        seq = seg.seq
        if seq_lt(self.snd_wl1, seq) or (self.snd_wl1 == seq and seq_le(self.snd_wl2, ack)):
            was_zero = self.snd_wnd == 0
            self.snd_wnd = seg.window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if was_zero and self.snd_wnd:
                self._persist_at = None
                self._persist_backoff = 0
                if self.snd_una != self.snd_max and self._rto_at is None:
                    self._rto_at = now + self.rtt.rto
        return True

    def _new_ack(self, ack: int, now: float) -> None:
        """SND.UNA < ACK <= SND.MAX: new data acknowledged (sequence arithmetic written out)."""
        acked = (ack - self.snd_una) & _MASK  # positive: SND.UNA < ACK
        self.rtt.on_ack(ack, now)
        # drop acknowledged octets from the send buffer
        nbuf = (ack - self._sndbuf_seq) & _MASK
        if not nbuf & 0x80000000:  # else ACK is before the buffer (the SYN): nothing
            buf = self._sndbuf
            if nbuf > len(buf):
                nbuf = len(buf)
            if nbuf:
                del buf[:nbuf]
                self._sndbuf_seq = (self._sndbuf_seq + nbuf) & _MASK
        self.snd_una = ack
        if (self.snd_nxt - ack) & _MASK > 0x7FFFFFFF:
            self.snd_nxt = ack
        self._retries = 0
        snd_max = self.snd_max
        in_flight = (snd_max - ack) & _MASK  # bytes_in_flight, never negative here
        if self.congestion.on_ack(ack, acked, in_flight, self.snd_mss):
            self._retransmit_una = True
        self._rto_at = now + self.rtt.rto if ack != snd_max else None
        if self._fin_queued:
            self._fin_acked_check(now)

    def _fin_acked_check(self, now: float) -> None:
        fin_seq = seq_add(self._sndbuf_seq, len(self._sndbuf))
        if self.snd_una != seq_add(fin_seq, 1):
            return
        nxt = _ON_FIN_ACKED.get(self.state)
        if nxt is None:
            return
        if nxt == CLOSED:
            self._go_closed()
            self._events.put(Closed())
        elif nxt == TIME_WAIT:
            self._enter_time_wait(now)
        else:
            self.state = nxt

    def _process_text(self, seq: int, data: bytes, fin: bool, psh: bool, now: float) -> None:
        """RFC 9293 3.10.7.4, seventh and eighth checks: the segment text and the FIN."""
        if self.state not in _RECEIVING:
            if fin and self.state in _PEER_FIN_SEEN:
                self._ack_now = True  # a retransmitted FIN
                if self.state == TIME_WAIT:
                    self._timewait_at = now + 2 * self.msl
            return
        if not data and not fin:
            return
        queue = self.reassembly
        if seq != self.rcv_nxt:
            # out of order: hold it, ACK at once (a duplicate ACK for the sender)
            self.counters["out_of_order_segments"] += 1
            queue.add(queue.next + seq_diff(seq, self.rcv_nxt), data, fin)
            self._emit(self._pure_ack_seq(), 0, False, now)  # one duplicate ACK per segment
            return
        had_hole = queue.pending
        delivered = queue.add(queue.next, data, fin)
        if delivered:
            self.rcv_nxt = (self.rcv_nxt + len(delivered)) & _MASK
            self._events.put_data(delivered)
        if data:
            self._count_full_segment(len(data), psh)
        if had_hole:
            self._ack_now = True  # a segment that fills (part of) a hole is ACKed at once
        if (fin or had_hole) and queue.at_fin:
            self._peer_fin(now)
        elif not self._ack_now:
            if self._full_segments_unacked >= 2 or self.delayed_ack <= 0:
                self._ack_now = True
            elif self._delack_at is None:
                self._delack_at = now + self.delayed_ack

    def _count_full_segment(self, n: int, psh: bool) -> None:
        """RFC 1122 4.2.3.2: count full-sized segments for the every-second-one ACK.

        "Full-sized" is judged against the sender's segment size as seen (as
        Linux estimates rcv_mss): a peer whose segments are smaller than our
        MSS (slirp sends 512) still gets an ACK every second one.  A segment
        without PSH is the middle of a bulk write: its length is the sender's
        segment size.
        """
        if n > self.mss:
            n = self.mss
        if not psh and n < self._rcv_mss_est:
            self._rcv_mss_est = n
        elif n > self._rcv_mss_est:
            self._rcv_mss_est = n
        if n >= self._rcv_mss_est:
            self._full_segments_unacked += 1

    def _peer_fin(self, now: float) -> None:
        """The peer's FIN is next in sequence: no more data will come."""
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self.reassembly.clear()
        self._events.put(PeerClosed())
        self._ack_now = True
        nxt = _ON_PEER_FIN[self.state]
        if nxt == TIME_WAIT:
            self._enter_time_wait(now)
        else:
            self.state = nxt

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._rto_at = None
        self._persist_at = None
        self._timewait_at = now + 2 * self.msl
        self._events.put(Closed())

    def _go_closed(self) -> None:
        self.state = CLOSED
        self._rto_at = self._delack_at = self._persist_at = self._timewait_at = None
        self._ack_now = False
        self._retransmit_una = False
        self.reassembly.clear()

    # --------------------------------------------------------------- timers

    def _on_rto(self, now: float) -> None:
        self._rto_at = None
        if self.snd_una == self.snd_max:
            return
        self.counters["rto_firings"] += 1
        self._retries += 1
        syn_state = self.state in (SYN_SENT, SYN_RECEIVED)
        if self._retries > (self.max_syn_retries if syn_state else self.max_retries):
            self._go_closed()
            self._events.put(ConnectionTimedOut())
            return
        self.rtt.back_off()
        if syn_state:
            self._syn_retransmitted = True
            self.snd_nxt = self.iss
        else:
            self.congestion.on_timeout(self.bytes_in_flight, self.snd_mss, self.snd_max)
            self.snd_nxt = self.snd_una  # go back N
        self._rto_at = now + self.rtt.rto

    def _on_persist(self, now: float) -> None:
        self._persist_at = None
        if self.snd_wnd != 0 or self.state not in _SENDING:
            return
        self._persist_unanswered += 1
        if self._persist_unanswered > self.max_retries:
            self._go_closed()
            self._events.put(ConnectionTimedOut())
            return
        off = seq_diff(self.snd_una, self._sndbuf_seq)
        if 0 <= off < len(self._sndbuf):
            self.counters["persist_probes"] += 1
            # A forced octet at SND.UNA; SND.NXT stays, so a refused probe is simply
            # sent again once the window opens.
            probe_only = self.snd_max == self.snd_una
            self._emit(self.snd_una, 1, False, now)
            if probe_only:
                self.rtt.forget()  # a probe's answer may wait for the window: no sample
                self.snd_max = seq_add(self.snd_una, 1)
                self._probe_only = True
        self._persist_backoff += 1
        self._persist_at = now + self.rtt.backed_off(self._persist_backoff)

    # --------------------------------------------------------------- output

    def _rcv_window(self) -> int:
        """Free receive buffer: what undelivered DataReceived events do not hold."""
        free = self.rcv_buffer - self._events.data_octets
        return free if free > 0 else 0

    def _advertised_remaining(self) -> int:
        """What is left of the window we offered: RCV.NXT to its right edge (never negative)."""
        d = (self._rcv_adv - self.rcv_nxt) & _MASK
        return 0 if d & 0x80000000 else d

    def _emit(self, seq: int, n: int, fin: bool, now: float, flags: int = ACK) -> None:
        """Build and queue one segment at ``seq`` with ``n`` octets from the buffer."""
        if n:
            off = (seq - self._sndbuf_seq) & _MASK  # seq_diff, written out
            if off & 0x80000000:
                off -= 0x100000000
            data = self._sndbuf[off : off + n]
            if off + n >= len(self._sndbuf):
                n = len(data)
                if n:
                    flags |= PSH
        else:
            data = b""
        if fin:
            flags |= FIN
        # The window to advertise: the free buffer, or what is left of the window
        # offered -- receiver SWS avoidance (RFC 1122 4.2.3.3); never shrink the right edge.
        rcv_nxt = self.rcv_nxt
        wnd = self.rcv_buffer - self._events.data_octets
        if wnd < 0:
            wnd = 0
        cur = (self._rcv_adv - rcv_nxt) & _MASK
        if cur & 0x80000000:
            cur = 0
        half, mss = self.rcv_buffer // 2, self.mss
        if not (wnd - cur >= (half if half < mss else mss) or wnd >= cur and wnd == self.rcv_buffer):
            wnd = cur
        self._rcv_adv = (rcv_nxt + wnd) & _MASK
        self._out.append(
            encode_segment(self._pseudo, self.local_port, self.remote_port, seq, rcv_nxt, flags, wnd, data)
        )
        c = self.counters
        c["segments_sent"] += 1
        if n or fin:
            c["bytes_sent"] += n
            snd_max = self.snd_max
            if seq != snd_max and (seq - snd_max) & _MASK > 0x7FFFFFFF:  # seq_lt(seq, snd_max)
                c["segments_retransmitted"] += 1
                c["bytes_retransmitted"] += n
                self.rtt.forget()  # Karn: no sample while a retransmission is out
            else:
                self.rtt.time(seq, now)
        self._ack_now = False
        self._delack_at = None
        self._full_segments_unacked = 0

    def _pure_ack_seq(self) -> int:
        # Like BSD: a segment with no data and no SYN/FIN carries SND.MAX, so it
        # stays acceptable to the peer while we are going back N.
        return self.snd_nxt if self._probe_only else self.snd_max

    def _send_rst(self, seq: int, ack: int, with_ack: bool) -> None:
        flags = RST | (ACK if with_ack else 0)
        self._out.append(encode_segment(self._pseudo, self.local_port, self.remote_port, seq, ack, flags, 0))
        self.counters["rst_sent"] += 1
        self.counters["segments_sent"] += 1

    def _output_syn(self, now: float) -> None:
        """SYN-SENT / SYN-RECEIVED: our SYN (again, after an RTO), or an ACK."""
        st = self.state
        if self.snd_nxt != self.iss:
            if self._ack_now and st == SYN_RECEIVED:
                self._emit(self.snd_nxt, 0, False, now)
            return
        flags = SYN | (ACK if st == SYN_RECEIVED else 0)
        retx = self.snd_max != self.iss
        wnd = self._rcv_window()
        if st == SYN_RECEIVED:
            self._rcv_adv = seq_add(self.rcv_nxt, wnd)
        ack = self.rcv_nxt if st == SYN_RECEIVED else 0
        self._out.append(
            encode_segment(
                self._pseudo, self.local_port, self.remote_port, self.iss, ack, flags, wnd, b"", self.mss
            )
        )
        c = self.counters
        c["segments_sent"] += 1
        if retx:
            c["segments_retransmitted"] += 1
            self.rtt.forget()
        else:
            self.rtt.time(self.iss, now)
        self.snd_nxt = seq_add(self.iss, 1)
        self.snd_max = self.snd_nxt
        self._ack_now = False
        self._delack_at = None
        self._full_segments_unacked = 0
        if self._rto_at is None:
            self._rto_at = now + self.rtt.rto

    def _output_data(self, now: float) -> bool:
        """Send what the windows, Nagle and the send buffer allow; True if anything went.

        Positions are counted in octets from SND.UNA: ``end`` is the end of the
        send buffer, ``nxt`` SND.NXT and ``top`` SND.MAX (each ``seq_diff(x, una)``,
        written out: ``d = (x - una) & _MASK``, less 2**32 if bit 31 is set).
        """
        if not self._sndbuf and not self._fin_queued and not self._retransmit_una:
            return False  # nothing to send or resend (the buffer holds what is unacknowledged)
        sent = False
        smss = self.snd_mss
        una = self.snd_una
        end = (self._sndbuf_seq - una) & _MASK
        end -= (end & 0x80000000) << 1
        end += len(self._sndbuf)
        top = (self.snd_max - una) & _MASK
        top -= (top & 0x80000000) << 1
        fin_queued = self._fin_queued
        if self._retransmit_una:
            self._retransmit_una = False
            if top:
                n = max(0, min(smss, end))
                self._emit(una, n, fin_queued and n == end and end < top, now)
                sent = True
        nxt = (self.snd_nxt - una) & _MASK
        nxt -= (nxt & 0x80000000) << 1
        wnd = self.snd_wnd
        cwnd = self.congestion.cwnd
        if cwnd < wnd:
            wnd = cwnd
        while True:
            unsent = end - nxt
            if unsent > 0:
                n = smss if smss < unsent else unsent  # min(smss, unsent, wnd - nxt), no call
                if wnd - nxt < n:
                    n = wnd - nxt
                if n <= 0:
                    break
                if n < smss and nxt:
                    if n < unsent:
                        break  # window-limited piece: only when nothing is in flight
                    if not self.nodelay and not fin_queued and nxt >= top:
                        break  # Nagle (RFC 896): hold a small tail while data is unacknowledged
                fin = fin_queued and n == unsent
            elif unsent == 0 and fin_queued:
                n, fin = 0, True
            else:
                break
            self._emit((una + nxt) & _MASK, n, fin, now)
            nxt += n + 1 if fin else n
            if nxt > top:
                top = nxt
                self.snd_max = (una + top) & _MASK
            sent = True
        self.snd_nxt = (una + nxt) & _MASK
        # persist timer: data waits behind a zero window and nothing is in flight to elicit an ACK
        if self.snd_wnd == 0 and end > 0 and self._persist_at is None:
            self._rto_at = None
            self._persist_at = now + self.rtt.backed_off(self._persist_backoff)
        return sent


__all__ = [
    "CLOSED",
    "CLOSE_WAIT",
    "CLOSING",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "LAST_ACK",
    "LISTEN",
    "SYN_RECEIVED",
    "SYN_SENT",
    "TIME_WAIT",
    "Closed",
    "Connected",
    "ConnectionReset",
    "ConnectionTimedOut",
    "DataReceived",
    "PeerClosed",
    "TcpConnection",
]
