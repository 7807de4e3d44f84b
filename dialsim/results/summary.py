"""The run summary: per-replication metrics from the tables, then mean / median / p95
and the 95% confidence interval of the mean (Student t, :mod:`dialsim.results.stats`).

Every metric is first computed once per replication (``per_replication``), then
summarized over replications, ignoring replications where it is undefined (NaN,
e.g. no call ever connected).  Definitions (times in seconds, from the tables):

- ``sessions``: rows of ``sessions`` (every dial attempt, busy ones too);
- ``calls_connected``: sessions with a ``t_connect_s``;
- ``carrier_losses``: sessions whose ``end_reason`` is ``carrier_lost``;
- ``connect_time_s``: mean of ``t_connect_s - t_dial_s`` over connected sessions;
- ``login_time_s``: mean of ``t_logged_in_s - t_connect_s`` over logged-in sessions;
- ``online_time_s``: sum of ``t_end_s - t_connect_s`` over connected sessions;
- ``time_to_retrieve_all_s``: ``t_retrieved_s`` of the last first-time retrieval;
  NaN when nothing was retrieved, or when ``extra["messages_unretrieved_per_replication"]``
  says mail stored at the ISP was never retrieved (then not all mail was);
- ``messages_retrieved`` / ``messages_duplicated``: rows of ``messages`` without /
  with ``duplicate``;
- ``octets_retrieved``, ``line_bytes_down``, ``line_bytes_up``: sums over sessions;
- ``goodput_Bps``: ``octets_retrieved / online_time_s``;
- ``command_time_s``: mean of ``t_done_s - t_sent_s`` over commands;
- ``message_latency_s``: mean ``latency_s`` (arrival at the ISP to the local
  mailbox) over first-time retrievals;
- ``message_attempts``: mean ``attempts`` (RETRs the ISP started for the
  message, the one that delivered it included) over first-time retrievals;
- ``octets_wasted``: sum over sessions (RETR octets transferred and then
  fetched again, or cut short);
- ``phone_cost``: sum over sessions (the scenario's tariff).

``messages_lost`` and ``messages_duplicated`` at the top level come from
``extra`` (the integrator checks the maildrops); without them the duplicate count
of the ``messages`` table is used and nothing is counted as lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from dialsim.results.stats import mean_confidence_interval

__all__ = ["METRICS", "per_replication_metrics", "render_summary", "summarize"]

# metric -> (unit shown, description)
METRICS: dict[str, tuple[str, str]] = {
    "time_to_retrieve_all_s": ("s", "time to retrieve all mail"),
    "connect_time_s": ("s", "dial to CONNECT"),
    "login_time_s": ("s", "CONNECT to logged in"),
    "online_time_s": ("s", "time online"),
    "goodput_Bps": ("B/s", "mail octets per second online"),
    "sessions": ("", "dial attempts"),
    "calls_connected": ("", "calls connected"),
    "carrier_losses": ("", "carrier losses"),
    "messages_retrieved": ("", "messages retrieved"),
    "messages_duplicated": ("", "messages retrieved again"),
    "octets_retrieved": ("B", "mail octets retrieved"),
    "line_bytes_down": ("B", "line bytes down"),
    "line_bytes_up": ("B", "line bytes up"),
    "command_time_s": ("s", "mean command time"),
    "message_latency_s": ("s", "mean mail latency (arrival to mailbox)"),
    "message_attempts": ("", "RETR attempts per message"),
    "octets_wasted": ("B", "octets fetched again or cut short"),
    "phone_cost": ("", "phone cost"),
}

NAN = float("nan")


def _columns(table: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns of an Arrow table or a pandas DataFrame as numpy arrays (numbers with
    NaN for missing; text and booleans with gaps as objects, None for missing)."""
    out = {}
    for name in names:
        col = table[name]
        if isinstance(col, pa.ChunkedArray):  # (its to_numpy would import pandas)
            typ, values = col.type, col.to_pylist()
            if pa.types.is_floating(typ) or (pa.types.is_integer(typ) and col.null_count):
                out[name] = np.array(values, dtype=float)
            elif pa.types.is_integer(typ):
                out[name] = np.array(values, dtype=np.int64)
            elif pa.types.is_boolean(typ) and not col.null_count:
                out[name] = np.array(values, dtype=bool)
            else:
                out[name] = np.array(values, dtype=object)
        elif col.dtype.kind in "biuf":
            out[name] = col.to_numpy()
        else:
            out[name] = col.to_numpy(dtype=object, na_value=None)
    return out


def _sum(v: np.ndarray) -> float:
    """The sum with missing values as 0 (pandas' ``Series.sum()``)."""
    v = np.asarray(v, dtype=float)
    return float(np.where(np.isnan(v), 0.0, v).sum())


def _mean(v: np.ndarray) -> float:
    """The mean of the values that are not missing (NaN when there are none)."""
    v = np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.sum() / len(v)) if len(v) else NAN


def _max(v: np.ndarray) -> float:
    v = np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.max()) if len(v) else NAN


_SESSION_COLUMNS = ("replication", "t_dial_s", "t_connect_s", "t_logged_in_s", "t_end_s",
                    "end_reason", "octets_retrieved", "line_bytes_down", "line_bytes_up",
                    "octets_wasted", "phone_cost")
_MESSAGE_COLUMNS = ("replication", "duplicate", "direction", "t_retrieved_s", "latency_s",
                    "attempts")
_COMMAND_COLUMNS = ("replication", "t_sent_s", "t_done_s")


def _metric_rows(tables: Mapping[str, Any], replications: list[int],
                 unretrieved: Mapping[int, int] | None = None) -> list[dict[str, Any]]:
    """One dict per replication: ``replication`` and every metric in :data:`METRICS`."""
    sessions = _columns(tables["sessions"], _SESSION_COLUMNS)
    messages = _columns(tables["messages"], _MESSAGE_COLUMNS)
    commands = _columns(tables["commands"], _COMMAND_COLUMNS)
    rows = []
    for rep in replications:
        s = {k: v[sessions["replication"] == rep] for k, v in sessions.items()}
        m = {k: v[messages["replication"] == rep] for k, v in messages.items()}
        c = {k: v[commands["replication"] == rep] for k, v in commands.items()}
        connected = ~np.isnan(s["t_connect_s"].astype(float))
        online = _sum(s["t_end_s"][connected] - s["t_connect_s"][connected])
        first = ~m["duplicate"].astype(bool)
        got = first & (m["direction"] == "retrieved")
        octets = _sum(s["octets_retrieved"])
        t_all = _max(m["t_retrieved_s"][first])
        if unretrieved is not None and unretrieved.get(rep, 0) > 0:
            t_all = NAN
        rows.append(
            {
                "replication": rep,
                "time_to_retrieve_all_s": t_all,
                "connect_time_s": _mean(s["t_connect_s"][connected] - s["t_dial_s"][connected]),
                "login_time_s": _mean(s["t_logged_in_s"] - s["t_connect_s"]),
                "online_time_s": online,
                "goodput_Bps": octets / online if online > 0 else NAN,
                "sessions": float(len(s["replication"])),
                "calls_connected": float(connected.sum()),
                "carrier_losses": float((s["end_reason"] == "carrier_lost").sum()),
                "messages_retrieved": float(first.sum()),
                "messages_duplicated": float(len(first) - first.sum()),
                "octets_retrieved": octets,
                "line_bytes_down": _sum(s["line_bytes_down"]),
                "line_bytes_up": _sum(s["line_bytes_up"]),
                "command_time_s": _mean(c["t_done_s"] - c["t_sent_s"]),
                "message_latency_s": _mean(m["latency_s"][got]),
                "message_attempts": _mean(m["attempts"][got]),
                "octets_wasted": _sum(s["octets_wasted"]),
                "phone_cost": _sum(s["phone_cost"]),
            }
        )
    return rows


def per_replication_metrics(
    tables: Mapping[str, Any], replications: list[int],
    unretrieved: Mapping[int, int] | None = None,
):
    """One row per replication, one column per metric in :data:`METRICS` (a pandas
    DataFrame; ``tables`` may be Arrow tables or DataFrames)."""
    import pandas as pd

    return pd.DataFrame(_metric_rows(tables, replications, unretrieved),
                        columns=["replication", *METRICS])


def _count(value: Any) -> int | None:
    """A count, or None where it cannot be known (mail lost at a real ISP)."""
    return None if value is None else int(value)


# np.median and np.percentile check for NaN in a way that imports numpy.ma,
# some 16 ms of a whole `dialsim run`; the values here have no NaN, so the two
# below do their arithmetic (tests/unit/test_arrow_tables.py checks them
# against numpy's).


def _median(s: np.ndarray) -> float:
    """``np.median`` of sorted values without NaN, by its arithmetic: the middle
    value, or the mean of the two middle ones (in Python floats, the same IEEE
    arithmetic as numpy's scalars, which would warn on inf - inf or an overflow)."""
    h = len(s) // 2
    return float(s[h]) if len(s) & 1 else (float(s[h - 1]) + float(s[h])) / 2


def _percentile(s: np.ndarray, q: float) -> float:
    """``np.percentile(s, q)`` (its default, linear method) of sorted values
    without NaN, by numpy's arithmetic: index ``(n - 1) * q / 100``, then the
    two neighbours interpolated from the nearer one."""
    last = len(s) - 1
    at = last * (q / 100)
    lo = min(math.floor(at), last)
    t = at - lo
    # At the end numpy interpolates a value with itself too: inf - inf gives NaN
    # (in Python floats, without numpy's RuntimeWarning on a user's terminal).
    a, b = float(s[lo]), float(s[min(lo + 1, last)])
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _stats(values: list[float]) -> dict[str, float | int | None]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return {"mean": None, "median": None, "p95": None, "min": None, "max": None, "n": 0,
                "ci95_low": None, "ci95_high": None}
    _mean, low, high, _n = mean_confidence_interval(v, 0.95)
    ordered = np.sort(v)
    return {
        "mean": float(v.mean()),
        "median": _median(ordered),
        "p95": _percentile(ordered, 95),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": len(v),
        # Student's t interval for the mean over replications (None below 2 values)
        "ci95_low": None if math.isnan(low) else low,
        "ci95_high": None if math.isnan(high) else high,
    }


def summarize(tables: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict:
    """The ``summary.json`` content.  ``extra`` keys are copied to the top level;
    recognised: ``replications`` (count), ``seeds``, ``scenario``, ``messages_lost``,
    ``messages_duplicated``, ``messages_unretrieved_per_replication`` ({rep: n})."""
    import dialsim

    extra = dict(extra or {})
    present = set(_columns(tables["sessions"], ("replication",))["replication"].tolist())
    if "replications" in extra:
        reps = sorted(set(range(int(extra["replications"]))) | present)
    else:
        reps = sorted(present)
    left = extra.get("messages_unretrieved_per_replication")
    unretrieved = {int(k): int(v) for k, v in left.items()} if left is not None else None
    per = _metric_rows(tables, reps, unretrieved)
    dup_in_tables = int(_columns(tables["messages"], ("duplicate",))["duplicate"].sum())
    summary: dict[str, Any] = {
        "dialsim_version": dialsim.__version__,
        "scenario": extra.pop("scenario", None),
        "replications": len(reps),
        "seeds": extra.pop("seeds", None),
        "messages_lost": _count(extra.pop("messages_lost", 0)),
        "messages_duplicated": int(extra.pop("messages_duplicated", dup_in_tables)),
    }
    summary.update(extra)
    summary["metrics"] = {name: _stats([row[name] for row in per]) for name in METRICS}
    summary["per_replication"] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in per
    ]
    return summary


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    if unit == "B":
        return f"{value / 1024:,.1f} KiB" if abs(value) >= 10_000 else f"{value:,.0f} B"
    if unit == "B/s":
        return f"{value:,.0f} B/s"
    return f"{value:,.2f} {unit}"


def _fmt_mean_ci(st: Mapping[str, Any], unit: str) -> str:
    """``mean ± half-width`` of the mean's 95% interval (the mean alone where there is none)."""
    mean, low, high = st.get("mean"), st.get("ci95_low"), st.get("ci95_high")
    if mean is None or low is None or high is None:
        return _fmt(mean, unit)
    shown, half = _fmt(mean, unit), _fmt((high - low) / 2.0, unit)
    suffix = " " + half.rsplit(" ", 1)[1] if " " in half else ""
    if suffix and shown.endswith(suffix):
        shown = shown[: -len(suffix)]
    return f"{shown} ± {half}"


def render_summary(summary: Mapping[str, Any]):
    """A rich Table of the summary for the command line; with several
    replications the mean comes with its 95% confidence interval (Student t)."""
    from rich.table import Table

    replications = int(summary.get("replications") or 0)
    title = f"{summary.get('scenario') or 'run'}: {replications} replication(s)"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean ± 95% CI" if replications > 1 else "mean", justify="right")
    for col in ("median", "p95"):
        table.add_column(col, justify="right")
    metrics = summary.get("metrics", {})
    for name, (unit, label) in METRICS.items():
        st = metrics.get(name)
        if not st:
            continue
        table.add_row(label, _fmt_mean_ci(st, unit), *(_fmt(st.get(k), unit) for k in ("median", "p95")))
    table.add_section()
    for key, label in (("messages_lost", "messages lost"), ("messages_duplicated", "messages duplicated")):
        value = summary.get(key, 0)
        style = "red" if key == "messages_lost" and value else None
        value = "unknown" if value is None else value
        table.add_row(label, str(value), "", "", style=style)
    return table
