"""Run a scenario's replications and collect the results tables.

Replications are independent: each has its own simpy environment, its own
Maildir folders under a scratch directory and its own seed streams (see
:mod:`dialsim.experiment.world`), so they can run in any order or in parallel
and give the same tables.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
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
    """Every replication of ``sc``, each in its own scratch Maildirs (removed after)."""
    outcomes: list[ReplicationOutcome] = []
    scratch = Path(tempfile.mkdtemp(prefix="dialsim-"))
    try:
        for rep in range(sc.replications):
            outcomes.append(run_replication(sc, rep, scratch / f"rep{rep}", capture=capture))
            if on_replication_done is not None:
                on_replication_done(rep)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outcomes


def outcome_totals(sc, outcomes: list[ReplicationOutcome]) -> dict:
    """What the tables cannot say on their own: mail lost and duplicated, seeds."""
    lost = [o.messages_lost for o in outcomes]
    return {
        # None: not knowable (a measured session at a real ISP).
        "messages_lost": None if None in lost else sum(lost),
        "messages_duplicated": sum(o.messages_duplicated for o in outcomes),
        "messages_stored": sum(len(o.stored) for o in outcomes),
        # Mail stored at the ISP and never retrieved intact: "time to retrieve all"
        # is undefined for such a replication.
        "messages_unretrieved_per_replication": {
            i: sum(1 for sha in o.stored if sha not in o.retrieved_count)
            for i, o in enumerate(outcomes)
        },
        "seed": sc.seed,
        "replications": len(outcomes),
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
    return write_run(sc, out_dir, outcomes, csv=csv, argv=argv)


def write_run(sc, out_dir: Path, outcomes: list[ReplicationOutcome], *, csv: bool = False,
              argv: list[str] | None = None, meta: dict | None = None,
              extra_files: Callable[[Path], None] | None = None) -> RunResult:
    """The results folder of ``outcomes`` (simulated replications, or a measured
    session): tables, summary, the scenario as run (password masked), meta, captures."""
    tables = build_tables([o.recorder for o in outcomes])
    extra = outcome_totals(sc, outcomes)
    summary = summarize(tables, extra)
    meta = {
        "dialsim_version": dialsim.__version__,
        "python": sys.version.split()[0],
        "seed": sc.seed,
        "replications": len(outcomes),
        "measured": False,
        "argv": argv or [],
        **(meta or {}),
    }

    def write_files(folder: Path) -> None:
        for o in outcomes:
            if o.capture is not None:
                write_capture(folder / capture_name(o.framing, o.recorder.replication), o,
                              secret=sc.subscriber.password)
        if extra_files is not None:
            extra_files(folder)

    # Captures and extra tables go into the results folder before it is renamed into place.
    write_results(out_dir, tables, summary, masked_text(sc), meta, csv=csv,
                  before_commit=write_files)
    return RunResult(out_dir, tables, summary, outcomes)
