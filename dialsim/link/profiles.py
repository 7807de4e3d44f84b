"""Modem profiles and dial timing (ITU-T V.22bis, V.32bis, V.34, V.90; V.42/V.42bis; V.250).

Scope: the numbers that make a modem of a given generation behave like one:
which connect rates it reaches and how often, how long the handshake from the
answering modem's off-hook to CONNECT takes, the one-way latency of its
modulation, its transmit buffer, and whether it does V.42 error correction and
V.42bis compression.  :class:`DialTiming` holds the call-progress numbers of the
Hayes/V.250 dialer (S6, S11, S7, S0) and of the telephone network (ring
cadence, busy detection).  Rate distributions, latencies and buffer sizes are
engineering estimates; ``docs/link-model.md`` says which number comes from
where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONNECT_RATE_LIMITS",
    "DialTiming",
    "ModemProfile",
    "PROFILES",
    "get_profile",
]


@dataclass(frozen=True, slots=True)
class ModemProfile:
    """One modem generation.  Rates in bit/s, times in seconds.

    ``rates_bps``/``rate_weights``: the downstream (ISP -> subscriber) connect
    rates a call draws from.  ``upstream_rates_bps``/``upstream_weights``: the
    same for the subscriber -> ISP direction; empty for symmetric modulations,
    where upstream equals downstream.  Both draws use the same line-quality
    quantile, so a good line is good both ways.  ``limits_bps`` are the lowest
    and highest rates the modulation can run at (for validating a fixed rate).
    """

    name: str
    recommendation: str
    rates_bps: tuple[float, ...]
    rate_weights: tuple[float, ...]
    limits_bps: tuple[float, float]
    handshake_s: tuple[float, float]
    latency_one_way_s: float
    tx_buffer_bytes: int
    error_correction: bool = True
    compression: bool = True
    upstream_rates_bps: tuple[float, ...] = ()
    upstream_weights: tuple[float, ...] = ()
    upstream_nominal_bps: float | None = None

    def __post_init__(self) -> None:
        if len(self.rates_bps) != len(self.rate_weights) or not self.rates_bps:
            raise ValueError(f"{self.name}: rates and weights differ in length")
        if len(self.upstream_rates_bps) != len(self.upstream_weights):
            raise ValueError(f"{self.name}: upstream rates and weights differ in length")
        if not self.handshake_s[0] <= self.handshake_s[1]:
            raise ValueError(f"{self.name}: handshake range reversed")

    @property
    def symmetric(self) -> bool:
        return not self.upstream_rates_bps

    def draw_rates(self, rng: np.random.Generator) -> tuple[float, float]:
        """(downstream, upstream) connect rates for one call: one uniform draw
        (the line quality quantile) mapped through each direction's distribution."""
        q = float(rng.random())
        down = _quantile(self.rates_bps, self.rate_weights, q)
        if self.symmetric:
            return down, down
        return down, _quantile(self.upstream_rates_bps, self.upstream_weights, q)

    def fixed_rates(self, down_bps: float) -> tuple[float, float]:
        """(downstream, upstream) when the scenario fixes the connect rate.

        Symmetric modulations run both ways at it; V.90 runs upstream at
        ``min(rate, upstream_nominal_bps)``.
        """
        lo, hi = self.limits_bps
        if not lo <= down_bps <= hi:
            raise ValueError(
                f"{down_bps:g} bit/s is out of reach for profile {self.name}; "
                f"use {lo:g} .. {hi:g} bit/s"
            )
        if self.symmetric:
            return down_bps, down_bps
        return down_bps, min(down_bps, self.upstream_nominal_bps or down_bps)

    def draw_handshake(self, rng: np.random.Generator) -> float:
        lo, hi = self.handshake_s
        return float(rng.uniform(lo, hi)) if hi > lo else lo


def _quantile(rates: tuple[float, ...], weights: tuple[float, ...], q: float) -> float:
    w = np.asarray(weights, dtype=float)
    cdf = np.cumsum(w) / w.sum()
    # q in [0, 1): low quantiles are bad lines, so they get the low rates.
    i = int(np.searchsorted(cdf, q, side="right"))
    return float(rates[min(i, len(rates) - 1)])


def _v90_rate(k: int) -> float:
    """V.90 PCM downstream rates are multiples of 8000/6 bit/s."""
    return round(8000.0 * k / 6.0, 2)


def _normal_weights(rates: tuple[float, ...], mean: float, sd: float) -> tuple[float, ...]:
    return tuple(math.exp(-0.5 * ((r - mean) / sd) ** 2) for r in rates)


_V90_DOWN = tuple(_v90_rate(k) for k in range(30, 41))  # 40000 .. 53333.33

PROFILES: dict[str, ModemProfile] = {
    p.name: p
    for p in (
        ModemProfile(
            name="v22bis",
            recommendation="ITU-T V.22bis (2400 bit/s QAM, fallback 1200)",
            rates_bps=(1200.0, 2400.0),
            rate_weights=(0.05, 0.95),
            limits_bps=(1200.0, 2400.0),
            handshake_s=(3.0, 5.0),
            latency_one_way_s=0.025,
            tx_buffer_bytes=1024,
        ),
        ModemProfile(
            name="v32bis",
            recommendation="ITU-T V.32bis (14400 bit/s TCM, fallbacks 12000..4800)",
            rates_bps=(4800.0, 7200.0, 9600.0, 12000.0, 14400.0),
            rate_weights=(0.02, 0.03, 0.05, 0.15, 0.75),
            limits_bps=(4800.0, 14400.0),
            handshake_s=(6.0, 8.0),
            latency_one_way_s=0.040,
            tx_buffer_bytes=1536,
        ),
        ModemProfile(
            name="v34",
            recommendation="ITU-T V.34 (1994): 2400..28800 bit/s in 2400 steps",
            rates_bps=(19200.0, 21600.0, 24000.0, 26400.0, 28800.0),
            rate_weights=(0.03, 0.07, 0.15, 0.30, 0.45),
            limits_bps=(2400.0, 28800.0),
            handshake_s=(10.0, 15.0),
            latency_one_way_s=0.062,
            tx_buffer_bytes=2048,
        ),
        ModemProfile(
            name="v34_33600",
            recommendation="ITU-T V.34 (1996): 2400..33600 bit/s in 2400 steps",
            rates_bps=(24000.0, 26400.0, 28800.0, 31200.0, 33600.0),
            rate_weights=(0.05, 0.12, 0.25, 0.33, 0.25),
            limits_bps=(2400.0, 33600.0),
            handshake_s=(10.0, 15.0),
            latency_one_way_s=0.062,
            tx_buffer_bytes=2048,
        ),
        ModemProfile(
            name="v90",
            recommendation="ITU-T V.90: PCM downstream (k*8000/6 bit/s), V.34 upstream",
            rates_bps=_V90_DOWN,
            rate_weights=_normal_weights(_V90_DOWN, 46667.0, 3000.0),
            limits_bps=(28000.0, 56000.0),
            handshake_s=(15.0, 25.0),
            latency_one_way_s=0.072,
            tx_buffer_bytes=3072,
            upstream_rates_bps=(24000.0, 26400.0, 28800.0, 31200.0, 33600.0),
            upstream_weights=(0.10, 0.25, 0.35, 0.25, 0.05),
            upstream_nominal_bps=31200.0,
        ),
    )
}

CONNECT_RATE_LIMITS: dict[str, tuple[float, float]] = {
    name: p.limits_bps for name, p in PROFILES.items()
}
"""profile -> (lowest, highest) connect rate in bit/s; the shape of
``dialsim.scenario.schema.PROFILE_CONNECT_RATES``."""


def get_profile(name: str) -> ModemProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown modem profile {name!r}; use one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class DialTiming:
    """Call progress of an ``ATDT`` dial (V.250 S-registers and the phone network).

    ``dial_tone_wait_s`` (S6, V.250 6.3.9, default 2 s): off-hook to first digit.
    ``dtmf_tone_s`` (S11, Hayes, default 95 ms): each DTMF digit is a tone of
    this length followed by an equal silence.  ``comma_pause_s`` (S8, 2 s).
    ``carrier_wait_s`` (S7, V.250 6.3.10; 50 s in most modems): from the end of
    dialing to carrier, else NO CARRIER.  ``answer_after_rings`` (S0 of the
    ISP's modem): it answers at the end of that ring.  Ring cadence 2 s on,
    4 s off (North American).  ``post_dial_delay_s``: switching delay from the
    last digit to the first ring (or busy tone), drawn uniformly.
    ``busy_detect_s``: busy tone (0.5 s on / 0.5 s off) heard for about two
    cadences before the modem reports BUSY.
    """

    dial_tone_wait_s: float = 2.0
    dtmf_tone_s: float = 0.095
    comma_pause_s: float = 2.0
    carrier_wait_s: float = 50.0
    answer_after_rings: int = 1
    ring_on_s: float = 2.0
    ring_off_s: float = 4.0
    post_dial_delay_s: tuple[float, float] = (1.0, 3.0)
    busy_detect_s: float = 2.0

    def dialing_time(self, number: str) -> float:
        """Seconds to send ``number`` by DTMF (digits, ``*#ABCD``; ``,`` pauses S8)."""
        digits = sum(ch.isdigit() or ch in "*#ABCDabcd" for ch in number)
        commas = number.count(",")
        return digits * 2.0 * self.dtmf_tone_s + commas * self.comma_pause_s
