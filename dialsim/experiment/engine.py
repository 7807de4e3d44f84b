"""Where replications run: in this process, in local worker processes, or on a Dask cluster.

A replication is a task: :func:`replicate` runs one (scenario, replication) in
its own scratch folder and returns a :class:`ReplicationResult` -- its tables as
Arrow IPC streams (pyarrow), the mail accounting and seeds, and the line
capture's bytes when asked.  Nothing in it refers to the worker's disk, so a
worker of a ``dask.distributed`` cluster needs no shared file system: the
client gathers the results and writes the results folder (:func:`assemble`).

:func:`run_tasks` runs a list of them:

- ``scheduler=None, workers=1``: one after the other, here;
- ``scheduler=None, workers=N``: Dask's local process pool;
- ``scheduler="tcp://host:8786"``: a ``dask.distributed`` scheduler (``pip
  install 'dialsim[distributed]'``; every worker needs dialsim installed).
  A worker that dies takes its running tasks with it; the scheduler hands
  them to another worker, so no replication is lost.

The serial path goes through the same Arrow tables, so a table never depends
on where its replications ran.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from dialsim.results.tables import SCHEMAS, build_tables

__all__ = [
    "ClusterError",
    "ReplicationResult",
    "assemble",
    "from_arrow",
    "replicate",
    "result_of",
    "run_tasks",
    "to_arrow",
]


@dataclass
class ReplicationResult:
    """What a replication task hands back (small, picklable, no paths)."""

    replication: int
    tables: dict[str, bytes]  # table name -> Arrow IPC stream
    totals: dict[str, Any] = field(default_factory=dict)
    capture: bytes | None = None  # the line's capture file, with ``capture``
    framing: str = "ppp"


def to_arrow(df: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_arrow(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(data).read_all().to_pandas()


def _replication_function(sc):
    if sc.population is not None:
        from dialsim.experiment.population import run_population_replication

        return run_population_replication
    from dialsim.experiment.world import run_replication

    return run_replication


def run_outcome(sc, replication: int, workdir: Path, *, capture: bool = False):
    """One replication's :class:`~dialsim.experiment.world.ReplicationOutcome`
    (the single-subscriber world or the population's)."""
    return _replication_function(sc)(sc, replication, workdir, capture=capture)


def result_of(sc, outcome, *, capture: bool = False) -> ReplicationResult:
    """The task's answer for a finished replication."""
    rep = outcome.recorder.replication
    tables = {name: to_arrow(df) for name, df in build_tables([outcome.recorder]).items()}
    totals = {
        # None: not knowable (a measured session at a real ISP).
        "messages_lost": None if outcome.messages_lost is None else int(outcome.messages_lost),
        "messages_duplicated": int(outcome.messages_duplicated),
        "messages_stored": len(outcome.stored),
        "messages_unretrieved": sum(1 for sha in outcome.stored
                                    if sha not in outcome.retrieved_count),
        "seeds": outcome.seeds,
    }
    pcap = None
    if capture and outcome.capture is not None:
        from dialsim.experiment.capture import write_capture

        with tempfile.TemporaryDirectory(prefix="dialsim-cap-") as tmp:
            path = Path(tmp) / "line"
            write_capture(path, outcome, secret=sc.subscriber.password)
            pcap = path.read_bytes()
    return ReplicationResult(rep, tables, totals, pcap, outcome.framing)


def replicate(sc, replication: int, capture: bool = False) -> ReplicationResult:
    """The task: run replication ``replication`` of ``sc`` in a scratch folder
    (removed after) and return its tables."""
    scratch = Path(tempfile.mkdtemp(prefix="dialsim-"))
    try:
        outcome = run_outcome(sc, replication, scratch / f"rep{replication}", capture=capture)
        return result_of(sc, outcome, capture=capture)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------
# Putting the tables together (on the client)


def _canonical(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Columns in the schema's order, then the extra ones by name; a population's
    ``subscriber`` (and the sessions' ``line`` and ``strategy``) up front."""
    known = [c for c, _, _ in SCHEMAS[name]] if name in SCHEMAS else list(df.columns)
    cols = [c for c in known if c in df.columns]
    cols += sorted(c for c in df.columns if c not in set(known))
    lead = [c for c in ("replication", "subscriber") if c in cols]
    after = [c for c in ("line", "strategy") if c in cols and name == "sessions"]
    rest = [c for c in cols if c not in lead and c not in after]
    if after:
        i = rest.index("framing") + 1 if "framing" in rest else len(rest)
        rest[i:i] = after
    return df[lead + rest]


def assemble(sc, results: Sequence[ReplicationResult]) -> tuple[dict[str, pd.DataFrame], dict]:
    """The run's tables (replications in order) and the totals the summary takes."""
    results = sorted(results, key=lambda r: r.replication)
    tables: dict[str, pd.DataFrame] = {}
    for name in SCHEMAS:
        frames = [from_arrow(r.tables[name]) for r in results]
        frames = [f for f in frames if len(f)] or frames[:1]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        tables[name] = _canonical(name, df).reset_index(drop=True)
    lost = [r.totals["messages_lost"] for r in results]
    extra = {
        "messages_lost": None if None in lost else sum(lost),
        "messages_duplicated": sum(r.totals["messages_duplicated"] for r in results),
        "messages_stored": sum(r.totals["messages_stored"] for r in results),
        # Mail stored at the ISP and never retrieved intact: "time to retrieve all"
        # is undefined for such a replication.
        "messages_unretrieved_per_replication": {
            r.replication: r.totals["messages_unretrieved"] for r in results},
        "seed": sc.seed,
        "replications": len(results),
        "seeds": {str(r.replication): r.totals["seeds"] for r in results},
        "scenario": sc.name,
    }
    if sc.population is not None:
        from dialsim.results.capacity import capacity_summary, capacity_tables

        pop = sc.population
        _population_columns(tables)
        tables.update(capacity_tables(tables["sessions"], tables["messages"], lines=pop.lines,
                                      subscribers=pop.subscribers, duration=sc.duration,
                                      replications=[r.replication for r in results]))
        extra["capacity"] = capacity_summary(tables)
    return tables, extra


def _population_columns(tables: dict[str, pd.DataFrame]) -> None:
    """A population's columns even in a table with no rows (no call was made)."""
    wanted = {name: {"subscriber": "int64"} for name in SCHEMAS}
    wanted["sessions"].update(line="int64", strategy="object")
    for name, cols in wanted.items():
        df = tables[name]
        missing = {c: t for c, t in cols.items() if c not in df.columns}
        if missing:
            for col, dtype in missing.items():
                df[col] = pd.Series([None] * len(df) if dtype == "object" else [-1] * len(df),
                                    dtype=dtype, index=df.index)
            tables[name] = _canonical(name, df)


# --------------------------------------------------------------------------
# Running tasks


Task = tuple[Any, int]  # (scenario, replication)


def run_tasks(tasks: Sequence[Task], *, workers: int = 1, scheduler: str | None = None,
              capture: bool = False,
              on_done: Callable[[int], None] | None = None) -> list[ReplicationResult]:
    """Every task's result, in the order given; ``on_done(i)`` as task ``i`` finishes."""
    if scheduler is not None:
        return _on_cluster(tasks, scheduler, capture, on_done)
    if workers > 1:
        return _on_local_processes(tasks, workers, capture, on_done)
    results = []
    for i, (sc, rep) in enumerate(tasks):
        results.append(replicate(sc, rep, capture))
        if on_done is not None:
            on_done(i)
    return results


def _on_local_processes(tasks, workers: int, capture: bool, on_done) -> list[ReplicationResult]:
    import dask
    from dask.callbacks import Callback

    delayed = [dask.delayed(replicate, pure=False, name=f"dialsim-task-{i}")(sc, rep, capture)
               for i, (sc, rep) in enumerate(tasks)]

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            name = key[0] if isinstance(key, tuple) else key
            if on_done is not None and str(name).startswith("dialsim-task-"):
                on_done(int(str(name).rsplit("-", 1)[1]))

    with _Progress():
        return list(dask.compute(*delayed, scheduler="processes", num_workers=workers))


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used: distributed missing, scheduler unreachable."""


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError as e:
        raise ClusterError("--scheduler needs dask.distributed: "
                           "pip install 'dialsim[distributed]'") from e
    try:
        return Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from e


def _on_cluster(tasks, address: str, capture: bool, on_done) -> list[ReplicationResult]:
    from distributed import as_completed

    with _connect(address) as client:
        futures = [client.submit(replicate, sc, rep, capture, pure=False)
                   for sc, rep in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            if fut.status == "error":
                fut.result()  # raises the task's exception here
            if on_done is not None:
                on_done(index[fut.key])
        return client.gather(futures)
