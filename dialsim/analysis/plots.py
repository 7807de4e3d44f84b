"""Plots of dialsim results, built on matplotlib, for papers and reports.

Every function returns a :class:`matplotlib.figure.Figure` (made without
pyplot, so no GUI is needed; a notebook shows it as an image) and saves it
when given ``path``.  Every numeric axis is labelled with its unit
(:func:`axis_label`), every other axis with what its categories are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dialsim.analysis.timings import (
    PHASE_NAMES,
    command_latency,
    key_columns,
    layer_octets,
    phase_spans,
)
from dialsim.results.summary import METRICS

__all__ = [
    "axis_label",
    "plot_cdf",
    "plot_command_latency",
    "plot_command_timeline",
    "plot_comparison",
    "plot_goodput",
    "plot_layer_octets",
    "plot_phases",
]

_SUFFIX_UNITS = (("_Bps", "B/s"), ("_bps", "bit/s"), ("_s", "s"), ("octets", "octets"),
                 ("bytes", "octets"), ("_bits", "bits"))
_LABELS = {"p": "fraction of values (0-1)", "t_s": "time since the replication started (s)"}


def axis_label(column: str) -> str:
    """A column's name as an axis label with its unit.

    >>> axis_label("time_to_retrieve_all_s")
    'time to retrieve all mail (s)'
    >>> axis_label("goodput_Bps"), axis_label("messages_duplicated"), axis_label("wait_s")
    ('mail octets per second online (B/s)', 'messages retrieved again (count)', 'wait (s)')
    """
    if column in _LABELS:
        return _LABELS[column]
    if column in METRICS:
        unit, text = METRICS[column]
        return f"{text} ({unit or 'count'})"
    for suffix, unit in _SUFFIX_UNITS:
        if column.endswith(suffix):
            stem = column[: -len(suffix)] if suffix.startswith("_") else column
            return f"{stem.replace('_', ' ').strip()} ({unit})"
    return f"{column.replace('_', ' ')} (count)"


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path)
    return fig


def _group_label(row: pd.Series, cols: Sequence[str]) -> str:
    return ", ".join(f"{c}={row[c]}" if "." in c or c == "point" else str(row[c]) for c in cols)


def _varying(df: pd.DataFrame, cols: Sequence[str]) -> list[str]:
    """The columns among ``cols`` that take more than one value in ``df``."""
    return [c for c in cols if c in df and df[c].nunique(dropna=False) > 1]


def plot_phases(sessions: pd.DataFrame, by: str | Sequence[str] | None = None,
                path: str | Path | None = None) -> Figure:
    """Stacked bars of the phases of :func:`~dialsim.analysis.timings.phases`:
    one bar per call, or with ``by`` the mean per call of each group.

    >>> fig = plot_phases(load(RESULTS).sessions)
    >>> fig.axes[0].get_ylabel(), len(fig.axes[0].patches)
    ('time (s)', 10)
    """
    keys = key_columns(sessions)
    wide = sessions[keys].reset_index(drop=True)
    for name, (s, e, _done) in phase_spans(sessions).items():
        wide[name] = np.nan_to_num(np.clip(e - s, 0.0, None))
    if by is not None:
        by = [by] if isinstance(by, str) else list(by)
        wide = wide.groupby(by, observed=True, sort=True)[PHASE_NAMES].mean().reset_index()
        labels = [_group_label(r, by) for _, r in wide.iterrows()]
        xlabel, title = ", ".join(by), "Mean time per phase per call"
    else:
        shown = _varying(wide, [k for k in keys if k not in ("replication", "session")])
        labels = [("; ".join(_group_label(r, shown).split(", ")) + " " if shown else "")
                  + f"{r['replication']}/{r['session']}" for _, r in wide.iterrows()]
        xlabel, title = "replication/session (call)", "Time per phase per call"
    fig = Figure(figsize=(max(6.0, 0.5 * len(labels) + 3), 4), layout="constrained")
    ax = fig.add_subplot()
    bottom = np.zeros(len(wide))
    for name in PHASE_NAMES:
        ax.bar(range(len(wide)), wide[name].to_numpy(dtype=float), bottom=bottom, label=name)
        bottom += wide[name].to_numpy(dtype=float)
    ax.set_xticks(range(len(wide)), labels, rotation=90 if len(labels) > 10 else 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time (s)")
    ax.set_title(title)
    if len(wide):
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_command_timeline(commands: pd.DataFrame, replication: int = 0, session: int | None = None,
                          run: str | None = None, point: int | None = None,
                          path: str | Path | None = None) -> Figure:
    """Horizontal bars from ``t_sent_s`` to ``t_done_s`` for one replication (and
    session; and run and point when the table holds several), the wait for the
    reply's first octet drawn darker.

    >>> fig = plot_command_timeline(load(RESULTS).commands, replication=0)
    >>> fig.axes[0].get_xlabel()
    'time since the replication started (s)'
    """
    rows = commands[commands["replication"] == replication]
    for col, value in (("session", session), ("run", run), ("point", point)):
        if value is not None:
            rows = rows[rows[col] == value]
    fig = Figure(figsize=(8, max(2.0, 0.22 * len(rows) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    sent = rows["t_sent_s"].to_numpy(dtype=float)
    wait = np.nan_to_num(rows["t_first_byte_s"].to_numpy(dtype=float) - sent)
    total = np.nan_to_num(rows["t_done_s"].to_numpy(dtype=float) - sent)
    ax.barh(y, total, left=sent, color="tab:blue", label="reply transfer")
    ax.barh(y, wait, left=sent, color="tab:red", label="wait for the first reply octet")
    ax.set_yticks(y, [str(c) for c in rows["command"]], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(_LABELS["t_s"])
    ax.set_ylabel("command")
    where = f"replication {replication}" + (f", session {session}" if session is not None else "")
    ax.set_title(f"Commands, {where}")
    if len(rows):
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_command_latency(commands: pd.DataFrame, by: str | None = None,
                         path: str | Path | None = None) -> Figure:
    """Mean seconds per command verb, split into the wait for the first reply
    octet and the reply's transfer; with ``by``, one bar per group side by side.

    >>> fig = plot_command_latency(load(RESULTS).commands)
    >>> fig.axes[0].get_xlabel()
    'mean time per command (s)'
    """
    c = command_latency(commands)
    groups = [None] if by is None else list(c[by].dropna().unique())
    verbs = list(dict.fromkeys(c["verb"].dropna()))
    fig = Figure(figsize=(8, max(2.5, 0.35 * len(verbs) * len(groups) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / len(groups)
    for i, g in enumerate(groups):
        part = c if g is None else c[c[by] == g]
        mean = part.groupby("verb")[["wait_s", "transfer_s"]].mean().reindex(verbs).fillna(0.0)
        y = np.arange(len(verbs)) + i * height
        suffix = "" if g is None else f" ({by}={g})"
        ax.barh(y, mean["wait_s"], height=height, label="wait for reply" + suffix)
        ax.barh(y, mean["transfer_s"], height=height, left=mean["wait_s"],
                label="reply transfer" + suffix)
    ax.set_yticks(np.arange(len(verbs)) + 0.4 - height / 2, verbs)
    ax.invert_yaxis()
    ax.set_xlabel("mean time per command (s)")
    ax.set_ylabel("command verb")
    ax.set_title("Time per command")
    if verbs:
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_goodput(rates: pd.DataFrame, commands: pd.DataFrame | None = None,
                 path: str | Path | None = None) -> Figure:
    """Goodput and line octets per second over time (from
    :func:`~dialsim.analysis.capture.goodput`); with ``commands`` (of the same
    replication) each RETR's span is shaded.

    >>> fig = plot_goodput(goodput(read_capture(RESULTS / "line-rep0.pcap")))
    >>> fig.axes[0].get_ylabel()
    'octets per second (B/s)'
    """
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.add_subplot()
    width = float(rates["t_s"].diff().median()) if len(rates) > 1 else 1.0
    t = rates["t_s"].to_numpy(dtype=float) + width / 2
    ax.plot(t, rates["line_Bps"], color="tab:gray", lw=1, label="line (all frame octets)")
    ax.plot(t, rates["goodput_Bps"], color="tab:blue", lw=1.5, label="goodput (new TCP data)")
    if commands is not None:
        retr = commands[commands["command"].astype("string").str.startswith("RETR")]
        for i, (_, r) in enumerate(retr.iterrows()):
            ax.axvspan(r["t_sent_s"], r["t_done_s"], color="tab:orange", alpha=0.12,
                       label="RETR" if i == 0 else None)
    ax.set_xlabel(_LABELS["t_s"])
    ax.set_ylabel("octets per second (B/s)")
    ax.set_title(f"Throughput towards the subscriber ({width:g} s bins)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_cdf(frame: pd.DataFrame, column: str, by: str | None = None,
             path: str | Path | None = None) -> Figure:
    """Step lines of :func:`~dialsim.analysis.compare.cdf` output, one per group.

    >>> c = cdf(command_latency(load(RESULTS).commands), "duration_s", by="verb")
    >>> fig = plot_cdf(c, "duration_s", by="verb")
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('duration (s)', 'fraction of values (0-1)')
    """
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    groups = [(None, frame)] if by is None else frame.groupby(by, observed=True, sort=True)
    for g, part in groups:
        ax.step(part[column], part["p"], where="post", label=None if g is None else f"{g}")
    ax.set_xlabel(axis_label(column))
    ax.set_ylabel(_LABELS["p"])
    ax.set_ylim(0, 1.02)
    ax.set_title(f"CDF of {axis_label(column).rsplit(' (', 1)[0]}")
    if by is not None:
        ax.legend(title=by, fontsize="small")
    return _save(fig, path)


def plot_comparison(compared: pd.DataFrame, x: str, hue: str | None = None,
                    xlabel: str | None = None, path: str | Path | None = None) -> Figure:
    """Means with confidence-interval error bars from
    :func:`~dialsim.analysis.compare.compare`: one panel per metric, ``x`` along
    the horizontal axis, one line per value of ``hue``.  ``xlabel`` names a
    numeric ``x`` with its unit (default: from the column's name, or "as in
    the scenario" for a varied key).

    >>> c = compare(replication_metrics(load(SWEEP)), ["goodput_Bps", "online_time_s"],
    ...             by="link.compression")
    >>> fig = plot_comparison(c, x="link.compression")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['mail octets per second online (B/s)', 'time online (s)']
    """
    metrics = list(dict.fromkeys(compared["metric"]))
    fig = Figure(figsize=(max(5.0, 4.2 * len(metrics)), 3.8), layout="constrained")
    categories = list(dict.fromkeys(compared.sort_values(x)[x]))
    numeric = pd.api.types.is_numeric_dtype(compared[x])
    span = float(compared[x].max() - compared[x].min()) if numeric and len(compared) else 0.0
    dodge = 0.01 * span
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        part = compared[compared["metric"] == metric]
        groups = [(None, part)] if hue is None else part.groupby(hue, observed=True, sort=True)
        for n, (g, gp) in enumerate(groups):
            gp = gp.sort_values(x)
            # lines side by side, not on top of each other
            xs = (gp[x].to_numpy(dtype=float) + dodge * n if numeric else
                  np.array([categories.index(v) for v in gp[x]], dtype=float) + 0.08 * n)
            err = np.vstack([gp["mean"] - gp["ci_low"], gp["ci_high"] - gp["mean"]])
            ax.errorbar(xs, gp["mean"], yerr=np.nan_to_num(err), marker="o", capsize=4,
                        label=None if g is None else f"{hue}={g}")
        if not numeric:
            ax.set_xticks(range(len(categories)), [str(c) for c in categories])
        ax.set_xlabel(xlabel or (x if not numeric else axis_label(x) if "." not in x
                                 else f"{x} (unit as in the scenario)"))
        ax.set_ylabel(axis_label(metric))
        ax.set_title("mean ± 95% CI")
        if hue is not None:
            ax.legend(fontsize="small")
    return _save(fig, path)


def plot_layer_octets(sessions: pd.DataFrame, path: str | Path | None = None) -> Figure:
    """Octets per direction, stacked by layer (:func:`~dialsim.analysis.timings.layer_octets`),
    summed over the calls in ``sessions``; one panel per direction.

    >>> fig = plot_layer_octets(load(RESULTS).sessions)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['size (octets)', 'size (octets)']
    """
    o = layer_octets(sessions)
    fig = Figure(figsize=(8, 3), layout="constrained")
    for i, direction in enumerate(("down", "up")):
        ax = fig.add_subplot(1, 2, i + 1)
        part = o[o["direction"] == direction].groupby("layer", sort=False)["octets"].sum()
        ax.barh(range(len(part)), part.to_numpy(dtype=float),
                color=[f"C{j}" for j in range(len(part))])
        ax.set_yticks(range(len(part)), list(part.index), fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel("size (octets)")
        ax.set_ylabel("layer")
        ax.set_title("to the subscriber" if direction == "down" else "from the subscriber")
    return _save(fig, path)
