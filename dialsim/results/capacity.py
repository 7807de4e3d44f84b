"""Capacity of a modem pool: Erlang B, and the per-line, per-hour and per-subscriber tables.

Scope: the teletraffic view of a population run (docs/capacity.md).  A NAS
with M lines is a loss system: a call that finds every line taken hears BUSY.
With Poisson call attempts of offered load A erlangs, the probability that an
attempt is blocked is Erlang's B formula (A. K. Erlang, 1917; ITU-T E.520,
terms of ITU-T E.600):

    B(A, 0) = 1,   B(A, m) = A B(A, m-1) / (m + A B(A, m-1))

the recursion that stays exact where A^M / M! would overflow.  It depends on
the holding times only through their mean (the insensitivity of the loss
system), which is what :func:`erlang_b` is checked against in the tests.

A population is N *finite* sources: a subscriber on a call makes no other.
With each idle source attempting at rate g and holding a mean h (beta = g h
erlangs per idle source), an attempt is blocked with Engset's call
congestion (T. O. Engset 1918; ITU-T E.600's "call congestion"): the time
congestion that the other N - 1 sources cause,

    E(0) = 1,   E(m) = (N - m) beta E(m-1) / (m + (N - m) beta E(m-1))

(:func:`engset`; :func:`engset_at_offered` takes the offered load that
Erlang B takes), below Erlang B and equal to it as N grows.

From a population run's ``sessions`` (a ``line`` per call: -1 when every line
was busy; a line is held from ``t_dial_s`` to ``t_end_s``) and ``messages``
tables this module derives, per replication:

- ``lines``: per line and hour, the seconds it was held and its occupancy;
- ``hours``: per hour, attempts, blocked attempts, blocking probability,
  carried load (erlangs: line-seconds held / seconds in the hour), offered
  load (attempts x mean seizure time / seconds in the hour), the Erlang B
  of that offered load and the Engset call congestion of the subscribers as
  finite sources, and mail latency of what was retrieved in the hour;
- ``subscribers``: per subscriber, its modem and strategy, attempts, blocked
  attempts, time online, messages and their latency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "CAPACITY_TABLES",
    "blocking_batches",
    "erlang_check",
    "capacity_summary",
    "capacity_tables",
    "engset",
    "engset_at_offered",
    "erlang_b",
    "mean_confidence_interval",
    "render_hours",
]

CAPACITY_TABLES = ("lines", "hours", "subscribers")
HOUR = 3600.0

# Student's t, two-sided 95 %, by degrees of freedom (beyond 30: the normal's 1.96
# is within 2 % of it).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def erlang_b(offered_erlangs: float, lines: int) -> float:
    """Erlang's B formula: the probability that a call attempt finds all ``lines``
    busy, with Poisson attempts offering ``offered_erlangs``."""
    if lines < 0 or offered_erlangs < 0:
        raise ValueError("lines and offered load must be >= 0")
    b = 1.0
    for m in range(1, lines + 1):
        b = offered_erlangs * b / (m + offered_erlangs * b)
    return b


def engset(idle_offered: float, sources: int, lines: int) -> float:
    """Engset's call congestion: the probability that a call attempt finds all
    ``lines`` busy when ``sources`` finite sources each offer ``idle_offered``
    erlangs while idle (attempt rate x mean holding time), blocked calls
    cleared.  An attempt sees the other ``sources - 1``: their time congestion,
    by the recursion in the module's docstring (0 when the others cannot fill
    the lines)."""
    if lines < 0 or sources < 0 or idle_offered < 0:
        raise ValueError("lines, sources and offered load must be >= 0")
    e = 1.0
    for m in range(1, lines + 1):
        a = (sources - m) * idle_offered  # (N - 1) - m + 1 other sources still idle
        if a <= 0:
            return 0.0
        e = a * e / (m + a * e)
    return e


def engset_at_offered(offered_erlangs: float, sources: int, lines: int) -> float:
    """Engset's call congestion when the attempts of ``sources`` sources offer
    ``offered_erlangs`` in all (the load Erlang B takes): only the sources not
    on a call attempt, so each idle one offers b = offered / (sources -
    carried), with carried = offered x (1 - blocking).  Solved for the
    blocking by bisection (the right side falls as the blocking rises: one
    root).  NaN when ``sources`` cannot offer that much."""
    if offered_erlangs < 0 or sources < 0 or lines < 0:
        raise ValueError("lines, sources and offered load must be >= 0")
    if offered_erlangs == 0:
        return engset(0.0, sources, lines)
    if offered_erlangs >= sources:
        return math.nan

    def implied(blocking: float) -> float:
        """What the idle sources meet when ``blocking`` of the offered load is lost."""
        idle = sources - offered_erlangs * (1 - blocking)
        return engset(offered_erlangs / idle, sources, lines)

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if implied(mid) > mid else (lo, mid)
    # One more step of the map, which barely moves near the root: exact to the
    # last digits where the bisection's 2**-60 is coarse (a blocking of 1e-19).
    return implied((lo + hi) / 2)


def mean_confidence_interval(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of its 95 % confidence interval) of independent
    replications' estimates (Student's t; NaN half-width for one value)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan
    t = _T95[len(v) - 2] if len(v) - 1 <= len(_T95) else 1.96
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(len(v)))


def blocking_batches(sessions: pd.DataFrame, *, lines: int, start_s: float, end_s: float,
                     batches: int) -> pd.DataFrame:
    """Batch means for one replication's ``sessions``: [start_s, end_s) cut into
    ``batches`` equal spans (start after a warm-up: the pool starts empty), each
    with its attempts, blocked attempts, blocking probability, offered load
    (attempts x mean seizure time / span, erlangs) and the Erlang B of it."""
    edges = np.linspace(start_s, end_s, batches + 1)
    t = sessions["t_dial_s"].to_numpy(float)
    which = np.searchsorted(edges, t, side="right") - 1
    blocked = ((sessions["line"] < 0) & (sessions["end_reason"] == "busy")).to_numpy()
    # A call still up at the end has a cut holding time: it counts as an
    # attempt, not in the mean seizure.
    held = ((sessions["line"] >= 0) & (sessions["end_reason"] != "unfinished")).to_numpy()
    seizure = (sessions["t_end_s"] - sessions["t_dial_s"]).to_numpy(float)
    rows = []
    for b in range(batches):
        here = which == b
        n = int(here.sum())
        mean_hold = float(seizure[here & held].mean()) if (here & held).any() else math.nan
        offered = n * mean_hold / (edges[b + 1] - edges[b]) if n else math.nan
        rows.append({"batch": b, "attempts": n, "blocked": int((here & blocked).sum()),
                     "blocking_probability": (here & blocked).sum() / n if n else math.nan,
                     "offered_erlangs": offered, "mean_seizure_s": mean_hold,
                     "erlang_b": erlang_b(offered, lines) if n else math.nan})
    return pd.DataFrame(rows)


def erlang_check(batches: pd.DataFrame, lines: int) -> dict[str, float]:
    """Simulated blocking against Erlang B over batch means.

    ``blocking``: the batches' mean blocking; ``erlang_b``: B of the whole
    span's offered load; ``half_width``: the 95 % half-width of their
    difference, from the spread of each batch's blocking less the B of its
    own offered load (so the noise of the measured load counts too).  The
    check is ``|blocking - erlang_b| <= half_width``."""
    p = batches["blocking_probability"].to_numpy(float)
    spread = p - batches["erlang_b"].to_numpy(float)
    attempts = batches["attempts"].to_numpy(float)
    offered = float(np.nansum(batches["offered_erlangs"].to_numpy(float)) / len(batches))
    _mean, half = mean_confidence_interval(list(spread))
    b = erlang_b(offered, lines)
    return {"blocking": float(np.nanmean(p)), "erlang_b": b,
            "difference": float(np.nanmean(p)) - b, "half_width": half,
            "offered_erlangs": offered, "attempts": int(attempts.sum())}


def _hour_bounds(duration: float) -> np.ndarray:
    n = max(1, math.ceil(duration / HOUR - 1e-9))
    return np.minimum(np.arange(n + 1) * HOUR, duration)


def _held_per_hour(start: np.ndarray, end: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Seconds of [start, end) intervals falling in each hour: shape (hours,)."""
    lo, hi = bounds[:-1, None], bounds[1:, None]
    return np.clip(np.minimum(end[None, :], hi) - np.maximum(start[None, :], lo), 0.0,
                   None).sum(axis=1)


def _latency(m: pd.DataFrame) -> dict[str, float]:
    lat = m["latency_s"].dropna().to_numpy(dtype=float)
    if len(lat) == 0:
        return {"latency_mean_s": math.nan, "latency_p95_s": math.nan,
                "latency_max_s": math.nan}
    return {"latency_mean_s": float(lat.mean()), "latency_p95_s": float(np.percentile(lat, 95)),
            "latency_max_s": float(lat.max())}


def _first_retrievals(messages: pd.DataFrame) -> pd.DataFrame:
    return messages[(messages["direction"] == "retrieved") & ~messages["duplicate"]
                    & messages["intact"]]


def capacity_tables(sessions: pd.DataFrame, messages: pd.DataFrame, *, lines: int,
                    subscribers: int, duration: float,
                    replications: Sequence[int] | None = None) -> dict[str, pd.DataFrame]:
    """The ``lines``, ``hours`` and ``subscribers`` tables of every replication
    (default: those in ``sessions``; one without a call still has its rows) from
    population tables with ``subscriber`` and ``line`` columns."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in CAPACITY_TABLES}
    bounds = _hour_bounds(duration)
    got = _first_retrievals(messages)
    if replications is None:
        replications = sorted(set(sessions["replication"].tolist()))
    for rep in replications:
        s = sessions[sessions["replication"] == rep]
        m = got[got["replication"] == rep]
        parts["lines"].append(_lines_table(rep, s, lines, bounds))
        parts["hours"].append(_hours_table(rep, s, m, lines, subscribers, bounds))
        parts["subscribers"].append(_subscribers_table(rep, s, m, subscribers))
    return {name: (pd.concat(dfs, ignore_index=True) if dfs else pd.DataFrame())
            for name, dfs in parts.items()}


def _lines_table(rep: int, s: pd.DataFrame, lines: int, bounds: np.ndarray) -> pd.DataFrame:
    widths = np.diff(bounds)
    rows = []
    for line in range(lines):
        held = s[s["line"] == line]
        start, end = held["t_dial_s"].to_numpy(float), held["t_end_s"].to_numpy(float)
        busy = _held_per_hour(start, end, bounds)
        seized = np.histogram(start, bins=bounds)[0] if len(start) else np.zeros(len(widths))
        for h, (t0, width) in enumerate(zip(bounds[:-1], widths, strict=True)):
            rows.append({"replication": rep, "line": line, "hour": h, "t_start_s": float(t0),
                         "busy_s": float(busy[h]), "occupancy": float(busy[h] / width),
                         "seizures": int(seized[h])})
    return pd.DataFrame(rows)


def _hours_table(rep: int, s: pd.DataFrame, m: pd.DataFrame, lines: int, sources: int,
                 bounds: np.ndarray) -> pd.DataFrame:
    held = s[s["line"] >= 0]
    done = held[held["end_reason"] != "unfinished"]  # cut holding times say nothing
    hold_s = (done["t_end_s"] - done["t_dial_s"]).to_numpy(float)
    mean_hold = float(hold_s.mean()) if len(hold_s) else math.nan
    carried = _held_per_hour(held["t_dial_s"].to_numpy(float), held["t_end_s"].to_numpy(float),
                             bounds)
    hour_of = np.searchsorted(bounds, s["t_dial_s"].to_numpy(float), side="right") - 1
    hour_got = np.searchsorted(bounds, m["t_retrieved_s"].to_numpy(float), side="right") - 1
    blocked_flags = (s["line"] < 0).to_numpy() & (s["end_reason"] == "busy").to_numpy()
    first = (s["attempt"] == 1).to_numpy()
    rows = []
    for h, (t0, t1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        width = t1 - t0
        here = hour_of == h
        attempts, blocked = int(here.sum()), int((here & blocked_flags).sum())
        offered = attempts * mean_hold / width if attempts else 0.0
        rows.append({
            "replication": rep, "hour": h, "t_start_s": float(t0), "lines": lines,
            "attempts": attempts, "first_attempts": int((here & first).sum()),
            "blocked": blocked,
            "blocking_probability": blocked / attempts if attempts else math.nan,
            "offered_erlangs": offered, "carried_erlangs": float(carried[h] / width),
            "erlang_b": erlang_b(offered, lines) if not math.isnan(offered) else math.nan,
            "engset": (engset_at_offered(offered, sources, lines)
                       if not math.isnan(offered) else math.nan),
            "messages_retrieved": int((hour_got == h).sum()),
            **_latency(m[hour_got == h]),
        })
    return pd.DataFrame(rows)


def _subscribers_table(rep: int, s: pd.DataFrame, m: pd.DataFrame, n: int) -> pd.DataFrame:
    rows = []
    by_sub = dict(tuple(s.groupby("subscriber")))
    got = dict(tuple(m.groupby("subscriber")))
    for i in range(n):
        si = by_sub.get(i, s.iloc[0:0])
        mi = got.get(i, m.iloc[0:0])
        connected = si[si["t_connect_s"].notna()]
        first = si.iloc[0] if len(si) else None
        rows.append({
            "replication": rep, "subscriber": i,
            "profile": first["profile"] if first is not None else None,
            "strategy": first["strategy"] if first is not None else None,
            "attempts": len(si), "blocked": int(((si["line"] < 0)
                                                 & (si["end_reason"] == "busy")).sum()),
            "calls_connected": len(connected),
            "online_s": float((connected["t_end_s"] - connected["t_connect_s"]).sum()),
            "messages_retrieved": len(mi), **_latency(mi),
        })
    return pd.DataFrame(rows)


def capacity_summary(tables: Mapping[str, pd.DataFrame]) -> dict:
    """For ``summary.json``: blocking overall and per hour (means over replications),
    and the busy hour (the hour with the most carried load)."""
    hours = tables["hours"]
    per_hour = (hours.groupby("hour", sort=True)
                .agg(attempts=("attempts", "mean"), blocked=("blocked", "mean"),
                     blocking_probability=("blocking_probability", "mean"),
                     offered_erlangs=("offered_erlangs", "mean"),
                     carried_erlangs=("carried_erlangs", "mean"), erlang_b=("erlang_b", "mean"),
                     engset=("engset", "mean"),
                     latency_mean_s=("latency_mean_s", "mean"))
                .reset_index())
    attempts, blocked = int(hours["attempts"].sum()), int(hours["blocked"].sum())
    busy = per_hour.loc[per_hour["carried_erlangs"].idxmax()] if len(per_hour) else None
    return {
        "lines": int(hours["lines"].iloc[0]) if len(hours) else 0,
        "subscribers": int(tables["subscribers"]["subscriber"].nunique()),
        "attempts": attempts, "blocked": blocked,
        "blocking_probability": blocked / attempts if attempts else None,
        "busy_hour": None if busy is None else {k: _plain(v) for k, v in busy.items()},
        "hours": [{k: _plain(v) for k, v in row.items()}
                  for row in per_hour.to_dict(orient="records")],
    }


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def render_hours(capacity: Mapping):
    """A rich Table: blocking per hour (means over replications)."""
    from rich import box
    from rich.table import Table

    p = capacity.get("blocking_probability")
    title = (f"{capacity.get('subscribers')} subscribers on {capacity.get('lines')} lines: "
             f"{capacity.get('blocked')} of {capacity.get('attempts')} attempts blocked"
             + ("" if p is None else f" ({p:.1%})"))
    # No column rules: nine columns fit an 80-column terminal.
    table = Table(title=title, box=box.SIMPLE_HEAVY, collapse_padding=True)
    for col in ("hour", "calls", "busy", "blocked", "offered", "carried", "Erlang B",
                "Engset", "latency"):
        table.add_column(col, justify="right", no_wrap=True)
    table.caption = ("calls: dial attempts (redials too); busy: attempts that found every line "
                     "taken; offered/carried: erlangs; Erlang B, Engset: the blocking the "
                     "formulas give (infinite, finite sources); latency: mean mail wait at the ISP")

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for h in capacity.get("hours", []):
        table.add_row(str(h["hour"]), num(h["attempts"], ".0f"), num(h["blocked"], ".0f"),
                      num(h["blocking_probability"], ".1%"), num(h["offered_erlangs"], ".2f"),
                      num(h["carried_erlangs"], ".2f"), num(h["erlang_b"], ".1%"),
                      num(h.get("engset"), ".1%"),
                      "-" if h["latency_mean_s"] is None else f"{h['latency_mean_s'] / 60:.0f} min")
    return table
