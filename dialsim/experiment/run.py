"""Run a scenario's replications and collect the results tables.

Replications are independent: each has its own simpy environment, its own
scratch mail (in memory) and its own seed streams (see
:mod:`dialsim.experiment.world`), so they can run in any order or in parallel
and give the same tables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dialsim
from dialsim.experiment.capture import capture_name, write_capture
from dialsim.experiment.world import ReplicationOutcome, run_replication
from dialsim.results.summary import summarize
from dialsim.results.tables import build_tables, write_results
from dialsim.scenario.load import masked_text


@dataclass
class RunResult:
    out_dir: Path
    tables: dict
    summary: dict
    outcomes: list[ReplicationOutcome]


def run_replications(
    sc, *, capture: bool = False, on_replication_done: Callable[[int], None] | None = None
) -> list[ReplicationOutcome]:
    """Every replication of ``sc``, each with its own scratch mail."""
    outcomes: list[ReplicationOutcome] = []
    for rep in range(sc.replications):
        outcomes.append(run_replication(sc, rep, capture=capture))
        if on_replication_done is not None:
            on_replication_done(rep)
    return outcomes


def outcome_totals(sc, outcomes: list[ReplicationOutcome]) -> dict:
    """What the tables cannot say on their own: mail lost and duplicated, seeds."""
    return {
        "messages_lost": sum(o.messages_lost for o in outcomes),
        "messages_duplicated": sum(o.messages_duplicated for o in outcomes),
        "messages_stored": sum(len(o.stored) for o in outcomes),
        # Mail stored at the ISP and never retrieved intact: "time to retrieve all"
        # is undefined for such a replication.
        "messages_unretrieved_per_replication": {
            i: sum(1 for sha in o.stored if sha not in o.retrieved_count)
            for i, o in enumerate(outcomes)
        },
        "seed": sc.seed,
        "replications": sc.replications,
        "seeds": {str(i): o.seeds for i, o in enumerate(outcomes)},
        "scenario": sc.name,
    }


def run_scenario(
    sc,
    out_dir: Path,
    *,
    pcap: bool = False,
    csv: bool = False,
    on_replication_done: Callable[[int], None] | None = None,
    argv: list[str] | None = None,
) -> RunResult:
    outcomes = run_replications(sc, capture=pcap, on_replication_done=on_replication_done)
    tables = build_tables([o.recorder for o in outcomes])
    extra = outcome_totals(sc, outcomes)
    summary = summarize(tables, extra)
    meta = {
        "dialsim_version": dialsim.__version__,
        "python": sys.version.split()[0],
        "seed": sc.seed,
        "replications": sc.replications,
        "argv": argv or [],
    }

    def write_captures(folder: Path) -> None:
        for o in outcomes:
            if o.capture is not None:
                write_capture(folder / capture_name(o.framing, o.recorder.replication), o,
                              secret=sc.subscriber.password)

    # Captures go into the results folder before it is renamed into place.
    write_results(out_dir, tables, summary, masked_text(sc),
                  meta, csv=csv,
                  before_commit=write_captures if pcap else None)
    return RunResult(out_dir, tables, summary, outcomes)
