"""Line conditions that change during a call: bursts of noise and retrains (pure, no simpy).

Scope: two processes drawn once per call, lazily, from their own random
streams, and shared by both directions of the call (a burst on the local
loop hits both; both modems retrain together):

- :class:`BurstNoise`, the two-state channel of E. N. Gilbert, "Capacity of a
  burst-noise channel", Bell System Technical Journal 39 (1960) 1253-1265, with
  E. O. Elliott's error probability in both states ("Estimates of error rates
  for codes on burst-noise channels", BSTJ 42 (1963) 1977-1997).  Gilbert's
  chain moves per bit; here it moves in time, with exponential sojourns of
  mean ``mean_good_s`` and ``mean_bad_s`` (the limit of geometric sojourns
  counted in bits), so a burst lasts the same time at any line rate.  The
  good state's bit error rate is the line's ``bit_error_rate``, the bad
  state's ``bad_bit_error_rate``.  The call starts in the good state (the
  modems just trained on the line).
- :class:`RetrainSchedule`: retrains at exponential intervals of mean
  ``mean_time_between_s``; each one stops the data for a duration drawn
  uniformly from ``duration_s`` and ends at a new rate, one step down the
  profile's rate ladder with probability ``fallback_probability``, otherwise
  one step up (V.32bis/V.34 rate renegotiation, V.34 section 11 retrain);
  with ``failure_probability`` the retrain fails and the carrier is lost at
  its end.

How the pipeline uses them: :mod:`dialsim.link.pipeline` asks
:meth:`BurstNoise.ber_at` / :meth:`BurstNoise.segments` for the error rate a
frame or a run of bits meets, and :meth:`RetrainSchedule.advance` for when a
number of line bits has gone out given the pauses and rate changes.  The
draws never depend on the order of the questions: each process is one
sequence, extended forward as far as a question needs.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BurstNoise", "BurstNoiseConfig", "Retrain", "RetrainConfig", "RetrainSchedule"]


@dataclass(frozen=True, slots=True)
class BurstNoiseConfig:
    """Gilbert-Elliott parameters (times in s, error rates per bit)."""

    mean_good_s: float
    mean_bad_s: float
    bad_bit_error_rate: float
    good_bit_error_rate: float = 0.0

    def __post_init__(self) -> None:
        if not (self.mean_good_s > 0 and self.mean_bad_s > 0):
            raise ValueError("burst noise: mean_good_s and mean_bad_s must be > 0")
        for name in ("bad_bit_error_rate", "good_bit_error_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"burst noise: {name} must be in [0, 1)")


class BurstNoise:
    """The state of the line (good or bad) over the call, from ``t0`` on.

    ``_flips`` are the times the state changes, in order; the state is good
    before the first flip, bad until the second, and so on.
    """

    _BLOCK = 64

    def __init__(self, cfg: BurstNoiseConfig, rng: np.random.Generator, t0: float) -> None:
        self.cfg = cfg
        self._rng = rng
        self._flips: list[float] = []
        self._t = t0  # the last flip drawn (t0 before any)
        self._bad_next = True  # the next flip enters the bad state

    @classmethod
    def fixed(cls, cfg: BurstNoiseConfig, flips: list[float]) -> BurstNoise:
        """A known pattern (tests, replayed measurements): bad from ``flips[0]``
        to ``flips[1]``, from ``flips[2]`` to ``flips[3]``, ...; good after the last."""
        noise = cls(cfg, np.random.default_rng(0), 0.0)
        noise._flips = sorted(flips)
        noise._t = math.inf
        return noise

    def _extend(self, until: float) -> None:
        while self._t <= until:
            # Draw a block of sojourns at once: fewer calls, the same sequence.
            u = self._rng.exponential(1.0, size=self._BLOCK)
            for x in u:
                mean = self.cfg.mean_good_s if self._bad_next else self.cfg.mean_bad_s
                self._t += float(x) * mean
                self._flips.append(self._t)
                self._bad_next = not self._bad_next

    def ber_at(self, times: np.ndarray) -> np.ndarray:
        """The bit error rate in force at each of ``times``."""
        times = np.asarray(times, dtype=float)
        if times.size:
            self._extend(float(times.max()))
        idx = np.searchsorted(np.asarray(self._flips), times, side="right")
        return np.where(idx % 2 == 1, self.cfg.bad_bit_error_rate, self.cfg.good_bit_error_rate)

    def segments(self, t0: float, t1: float) -> list[tuple[float, float, float]]:
        """``[(start, end, ber)]`` covering ``[t0, t1)`` in order."""
        if t1 <= t0:
            return [(t0, t1, float(self.ber_at(np.array([t0]))[0]))]
        self._extend(t1)
        flips = self._flips
        i = bisect.bisect_right(flips, t0)
        out = []
        start = t0
        while True:
            ber = self.cfg.bad_bit_error_rate if i % 2 == 1 else self.cfg.good_bit_error_rate
            end = min(t1, flips[i]) if i < len(flips) else t1
            out.append((start, end, ber))
            if end >= t1:
                return out
            start = end
            i += 1

    def bad_time(self, t0: float, t1: float) -> float:
        """Seconds of ``[t0, t1)`` spent in the bad state."""
        bad = self.cfg.bad_bit_error_rate
        return sum(e - s for s, e, b in self.segments(t0, t1) if b == bad and e > s)


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """Retrains during a call (times in s)."""

    mean_time_between_s: float
    duration_s: tuple[float, float] = (2.0, 5.0)
    fallback_probability: float = 0.7
    failure_probability: float = 0.0

    def __post_init__(self) -> None:
        if not self.mean_time_between_s > 0:
            raise ValueError("retrain: mean_time_between_s must be > 0")
        lo, hi = self.duration_s
        if not 0 <= lo <= hi:
            raise ValueError("retrain: duration_s must be (shortest, longest), both >= 0")
        for name in ("fallback_probability", "failure_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"retrain: {name} must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class Retrain:
    """One retrain: no data during ``[start, end)``, then the new rates (or the carrier lost)."""

    start: float
    end: float
    down_bps: float
    up_bps: float
    fails: bool


def _step(ladder: tuple[float, ...], rate: float, down: bool) -> float:
    """One step down (or up) the rate ladder from ``rate``, staying on it."""
    rungs = sorted(set(ladder) | {rate})
    i = rungs.index(rate)
    return rungs[max(0, i - 1)] if down else rungs[min(len(rungs) - 1, i + 1)]


class RetrainSchedule:
    """The retrains of one call from ``t0`` (CONNECT) at the connect rates.

    ``ladder_down``/``ladder_up``: the rates each direction may take (the
    profile's rate set).  :meth:`advance` and :meth:`rate_at` serve the
    pipeline; :meth:`upto` the call's event story.
    """

    def __init__(self, cfg: RetrainConfig, rng: np.random.Generator, t0: float,
                 down_bps: float, up_bps: float, ladder_down: tuple[float, ...],
                 ladder_up: tuple[float, ...]) -> None:
        self.cfg = cfg
        self._rng = rng
        self._ladders = (ladder_down, ladder_up)
        self._rates0 = (down_bps, up_bps)
        self.retrains: list[Retrain] = []
        self._starts: list[float] = []
        self._t = t0
        self._rates = (down_bps, up_bps)
        self._failed = False

    def _extend(self, until: float) -> None:
        cfg = self.cfg
        while self._t <= until and not self._failed:
            gap, u_dur, u_dir, u_fail = self._rng.random(4)
            start = self._t - float(np.log1p(-gap)) * cfg.mean_time_between_s
            lo, hi = cfg.duration_s
            end = start + lo + (hi - lo) * float(u_dur)
            down = float(u_dir) < cfg.fallback_probability
            rates = tuple(_step(ladder, r, down)
                          for ladder, r in zip(self._ladders, self._rates, strict=True))
            fails = float(u_fail) < cfg.failure_probability
            self.retrains.append(Retrain(start, end, rates[0], rates[1], fails))
            self._starts.append(start)
            self._rates = rates
            self._t = end
            self._failed = fails

    @classmethod
    def fixed(cls, retrains: list[Retrain], down_bps: float, up_bps: float) -> RetrainSchedule:
        """A known list of retrains (tests, replayed measurements), and no more."""
        sched = cls(RetrainConfig(1.0), np.random.default_rng(0), 0.0, down_bps, up_bps, (), ())
        sched.retrains = sorted(retrains, key=lambda r: r.start)
        sched._starts = [r.start for r in sched.retrains]
        sched._t = math.inf
        return sched

    def nth(self, i: int) -> Retrain | None:
        """The ``i``-th retrain of the call (None after a failed one)."""
        while len(self.retrains) <= i and not self._failed and self._t < math.inf:
            self._extend(self._t)
        return self.retrains[i] if i < len(self.retrains) else None

    def upto(self, t: float) -> list[Retrain]:
        """Every retrain that starts at or before ``t``."""
        self._extend(t)
        return self.retrains[: bisect.bisect_right(self._starts, t)]

    def rate_at(self, t: float, side: int) -> float:
        """The line rate of direction ``side`` (0 down, 1 up) at ``t`` (the old
        rate during a retrain)."""
        self._extend(t)
        i = bisect.bisect_right(self._starts, t)
        while i > 0 and self.retrains[i - 1].end > t:
            i -= 1
        if i == 0:
            return self._rates0[side]
        r = self.retrains[i - 1]
        return r.down_bps if side == 0 else r.up_bps

    def advance(self, t: float, bits: float, side: int) -> float:
        """When ``bits`` line bits started at ``t`` have gone out in direction
        ``side``: pauses for retrains, the rate changing at each retrain's end."""
        self._extend(t)
        i = bisect.bisect_right(self._starts, t)
        if i > 0 and self.retrains[i - 1].end > t:  # inside a retrain: wait for its end
            t = self.retrains[i - 1].end
        rate = self.rate_at(t, side)
        while True:
            done = t + bits / rate
            self._extend(done)
            if i >= len(self.retrains) or self.retrains[i].start >= done:
                return done
            r = self.retrains[i]
            bits -= (r.start - t) * rate
            t = r.end
            rate = r.down_bps if side == 0 else r.up_bps
            i += 1
