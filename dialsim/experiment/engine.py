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

import pyarrow as pa

from dialsim.results.tables import SCHEMAS, arrow_tables, concat_tables, with_pandas_metadata

__all__ = [
    "ClusterError",
    "ReplicationResult",
    "arrow_of",
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


def to_arrow(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def arrow_of(data: bytes) -> pa.Table:
    """The table of an Arrow IPC stream."""
    return pa.ipc.open_stream(data).read_all()


def from_arrow(data: bytes):
    """The table of an Arrow IPC stream as a pandas DataFrame (the schema's dtypes)."""
    return arrow_of(data).to_pandas()


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
    tables = {name: to_arrow(t) for name, t in arrow_tables([outcome.recorder]).items()}
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


def _order(name: str, columns: list[str]) -> list[str]:
    """Columns in the schema's order, then the extra ones by name; a population's
    ``subscriber`` (and the sessions' ``line`` and ``strategy``) up front."""
    known = [c for c, _, _ in SCHEMAS[name]] if name in SCHEMAS else list(columns)
    cols = [c for c in known if c in columns]
    cols += sorted(c for c in columns if c not in set(known))
    lead = [c for c in ("replication", "subscriber") if c in cols]
    after = [c for c in ("line", "strategy") if c in cols and name == "sessions"]
    rest = [c for c in cols if c not in lead and c not in after]
    if after:
        i = rest.index("framing") + 1 if "framing" in rest else len(rest)
        rest[i:i] = after
    return lead + rest


def assemble(sc, results: Sequence[ReplicationResult]) -> tuple[dict[str, pa.Table], dict]:
    """The run's tables (Arrow; replications in order) and the totals the summary takes."""
    results = sorted(results, key=lambda r: r.replication)
    tables: dict[str, pa.Table] = {}
    for name in SCHEMAS:
        parts = [arrow_of(r.tables[name]) for r in results]
        parts = [t for t in parts if len(t)] or parts[:1]
        columns = list(dict.fromkeys(c for t in parts for c in t.column_names))
        tables[name] = concat_tables(parts, _order(name, columns))
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
        _population_tables(sc, tables, [r.replication for r in results], extra)
    return tables, extra


def _population_tables(sc, tables: dict[str, pa.Table], replications: list[int],
                       extra: dict) -> None:
    """A population's columns (even in a table with no rows: no call was made), its
    ``lines``, ``hours`` and ``subscribers`` tables and the capacity summary."""
    from dialsim.results.capacity import capacity_summary, capacity_tables

    wanted = {name: {"subscriber": pa.int64()} for name in SCHEMAS}
    wanted["sessions"].update(line=pa.int64(), strategy=pa.large_string())
    for name, cols in wanted.items():
        t = tables[name]
        missing = {c: typ for c, typ in cols.items() if c not in t.column_names}
        for col, typ in missing.items():
            t = t.append_column(col, pa.array([-1] * len(t), typ) if pa.types.is_integer(typ)
                                else pa.nulls(len(t), typ))
        if missing:
            tables[name] = with_pandas_metadata(t.select(_order(name, t.column_names)))
    pop = sc.population
    frames = {name: t.to_pandas() for name, t in tables.items()}
    capacity = capacity_tables(frames["sessions"], frames["messages"], lines=pop.lines,
                               subscribers=pop.subscribers, duration=sc.duration,
                               replications=replications)
    extra["capacity"] = capacity_summary({**frames, **capacity})
    tables.update({name: pa.Table.from_pandas(df, preserve_index=False)
                   for name, df in capacity.items()})


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
