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
one at or after CONNECT ends the call; one that falls while no call is up
(between calls, and while dialing unless ``carrier_loss_while_dialing``) does
nothing.

Failure processes of a call, each off by default (:mod:`dialsim.link.impairments`
for the first two): bursts of noise (Gilbert-Elliott; with V.42 they cost
retransmissions, and past N400 of them the modems give up and drop the
carrier); retrains (the data pauses, the rate falls back or forward, the new
rate is reported as ``rate_change``); call waiting (an incoming call's click
drops the carrier unless the dial string starts with ``*70``, the code that
disables it for one call); the ISP hanging up (:meth:`Call.hangup` with a
cause).  Their random streams are spawned from the call-progress stream, so
turning one on never shifts the draws of the others or of the existing ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from dialsim.link.impairments import BurstNoise, BurstNoiseConfig, RetrainConfig, RetrainSchedule
from dialsim.link.pipeline import (
    N400_DEFAULT,
    T401_DEFAULT_S,
    Delivery,
    Direction,
    DirectionConfig,
)
from dialsim.link.profiles import DialTiming, ModemProfile, get_profile

__all__ = [
    "Call",
    "DialResult",
    "LinkConfig",
    "Port",
    "Tariff",
    "call_waiting_disabled",
    "connected_call",
    "dial",
]

CALL_WAITING_OFF = ("*70", "1170")
"""Dial prefixes that disable call waiting for one call (North America: ``*70``
on tone lines, ``1170`` on pulse lines), usually followed by a comma pause."""


def call_waiting_disabled(number: str) -> bool:
    """Whether the dial string turns call waiting off for the call (``*70,555-0123``)."""
    return number.replace(" ", "").startswith(CALL_WAITING_OFF)


@dataclass(frozen=True, slots=True)
class Tariff:
    """What a call costs: ``per_call`` once it is answered, plus ``per_minute``
    for every started ``increment_s`` from answer to hang-up (in the
    scenario's currency units)."""

    per_call: float = 0.0
    per_minute: float = 0.0
    increment_s: float = 60.0

    def cost(self, seconds: float) -> float:
        if seconds != seconds or seconds < 0:  # NaN: never answered
            return 0.0
        units = math.ceil(seconds / self.increment_s - 1e-9) if seconds > 0 else 0
        return self.per_call + self.per_minute * units * self.increment_s / 60.0

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
    carrier_loss_while_dialing: bool = False  # carrier_loss_at also cuts a dial attempt
    burst_noise: BurstNoiseConfig | None = None
    retrain: RetrainConfig | None = None
    call_waiting_per_s: float = 0.0  # incoming calls while online (Poisson)
    rx_buffer_bytes: int | None = None  # None: as large as the transmit buffer
    lapm_n400: int = N400_DEFAULT
    lapm_t401_s: float = T401_DEFAULT_S
    lapm_acknowledgements: bool = True  # RR frames charged to the reverse line
    tariff: Tariff = field(default_factory=Tariff)

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
        if self.call_waiting_per_s < 0:
            raise ValueError("call_waiting_per_s must be >= 0")


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a dial attempt ended.  Rates and ``t_connect`` are None unless connected."""

    outcome: str  # "connect" | "busy" | "no_answer" | "no_carrier"
    call: Call | None
    t_dial: float
    t_connect: float | None
    connect_rate_down_bps: float | None
    connect_rate_up_bps: float | None
    t_answer: float | None = None


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
        if self.call.t_down is not None:  # not call.up: this runs for every frame
            self.octets_refused += len(data)
            return
        self.octets_out += len(data)
        self.chunks_out += 1
        env = self.env
        now = env.now
        arrived = self.peer._arrived
        for d in self._tx.transmit(bytes(data), now):
            delay = d.t - now
            env.timeout(delay if delay > 0.0 else 0.0, d).callbacks.append(arrived)
        if self._tx.link_failed_at is not None:
            self.call._link_failed(self._tx.link_failed_at)

    def _arrived(self, ev: simpy.Event) -> None:
        """The timeout of a delivery (its value) has come."""
        self._arrive(ev._value)

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
            # with V.42, the RR frames acknowledging what this side sent are on
            # the incoming line too
            "line_octets_in": self.line_octets_in + self._rx.ack_octets,
            "octets_lost_out": tx.bytes_lost,
            "octets_refused": self.octets_refused,
            "bit_errors_out": tx.bit_errors,
            "retransmissions_out": tx.retransmissions,
        }


class Call:
    """A connected call: two ports, two pipelines, and the carrier.

    ``carrier_lost`` fires once when the call ends, with value ``"carrier_lost"``
    (the line dropped) or ``"hangup"`` (either side hung up).  Data not fully
    delivered by then is lost.  ``end_cause`` says more: ``carrier_lost``,
    ``hangup``, or the cause a hanging-up side gave (the ISP's
    ``isp_idle_timeout``, ``isp_session_limit``).

    Rates: ``connect_rate_down_bps``/``connect_rate_up_bps`` are those of
    CONNECT; ``rate_down_bps``/``rate_up_bps`` follow retrains, and
    ``lowest_rate_down_bps``/``lowest_rate_up_bps`` keep the lowest.
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
        self.rate_down_bps = self.lowest_rate_down_bps = down_bps
        self.rate_up_bps = self.lowest_rate_up_bps = up_bps
        self.retrains = 0
        self.t_connect = env.now
        self.t_down: float | None = None
        self.end_reason: str | None = None
        self.end_cause: str | None = None
        self.carrier_lost = env.event()
        faults = dict(zip(FAULT_STREAMS, streams["progress"].spawn(len(FAULT_STREAMS)), strict=True))
        self.noise = (BurstNoise(cfg.burst_noise, faults["noise"], env.now)
                      if cfg.burst_noise is not None else None)
        self.schedule = self._retrain_schedule(faults["retrain"], down_bps, up_bps)
        self.upstream, self.downstream = self._directions(down_bps, up_bps, streams)
        self.subscriber = Port(env, self, "subscriber", self.upstream, self.downstream)
        self.isp = Port(env, self, "isp", self.downstream, self.upstream)
        self.subscriber.peer = self.isp
        self.isp.peer = self.subscriber
        self._processes: list[simpy.Process] = []
        self._failing = False
        t_drop, detail = self._next_drop(streams["drops"], faults["call_waiting"])
        if t_drop is not None:
            self._processes.append(env.process(self._carrier(t_drop, detail)))
        if self.schedule is not None:
            self._processes.append(env.process(self._retrain_story()))

    def _retrain_schedule(self, rng, down_bps: float, up_bps: float) -> RetrainSchedule | None:
        if self.cfg.retrain is None:
            return None
        p = self.profile
        return RetrainSchedule(self.cfg.retrain, rng, self.env.now, down_bps, up_bps,
                               p.rates_bps, p.upstream_rates_bps or p.rates_bps)

    def _directions(self, down_bps: float, up_bps: float, streams) -> tuple[Direction, Direction]:
        cfg, profile = self.cfg, self.profile
        buf = cfg.tx_buffer_bytes or profile.tx_buffer_bytes
        common = dict(
            tx_buffer_bytes=buf,
            latency_s=profile.latency_one_way_s,
            error_correction=cfg.error_correction,
            compression=cfg.compression,
            bit_error_rate=cfg.bit_error_rate,
            rx_buffer_bytes=cfg.rx_buffer_bytes or buf,
            lapm_n400=cfg.lapm_n400,
            lapm_t401_s=cfg.lapm_t401_s,
        )
        if cfg.burst_noise is not None:
            common["bit_error_rate"] = cfg.burst_noise.good_bit_error_rate
        shared = dict(noise=self.noise, retrains=self.schedule)
        upstream = Direction(
            DirectionConfig(line_rate_bps=up_bps, dte_rate_in_bps=cfg.dte_rate_subscriber_bps,
                            dte_rate_out_bps=cfg.dte_rate_isp_bps, **common),
            streams["errors_up"], side=1, **shared)
        downstream = Direction(
            DirectionConfig(line_rate_bps=down_bps, dte_rate_in_bps=cfg.dte_rate_isp_bps,
                            dte_rate_out_bps=cfg.dte_rate_subscriber_bps, **common),
            streams["errors_down"], side=0, **shared)
        if cfg.error_correction and cfg.lapm_acknowledgements:
            upstream.pair(downstream)
        return upstream, downstream

    @property
    def up(self) -> bool:
        return self.t_down is None

    def _next_drop(self, rng: np.random.Generator, waiting: np.random.Generator
                   ) -> tuple[float | None, str]:
        t0 = self.t_connect
        # Always draw, so the draw count does not depend on the schedule.
        u = float(rng.exponential(1.0))
        cands = [(t, "NO CARRIER") for t in self.cfg.carrier_loss_at if t >= t0]
        if self.cfg.carrier_loss_mtbf_s is not None:
            cands.append((t0 + u * self.cfg.carrier_loss_mtbf_s, "NO CARRIER"))
        rate = self.cfg.call_waiting_per_s
        if rate > 0:
            t_call = t0 + float(waiting.exponential(1.0)) / rate
            if not call_waiting_disabled(self.cfg.phone_number):
                cands.append((t_call, "NO CARRIER (call waiting)"))
        return min(cands) if cands else (None, "")

    def _carrier(self, t_drop: float, detail: str):
        try:
            yield self.env.timeout(max(0.0, t_drop - self.env.now))
        except simpy.Interrupt:
            return
        if "call waiting" in detail:
            self.on_event(self.env.now, "call_waiting", "an incoming call's tone on the line")
        self._end("carrier_lost", detail)

    def _retrain_story(self):
        """Report each retrain when it starts and the new rate when it ends."""
        env, i = self.env, 0
        try:
            while True:
                r = self.schedule.nth(i)
                if r is None:
                    return
                yield env.timeout(max(0.0, r.start - env.now))
                self.on_event(env.now, "retrain", f"RETRAIN {r.end - r.start:.1f} s")
                yield env.timeout(max(0.0, r.end - env.now))
                if r.fails:
                    self._end("carrier_lost", "NO CARRIER (retrain failed)")
                    return
                self._rate_changed(r.down_bps, r.up_bps)
                i += 1
        except simpy.Interrupt:
            return

    def _rate_changed(self, down: float, up: float) -> None:
        self.retrains += 1
        self.rate_down_bps, self.rate_up_bps = down, up
        self.lowest_rate_down_bps = min(self.lowest_rate_down_bps, down)
        self.lowest_rate_up_bps = min(self.lowest_rate_up_bps, up)
        self.on_event(self.env.now, "rate_change",
                      f"CONNECT {_rates_text(down, up)}{_suffix(self.cfg)}")

    def _link_failed(self, t_fail: float) -> None:
        """V.42 gave up (N400) on a frame: the modems release the call at ``t_fail``."""
        if self._failing or not self.up:
            return
        self._failing = True

        def fail():
            yield self.env.timeout(max(0.0, t_fail - self.env.now))
            self._end("carrier_lost", "NO CARRIER (V.42: N400 retransmissions)")

        self.env.process(fail())

    def hangup(self, who: str = "subscriber", cause: str | None = None) -> None:
        """``who`` hangs up now (drops DTR / ATH): data still in flight is lost.
        ``cause`` (e.g. the ISP's ``isp_idle_timeout``) goes into ``end_cause``."""
        self._end("hangup", who, cause)

    def lose_carrier(self) -> None:
        """The line drops now (for tests and drivers that decide drops themselves)."""
        self._end("carrier_lost", "NO CARRIER")

    def _end(self, reason: str, detail: str, cause: str | None = None) -> None:
        if not self.up:
            return
        now = self.env.now
        self.t_down = now
        self.end_reason = reason
        self.end_cause = cause or reason
        self.upstream.drop(now)
        self.downstream.drop(now)
        self.on_event(now, reason, detail if cause is None else f"{detail}: {cause}")
        for proc in self._processes:
            if proc.is_alive and self.env.active_process is not proc:
                proc.interrupt("call over")
        self.carrier_lost.succeed(reason)


STREAM_NAMES = ("progress", "handshake", "rate", "drops", "errors_up", "errors_down")
FAULT_STREAMS = ("noise", "retrain", "call_waiting")
"""Spawned from a call's ``progress`` stream: appending here shifts nothing."""


def _fmt_rate(bps: float) -> str:
    return f"{bps:.0f}"


def _rates_text(down: float, up: float) -> str:
    return _fmt_rate(down) if down == up else f"{_fmt_rate(down)}/{_fmt_rate(up)}"


def _suffix(cfg: LinkConfig) -> str:
    if not cfg.error_correction:
        return ""
    return "/V42BIS" if cfg.compression else "/LAPM"


class _Cut(Exception):
    """The line dropped while the call was being set up."""


def _dial_cut(cfg: LinkConfig, t_dial: float) -> float | None:
    if not cfg.carrier_loss_while_dialing:
        return None
    return min((t for t in cfg.carrier_loss_at if t >= t_dial), default=None)


def _pause(env: simpy.Environment, seconds: float, cut: float | None):
    """Wait ``seconds`` unless the line is cut first (raise :class:`_Cut` then)."""
    end = env.now + seconds
    if cut is not None and cut < end:
        yield env.timeout(max(0.0, cut - env.now))
        raise _Cut
    yield env.timeout(seconds)


def dial(env: simpy.Environment, cfg: LinkConfig, rng: np.random.Generator, on_event: OnEvent):
    """simpy process: dial ``cfg.phone_number`` and return a :class:`DialResult`.

    ``on_event(t, event, detail)`` is called for dial, ringing, busy,
    no_answer, answer, train, no_carrier, connect, and later carrier_lost and
    hangup.  Use as ``result = yield env.process(dial(env, cfg, rng, cb))``.
    """
    t_dial = float(env.now)
    seen: dict[str, float] = {}
    try:
        return (yield from _call_setup(env, cfg, rng, on_event, _dial_cut(cfg, t_dial), seen))
    except _Cut:
        on_event(env.now, "no_carrier", "NO CARRIER (the line dropped during call setup)")
        return DialResult("no_carrier", None, t_dial, None, None, None, seen.get("answer"))


def _call_setup(env, cfg: LinkConfig, rng: np.random.Generator, on_event: OnEvent,
                cut: float | None, seen: dict[str, float]):
    profile = get_profile(cfg.profile)
    timing = cfg.timing
    streams = dict(zip(STREAM_NAMES, rng.spawn(len(STREAM_NAMES)), strict=True))
    progress = streams["progress"]
    # Fixed number of call-progress draws, whatever the outcome.
    u_busy, u_no_answer, u_train_fail, u_pdd = (float(x) for x in progress.random(4))

    t_dial = float(env.now)
    on_event(t_dial, "dial", cfg.phone_number)
    yield from _pause(env, timing.dial_tone_wait_s + timing.dialing_time(cfg.phone_number), cut)
    t_give_up = env.now + timing.carrier_wait_s  # S7
    lo, hi = timing.post_dial_delay_s
    yield from _pause(env, lo + (hi - lo) * u_pdd, cut)

    if u_busy < cfg.busy_probability:
        yield from _pause(env, timing.busy_detect_s, cut)
        on_event(env.now, "busy", "BUSY")
        return DialResult("busy", None, t_dial, None, None, None)
    ring = yield from _ring(env, timing, u_no_answer >= cfg.no_answer_probability, t_give_up,
                            cut, on_event)
    if ring is None:
        return DialResult("no_answer", None, t_dial, None, None, None)

    t_answer = seen["answer"] = env.now
    on_event(t_answer, "answer", f"after {ring} rings")
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
        yield from _pause(env, max(0.0, t_give_up - env.now), cut)
        on_event(env.now, "no_carrier", "NO CARRIER")
        return DialResult("no_carrier", None, t_dial, None, None, None, t_answer)
    yield from _pause(env, handshake, cut)

    call = Call(env, cfg, profile, down, up, streams, on_event)
    on_event(env.now, "connect", f"CONNECT {_rates_text(down, up)}{_suffix(cfg)}")
    return DialResult("connect", call, t_dial, env.now, down, up, t_answer)


def _ring(env, timing: DialTiming, answers: bool, t_give_up: float, cut: float | None,
          on_event: OnEvent):
    """Ring until the ISP's modem answers (S0 rings) or S7 runs out; the rings
    heard, or None for no answer."""
    cycle = timing.ring_on_s + timing.ring_off_s
    ring = 0
    while env.now < t_give_up:
        ring += 1
        on_event(env.now, "ringing", f"ring {ring}")
        if answers and ring >= timing.answer_after_rings:
            yield from _pause(env, timing.ring_on_s, cut)
            return ring
        yield from _pause(env, min(cycle, t_give_up - env.now), cut)
    on_event(env.now, "no_answer", f"no answer after {ring} rings (S7)")
    return None


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
