"""The results tables (the public contract of a run) and the results folder.

``SCHEMAS`` defines, once and as data, each table's columns in order with their
dtype and the value a row that lacks the column gets.  :func:`build_tables`
turns :class:`~dialsim.results.recorder.Recorder` rows into pandas DataFrames
with exactly those columns and dtypes, even when empty; columns a caller adds
that are not in the schema follow the known ones, sorted by name.

:func:`write_results` writes a results folder atomically: everything goes into
a temporary sibling folder first, which is renamed into place at the end, so a
crash never leaves a half-written folder under the final name.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SCHEMAS", "build_tables", "empty_table", "read_tables", "write_results"]

NAN = float("nan")

# (column, dtype, fill value for rows that lack it)
Column = tuple[str, str, Any]

MEASURED: Column = ("measured", "bool", False)  # a session on the wall clock, not simulated

SCHEMAS: dict[str, list[Column]] = {
    "sessions": [
        ("replication", "int64", 0),
        ("session", "int64", 0),
        ("attempt", "int64", 1),
        ("profile", "string", None),
        ("framing", "string", None),
        ("connect_rate_bps", "float64", NAN),
        ("connect_rate_up_bps", "float64", NAN),
        ("t_dial_s", "float64", NAN),
        ("t_connect_s", "float64", NAN),
        ("t_link_up_s", "float64", NAN),
        ("t_pop3_greeting_s", "float64", NAN),
        ("t_logged_in_s", "float64", NAN),
        ("t_end_s", "float64", NAN),
        ("end_reason", "string", None),
        ("messages_retrieved", "int64", 0),
        ("octets_retrieved", "int64", 0),
        ("messages_sent", "int64", 0),
        ("octets_sent", "int64", 0),
        ("line_bytes_down", "int64", 0),
        ("line_bytes_up", "int64", 0),
        ("line_bits_down", "int64", 0),
        ("line_bits_up", "int64", 0),
        ("t_answer_s", "float64", NAN),
        ("t_pop3_connected_s", "float64", NAN),
        ("connect_rate_lowest_bps", "float64", NAN),
        ("connect_rate_final_bps", "float64", NAN),
        ("retrains", "int64", 0),
        ("pop3_sessions", "int64", 0),
        ("headers_fetched", "int64", 0),
        ("octets_wasted", "int64", 0),
        ("phone_cost", "float64", 0.0),
        MEASURED,
    ],
    "commands": [
        ("replication", "int64", 0),
        ("session", "int64", 0),
        ("protocol", "string", None),
        ("command", "string", None),
        ("t_sent_s", "float64", NAN),
        ("t_first_byte_s", "float64", NAN),
        ("t_done_s", "float64", NAN),
        ("bytes_up", "int64", 0),
        ("bytes_down", "int64", 0),
        ("ok", "bool", False),
        MEASURED,
    ],
    "messages": [
        ("replication", "int64", 0),
        ("session", "int64", 0),
        ("direction", "string", None),
        ("uidl", "string", None),
        ("size_octets", "int64", 0),
        ("sha256", "string", None),
        ("t_retrieved_s", "float64", NAN),
        ("duplicate", "bool", False),
        ("intact", "bool", False),
        ("t_arrived_s", "float64", NAN),
        ("latency_s", "float64", NAN),
        ("attempts", "int64", 0),
        MEASURED,
    ],
    "link_events": [
        ("replication", "int64", 0),
        ("t_s", "float64", NAN),
        ("event", "string", None),
        ("detail", "string", None),
        MEASURED,
    ],
}


def empty_table(name: str) -> pd.DataFrame:
    """A table with the schema's columns and dtypes and no rows."""
    return pd.DataFrame({col: pd.Series([], dtype=dtype) for col, dtype, _ in SCHEMAS[name]})


def _frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    schema = SCHEMAS[name]
    if not rows:
        return empty_table(name)
    known = [c for c, _, _ in schema]
    extra = sorted({k for row in rows for k in row} - set(known))
    df = pd.DataFrame.from_records(rows, columns=known + extra)
    for col, dtype, fill in schema:
        s = df[col]
        if fill is not None:
            s = s.where(s.notna(), fill)
        if dtype == "bool":
            s = s.astype(bool)
        df[col] = s.astype(dtype)
    return df.reset_index(drop=True)


def build_tables(recorders: Iterable[Any]) -> dict[str, pd.DataFrame]:
    """``{"sessions", "commands", "messages", "link_events"}`` -> DataFrame, rows in
    replication order, then in the order they were recorded."""
    recorders = sorted(recorders, key=lambda r: r.replication)
    return {
        name: _frame(name, [row for r in recorders for row in r.rows[name]]) for name in SCHEMAS
    }


def _jsonable(obj: Any) -> Any:
    """Plain JSON: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA:
        return None
    return obj


def _dump_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_results(
    out_dir: str | Path,
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
    scenario_text: str,
    meta: Mapping[str, Any],
    csv: bool = False,
    before_commit: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``<table>.parquet`` (and ``.csv``), ``summary.json``, ``scenario.yaml`` and
    ``meta.json`` into ``out_dir``, replacing a previous folder of that name.

    ``before_commit(tmp_dir)`` may add files (e.g. pcaps) to the temporary folder
    before it is renamed into place.  Returns ``out_dir``.
    """
    import dialsim

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", engine="pyarrow", index=False)
            if csv:
                df.to_csv(tmp / f"{name}.csv", index=False)
        _dump_json(tmp / "summary.json", summary)
        (tmp / "scenario.yaml").write_text(scenario_text)
        _dump_json(tmp / "meta.json", {"dialsim_version": dialsim.__version__, **meta})
        if before_commit is not None:
            before_commit(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old / "previous")
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def read_tables(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of a results folder (Parquet), for notebooks and ``dialsim report``."""
    out_dir = Path(out_dir)
    tables = {}
    for name in SCHEMAS:
        path = out_dir / f"{name}.parquet"
        tables[name] = pd.read_parquet(path) if path.exists() else empty_table(name)
    return tables
