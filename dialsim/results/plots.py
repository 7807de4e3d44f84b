"""Plots from the results tables (matplotlib, no GUI: figures are built with
``matplotlib.figure.Figure`` and saved with the Agg canvas).

- :func:`plot_phases`: per session, a stacked bar of time spent dialling, bringing
  the link up, waiting for the POP3 greeting, logging in, and in the mail session;
- :func:`plot_command_timeline`: per command, a bar from sent to done, with the
  wait for the first reply byte drawn darker.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["PHASES", "plot_command_timeline", "plot_phases"]

# (label, start column, end column)
PHASES = (
    ("dial and train", "t_dial_s", "t_connect_s"),
    ("link up", "t_connect_s", "t_link_up_s"),
    ("POP3 greeting", "t_link_up_s", "t_pop3_greeting_s"),
    ("login", "t_pop3_greeting_s", "t_logged_in_s"),
    ("mail", "t_logged_in_s", "t_end_s"),
)


def phase_durations(sessions: pd.DataFrame) -> pd.DataFrame:
    """Seconds per phase per session (0 where a phase was never reached)."""
    out = pd.DataFrame(index=sessions.index)
    for label, start, end in PHASES:
        out[label] = (sessions[end] - sessions[start]).clip(lower=0).fillna(0.0)
    return out


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path)
    return fig


def plot_phases(sessions: pd.DataFrame, path: str | Path | None = None) -> Figure:
    """Stacked bars, one per session (labelled replication/session)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    durations = phase_durations(sessions)
    labels = [f"{r}/{s}" for r, s in zip(sessions["replication"], sessions["session"], strict=True)]
    x = range(len(sessions))
    bottom = pd.Series(0.0, index=sessions.index)
    for label, _start, _end in PHASES:
        ax.bar(x, durations[label], bottom=bottom, label=label)
        bottom = bottom + durations[label]
    ax.set_xticks(list(x), labels, rotation=90 if len(labels) > 12 else 0)
    ax.set_xlabel("replication/session")
    ax.set_ylabel("seconds")
    ax.set_title("Time per phase per session")
    if len(sessions):
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_command_timeline(
    commands: pd.DataFrame,
    replication: int = 0,
    session: int | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Horizontal bars from ``t_sent_s`` to ``t_done_s`` for one replication (and session)."""
    rows = commands[commands["replication"] == replication]
    if session is not None:
        rows = rows[rows["session"] == session]
    fig = Figure(figsize=(8, max(2.0, 0.25 * len(rows) + 1)), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    wait = (rows["t_first_byte_s"] - rows["t_sent_s"]).fillna(0.0)
    total = (rows["t_done_s"] - rows["t_sent_s"]).fillna(0.0)
    ax.barh(y, total, left=rows["t_sent_s"], color="tab:blue", label="sent to done")
    ax.barh(y, wait, left=rows["t_sent_s"], color="tab:red", label="wait for first byte")
    ax.set_yticks(y, [str(c) for c in rows["command"]], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("seconds since replication start")
    ax.set_title(f"Commands, replication {replication}" + (f", session {session}" if session else ""))
    if len(rows):
        ax.legend(fontsize="small")
    return _save(fig, path)
