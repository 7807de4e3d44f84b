"""Benchmark (a study): how far real holding times are from exponential, and what
that does to blocking.

    python benchmarks/bench_holding.py [--hours 40] [--out holding.csv]

One population (100 subscribers, Poisson calls every 3 h, mail arriving all
day, a mix of V.22bis/V.32bis/V.34/V.90 modems, 2 lines) runs four ways:

- ``real``: each call lasts as long as its dial, PPP, SMTP and POP3 take;
- ``exponential``: each call is held an exponential time after CONNECT with
  the mean the real calls had (the retrieval runs inside it);

each with blocked calls cleared (one attempt: Erlang B's model) and with
redials (three attempts a minute apart).  Prints, per run, the line
holding times' (dial to release) mean, coefficient of variation and
percentiles, and for them and for the time online (CONNECT to release) the
Kolmogorov-Smirnov distance from an exponential of the same mean, and the blocking (batch
means, 95 % interval) beside Erlang B and Engset's formula (the subscribers
as finite sources) at the measured offered load.  ``--out``
writes the same table as CSV for a notebook.  Results: docs/capacity.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from dialsim.experiment.engine import from_arrow, replicate
from dialsim.results.capacity import blocking_batches, engset_at_offered, erlang_check
from dialsim.scenario.load import scenario_from_text

POPULATION = """
name: holding-study
seed: 17
link: {profile: v34}
subscriber:
  user: sub
  password: tanstaaf
  redial: {attempts: 1, delay: 1 min}
isp:
  maildrop: {messages: 2, size: {median: 4 KiB, sigma: 1.2}}
  incoming: {rate: 2 /h, size: {median: 4 KiB, sigma: 1.2}}
population:
  subscribers: 100
  lines: 2
  calls: {pattern: poisson, every: 3 h}
  modems: {v22bis: 0.1, v32bis: 0.3, v34: 0.45, v90: 0.15}
"""
WARMUP_S = 3600.0


def ks_from_exponential(x: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of a sample from the exponential of its mean."""
    x = np.sort(x)
    n = len(x)
    expo = 1.0 - np.exp(-x / x.mean())
    return float(max((np.arange(1, n + 1) / n - expo).max(), (expo - np.arange(n) / n).max()))


def holding_stats(sessions: pd.DataFrame) -> dict[str, float]:
    """Line holding times (dial to release) and time online (CONNECT to release)
    of the calls the pool carried."""
    done = sessions[(sessions["line"] >= 0) & (sessions["end_reason"] != "unfinished")]
    h = (done["t_end_s"] - done["t_dial_s"]).to_numpy(float)
    online = (done["t_end_s"] - done["t_connect_s"]).dropna().to_numpy(float)
    mean = float(h.mean())
    return {"calls_carried": len(h), "holding_mean_s": mean,
            "holding_cv": float(h.std() / mean), "holding_p50_s": float(np.percentile(h, 50)),
            "holding_p95_s": float(np.percentile(h, 95)), "holding_max_s": float(h.max()),
            "holding_ks": ks_from_exponential(h), "online_mean_s": float(online.mean()),
            "online_cv": float(online.std() / online.mean()),
            "online_ks": ks_from_exponential(online)}


def study(mode: str, attempts: int, hours: float, online_mean: float | None) -> dict:
    over = {"duration": f"{WARMUP_S + hours * 3600:.0f} s",
            "subscriber.redial.attempts": attempts}
    if mode == "exponential":
        over.update({"population.holding.mode": "exponential",
                     "population.holding.mean": f"{online_mean:.3f} s"})
    sc = scenario_from_text(POPULATION).with_overrides(over)
    t0 = time.perf_counter()
    sessions = from_arrow(replicate(sc, 0).tables["sessions"])
    wall = time.perf_counter() - t0
    lines = sc.population.lines
    check = erlang_check(blocking_batches(sessions, lines=lines, start_s=WARMUP_S,
                                          end_s=sc.duration, batches=10), lines)
    first = sessions[(sessions["attempt"] == 1) & (sessions["t_dial_s"] >= WARMUP_S)]
    return {"holding": mode, "attempts_per_call": attempts, **holding_stats(sessions),
            "attempts": check["attempts"], "offered_erlangs": check["offered_erlangs"],
            "blocking": check["blocking"], "blocking_half_width": check["half_width"],
            "erlang_b": check["erlang_b"],
            "engset": engset_at_offered(check["offered_erlangs"], sc.population.subscribers,
                                        lines),
            "calls_given_up": int(_given_up(sessions, first, attempts)), "wall_s": wall}


def _given_up(sessions: pd.DataFrame, first: pd.DataFrame, attempts: int) -> int:
    """Calls whose every attempt heard BUSY."""
    last = sessions[(sessions["attempt"] == attempts) & (sessions["line"] < 0)
                    & (sessions["end_reason"] == "busy") & (sessions["t_dial_s"] >= WARMUP_S)]
    return len(last) if len(first) else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=40.0)
    ap.add_argument("--out", help="write the table as CSV here")
    args = ap.parse_args()
    rows = []
    for attempts in (1, 3):
        real = study("real", attempts, args.hours, None)
        rows.append(real)
        rows.append(study("exponential", attempts, args.hours, real["online_mean_s"]))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:.3f}" if math.isfinite(v)
                           else "-"):
        print(table.drop(columns=["wall_s"]).T.to_string(header=False))
    print("wall s per run:", ", ".join(f"{w:.1f}" for w in table["wall_s"]))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
