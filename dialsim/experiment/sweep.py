"""Parameter sweeps: one scenario, the cartesian product of some of its keys.

    dialsim sweep SCENARIO --vary link.profile=v22bis,v32bis,v34 \
                           --vary subscriber.strategy.mode=delete,keep [--workers 2]
    dialsim run SCENARIO          # a scenario with a ``sweep:`` block

A scenario file may hold the product itself, so that an experiment is one
reproducible file::

    sweep:
      subscriber.strategy.batch: [0, 5]
      link.carrier_loss.mean_time_between: [2 min, 10 min]

The block's keys and ``--vary`` keys combine (``--vary`` replaces a key the
block has); :meth:`dialsim.scenario.schema.Scenario.sweep_points` builds the
points, each validated exactly as the file is when the file is loaded.

Every point is the scenario with those keys set (validated exactly as the file
is, units and all) and runs all its replications with the scenario's seed, so a
point's tables equal those of ``dialsim run`` on the same settings.  Points are
independent; with ``--workers N`` they run in parallel as Dask tasks on local
processes, with ``--scheduler ADDRESS`` on a ``dask.distributed`` cluster
(:mod:`dialsim.experiment.engine`), and the result does not depend on where
or in which order they finish.

The sweep's tables are the run tables of every point concatenated, with a
``point`` column and one column per varied key (named by its dotted path).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dialsim.scenario.errors import ScenarioError
from dialsim.scenario.load import masked_text, plain_value


def parse_vary(spec: str) -> tuple[str, list[Any]]:
    """``"link.profile=v22bis,v34"`` -> ("link.profile", ["v22bis", "v34"]); values are YAML scalars."""
    path, sep, values = spec.partition("=")
    path = path.strip()
    if not sep or not path or not values.strip():
        raise ScenarioError(
            f"(command line): --vary {spec!r}: expected KEY=V1,V2,... (e.g. link.profile=v22bis,v34)"
        )
    parsed = []
    for raw in values.split(","):
        try:
            parsed.append(yaml.safe_load(raw.strip()))
        except yaml.YAMLError:
            parsed.append(raw.strip())
    return path, parsed


def sweep_points(sc, varies: list[tuple[str, list[Any]]]) -> list[tuple[dict[str, Any], Any]]:
    """Every combination of the file's ``sweep`` block and ``varies`` as
    (settings, scenario), each validated exactly as the file is, cross-field
    checks included, before anything runs: a bad point raises a one-line
    :class:`ScenarioError` naming the point and the field."""
    return sc.sweep_points(varies)


def varied_keys(sc, varies: list[tuple[str, list[Any]]]) -> list[str]:
    """The keys a sweep varies: the block's, then ``--vary``'s new ones."""
    keys = list(sc.sweep or {})
    return keys + [k for k, _v in varies if k not in keys]


def run_sweep(
    sc,
    varies: list[tuple[str, list[Any]]],
    out_dir: Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_point_done: Callable[[], None] | None = None,
    on_point_start: Callable[[int, dict[str, Any]], None] | None = None,
    on_replication_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every point; write ``out_dir`` (tables with ``point`` + varied columns,
    ``points.parquet``, ``summary.json``); return the summary.
    ``on_point_start(i, settings)`` as point ``i`` begins (in order when the
    tasks run one after the other), ``on_replication_done(rep)`` as each of
    its replications ends.

    Every (point, replication) is one task (:mod:`dialsim.experiment.engine`):
    here, on ``workers`` local processes, or on the Dask scheduler at ``scheduler``."""
    from dialsim.experiment.engine import assemble, run_tasks
    from dialsim.results.tables import write_results

    points = sweep_points(sc, varies)
    tasks = [(i, psc, rep) for i, (_s, psc) in enumerate(points)
             for rep in range(psc.replications)]
    left = {i: psc.replications for i, (_s, psc) in enumerate(points)}

    def start(i: int) -> None:
        if on_point_start is not None and i < len(points):
            on_point_start(i, points[i][0])

    def task_done(k: int) -> None:
        i, _psc, rep = tasks[k]
        left[i] -= 1
        if on_replication_done is not None:
            on_replication_done(rep)
        if left[i] == 0:
            if on_point_done is not None:
                on_point_done()
            start(i + 1)

    keys = varied_keys(sc, varies)
    start(0)
    done = run_tasks([(psc, rep) for _i, psc, rep in tasks], workers=workers,
                     scheduler=scheduler, on_done=task_done)
    results = [assemble(psc, [r for (i, _p, _r), r in zip(tasks, done, strict=True) if i == k])
               for k, (_s, psc) in enumerate(points)]

    merged, summaries = _by_point(points, results)
    summary = {
        "scenario": sc.name,
        "varied": keys,
        "points": summaries,
        "messages_lost": sum(p["messages_lost"] for p in summaries),
        "messages_duplicated": sum(p["messages_duplicated"] for p in summaries),
    }
    point_rows = [{"point": p["point"], **{k: str(p[k]) for k in summary["varied"]},
                   "messages_lost": p["messages_lost"],
                   "messages_duplicated": p["messages_duplicated"], **_blocking(p),
                   **{f"{m}_mean": v.get("mean") for m, v in p["metrics"].items()}}
                  for p in summaries]

    def add_points(folder: Path) -> None:
        pd.DataFrame(point_rows).to_parquet(folder / "points.parquet", index=False)

    sweep = {**(sc.sweep or {}), **dict(varies)}
    write_results(out_dir, merged, summary, masked_text(sc),
                  {"sweep": [[p, [plain_value(v) for v in vs]] for p, vs in sweep.items()]},
                  before_commit=add_points)
    return summary


def _by_point(points, results) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Every point's tables with ``point`` and the varied columns, concatenated;
    and per point its settings, mail accounting and summary metrics."""
    from dialsim.results.summary import summarize

    tables: dict[str, list[pd.DataFrame]] = {}
    summaries = []
    for i, ((settings, _psc), (t, extra)) in enumerate(zip(points, results, strict=True)):
        s = summarize(t, extra)
        summaries.append({"point": i, **{k: plain_value(v) for k, v in settings.items()},
                          "messages_lost": int(extra["messages_lost"]),
                          "messages_duplicated": int(extra["messages_duplicated"]),
                          # for the analysis: which replications left mail at the ISP
                          "messages_unretrieved_per_replication":
                              extra["messages_unretrieved_per_replication"],
                          **_blocking(extra), "metrics": s.get("metrics", {})})
        for name, table in t.items():
            df = table.to_pandas()
            df.insert(0, "point", i)
            for col, (path, value) in enumerate(settings.items(), start=1):
                df.insert(col, path, str(plain_value(value)))
            tables.setdefault(name, []).append(df)
    return {name: pd.concat(dfs, ignore_index=True) for name, dfs in tables.items()}, summaries


def _blocking(extra: dict) -> dict[str, Any]:
    """A population point's blocking probability (a sweep over ``population.lines``)."""
    if "blocking_probability" in extra:
        return {"blocking_probability": extra["blocking_probability"]}
    cap = extra.get("capacity")
    return {} if cap is None else {"blocking_probability": cap["blocking_probability"]}

