"""Run a scenario's replications and collect the results tables.

Replications are independent: each has its own simpy environment, its own
Maildir folders under a scratch directory and its own seed streams (see
:mod:`dialsim.experiment.world`), so they can run in any order or in parallel
and give the same tables.  With ``scheduler`` they run as tasks on a Dask
cluster (:mod:`dialsim.experiment.engine`) and this process writes the folder.
A scenario with a ``population`` runs :mod:`dialsim.experiment.population`
and adds the ``lines``, ``hours`` and ``subscribers`` tables.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dialsim
from dialsim.experiment import engine
from dialsim.experiment.capture import capture_name
from dialsim.experiment.world import ReplicationOutcome
from dialsim.results.summary import summarize
from dialsim.results.tables import write_results
from dialsim.scenario.load import masked_text


@dataclass
class RunResult:
    """A finished run: its folder, its tables (Arrow), summary and outcomes."""

    out_dir: Path
    arrow: dict  # table name -> pyarrow.Table
    summary: dict
    outcomes: list[ReplicationOutcome]

    @cached_property
    def tables(self) -> dict:
        """The tables as pandas DataFrames (converted on first use: a run itself
        does not need pandas)."""
        return {name: t.to_pandas() for name, t in self.arrow.items()}


def run_replications(
    sc, *, capture: bool = False, on_replication_done: Callable[[int], None] | None = None
) -> list[ReplicationOutcome]:
    """Every replication of ``sc``, each in its own scratch Maildirs (removed after)."""
    outcomes: list[ReplicationOutcome] = []
    scratch = Path(tempfile.mkdtemp(prefix="dialsim-"))
    try:
        for rep in range(sc.replications):
            outcomes.append(engine.run_outcome(sc, rep, scratch / f"rep{rep}", capture=capture))
            if on_replication_done is not None:
                on_replication_done(rep)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outcomes


def run_scenario(
    sc,
    out_dir: Path,
    *,
    pcap: bool = False,
    csv: bool = False,
    on_replication_done: Callable[[int], None] | None = None,
    argv: list[str] | None = None,
    scheduler: str | None = None,
) -> RunResult:
    """Run every replication (here, or as tasks on the Dask scheduler at
    ``scheduler``: then ``outcomes`` is empty) and write ``out_dir``."""
    if scheduler is None:
        outcomes = run_replications(sc, capture=pcap, on_replication_done=on_replication_done)
        results = [engine.result_of(sc, o, capture=pcap) for o in outcomes]
    else:
        outcomes = []
        results = engine.run_tasks([(sc, rep) for rep in range(sc.replications)],
                                   scheduler=scheduler, capture=pcap,
                                   on_done=on_replication_done)
    return _write(sc, out_dir, results, outcomes, csv=csv, argv=argv)


def write_run(sc, out_dir: Path, outcomes: list[ReplicationOutcome], *, csv: bool = False,
              argv: list[str] | None = None, meta: dict | None = None,
              extra_files: Callable[[Path], None] | None = None) -> RunResult:
    """The results folder of ``outcomes`` (simulated replications, or a measured
    session): tables, summary, the scenario as run (password masked), meta, captures."""
    results = [engine.result_of(sc, o, capture=o.capture is not None) for o in outcomes]
    return _write(sc, out_dir, results, outcomes, csv=csv, argv=argv, meta=meta,
                  extra_files=extra_files)


def _write(sc, out_dir: Path, results: list[engine.ReplicationResult],
           outcomes: list[ReplicationOutcome], *, csv: bool, argv: list[str] | None,
           meta: dict | None = None,
           extra_files: Callable[[Path], None] | None = None) -> RunResult:
    tables, extra = engine.assemble(sc, results)
    summary = summarize(tables, extra)
    meta = {
        "dialsim_version": dialsim.__version__,
        "python": sys.version.split()[0],
        "seed": sc.seed,
        "replications": len(results),
        "measured": False,
        "argv": argv or [],
        **(meta or {}),
    }

    def write_files(folder: Path) -> None:
        for r in results:
            if r.capture is not None:
                (folder / capture_name(r.framing, r.replication)).write_bytes(r.capture)
        if extra_files is not None:
            extra_files(folder)

    # Captures and extra tables go into the results folder before it is renamed into place.
    write_results(out_dir, tables, summary, masked_text(sc), meta, csv=csv,
                  before_commit=write_files)
    return RunResult(out_dir, tables, summary, outcomes)
