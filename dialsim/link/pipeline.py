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
its first byte (first LAPM frame with V.42) has arrived, and may not finish
before the upstream stage finished plus the time for the last byte (frame).
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
_ASYNC = float(ASYNC_BITS_PER_BYTE)

ZERO_BIT_INSERTION = 1.0 / 62.0
"""Expected inserted zero bits per bit of random data (HDLC/LAPM transparency)."""

LAPM_FLAG_BITS = 8
LAPM_ADDRESS_BITS = 8
LAPM_CONTROL_BITS = 16  # V.42 I-frames use modulo-128 extended control fields


def lapm_bits(info_octets: float, frames: float, fcs_bits: int = 16) -> float:
    """Line bits for ``frames`` LAPM I-frames carrying ``info_octets`` in total.

    One shared flag per frame (back-to-back frames share the closing/opening
    flag); address, control, information and FCS are subject to zero-bit
    insertion at the expected rate of 1/62 per bit.
    """
    stuffed = (LAPM_ADDRESS_BITS + LAPM_CONTROL_BITS + fcs_bits) * frames + 8.0 * info_octets
    return LAPM_FLAG_BITS * frames + stuffed * (1.0 + ZERO_BIT_INSERTION)


@dataclass(frozen=True, slots=True)
class Delivery:
    """``data`` reaches the far DTE at ``t`` (its last byte has left the serial port)."""

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


class Direction:
    """One direction of one call: chunks in, timed deliveries out.

    Pure and deterministic: time is always the ``now`` argument and randomness
    (bit errors) only comes from ``rng``.  Chunks must be handed over in
    non-decreasing ``now``.  Deliveries come out in order, each at or after the
    previous one.
    """

    def __init__(self, cfg: DirectionConfig, rng: np.random.Generator | None = None) -> None:
        self.cfg = cfg
        self._rng = rng if rng is not None else np.random.default_rng(0)
        # V.42bis: one encoder per direction, its dictionary kept for the call
        self._v42bis = (
            v42bis.V42bisEncoder(cfg.v42bis_p1, cfg.v42bis_p2) if cfg.compression else None
        )
        self._ser_in_byte = ASYNC_BITS_PER_BYTE / cfg.dte_rate_in_bps
        self._ser_out_byte = ASYNC_BITS_PER_BYTE / cfg.dte_rate_out_bps
        # Per-call constants of the model (the same arithmetic as when computed per chunk).
        self._full_frame_bits = cfg.full_frame_bits
        self._recovery_rtt = cfg.recovery_rtt
        self._retransmits = cfg.error_correction and cfg.bit_error_rate > 0.0
        self._p_frame_ok = (
            (1.0 - cfg.bit_error_rate) ** self._full_frame_bits if self._retransmits else 1.0
        )
        self._free_ser_in = -math.inf
        self._free_line = -math.inf
        self._free_ser_out = -math.inf
        self._cum = 0  # DTE bytes accepted so far
        # (cum_start, cum_end, line_start, line_end) of chunks that may still
        # be in the transmit buffer: drain_time() interpolates within them.
        self._line_log: deque[tuple[int, int, float, float]] = deque()
        # (t, n, line_octets) of deliveries not yet known to be delivered.
        self._pending: deque[tuple[float, int, float]] = deque()
        self.carrier = True
        self.t_dropped: float | None = None
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
        }

    # -- the model ------------------------------------------------------------

    def _prune(self, now: float) -> None:
        p = self._pending
        while p and p[0][0] <= now:
            p.popleft()

    def _drain_time(self, x: int) -> float:
        """When the line has taken DTE byte number ``x`` (1-based) out of the buffer."""
        if x <= 0:
            return -math.inf
        log = self._line_log
        while len(log) > 1 and log[0][1] < x:
            log.popleft()
        if log:
            c0, c1, ls, le = log[0]  # the log is in order: only its first chunk can hold x
            if c0 < x <= c1:
                return ls + (x - c0) / (c1 - c0) * (le - ls)
            for c0, c1, ls, le in log:
                if c0 < x <= c1:
                    return ls + (x - c0) / (c1 - c0) * (le - ls)
        return -math.inf  # already gone (cannot happen for x within the log)

    def _line_cost(self, data: bytes, backlogged: bool) -> tuple[float, float, float, int]:
        """(line bits, bits of the first and of the last piece, info octets)."""
        cfg = self.cfg
        n = len(data)
        if not cfg.error_correction:
            return float(n * ASYNC_BITS_PER_BYTE), _ASYNC, _ASYNC, n
        info = len(self._v42bis.encode(data)) if self._v42bis is not None else n
        n401 = cfg.lapm_n401
        whole = math.ceil(info / n401)
        # Queued data fills frames across chunk boundaries; a chunk that finds
        # the line idle goes out in frames of its own.
        frames = info / n401 if backlogged else float(whole)
        bits = lapm_bits(info, frames, cfg.lapm_fcs_bits)
        full = self._full_frame_bits  # lapm_bits(n401, 1.0, ...)
        first = full if info >= n401 else lapm_bits(info, 1.0, cfg.lapm_fcs_bits)
        last_info = info - n401 * (whole - 1)
        last = full if last_info == n401 else lapm_bits(last_info, 1.0, cfg.lapm_fcs_bits)
        self.frames += frames
        self.bytes_compressed += info
        return bits, first, last, info

    def transmit(self, data: bytes, now: float) -> list[Delivery]:
        """Put one chunk on the line at ``now``; return when (and what) arrives."""
        n = len(data)
        if n == 0:
            return []
        if not self.carrier:
            self.bytes_discarded += n
            return []
        cfg = self.cfg
        rate = cfg.line_rate_bps
        buf = cfg.tx_buffer_bytes
        c0 = self._cum
        c1 = c0 + n
        self._cum = c1
        self.bytes_in += n
        self.chunks += 1

        # 1-2: serial port in, throttled by room in the modem's buffer.
        room_at = self._drain_time(c0 + 1 - buf) if c0 + 1 > buf else -math.inf
        s_start = max(now, self._free_ser_in, room_at)
        first_in = s_start + self._ser_in_byte
        backlogged = self._free_line > first_in
        if cfg.error_correction:
            bits, first_bits, last_bits, info = self._line_cost(data, backlogged)
        else:  # async characters as they are
            bits, first_bits, last_bits, info = float(n * ASYNC_BITS_PER_BYTE), _ASYNC, _ASYNC, n

        # 3: the line.
        retrans = 0
        if self._retransmits:
            nframes = math.ceil(info / cfg.lapm_n401)
            retrans = int(self._rng.negative_binomial(nframes, self._p_frame_ok))
            self.retransmissions += retrans
            bits += retrans * self._full_frame_bits
        line_dur = bits / rate
        # With V.42 the first frame can leave only when its data is in.
        first_ready = first_in
        if cfg.error_correction:
            first_ready = s_start + min(n, cfg.lapm_n401) * self._ser_in_byte
        l_start = max(first_ready, self._free_line)
        s_end = s_start + n * self._ser_in_byte
        if c1 - buf > c0:  # chunk larger than the buffer: paced by its own drain
            s_end = max(s_end, l_start + (c1 - buf - c0) / n * line_dur)
        elif c1 > buf:
            s_end = max(s_end, self._drain_time(c1 - buf))
        l_end = max(l_start + line_dur, s_end + last_bits / rate)
        self._free_ser_in = s_end
        self._free_line = l_end
        self._line_log.append((c0, c1, l_start, l_end))
        line_octets = bits / 8.0
        self.bytes_on_line += line_octets

        # 4: latency, plus recovery round trips for retransmitted frames.
        delay = cfg.latency_s + retrans * self._recovery_rtt
        arr_first = l_start + first_bits / rate + cfg.latency_s
        arr_last = l_end + delay

        # 5: far serial port; with V.42 a frame is handed over once checked.
        if cfg.error_correction:
            last_dte = min(n, math.ceil(cfg.lapm_n401 * n / max(info, 1)))
        else:
            last_dte = 1
        r_start = max(arr_first, self._free_ser_out)
        t_done = max(r_start + n * self._ser_out_byte, arr_last + last_dte * self._ser_out_byte)
        self._free_ser_out = t_done

        if not cfg.error_correction and cfg.bit_error_rate > 0.0:
            data = self._corrupt(data)
        pending = self._pending
        while pending and pending[0][0] <= now:
            pending.popleft()
        pending.append((t_done, n, line_octets))
        return [Delivery(t_done, bytes(data), line_octets)]

    def _corrupt(self, data: bytes) -> bytes:
        """Flip the bits a noisy line hits (async: 10 line bits per byte)."""
        nbits = len(data) * ASYNC_BITS_PER_BYTE
        k = int(self._rng.binomial(nbits, self.cfg.bit_error_rate))
        if k == 0:
            return data
        pos = self._rng.integers(0, nbits, size=k)
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
