"""The results tables (the public contract of a run) and the results folder.

``SCHEMAS`` defines, once and as data, each table's columns in order with their
dtype and the value a row that lacks the column gets.  :func:`arrow_tables`
turns :class:`~dialsim.results.recorder.Recorder` rows into Arrow tables with
exactly those columns and types, even when empty; columns a caller adds that
are not in the schema follow the known ones, sorted by name, typed from their
values (:func:`_extra_type`).  Each table carries the pandas metadata
(https://pandas.pydata.org/docs/development/developer.html) that makes
``to_pandas()`` and ``pandas.read_parquet`` give the schema's dtypes
(``string`` columns as ``pd.StringDtype``); :func:`build_tables` gives those
DataFrames.  Running and writing a single-line scenario never imports pandas
(it costs half a second); the analysis side uses it.

:func:`write_results` writes a results folder atomically: everything goes into
a temporary sibling folder first, which is renamed into place at the end, so a
crash never leaves a half-written folder under the final name.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCHEMAS", "arrow_table", "arrow_tables", "build_tables", "concat_tables",
           "empty_table", "read_tables", "write_results"]

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


ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
               "string": pa.large_string()}


def empty_table(name: str) -> pd.DataFrame:
    """A table with the schema's columns and dtypes and no rows."""
    return arrow_table(name, []).to_pandas()


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _schema_column(values: list[Any], dtype: str, fill: Any) -> pa.Array:
    """A known column: missing values get the schema's fill (None: null)."""
    values = [fill if _missing(v) else v for v in values]
    if dtype == "bool":
        values = [bool(v) for v in values]
    elif dtype == "string":
        values = [None if v is None else str(v) for v in values]
    return _array(values, ARROW_TYPES[dtype])


def _bits(flags: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(flags, bitorder="little"))


def _array(values: list[Any], typ: pa.DataType | None) -> pa.Array:
    """An Arrow array of ``values`` (None: null), assembled from its buffers (Arrow
    columnar format): ``pyarrow.array`` would import pandas, half a second."""
    if typ is None:  # no type of ours: Arrow infers (and pyarrow loads pandas)
        return pa.array(values)
    n = len(values)
    valid = np.array([v is not None for v in values], dtype=bool)
    nulls = n - int(valid.sum())
    validity = _bits(valid) if nulls else None
    if pa.types.is_large_string(typ):
        data = [b"" if v is None else v.encode() for v in values]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(d) for d in data], out=offsets[1:])
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    elif pa.types.is_boolean(typ):
        buffers = [validity, _bits(np.array([bool(v) for v in values], dtype=bool))]
    else:
        filler = 0 if pa.types.is_integer(typ) else float("nan")
        numbers = np.array([filler if v is None else v for v in values],
                           dtype=typ.to_pandas_dtype())
        buffers = [validity, pa.py_buffer(numbers)]
    return pa.Array.from_buffers(typ, n, buffers, null_count=nulls)


def _extra_type(values: list[Any]) -> pa.DataType | None:
    """How a column that is not in the schema is typed (as pandas would infer it):
    booleans stay booleans, integers with a missing value become float64 (NaN),
    numbers float64, text ``string``; anything else is left to Arrow."""
    present = [v for v in values if not _missing(v)]
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else
             float if isinstance(v, float) else str if isinstance(v, str) else object
             for v in present}
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64() if len(present) == len(values) else pa.float64()
    if kinds and kinds <= {int, float}:
        return pa.float64()
    if kinds == {str}:
        return pa.large_string()
    return None


def arrow_table(name: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Table ``name`` of ``rows`` (dicts), with the schema's columns and types."""
    schema = SCHEMAS[name]
    known = [c for c, _, _ in schema]
    extra = sorted({k for row in rows for k in row} - set(known))
    arrays = [_schema_column([row.get(col) for row in rows], dtype, fill)
              for col, dtype, fill in schema]
    for col in extra:
        values = [row.get(col) for row in rows]
        try:
            arrays.append(_array([None if _missing(v) else v for v in values],
                                 _extra_type(values)))
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise ValueError(f"table {name}, column {col}: values of mixed types ({e})") from e
    return with_pandas_metadata(pa.Table.from_arrays(arrays, names=known + extra))


def arrow_tables(recorders: Iterable[Any]) -> dict[str, pa.Table]:
    """``{"sessions", "commands", "messages", "link_events"}`` -> Arrow table, rows in
    replication order, then in the order they were recorded."""
    recorders = sorted(recorders, key=lambda r: r.replication)
    return {name: arrow_table(name, [row for r in recorders for row in r.rows[name]])
            for name in SCHEMAS}


def build_tables(recorders: Iterable[Any]) -> dict[str, pd.DataFrame]:
    """:func:`arrow_tables` as pandas DataFrames (the schema's dtypes)."""
    return {name: t.to_pandas() for name, t in arrow_tables(recorders).items()}


def concat_tables(tables: Sequence[pa.Table], order: Sequence[str]) -> pa.Table:
    """Tables of several replications, one after the other, columns in ``order``.
    A column some of them lack is null there; integers that end up with a
    missing value become float64, as in a pandas concat."""
    columns = []
    names = [set(t.column_names) for t in tables]  # (column_names builds a new list)
    for col in order:
        present = [t.column(col).type for t, n in zip(tables, names, strict=True) if col in n]
        typ = present[0]
        if any(p != typ for p in present) or (
                len(present) < len(tables) and pa.types.is_integer(typ)):
            typ = pa.float64()
        chunks = [c if c.type == typ else c.cast(typ)  # (a cast loads pyarrow.compute)
                  for t, n in zip(tables, names, strict=True)
                  for c in (t.column(col).chunks if col in n else [pa.nulls(len(t), typ)])]
        columns.append(pa.chunked_array(chunks, typ))
    return with_pandas_metadata(pa.Table.from_arrays(columns, names=list(order)))


def _pandas_column(field: pa.Field, nulls: bool) -> dict[str, Any]:
    t = field.type
    if pa.types.is_large_string(t) or pa.types.is_string(t):
        pandas_type, numpy_type = "object", "string"  # pd.StringDtype
    elif pa.types.is_boolean(t):
        pandas_type, numpy_type = "bool", "object" if nulls else "bool"
    else:
        pandas_type = numpy_type = t.to_pandas_dtype().__name__
    return {"name": field.name, "field_name": field.name, "pandas_type": pandas_type,
            "numpy_type": numpy_type, "metadata": None}


@cache
def _pandas_version() -> str:
    from importlib.metadata import version

    return version("pandas")


def with_pandas_metadata(table: pa.Table) -> pa.Table:
    """``table`` with the pandas metadata a DataFrame of the schema's dtypes has
    (a RangeIndex, ``string`` columns as ``pd.StringDtype``), so pandas reads
    it back with those dtypes."""
    meta = {
        "index_columns": [], "column_indexes": [],
        "columns": [_pandas_column(f, table.column(i).null_count > 0)
                    for i, f in enumerate(table.schema)],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }
    return table.replace_schema_metadata({"pandas": json.dumps(meta)})


def _as_arrow(table: Any) -> pa.Table:
    """Tables given as pandas DataFrames (a sweep's, a population's capacity tables)
    go to Arrow as pandas writes them."""
    return table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)


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
    pd = sys.modules.get("pandas")  # pd.NA only exists where pandas is loaded
    if pd is not None and obj is pd.NA:
        return None
    return obj


def _dump_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_results(
    out_dir: str | Path,
    tables: Mapping[str, pa.Table | pd.DataFrame],
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
        import pyarrow.parquet as pq

        for name, table in tables.items():
            table = _as_arrow(table)
            pq.write_table(table, tmp / f"{name}.parquet")
            if csv:
                table.to_pandas().to_csv(tmp / f"{name}.csv", index=False)
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
    import pandas as pd

    out_dir = Path(out_dir)
    tables = {}
    for name in SCHEMAS:
        path = out_dir / f"{name}.parquet"
        tables[name] = pd.read_parquet(path) if path.exists() else empty_table(name)
    return tables
