"""The phone call in simpy time: dial, ring, answer, train, connect, carry bytes, drop.

Scope: the Hayes/V.250 call progress of an originating modem (S6 dial-tone
wait, S11 DTMF digits, ringing, S0 answer at the ISP, S7 wait for carrier),
the V.22bis/V.32bis/V.34/V.90 handshake as one drawn duration, and the call
itself: two :class:`~dialsim.link.pipeline.Direction` pipelines (upstream =
subscriber -> ISP, downstream = ISP -> subscriber) behind two DTE ports, and
carrier loss (scheduled, exponential, or a hang-up).  Timing of data is the
pure pipeline's; this module only schedules its deliveries on the simpy clock.

Randomness: the ``rng`` given to :func:`dial` only spawns independent child
streams (numpy ``Generator.spawn``), one each for call progress (busy, no
answer, post-dial delay), handshake time, connect rate, carrier drops and the
bit errors of each direction, so that enabling one of them never shifts the
draws of another.  The same seed gives the same calls.

Scheduled drops (``carrier_loss_at``) are absolute replication times; the first
one at or after CONNECT ends the call; one that falls while no call is up (while
dialing, between calls) does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from dialsim.link.pipeline import Delivery, Direction, DirectionConfig
from dialsim.link.profiles import DialTiming, ModemProfile, get_profile

__all__ = ["Call", "DialResult", "LinkConfig", "Port", "connected_call", "dial"]

OnEvent = Callable[[float, str, str], None]


@dataclass
class LinkConfig:
    """Everything the link model needs for one subscriber's calls (bit/s, s, octets)."""

    profile: str = "v34"
    connect_rate_bps: float | None = None  # None: draw per call
    error_correction: bool = True  # V.42 LAPM
    compression: bool = True  # V.42bis (needs error_correction)
    dte_rate_subscriber_bps: float = 115200.0
    dte_rate_isp_bps: float = 115200.0
    bit_error_rate: float = 0.0
    busy_probability: float = 0.0
    phone_number: str = "555-0123"
    carrier_loss_at: list[float] = field(default_factory=list)
    carrier_loss_mtbf_s: float | None = None
    no_answer_probability: float = 0.0
    training_failure_probability: float = 0.0
    tx_buffer_bytes: int | None = None  # None: the profile's
    timing: DialTiming = field(default_factory=DialTiming)
    handshake_s: float | None = None  # None: drawn from the profile's range

    def __post_init__(self) -> None:
        get_profile(self.profile)
        if self.compression and not self.error_correction:
            raise ValueError("compression (V.42bis) needs error_correction (V.42)")
        for name in ("busy_probability", "no_answer_probability", "training_failure_probability"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.carrier_loss_mtbf_s is not None and not self.carrier_loss_mtbf_s > 0:
            raise ValueError("carrier_loss_mtbf_s must be > 0 or None")


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a dial attempt ended.  Rates and ``t_connect`` are None unless connected."""

    outcome: str  # "connect" | "busy" | "no_answer" | "no_carrier"
    call: Call | None
    t_dial: float
    t_connect: float | None
    connect_rate_down_bps: float | None
    connect_rate_up_bps: float | None


class Port:
    """A DTE's view of its modem during one call."""

    def __init__(self, env: simpy.Environment, call: Call, side: str, tx: Direction, rx: Direction):
        self.env = env
        self.call = call
        self.side = side
        self._tx = tx
        self._rx = rx
        self._inbox = simpy.Store(env)
        self._receiver: Callable[[bytes], None] | None = None
        self.peer: Port | None = None
        self.octets_out = 0
        self.chunks_out = 0
        self.octets_in = 0
        self.chunks_in = 0
        self.line_octets_in = 0.0
        self.octets_refused = 0  # written after the carrier was gone

    def write(self, data: bytes) -> None:
        """Hand a chunk to the modem now; it arrives at the peer when the pipeline says.

        Never blocks; after the carrier is gone the bytes are discarded (counted).
        """
        if not data:
            return
        if not self.call.up:
            self.octets_refused += len(data)
            return
        self.octets_out += len(data)
        self.chunks_out += 1
        now = self.env.now
        peer = self.peer
        for d in self._tx.transmit(bytes(data), now):
            ev = self.env.timeout(max(0.0, d.t - now))
            ev.callbacks.append(lambda _ev, d=d: peer._arrive(d))

    def _arrive(self, d: Delivery) -> None:
        down = self.call.t_down
        if down is not None and d.t > down:
            return  # lost with the carrier
        self.octets_in += len(d.data)
        self.chunks_in += 1
        self.line_octets_in += d.line_octets
        if self._receiver is not None:
            self._receiver(d.data)
        else:
            self._inbox.put(d.data)

    def read(self) -> simpy.events.Event:
        """Event whose value is the next delivered chunk (cancel it with ``.cancel()``)."""
        return self._inbox.get()

    def deliver_to(self, receiver: Callable[[bytes], None] | None) -> None:
        """Hand each delivered chunk to ``receiver(data)`` at its delivery time,
        instead of queueing it for :meth:`read` (None: queue again).  A driver
        that reacts to every chunk at once saves a simpy get/put per chunk."""
        self._receiver = receiver

    def accepted_at(self) -> float:
        """When this DTE's serial port has clocked out everything written (RTS/CTS included)."""
        return self._tx.accepted_at()

    def backlog_octets(self) -> int:
        """Octets written by this DTE and not yet delivered to the peer."""
        return self._tx.backlog_bytes(self.env.now)

    @property
    def counters(self) -> dict[str, float]:
        tx = self._tx
        return {
            "octets_out": self.octets_out,
            "chunks_out": self.chunks_out,
            "octets_in": self.octets_in,
            "chunks_in": self.chunks_in,
            "line_octets_out": tx.bytes_on_line,
            "line_octets_in": self.line_octets_in,
            "octets_lost_out": tx.bytes_lost,
            "octets_refused": self.octets_refused,
            "bit_errors_out": tx.bit_errors,
            "retransmissions_out": tx.retransmissions,
        }


class Call:
    """A connected call: two ports, two pipelines, and the carrier.

    ``carrier_lost`` fires once when the call ends, with value ``"carrier_lost"``
    (the line dropped) or ``"hangup"`` (either side hung up).  Data not fully
    delivered by then is lost.
    """

    def __init__(
        self,
        env: simpy.Environment,
        cfg: LinkConfig,
        profile: ModemProfile,
        down_bps: float,
        up_bps: float,
        streams: dict[str, np.random.Generator],
        on_event: OnEvent,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.profile = profile
        self.on_event = on_event
        self.connect_rate_down_bps = down_bps
        self.connect_rate_up_bps = up_bps
        self.t_connect = env.now
        self.t_down: float | None = None
        self.end_reason: str | None = None
        self.carrier_lost = env.event()
        buf = cfg.tx_buffer_bytes or profile.tx_buffer_bytes
        common = dict(
            tx_buffer_bytes=buf,
            latency_s=profile.latency_one_way_s,
            error_correction=cfg.error_correction,
            compression=cfg.compression,
            bit_error_rate=cfg.bit_error_rate,
        )
        self.upstream = Direction(
            DirectionConfig(
                line_rate_bps=up_bps,
                dte_rate_in_bps=cfg.dte_rate_subscriber_bps,
                dte_rate_out_bps=cfg.dte_rate_isp_bps,
                **common,
            ),
            streams["errors_up"],
        )
        self.downstream = Direction(
            DirectionConfig(
                line_rate_bps=down_bps,
                dte_rate_in_bps=cfg.dte_rate_isp_bps,
                dte_rate_out_bps=cfg.dte_rate_subscriber_bps,
                **common,
            ),
            streams["errors_down"],
        )
        self.subscriber = Port(env, self, "subscriber", self.upstream, self.downstream)
        self.isp = Port(env, self, "isp", self.downstream, self.upstream)
        self.subscriber.peer = self.isp
        self.isp.peer = self.subscriber
        t_drop = self._next_drop(streams["drops"])
        self._watcher = env.process(self._carrier(t_drop)) if t_drop is not None else None

    @property
    def up(self) -> bool:
        return self.t_down is None

    def _next_drop(self, rng: np.random.Generator) -> float | None:
        t0 = self.t_connect
        # Always draw, so the draw count does not depend on the schedule.
        u = float(rng.exponential(1.0))
        cands = [t for t in self.cfg.carrier_loss_at if t >= t0]
        if self.cfg.carrier_loss_mtbf_s is not None:
            cands.append(t0 + u * self.cfg.carrier_loss_mtbf_s)
        return min(cands) if cands else None

    def _carrier(self, t_drop: float):
        try:
            yield self.env.timeout(max(0.0, t_drop - self.env.now))
        except simpy.Interrupt:
            return
        self._end("carrier_lost", "NO CARRIER")

    def hangup(self, who: str = "subscriber") -> None:
        """``who`` hangs up now (drops DTR / ATH): data still in flight is lost."""
        self._end("hangup", who)

    def lose_carrier(self) -> None:
        """The line drops now (for tests and drivers that decide drops themselves)."""
        self._end("carrier_lost", "NO CARRIER")

    def _end(self, reason: str, detail: str) -> None:
        if not self.up:
            return
        now = self.env.now
        self.t_down = now
        self.end_reason = reason
        self.upstream.drop(now)
        self.downstream.drop(now)
        self.on_event(now, reason, detail)
        if (
            self._watcher is not None
            and self._watcher.is_alive
            and self.env.active_process is not self._watcher
        ):
            self._watcher.interrupt("call over")
        self.carrier_lost.succeed(reason)


STREAM_NAMES = ("progress", "handshake", "rate", "drops", "errors_up", "errors_down")


def _fmt_rate(bps: float) -> str:
    return f"{bps:.0f}"


def dial(env: simpy.Environment, cfg: LinkConfig, rng: np.random.Generator, on_event: OnEvent):
    """simpy process: dial ``cfg.phone_number`` and return a :class:`DialResult`.

    ``on_event(t, event, detail)`` is called for dial, ringing, busy,
    no_answer, answer, train, no_carrier, connect, and later carrier_lost and
    hangup.  Use as ``result = yield env.process(dial(env, cfg, rng, cb))``.
    """
    profile = get_profile(cfg.profile)
    timing = cfg.timing
    streams = dict(zip(STREAM_NAMES, rng.spawn(len(STREAM_NAMES)), strict=True))
    progress = streams["progress"]
    # Fixed number of call-progress draws, whatever the outcome.
    u_busy, u_no_answer, u_train_fail, u_pdd = (float(x) for x in progress.random(4))

    t_dial = float(env.now)
    on_event(t_dial, "dial", cfg.phone_number)
    yield env.timeout(timing.dial_tone_wait_s + timing.dialing_time(cfg.phone_number))
    t_dialed = env.now
    t_give_up = t_dialed + timing.carrier_wait_s  # S7
    lo, hi = timing.post_dial_delay_s
    yield env.timeout(lo + (hi - lo) * u_pdd)

    if u_busy < cfg.busy_probability:
        yield env.timeout(timing.busy_detect_s)
        on_event(env.now, "busy", "BUSY")
        return DialResult("busy", None, t_dial, None, None, None)

    answers = u_no_answer >= cfg.no_answer_probability
    cycle = timing.ring_on_s + timing.ring_off_s
    ring = 0
    answered = False
    while env.now < t_give_up:
        ring += 1
        on_event(env.now, "ringing", f"ring {ring}")
        if answers and ring >= timing.answer_after_rings:
            yield env.timeout(timing.ring_on_s)
            answered = True
            break
        yield env.timeout(min(cycle, t_give_up - env.now))
    if not answered:
        on_event(env.now, "no_answer", f"no answer after {ring} rings (S7)")
        return DialResult("no_answer", None, t_dial, None, None, None)

    on_event(env.now, "answer", f"after {ring} rings")
    handshake = profile.draw_handshake(streams["handshake"])  # drawn always: fixed stream use
    if cfg.handshake_s is not None:
        handshake = cfg.handshake_s
    if cfg.connect_rate_bps is None:
        down, up = profile.draw_rates(streams["rate"])
    else:
        down, up = profile.fixed_rates(float(cfg.connect_rate_bps))
    on_event(env.now, "train", f"{profile.name} handshake {handshake:.1f} s")
    fails = u_train_fail < cfg.training_failure_probability
    if fails or env.now + handshake > t_give_up:
        yield env.timeout(max(0.0, t_give_up - env.now))
        on_event(env.now, "no_carrier", "NO CARRIER")
        return DialResult("no_carrier", None, t_dial, None, None, None)
    yield env.timeout(handshake)

    call = Call(env, cfg, profile, down, up, streams, on_event)
    suffix = ""
    if cfg.error_correction:
        suffix = "/V42BIS" if cfg.compression else "/LAPM"
    rate_txt = _fmt_rate(down) if down == up else f"{_fmt_rate(down)}/{_fmt_rate(up)}"
    on_event(env.now, "connect", f"CONNECT {rate_txt}{suffix}")
    return DialResult("connect", call, t_dial, env.now, down, up)


def connected_call(
    env: simpy.Environment, cfg: LinkConfig, rng: np.random.Generator,
    on_event: OnEvent | None = None,
) -> Call:
    """A call that is up at ``env.now`` without dialing (a leased line, a test bench):
    the rates are ``cfg.connect_rate_bps`` or drawn as :func:`dial` would."""
    profile = get_profile(cfg.profile)
    streams = dict(zip(STREAM_NAMES, rng.spawn(len(STREAM_NAMES)), strict=True))
    if cfg.connect_rate_bps is None:
        down, up = profile.draw_rates(streams["rate"])
    else:
        down, up = profile.fixed_rates(float(cfg.connect_rate_bps))
    return Call(env, cfg, profile, down, up, streams, on_event or (lambda _t, _e, _d: None))
