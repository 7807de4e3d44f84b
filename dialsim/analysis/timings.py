"""Where the time and the octets of a call go: phases, commands, layers.

- :func:`phases`: each call cut into the phases of :data:`PHASES` (from the
  ``t_*`` columns of the sessions table), in seconds;
- :func:`command_latency`: each POP3/SMTP command's wait for the first reply
  octet and its transfer, in seconds;
- :func:`layer_octets`: each call's serial-line octets split by layer, down to
  the modem's own line coding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PHASES", "command_latency", "key_columns", "layer_octets", "phase_spans", "phases"]

# (phase, the column of its start, the column of its end)
PHASES = (
    ("dialing", "t_dial_s", "t_connect_s"),             # dial tone, digits, ringing, training
    ("link setup", "t_connect_s", "t_link_up_s"),       # login chat; PPP: LCP, auth, IPCP
    ("outbox, greeting", "t_link_up_s", "t_pop3_greeting_s"),  # SMTP outbox, POP3 connect
    ("login", "t_pop3_greeting_s", "t_logged_in_s"),    # USER/PASS or APOP
    ("mail", "t_logged_in_s", "t_end_s"),               # STAT, UIDL, RETR, DELE, QUIT
)
PHASE_NAMES = [name for name, _start, _end in PHASES]

_KEYS = ("run", "scenario", "point", "measured")


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` that say where a row came from: the key columns
    :func:`~dialsim.analysis.load.load` adds (those present), then
    ``replication`` and ``session``.  Varied keys are the columns with a dot.

    >>> key_columns(load(SWEEP).sessions)
    ['run', 'scenario', 'point', 'link.compression', 'measured', 'replication', 'session']
    """
    varied = [c for c in df.columns if "." in c]
    keys = [c for c in ("run", "scenario", "point") if c in df.columns] + varied
    return keys + [c for c in ("measured", "replication", "session") if c in df.columns]


def phase_spans(sessions: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Phase -> (start_s, end_s, completed) arrays aligned with the rows of
    ``sessions``: NaN where the call never reached the phase; a phase the call
    ended in ends at ``t_end_s``, not completed.

    >>> start, end, done = phase_spans(load(RESULTS).sessions)["dialing"]
    >>> bool((end > start).all()), bool(done.all())
    (True, True)
    """
    t_end = sessions["t_end_s"].to_numpy(dtype=float)
    spans = {}
    for name, start, end in PHASES:
        s = sessions[start].to_numpy(dtype=float) if start in sessions else np.full(len(t_end), np.nan)
        e = sessions[end].to_numpy(dtype=float) if end in sessions else np.full(len(t_end), np.nan)
        done = ~np.isnan(e)
        e = np.where(done | np.isnan(s), e, t_end)
        spans[name] = (s, e, done)
    return spans


def phases(sessions: pd.DataFrame) -> pd.DataFrame:
    """One row per call and phase reached: the keys, ``phase`` (ordered as in
    :data:`PHASES`), ``start_s``, ``end_s``, ``duration_s`` (seconds) and
    ``completed``.  A call that ended inside a phase (busy, carrier lost) has
    that phase end at ``t_end_s`` with ``completed`` False, and no later phase.

    >>> p = phases(load(RESULTS).sessions)
    >>> list(p.phase.cat.categories)
    ['dialing', 'link setup', 'outbox, greeting', 'login', 'mail']
    >>> bool((p.duration_s >= 0).all()), bool(p.completed.all())
    (True, True)
    """
    keys = key_columns(sessions)
    base = sessions[keys].reset_index(drop=True)
    parts = []
    for name, (s, e, done) in phase_spans(sessions).items():
        part = base.copy()
        part["phase"] = name
        part["start_s"], part["end_s"] = s, e
        part["duration_s"] = np.clip(e - s, 0.0, None)
        part["completed"] = done
        parts.append(part[~np.isnan(s) & ~np.isnan(e)])
    out = pd.concat(parts)
    out["phase"] = pd.Categorical(out["phase"], categories=PHASE_NAMES, ordered=True)
    out["_row"] = out.index
    out = out.sort_values(["_row", "phase"], kind="stable").drop(columns="_row")
    return out.reset_index(drop=True)


def command_latency(commands: pd.DataFrame) -> pd.DataFrame:
    """The commands table with ``verb`` (RETR, DELE, ...; SMTP: EHLO, MAIL, EOM, ...),
    ``wait_s`` (sent to the first octet of the reply), ``transfer_s`` (first to
    last octet of the reply), ``duration_s`` (sent to done) and ``reply_Bps``
    (reply octets per second of the whole command).

    >>> c = command_latency(load(RESULTS).commands)
    >>> sorted(set(c.verb))
    ['DELE', 'PASS', 'QUIT', 'RETR', 'STAT', 'UIDL', 'USER']
    >>> bool(((c.wait_s + c.transfer_s - c.duration_s).abs() < 1e-9).all())
    True
    """
    out = commands.copy()
    out["verb"] = out["command"].astype("string").str.split(" ", n=1).str[0]
    out["wait_s"] = out["t_first_byte_s"] - out["t_sent_s"]
    out["transfer_s"] = out["t_done_s"] - out["t_first_byte_s"]
    out["duration_s"] = out["t_done_s"] - out["t_sent_s"]
    duration = out["duration_s"].where(out["duration_s"] > 0)
    out["reply_Bps"] = out["bytes_down"] / duration
    return out


# (layer, column stem): the subscriber's serial octets by layer (docs/results.md)
LAYERS = (
    ("application", "app_octets"),
    ("TCP/IP headers", "tcpip_header_octets"),
    ("link framing", "framing_octets"),
    ("link control", "link_control_octets"),
)


def layer_octets(sessions: pd.DataFrame) -> pd.DataFrame:
    """One row per call, direction ("down", "up") and layer: ``octets``.  The
    layers are those of :data:`LAYERS` (the serial octets of the subscriber's
    port) plus "modem line coding": the octets' worth of bits the modems add
    or save on the line (start/stop bits or LAPM framing, less V.42bis; negative
    when compression saves more than framing costs; NaN where the line is not
    known, as on a real modem).

    >>> o = layer_octets(load(RESULTS).sessions)
    >>> sorted(set(o.layer))
    ['TCP/IP headers', 'application', 'link control', 'link framing', 'modem line coding']
    >>> int(o[o.layer == "application"].octets.sum()) > 0
    True
    """
    keys = key_columns(sessions)
    parts = []
    for direction in ("down", "up"):
        for layer, stem in LAYERS:
            col = f"{direction}_{stem}"
            if col in sessions:
                part = sessions[keys].copy()
                part["direction"], part["layer"] = direction, layer
                part["octets"] = sessions[col].fillna(0).to_numpy(dtype=float)
                parts.append(part)
        part = sessions[keys].copy()
        part["direction"], part["layer"] = direction, "modem line coding"
        bits = sessions[f"line_bits_{direction}"].to_numpy(dtype=float)
        serial = sessions[f"line_bytes_{direction}"].to_numpy(dtype=float)
        # no line bits for serial octets: not known (a measured session on a real modem)
        part["octets"] = np.where((bits == 0) & (serial > 0), np.nan, bits / 8.0 - serial)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
