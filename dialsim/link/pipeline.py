"""One direction of a modem call as a pipeline of timed stages (pure, no simpy).

Scope: the timing of bytes from one DTE (computer) through its serial port,
its modem's transmit buffer, the phone line, the far modem and the far serial
port, computed once per chunk (one ``write``, normally one SLIP/PPP frame),
never per byte.  The numbers behind the model come from ITU-T V.24/V.28
(asynchronous start-stop characters, 10 bits per byte on the serial port),
ITU-T V.42 (LAPM: HDLC frames with flag, address, control, FCS and zero-bit
insertion; N401 = 128 octets by default; REJ/SREJ recovery) and ITU-T V.42bis
(data compression: each direction runs a real V.42bis encoder, see
:mod:`dialsim.link.v42bis`).  ``docs/link-model.md`` gives every parameter and
formula.

Stages, for a chunk of ``n`` DTE bytes written at ``now``:

1. sender's serial port: ``n * 10 / dte_rate_in`` seconds;
2. the modem's transmit buffer of ``tx_buffer_bytes``: when full, the serial
   port waits (RTS/CTS hardware flow control) until the line has drained room;
3. the line at ``line_rate_bps``: 10 bits per byte without error correction
   (async characters carried as is); with V.42 8 bits per byte plus LAPM frame
   overhead and the expected zero-bit insertion of 1/62 per bit; with V.42bis
   the octets the direction's V.42bis encoder makes of the chunk (its
   dictionary lives as long as the call; the far DTE gets the original data);
4. a fixed one-way latency (both modems' modulation/DSP delay + propagation);
   with V.42 and line errors, each retransmitted frame adds one frame time on
   the line and one recovery round trip to the chunk's delivery;
5. the receiver's serial port: ``n * 10 / dte_rate_out``.

Stages work cut-through at chunk level: a stage may start on a chunk as soon as
its first byte has arrived, and may not finish before the upstream stage
finished plus the time for the last byte.  With V.42 the sending modem frames
on the fly too (an I-frame starts with its first octet, the FCS follows the
last), but the receiving modem hands a frame to its DTE only once the whole
frame is in and checked.
A long run of back-to-back chunks therefore moves at exactly the rate of the
slowest stage.

Carrier loss (:meth:`Direction.drop`): every chunk whose delivery time lies
after the drop is lost *whole*: a partially delivered chunk delivers nothing
(with V.42 the far modem hands data over only per checked frame anyway, and a
framing layer could not use a frame's prefix).

Bit errors: without V.42 the line's bit errors flip bits in the delivered
bytes (errors that land on start/stop bits are counted as framing errors and
leave the byte alone).  With V.42 an errored LAPM frame is retransmitted; the
data arrives intact but later.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dialsim.link import v42bis
from dialsim.link.v42bis import P1_DEFAULT, P2_DEFAULT, check_parameters

__all__ = [
    "ASYNC_BITS_PER_BYTE",
    "Delivery",
    "Direction",
    "DirectionConfig",
    "lapm_bits",
]

ASYNC_BITS_PER_BYTE = 10
"""Start bit + 8 data bits + stop bit (V.24 asynchronous, 8N1)."""

ZERO_BIT_INSERTION = 1.0 / 62.0
"""Expected inserted zero bits per bit of random data (HDLC/LAPM transparency)."""

LAPM_FLAG_BITS = 8
LAPM_ADDRESS_BITS = 8
LAPM_CONTROL_BITS = 16  # V.42 I-frames use modulo-128 extended control fields

N400_DEFAULT = 10
"""V.42 N400, retransmissions of a frame before the DCE gives up and releases
the connection; 10 is the Hayes S70 default ("see parameter N400 in V.42")."""

T401_DEFAULT_S = 4.0
"""V.42 T401, the acknowledgement timer: after a retransmission is lost too, the
sender waits this long before it polls and repeats (3Com/USRobotics S29 default)."""

T402_DEFAULT_S = 0.1
"""V.42 T402, how long the receiver may hold an acknowledgement back hoping to
piggyback it on an I-frame of its own (it must be below T401): **estimate**."""

ACK_EVERY_FRAMES = 7
"""The receiving modem acknowledges (RR) at least every 7 I-frames, half the
window k = 15 (3Com/USRobotics S30 default), so the sender never stalls:
**estimate**."""


def lapm_bits(info_octets: float, frames: float, fcs_bits: int = 16) -> float:
    """Line bits for ``frames`` LAPM I-frames carrying ``info_octets`` in total.

    One shared flag per frame (back-to-back frames share the closing/opening
    flag); address, control, information and FCS are subject to zero-bit
    insertion at the expected rate of 1/62 per bit.
    """
    stuffed = (LAPM_ADDRESS_BITS + LAPM_CONTROL_BITS + fcs_bits) * frames + 8.0 * info_octets
    return LAPM_FLAG_BITS * frames + stuffed * (1.0 + ZERO_BIT_INSERTION)


class Delivery(NamedTuple):
    """``data`` reaches the far DTE at ``t`` (its last byte has left the serial port).

    A named tuple rather than a frozen dataclass: one is made per chunk, and a
    tuple is made several times faster."""

    t: float
    data: bytes
    line_octets: float = 0.0


@dataclass(frozen=True, slots=True)
class DirectionConfig:
    """Parameters of one direction of one call (rates in bit/s, times in s)."""

    line_rate_bps: float
    dte_rate_in_bps: float = 115200.0
    dte_rate_out_bps: float = 115200.0
    tx_buffer_bytes: int = 2048
    latency_s: float = 0.0
    error_correction: bool = False
    compression: bool = False
    bit_error_rate: float = 0.0
    lapm_n401: int = 128
    lapm_fcs_bits: int = 16
    recovery_rtt_s: float | None = None
    v42bis_p1: int = P1_DEFAULT
    v42bis_p2: int = P2_DEFAULT
    rx_buffer_bytes: int | None = None
    lapm_n400: int = N400_DEFAULT
    lapm_t401_s: float = T401_DEFAULT_S
    lapm_ack_every: int = ACK_EVERY_FRAMES
    lapm_t402_s: float = T402_DEFAULT_S

    def __post_init__(self) -> None:
        for name in ("line_rate_bps", "dte_rate_in_bps", "dte_rate_out_bps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.tx_buffer_bytes < 1:
            raise ValueError(f"tx_buffer_bytes must be >= 1, got {self.tx_buffer_bytes}")
        if self.latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {self.latency_s}")
        if not 0.0 <= self.bit_error_rate < 1.0:
            raise ValueError(f"bit_error_rate must be in [0, 1), got {self.bit_error_rate}")
        if self.compression and not self.error_correction:
            raise ValueError("V.42bis compression needs V.42 error correction")
        if self.lapm_n401 < 1:
            raise ValueError(f"lapm_n401 must be >= 1, got {self.lapm_n401}")
        if self.lapm_fcs_bits not in (16, 32):
            raise ValueError(f"lapm_fcs_bits must be 16 or 32, got {self.lapm_fcs_bits}")
        if self.rx_buffer_bytes is not None and self.rx_buffer_bytes < 1:
            raise ValueError(f"rx_buffer_bytes must be >= 1 or None, got {self.rx_buffer_bytes}")
        if self.lapm_n400 < 1 or not self.lapm_t401_s > 0 or self.lapm_ack_every < 1:
            raise ValueError("lapm_n400 and lapm_ack_every must be >= 1, lapm_t401_s > 0")
        if not 0 <= self.lapm_t402_s < self.lapm_t401_s:
            raise ValueError("lapm_t402_s must be >= 0 and below lapm_t401_s")
        check_parameters(self.v42bis_p1, self.v42bis_p2)

    @property
    def full_frame_bits(self) -> float:
        """Line bits of one full LAPM I-frame (N401 octets of information)."""
        return lapm_bits(self.lapm_n401, 1.0, self.lapm_fcs_bits)

    @property
    def recovery_rtt(self) -> float:
        """Extra delivery delay per retransmitted frame (REJ/SREJ round trip)."""
        if self.recovery_rtt_s is not None:
            return self.recovery_rtt_s
        return 2.0 * self.latency_s + self.full_frame_bits / self.line_rate_bps


def _progress_time(log: deque[tuple[int, int, float, float]], x: int) -> float:
    """When byte number ``x`` (1-based) has passed a stage whose chunks are
    logged as ``(cum_start, cum_end, t_start, t_end)``; progress inside a chunk
    is interpolated linearly.  Entries before ``x`` are pruned, so ``x`` must
    not decrease between calls."""
    if x <= 0:
        return -math.inf
    while len(log) > 1 and log[0][1] < x:
        log.popleft()
    for c0, c1, ts, te in log:
        if c0 < x <= c1:
            return ts + (x - c0) / (c1 - c0) * (te - ts)
    return -math.inf  # already gone (cannot happen for x within the log)


class Direction:
    """One direction of one call: chunks in, timed deliveries out.

    Pure and deterministic: time is always the ``now`` argument and randomness
    (bit errors) only comes from ``rng``.  Chunks must be handed over in
    non-decreasing ``now``.  Deliveries come out in order, each at or after the
    previous one.

    ``noise`` (:class:`~dialsim.link.impairments.BurstNoise`) replaces the
    constant bit error rate by a Gilbert-Elliott channel; ``retrains``
    (:class:`~dialsim.link.impairments.RetrainSchedule`) pauses the line and
    changes its rate; ``side`` says which of the schedule's rates is this
    direction's (0 down, 1 up).  :meth:`pair` links the two directions of a call
    so that V.42's acknowledgements (RR frames) go on the reverse line.
    """

    def __init__(self, cfg: DirectionConfig, rng: np.random.Generator | None = None, *,
                 noise=None, retrains=None, side: int = 0) -> None:
        self.cfg = cfg
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._noise = noise
        self._retrains = retrains
        self._side = side
        self.reverse: Direction | None = None
        # V.42bis: one encoder per direction, its dictionary kept for the call
        self._v42bis = (
            v42bis.V42bisEncoder(cfg.v42bis_p1, cfg.v42bis_p2) if cfg.compression else None
        )
        self._ser_in_byte = ASYNC_BITS_PER_BYTE / cfg.dte_rate_in_bps
        self._ser_out_byte = ASYNC_BITS_PER_BYTE / cfg.dte_rate_out_bps
        # Per-call constants of the model (the same arithmetic as when computed per chunk).
        self._full_frame_bits = cfg.full_frame_bits
        self._one_octet_frame_bits = lapm_bits(1, 1.0, cfg.lapm_fcs_bits)
        self._p_frame_ok = ((1.0 - cfg.bit_error_rate) ** self._full_frame_bits
                            if cfg.bit_error_rate > 0.0 else 1.0)
        self._free_ser_in = -math.inf
        self._free_line = -math.inf
        self._free_ser_out = -math.inf
        self._cum = 0  # DTE bytes accepted so far
        # (cum_start, cum_end, line_start, line_end) of chunks that may still
        # be in the transmit buffer: drain_time() interpolates within them.
        self._line_log: deque[tuple[int, int, float, float]] = deque()
        # (cum_start, cum_end, out_start, out_end) at the far serial port, for
        # the bounded receive buffer.
        self._out_log: deque[tuple[int, int, float, float]] = deque()
        # (t, n, line_octets) of deliveries not yet known to be delivered.
        self._pending: deque[tuple[float, int, float]] = deque()
        self._acks: deque[float] = deque()  # RR frames the far modem owes this line
        self.carrier = True
        self.t_dropped: float | None = None
        self.link_failed_at: float | None = None  # V.42 gave up (N400) at this time
        # counters
        self.bytes_in = 0
        self.chunks = 0
        self.bytes_on_line = 0.0
        self.bytes_compressed = 0
        self.frames = 0.0
        self.retransmissions = 0
        self.bit_errors = 0
        self.framing_errors = 0
        self.chunks_lost = 0
        self.bytes_lost = 0
        self.line_octets_lost = 0.0
        self.bytes_discarded = 0
        self.ack_frames = 0
        self.ack_octets = 0.0
        self.acks_piggybacked = 0
        self.overrun_octets = 0

    def pair(self, reverse: Direction) -> None:
        """``reverse`` is the other direction of the same call (for RR frames)."""
        self.reverse = reverse
        reverse.reverse = self

    # -- flow control / backlog -------------------------------------------------

    def accepted_at(self) -> float:
        """When the sender's serial port has clocked out every byte written so far.

        With RTS/CTS this includes waiting for room in the modem's buffer; a
        DTE that wants to model a blocking ``write`` waits until this time.
        """
        return self._free_ser_in

    def backlog_bytes(self, now: float) -> int:
        """DTE bytes written but not yet delivered to the far DTE at ``now``."""
        self._prune(now)
        return sum(n for _t, n, _l in self._pending)

    def last_delivery_at(self) -> float:
        """Delivery time of the latest chunk (``-inf`` before the first)."""
        return self._free_ser_out

    def counters(self) -> dict[str, float]:
        return {
            "bytes_in": self.bytes_in,
            "chunks": self.chunks,
            "bytes_on_line": self.bytes_on_line,
            "bytes_compressed": self.bytes_compressed,
            "frames": self.frames,
            "retransmissions": self.retransmissions,
            "bit_errors": self.bit_errors,
            "framing_errors": self.framing_errors,
            "chunks_lost": self.chunks_lost,
            "bytes_lost": self.bytes_lost,
            "bytes_discarded": self.bytes_discarded,
            "ack_frames": self.ack_frames,
            "acks_piggybacked": self.acks_piggybacked,
            "overrun_octets": self.overrun_octets,
        }

    # -- the model ------------------------------------------------------------

    def _prune(self, now: float) -> None:
        p = self._pending
        while p and p[0][0] <= now:
            p.popleft()

    def _drain_time(self, x: int) -> float:
        """When the line has taken DTE byte number ``x`` (1-based) out of the buffer."""
        return _progress_time(self._line_log, x)

    def _rate_at(self, t: float) -> float:
        if self._retrains is None:
            return self.cfg.line_rate_bps
        return self._retrains.rate_at(t, self._side)

    def _line_cost(self, data: bytes, backlogged: bool) -> tuple[float, float, float, int]:
        """(line bits, bits of the first frame, bits left after the last octet, info octets)."""
        cfg = self.cfg
        n = len(data)
        if not cfg.error_correction:
            bits = float(n * ASYNC_BITS_PER_BYTE)
            return bits, float(ASYNC_BITS_PER_BYTE), float(ASYNC_BITS_PER_BYTE), n
        info = len(self._v42bis.encode(data)) if self._v42bis is not None else n
        n401 = cfg.lapm_n401
        whole = math.ceil(info / n401)
        # Queued data fills frames across chunk boundaries; a chunk that finds
        # the line idle goes out in frames of its own.
        frames = info / n401 if backlogged else float(whole)
        bits = lapm_bits(info, frames, cfg.lapm_fcs_bits)
        first = self._full_frame_bits if info >= n401 else lapm_bits(info, 1.0, cfg.lapm_fcs_bits)
        # Frames are sent as their octets come in: after the last octet only
        # that octet, the FCS and the closing flag are left to send.
        last = self._one_octet_frame_bits if info >= 1 else lapm_bits(0, 1.0, cfg.lapm_fcs_bits)
        self.frames += frames
        self.bytes_compressed += info
        return bits, first, last, info

    def _recovery(self, info: int, l_start: float, rate: float) -> tuple[int, float, float | None]:
        """V.42 error recovery of a chunk's frames: (retransmitted frames, time
        the recoveries add to the delivery, the time the link gave up or None)."""
        cfg = self.cfg
        if not cfg.error_correction:
            return 0, 0.0, None
        if self._noise is None:
            if cfg.bit_error_rate <= 0.0:
                return 0, 0.0, None
            nframes = math.ceil(info / cfg.lapm_n401)
            retrans = int(self._rng.negative_binomial(nframes, self._p_frame_ok))
            self.retransmissions += retrans
            return retrans, retrans * cfg.recovery_rtt, None
        return self._burst_recovery(math.ceil(info / cfg.lapm_n401), l_start, rate)

    def _burst_recovery(self, nframes: int, t: float, rate: float) -> tuple[int, float, float | None]:
        """Recovery on a Gilbert-Elliott line, in rounds: the frames of a round go
        back to back and each fails with the error rate of the state it meets;
        the failed ones go again after a REJ/SREJ round trip (the first time) or
        after T401 (when a retransmission was lost too).  A frame still failing
        after N400 retransmissions makes the modem give up (V.42 8.4, N400)."""
        cfg = self.cfg
        frame_bits = cfg.full_frame_bits
        tf = frame_bits / rate
        times = t + tf * np.arange(nframes)
        retrans, waits = 0, 0.0
        for rnd in range(cfg.lapm_n400 + 1):
            ber = self._noise.ber_at(times)
            p_fail = -np.expm1(frame_bits * np.log1p(-ber))
            failed = int((self._rng.random(times.size) < p_fail).sum())
            if failed == 0:
                break
            end = float(times[-1]) + tf
            if rnd == cfg.lapm_n400:
                self.retransmissions += retrans
                return retrans, waits, end + cfg.lapm_t401_s
            wait = (2.0 * cfg.latency_s + tf) if rnd == 0 else cfg.lapm_t401_s
            waits += wait
            retrans += failed
            times = end + wait + tf * np.arange(failed)
        self.retransmissions += retrans
        return retrans, waits, None

    def _send_acks(self, upto: float) -> None:
        """The RR frames whose T402 runs out by ``upto``: each goes out on its own
        when the line is idle then, or rides in an I-frame's N(R) when data was
        on the line."""
        acks = self._acks
        hold = self.cfg.lapm_t402_s
        while acks and acks[0] + hold <= upto:
            t = acks.popleft() + hold
            if t >= self._free_line:
                rr = lapm_bits(0, 1.0, self.cfg.lapm_fcs_bits)
                self._free_line = t + rr / self._rate_at(t)
                self.bytes_on_line += rr / 8.0
                self.ack_octets += rr / 8.0
                self.ack_frames += 1
            else:
                self.acks_piggybacked += 1

    def _piggyback(self, l_end: float) -> None:
        """Acknowledgements owed before this chunk's last frame ride in its frames."""
        acks = self._acks
        while acks and acks[0] <= l_end:
            acks.popleft()
            self.acks_piggybacked += 1

    def _owe_acks(self, info: int, arr_first: float, arr_last: float) -> None:
        """The far modem acknowledges the chunk's frames on the reverse line."""
        rev = self.reverse
        if rev is None or not rev.carrier:
            return
        frames = math.ceil(info / self.cfg.lapm_n401)
        n_rr = math.ceil(frames / self.cfg.lapm_ack_every)
        span = arr_last - arr_first
        rev._acks.extend(arr_first + span * (j + 1) / n_rr for j in range(n_rr))

    def transmit(self, data: bytes, now: float) -> list[Delivery]:
        """Put one chunk on the line at ``now``; return when (and what) arrives."""
        n = len(data)
        if n == 0:
            return []
        if not self.carrier:
            self.bytes_discarded += n
            return []
        cfg = self.cfg
        buf = cfg.tx_buffer_bytes
        c0 = self._cum
        c1 = c0 + n
        self._cum = c1
        self.bytes_in += n
        self.chunks += 1

        # 1-2: serial port in, throttled by room in the modem's buffer.
        room_at = _progress_time(self._line_log, c0 + 1 - buf) if c0 + 1 > buf else -math.inf
        s_start = max(now, self._free_ser_in, room_at)
        first_in = s_start + self._ser_in_byte
        backlogged = self._free_line > first_in
        bits, first_bits, last_bits, info = self._line_cost(data, backlogged)

        # 3: the line.  The modem starts a frame (with V.42: an I-frame, FCS
        # computed on the fly) as soon as the first octet is in and the line is
        # free; it closes the frame when N401 octets are in or its buffer runs
        # dry.  Only the receiving modem has to hold a whole frame (stage 5), to
        # check the FCS.  With V.42 a frame leaves only while the far modem has
        # room (RNR otherwise).
        first_ready = first_in
        if cfg.error_correction:
            self._send_acks(max(first_ready, self._free_line))
            if cfg.rx_buffer_bytes is not None:
                first_ready = max(first_ready, _progress_time(self._out_log, c0 + 1 - cfg.rx_buffer_bytes))
        l_start = max(first_ready, self._free_line)
        rate = cfg.line_rate_bps if self._retrains is None else self._rate_at(l_start)
        retrans, waits, gave_up = (self._recovery(info, l_start, rate) if cfg.error_correction
                                   else (0, 0.0, None))
        if retrans:
            bits += retrans * self._full_frame_bits
        l_end, s_end = self._line_span(l_start, bits, rate, s_start, n, c0, c1)
        l_end = max(l_end, s_end + last_bits / rate)
        if cfg.error_correction and cfg.rx_buffer_bytes is not None:
            l_end = max(l_end, _progress_time(self._out_log, c1 - cfg.rx_buffer_bytes))
        self._free_ser_in = s_end
        self._line_log.append((c0, c1, l_start, l_end))
        line_octets = bits / 8.0
        self.bytes_on_line += line_octets
        if gave_up is not None:
            return self._give_up(gave_up, l_end, n, line_octets)
        self._free_line = l_end
        if cfg.error_correction:
            self._piggyback(l_end)

        # 4: latency, plus the time error recovery took.
        arr_first = l_start + first_bits / rate + cfg.latency_s
        arr_last = l_end + (cfg.latency_s + waits)
        return self._deliver(data, c0, arr_first, arr_last, info, l_start, l_end, line_octets, now)

    def _line_span(self, l_start: float, bits: float, rate: float, s_start: float, n: int,
                   c0: int, c1: int) -> tuple[float, float]:
        """(when the line has sent ``bits`` from ``l_start``, when the sender's
        serial port is done with the chunk)."""
        buf = self.cfg.tx_buffer_bytes
        if self._retrains is None:
            line_dur = bits / rate
            l_line = l_start + line_dur
        else:
            l_line = self._retrains.advance(l_start, bits, self._side)
            line_dur = l_line - l_start
        s_end = s_start + n * self._ser_in_byte
        if c1 - buf > c0:  # chunk larger than the buffer: paced by its own drain
            s_end = max(s_end, l_start + (c1 - buf - c0) / n * line_dur)
        elif c1 > buf:
            s_end = max(s_end, _progress_time(self._line_log, c1 - buf))
        return l_line, s_end

    def _give_up(self, t_fail: float, l_end: float, n: int, line_octets: float) -> list[Delivery]:
        """V.42 gave up on this chunk: nothing arrives; the carrier goes at ``t_fail``."""
        if self.link_failed_at is None:
            self.link_failed_at = t_fail
        self._free_line = max(l_end, t_fail)
        self.chunks_lost += 1
        self.bytes_lost += n
        self.line_octets_lost += line_octets
        return []

    def _deliver(self, data: bytes, c0: int, arr_first: float, arr_last: float, info: int,
                 l_start: float, l_end: float, line_octets: float, now: float) -> list[Delivery]:
        """Stage 5, the far serial port; with V.42 a frame is handed over once checked."""
        cfg = self.cfg
        n = len(data)
        if cfg.error_correction:
            last_dte = min(n, math.ceil(cfg.lapm_n401 * n / max(info, 1)))
        else:
            last_dte = 1
        r_start = max(arr_first, self._free_ser_out)
        t_done = max(r_start + n * self._ser_out_byte, arr_last + last_dte * self._ser_out_byte)
        if cfg.error_correction:
            self._owe_acks(info, arr_first, arr_last)
        else:
            if cfg.bit_error_rate > 0.0 or self._noise is not None:
                data = self._corrupt(data, l_start, l_end)
            if cfg.rx_buffer_bytes is not None:
                data, t_done = self._overrun(data, arr_last, t_done)
        self._free_ser_out = t_done
        self._out_log.append((c0, c0 + n, r_start, t_done))
        if len(self._out_log) > 64:
            self._out_log.popleft()
        self._prune(now)
        self._pending.append((t_done, n, line_octets))
        return [Delivery(t_done, bytes(data), line_octets)]

    def _overrun(self, data: bytes, arr_last: float, t_done: float) -> tuple[bytes, float]:
        """Without V.42 nothing stops the far modem: when its receive buffer is
        full, octets arriving from the line are lost (the DTE side is slower)."""
        waiting = (t_done - arr_last) / self._ser_out_byte - 1.0
        lost = min(len(data) - 1, int(waiting - self.cfg.rx_buffer_bytes))
        if lost <= 0:
            return data, t_done
        # Once full, the buffer drops the share of arrivals the DTE cannot take.
        share = max(1e-9, 1.0 - self.cfg.dte_rate_out_bps / self.cfg.line_rate_bps)
        n = len(data)
        span = min(n, max(lost, int(lost / share)))
        drop = np.unique(np.linspace(n - span, n - 1, lost).astype(np.int64))
        keep = np.ones(n, dtype=bool)
        keep[drop] = False
        self.overrun_octets += int(drop.size)
        out = np.frombuffer(data, dtype=np.uint8)[keep].tobytes()
        return out, t_done - drop.size * self._ser_out_byte

    def _corrupt(self, data: bytes, l_start: float, l_end: float) -> bytes:
        """Flip the bits a noisy line hits (async: 10 line bits per byte); on a
        burst-noise line each stretch of the chunk meets its state's error rate."""
        nbits = len(data) * ASYNC_BITS_PER_BYTE
        if self._noise is None:
            stretches = [(0, nbits, self.cfg.bit_error_rate)]
        else:
            span = max(l_end - l_start, 1e-12)
            stretches = []
            for s, e, ber in self._noise.segments(l_start, l_end):
                b0 = int(round((s - l_start) / span * nbits))
                b1 = int(round((e - l_start) / span * nbits))
                if b1 > b0 and ber > 0.0:
                    stretches.append((b0, b1, ber))
        hits = []
        for b0, b1, ber in stretches:
            k = int(self._rng.binomial(b1 - b0, ber))
            if k:
                hits.append(b0 + self._rng.integers(0, b1 - b0, size=k))
        if not hits:
            return data
        pos = np.concatenate(hits)
        k = pos.size
        slot = pos % ASYNC_BITS_PER_BYTE
        on_data = (slot >= 1) & (slot <= 8)
        self.framing_errors += int(k - on_data.sum())
        if not on_data.any():
            return data
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        idx = pos[on_data] // ASYNC_BITS_PER_BYTE
        masks = np.left_shift(1, slot[on_data] - 1).astype(np.uint8)
        np.bitwise_xor.at(arr, idx, masks)
        self.bit_errors += int(on_data.sum())
        return arr.tobytes()

    def drop(self, now: float) -> None:
        """Carrier lost at ``now``: chunks not fully delivered by then are lost whole.

        Afterwards :meth:`transmit` discards everything (counted in
        ``bytes_discarded``).  Dropping twice is harmless.
        """
        if not self.carrier:
            return
        self.carrier = False
        self.t_dropped = now
        self._prune(now)
        for _t, n, lo in self._pending:
            self.chunks_lost += 1
            self.bytes_lost += n
            self.line_octets_lost += lo
        self._pending.clear()
        self._line_log.clear()
        self._acks.clear()
