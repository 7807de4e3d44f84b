"""Load results folders (runs, sweeps, measured sessions) into one set of typed tables.

A results folder is what ``dialsim run``, ``dialsim sweep`` or ``dialsim dial``
writes (docs/results.md): ``sessions``, ``commands``, ``messages`` and
``link_events`` as Parquet, ``summary.json``, ``meta.json``, ``scenario.yaml``,
for a sweep ``points.parquet``, for ``--pcap`` the line captures.  Every row
of the loaded tables carries the key columns that say where it came from:

- ``run``: the folder's name (its path where two folders share a name);
- ``scenario``: the scenario's name;
- ``point``: the sweep point (0 for a run or a measured session);
- one column per varied key of a sweep, named by its dotted path and typed:
  numbers when every value is a number, otherwise an ordered categorical in
  the order the sweep gave the values (empty for rows of plain runs);
- ``measured``: True for a session measured on the wall clock (``dialsim
  dial``: ``meta.json`` says ``"measured": true``), False for a simulation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dialsim.results.tables import SCHEMAS, read_tables

__all__ = ["TABLES", "Results", "load"]

TABLES = tuple(SCHEMAS)


@dataclass
class Results:
    """The tables of one or more results folders, with key columns on every row.

    ``points`` has one row per (run, point): the keys, ``replications`` and
    ``folder``; ``captures`` one row per line capture: ``run``, ``point``,
    ``replication``, ``path``; ``summaries`` and ``meta`` the folders'
    ``summary.json`` and ``meta.json`` by run; ``varied`` the sweeps' varied keys.
    ``results["sessions"]`` is ``results.sessions``.
    """

    sessions: pd.DataFrame
    commands: pd.DataFrame
    messages: pd.DataFrame
    link_events: pd.DataFrame
    points: pd.DataFrame
    captures: pd.DataFrame
    varied: list[str] = field(default_factory=list)
    summaries: dict[str, dict] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The key columns: run, scenario, point, the varied keys, measured."""
        return ["run", "scenario", "point", *self.varied, "measured"]

    def __getitem__(self, table: str) -> pd.DataFrame:
        if table not in TABLES:
            raise KeyError(f"no table {table!r}; the tables are {', '.join(TABLES)}")
        return getattr(self, table)


def _is_results(folder: Path) -> bool:
    return (folder / "sessions.parquet").exists()


def _folders(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if _is_results(p):
            out.append(p)
        elif p.is_dir() and (inner := sorted(c for c in p.iterdir() if _is_results(c))):
            out.extend(inner)
        else:
            raise FileNotFoundError(f"{p}: not a results folder (no sessions.parquet), "
                                    "nor a folder of results folders")
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _scenario_name(folder: Path, summary: dict) -> str:
    if summary.get("scenario"):
        return str(summary["scenario"])
    path = folder / "scenario.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return str(data.get("name") or folder.name) if isinstance(data, dict) else folder.name


def _sweep_values(meta: dict, summary: dict) -> dict[str, list[str]]:
    """Varied key -> its values as text, in the sweep's order."""
    if meta.get("sweep"):
        return {path: [str(v) for v in values] for path, values in meta["sweep"]}
    return {path: [] for path in summary.get("varied", [])}


def _captures(folder: Path, run: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("line-rep*.pcap*")):
        rep = path.name.removeprefix("line-rep").split(".", 1)[0]
        if rep.isdigit():
            rows.append({"run": run, "point": 0, "replication": int(rep), "path": path})
    return rows


def _typed(values: pd.Series, order: list[str]) -> pd.Series:
    """Numbers when every value is one; else an ordered categorical in the sweep's order."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if len(present) and numbers.notna().all():
        return pd.to_numeric(values, errors="coerce").astype("float64")
    cats = list(dict.fromkeys([*order, *sorted(set(present.astype(str)) - set(order))]))
    return pd.Categorical(values.astype("object").where(values.notna(), None),
                          categories=cats, ordered=True)


def load(paths: str | Path | Iterable[str | Path]) -> Results:
    """Read one or more results folders (or folders of them) into :class:`Results`.

    >>> r = load([RESULTS, SWEEP])
    >>> r.keys
    ['run', 'scenario', 'point', 'link.compression', 'measured']
    >>> r.points.run.tolist(), r.points.point.tolist(), r.points.replications.tolist()
    (['run', 'sweep', 'sweep'], [0, 0, 1], [2, 2, 2])
    >>> r.points["link.compression"].tolist()
    [nan, 'True', 'False']
    >>> r.sessions.groupby("run").size().to_dict()
    {'run': 2, 'sweep': 4}
    >>> list(r.captures.columns)
    ['run', 'point', 'replication', 'path']
    """
    folders = _folders(paths)
    names = [f.name for f in folders]
    runs = [f.name if names.count(f.name) == 1 else str(f) for f in folders]
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    points, captures, summaries, metas = [], [], {}, {}
    varied: dict[str, list[str]] = {}
    for folder, run in zip(folders, runs, strict=True):
        summary, meta = _json(folder / "summary.json"), _json(folder / "meta.json")
        summaries[run], metas[run] = summary, meta
        scenario = _scenario_name(folder, summary)
        for path, values in _sweep_values(meta, summary).items():
            varied.setdefault(path, [])
            varied[path] += [v for v in values if v not in varied[path]]
        tables = read_tables(folder)
        for name, df in tables.items():
            df = df.copy()
            df.insert(0, "run", run)
            df.insert(1, "scenario", scenario)
            if "point" not in df.columns:
                df.insert(2, "point", 0)
            if "measured" not in df.columns:
                df["measured"] = bool(meta.get("measured", False))
            parts[name].append(df)
        s = tables["sessions"]
        p = s.drop_duplicates("point") if "point" in s.columns else pd.DataFrame({"point": [0]})
        for _, row in p.iterrows():
            reps = s[s["point"] == row["point"]] if "point" in s.columns else s
            points.append({"run": run, "scenario": scenario, "point": int(row["point"]),
                           **{k: row.get(k) for k in _sweep_values(meta, summary)},
                           "measured": bool(meta.get("measured", False)),
                           "replications": int(reps["replication"].nunique()) if len(reps)
                           else int(meta.get("replications") or summary.get("replications") or 0),
                           "folder": folder})
        captures += _captures(folder, run)
    keys = ["run", "scenario", "point", *varied, "measured"]
    tables = {name: _with_keys(pd.concat(dfs, ignore_index=True), keys, varied)
              for name, dfs in parts.items()}
    point_table = _with_keys(pd.DataFrame(points), keys, varied)
    capture_table = pd.DataFrame(captures, columns=["run", "point", "replication", "path"])
    capture_table = capture_table.astype({"run": "string", "point": "int64", "replication": "int64"})
    return Results(**tables, points=point_table, captures=capture_table, varied=list(varied),
                   summaries=summaries, meta=metas)


def _with_keys(df: pd.DataFrame, keys: list[str], varied: dict[str, list[str]]) -> pd.DataFrame:
    """Key columns first, typed; the table's own columns after them."""
    for k in keys:
        if k not in df.columns:
            df[k] = pd.NA
    df = df[keys + [c for c in df.columns if c not in keys]]
    df = df.astype({"run": "string", "scenario": "string", "point": "int64", "measured": "bool"})
    for path, order in varied.items():
        df[path] = _typed(df[path].astype("string"), order)
    return df.reset_index(drop=True)
