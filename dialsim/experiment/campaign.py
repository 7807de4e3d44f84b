"""Fault injection: drop the carrier at chosen points of a reference call, for every strategy.

For a reference mailbox and each client strategy (:data:`STRATEGIES`), a clean
run gives the call's timeline; its phases (:data:`PHASES`: dialing, training,
LCP, authentication, IPCP, the TCP handshake, the POP3 greeting, USER/PASS,
inside RETR, between DELE and QUIT, and the UPDATE state after QUIT) are cut
into points, and the same replication runs again with the line dropped at
each point (``link.carrier_loss.at``, with ``while_dialing`` so that the call
setup can be hit too).  The subscriber redials until the mail is in.

Every run is checked against what the strategy implies, derived from the
clean timeline and the strategy's rules -- not recorded from a run:

- nothing is lost (a message leaves the maildrop only after it reached the
  subscriber intact);
- a client that remembers UIDLs never delivers a message twice;
- a client that does not gets again exactly the messages it had received in
  the POP3 session the drop interrupted, unless the server had already
  committed that session's DELEs (the UPDATE state runs when QUIT arrives,
  whether or not its answer does);
- every message the strategy fetches is delivered, and every message it
  leaves (over the size limit, or kept on the server) is still in the
  maildrop.

:func:`run_campaign` returns one :class:`Drop` per point;
:func:`campaign_table` sums them per strategy and phase.  ``benchmarks/
fault_campaign.py`` runs it with 200+ points per strategy and writes
``docs/fault-campaign.md``; the suite runs a few points per phase.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dialsim.experiment.world import run_replication
from dialsim.results.tables import build_tables
from dialsim.scenario.load import scenario_from_text

__all__ = [
    "PHASES",
    "REFERENCE",
    "STRATEGIES",
    "Drop",
    "campaign_table",
    "expected_duplicates",
    "phase_windows",
    "run_campaign",
]

REFERENCE = """
name: fault-campaign
description: the reference mailbox of the fault-injection campaign
seed: 5
duration: 2 h
framing: ppp
ppp: {auth: pap}
link:
  profile: v34
  connect_rate: 28.8k
  carrier_loss: {while_dialing: true}
subscriber:
  user: alice
  password: tanstaaf
  redial: {attempts: 40, delay: 30 s}
isp:
  maildrop:
    messages: 8
    size: {distribution: lognormal, median: 4 KiB, sigma: 1.0}
    attachments: 0.25
  pop3: {autologout: 1 min}
"""
"""A V.34 call with PPP and PAP (so LCP, authentication and IPCP are phases of
their own) to a maildrop of 8 messages, 3 of them over the size limit."""

SIZE_LIMIT = "6 KiB"

STRATEGIES: dict[str, dict] = {
    "delete, UIDL": {"mode": "delete", "use_uidl": True},
    "delete, no UIDL": {"mode": "delete", "use_uidl": False},
    "keep, UIDL": {"mode": "keep", "use_uidl": True},
    "leave 7 days": {"mode": "keep", "use_uidl": True, "leave_for": "7 d"},
    "batch 3, UIDL": {"mode": "delete", "use_uidl": True, "batch": 3},
    "batch 3, no UIDL": {"mode": "delete", "use_uidl": False, "batch": 3},
    "size limit, skip": {"mode": "delete", "size_limit": SIZE_LIMIT},
    "size limit, headers": {"mode": "delete", "size_limit": SIZE_LIMIT, "over_limit": "headers"},
    "smallest first": {"mode": "delete", "order": "smallest_first"},
    "hang up when idle": {"mode": "delete", "hangup": "idle", "idle_hangup": "1 min"},
}
"""The strategies of fetchmail, Eudora and Netscape the campaign compares
(``subscriber.strategy`` keys)."""

PHASES = ("dialing", "training", "lcp", "authentication", "ipcp", "tcp_handshake", "greeting",
          "user_pass", "retr", "dele_to_quit", "update")


@dataclass
class Drop:
    """One run: the strategy, the phase and time of the drop, and what came of it."""

    strategy: str
    phase: str
    t_drop_s: float
    time_to_retrieve_all_s: float
    octets_wasted: int
    duplicates: int
    expected_duplicates: int
    lost: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Reference:
    tables: dict[str, pd.DataFrame]
    commits: list[float]
    windows: dict[str, list[tuple[float, float]]]
    fetched: set[str]  # sha256 of what the strategy delivers
    left: set[str]  # sha256 of what it leaves on the server


def _scenario(strategy: dict, drop_at: float | None):
    sc = scenario_from_text(REFERENCE)
    over: dict = {"subscriber.strategy": strategy}
    if drop_at is not None:
        over["link.carrier_loss.at"] = [drop_at]
    return sc.with_overrides(over, origin="fault campaign")


def _pop3_sessions(commands: pd.DataFrame) -> list[pd.DataFrame]:
    """The POP3 commands of the first call, cut at each QUIT."""
    pop = commands[(commands["protocol"] == "pop3") & (commands["session"] == 1)]
    out, start = [], 0
    for i, cmd in enumerate(pop["command"]):
        if cmd == "QUIT":
            out.append(pop.iloc[start:i + 1])
            start = i + 1
    return out


def phase_windows(tables: dict[str, pd.DataFrame]) -> dict[str, list[tuple[float, float]]]:
    """Each phase's time intervals in the clean run's first call."""
    s = tables["sessions"].iloc[0]
    win: dict[str, list[tuple[float, float]]] = {}
    edges = [("dialing", "t_dial_s", "t_answer_s"), ("training", "t_answer_s", "t_connect_s"),
             ("lcp", "t_connect_s", "t_lcp_up_s"), ("authentication", "t_lcp_up_s", "t_auth_s"),
             ("ipcp", "t_auth_s", "t_ipcp_up_s"),
             ("tcp_handshake", "t_link_up_s", "t_pop3_connected_s"),
             ("greeting", "t_pop3_connected_s", "t_pop3_greeting_s"),
             ("user_pass", "t_pop3_greeting_s", "t_logged_in_s")]
    for name, a, b in edges:
        win[name] = [(float(s[a]), float(s[b]))]
    win["retr"], win["dele_to_quit"], win["update"] = [], [], []
    for cmds in _pop3_sessions(tables["commands"]):
        retr = cmds[cmds["command"].str.startswith("RETR")]
        win["retr"] += list(zip(retr["t_sent_s"], retr["t_done_s"], strict=True))
        quit_ = cmds.iloc[-1]
        dele = cmds[cmds["command"].str.startswith("DELE")]
        if len(dele):
            win["dele_to_quit"].append((float(dele["t_sent_s"].iloc[-1]), float(quit_["t_sent_s"])))
        win["update"].append((float(quit_["t_sent_s"]), float(quit_["t_done_s"])))
    return {k: [(a, b) for a, b in v if b > a] for k, v in win.items()}


def points_in(windows: list[tuple[float, float]], n: int) -> list[float]:
    """``n`` times spread evenly over the intervals, never on an edge."""
    total = sum(b - a for a, b in windows)
    if total <= 0 or n <= 0:
        return []
    out = []
    for j in range(n):
        x = (j + 0.5) / n * total
        for a, b in windows:
            if x < b - a:
                out.append(a + x)
                break
            x -= b - a
    return out


def expected_duplicates(strategy: dict, tables: dict[str, pd.DataFrame], commits: list[float],
                        t_drop: float) -> int:
    """Messages delivered twice when the line drops at ``t_drop`` in the clean run's
    first call: none for a client that remembers UIDLs; for one that does not,
    those it had received in the interrupted POP3 session, unless that session's
    UPDATE state had already committed its DELEs."""
    if strategy.get("use_uidl", True):
        return 0
    got = tables["messages"]
    got = got[(got["direction"] == "retrieved") & (got["session"] == 1)]
    t_begin = -math.inf
    for k, cmds in enumerate(_pop3_sessions(tables["commands"])):
        t_quit_done = float(cmds.iloc[-1]["t_done_s"])
        if t_drop < t_quit_done:
            if k < len(commits) and commits[k] <= t_drop:
                return 0  # the QUIT had arrived: the DELEs took effect
            mine = got[(got["t_retrieved_s"] > t_begin) & (got["t_retrieved_s"] < t_drop)]
            return len(mine) if strategy.get("mode", "delete") == "delete" else 0
        t_begin = t_quit_done
    return 0


def _reference(strategy: dict, workdir: Path) -> _Reference:
    sc = _scenario(strategy, None)
    out = run_replication(sc, 0, workdir / "clean")
    tables = build_tables([out.recorder])
    fetched = set(out.retrieved_count)
    left = set(out.stored) - fetched
    return _Reference(tables, list(out.commits), phase_windows(tables), fetched, left)


def _one_drop(name: str, strategy: dict, ref: _Reference, phase: str, t: float,
              workdir: Path) -> Drop:
    sc = _scenario(strategy, t)
    out = run_replication(sc, 0, workdir)
    tables = build_tables([out.recorder])
    m = tables["messages"]
    first = m[(m["direction"] == "retrieved") & ~m["duplicate"]]
    expected = expected_duplicates(strategy, ref.tables, ref.commits, t)
    drop = Drop(name, phase, t,
                float(first["t_retrieved_s"].max()) if len(first) else math.nan,
                int(tables["sessions"]["octets_wasted"].sum()), out.messages_duplicated,
                expected, out.messages_lost)
    if out.messages_lost:
        drop.problems.append(f"{out.messages_lost} message(s) lost")
    if out.messages_duplicated != expected:
        drop.problems.append(f"{out.messages_duplicated} duplicate(s), expected {expected}")
    if set(out.retrieved_count) != ref.fetched:
        drop.problems.append("not the messages the strategy fetches")
    if not ref.left <= out.remaining:
        drop.problems.append("a message the strategy leaves is gone from the server")
    return drop


def _drop_task(task: tuple) -> Drop:
    # A worker process's unit of work: everything comes in as arguments.
    name, strategy, ref, phase, t = task
    work = Path(tempfile.mkdtemp(prefix="dialsim-drop-"))
    try:
        return _one_drop(name, strategy, ref, phase, t, work / "rep")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_campaign(points_per_phase: int, strategies: dict[str, dict] | None = None,
                 phases: Iterable[str] = PHASES, *, workers: int = 1,
                 on_run: Callable[[Drop], None] | None = None) -> list[Drop]:
    """Every strategy, ``points_per_phase`` drops in each phase it has; with
    ``workers`` > 1 in that many processes (the result is the same)."""
    strategies = STRATEGIES if strategies is None else strategies
    phases = list(phases)
    tasks = []
    scratch = Path(tempfile.mkdtemp(prefix="dialsim-campaign-"))
    try:
        for name, strategy in strategies.items():
            ref = _reference(strategy, scratch / name.replace(" ", "_").replace(",", ""))
            for phase in phases:
                tasks += [(name, strategy, ref, phase, t)
                          for t in points_in(ref.windows.get(phase, []), points_per_phase)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_drop_task, tasks, chunksize=4)
            drops = []
            for d in results:
                drops.append(d)
                if on_run is not None:
                    on_run(d)
        return drops
    drops = []
    for task in tasks:
        drops.append(_drop_task(task))
        if on_run is not None:
            on_run(drops[-1])
    return drops


def campaign_table(drops: list[Drop]) -> pd.DataFrame:
    """Per strategy and phase: drops, mean time to retrieve all (s), mean wasted
    octets, duplicates (total, and as expected), lost, runs that broke a rule."""
    df = pd.DataFrame([{**d.__dict__, "ok": d.ok} for d in drops])
    order = {p: i for i, p in enumerate(PHASES)}
    g = df.groupby(["strategy", "phase"], sort=False)
    table = g.agg(drops=("t_drop_s", "size"),
                  time_to_retrieve_all_s=("time_to_retrieve_all_s", "mean"),
                  octets_wasted_mean=("octets_wasted", "mean"),
                  duplicates=("duplicates", "sum"),
                  duplicates_expected=("expected_duplicates", "sum"),
                  lost=("lost", "sum"),
                  failed=("ok", lambda s: int((~s).sum()))).reset_index()
    names = {n: i for i, n in enumerate(dict.fromkeys(df["strategy"]))}
    table["_s"] = table["strategy"].map(names)
    table["_o"] = table["phase"].map(order)
    return table.sort_values(["_s", "_o"], kind="stable").drop(columns=["_s", "_o"])
