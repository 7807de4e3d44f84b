"""The results tables built as Arrow tables from their buffers (dialsim.results.tables)
give exactly the DataFrames pandas builds from the same rows, and a simulated run
never imports pandas.

The reference below is how the tables were built with pandas before (the
schema's dtypes, missing values filled, extra columns inferred by pandas); the
property tests check the Arrow builder against it for random rows.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dialsim.experiment.engine import arrow_of, to_arrow
from dialsim.results.summary import _median, _percentile, per_replication_metrics, summarize
from dialsim.results.tables import SCHEMAS, arrow_table, concat_tables

ROOT = Path(__file__).resolve().parents[2]


def pandas_reference(name: str, rows: list[dict]) -> pd.DataFrame:
    """The table as pandas builds it (``from_records``, the schema's fill and dtype)
    and a replication task handed it on: through Arrow and back."""
    schema = SCHEMAS[name]
    known = [c for c, _, _ in schema]
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d, _ in schema})
    extra = sorted({k for row in rows for k in row} - set(known))
    df = pd.DataFrame.from_records(rows, columns=known + extra)
    for col, dtype, fill in schema:
        s = df[col]
        if fill is not None:
            s = s.where(s.notna(), fill)
        if dtype == "bool":
            s = s.astype(bool)
        df[col] = s.astype(dtype)
    for col in extra:  # text in the schema's string dtype, as the Arrow tables have it
        if df[col].dtype == object or str(df[col].dtype) == "str":
            if df[col].map(lambda v: isinstance(v, str) or v is None
                           or (isinstance(v, float) and math.isnan(v))).all():
                df[col] = df[col].astype("string")
    return pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False).to_pandas()


def _value(dtype: str):
    missing = st.sampled_from([None, math.nan])
    kind = {
        "int64": st.integers(-2**40, 2**40),
        "float64": st.floats(-1e7, 1e7),  # times, rates, costs (NaN: the missing ones)
        "bool": st.booleans(),
        "string": st.text(max_size=12),
    }[dtype]
    return st.one_of(kind, missing)


@st.composite
def rows_of(draw, name: str):
    schema = SCHEMAS[name]
    extras = {
        "x_count": st.integers(0, 10**6),
        "x_time_s": st.floats(0, 1e6, allow_nan=False),
        "x_label": st.text(max_size=8),
        "x_flag": st.booleans(),
    }
    n = draw(st.integers(0, 12))
    rows = []
    for _ in range(n):
        row = {}
        for col, dtype, _fill in schema:
            if draw(st.booleans()):
                row[col] = draw(_value(dtype))
        for col, strategy in extras.items():
            if draw(st.integers(0, 3)):  # most rows have it, some lack it
                row[col] = draw(strategy)
        rows.append(row)
    return rows


@settings(max_examples=100, deadline=None, report_multiple_bugs=False)
@given(st.sampled_from(list(SCHEMAS)).flatmap(lambda n: st.tuples(st.just(n), rows_of(n))))
def test_arrow_table_equals_the_pandas_reference(case):
    name, rows = case
    table = arrow_table(name, rows)
    table.validate(full=True)
    pd.testing.assert_frame_equal(table.to_pandas(), pandas_reference(name, rows))
    # and through an IPC stream, as a replication task hands it back
    pd.testing.assert_frame_equal(arrow_of(to_arrow(table)).to_pandas(), table.to_pandas())


def test_booleans_with_gaps_stay_booleans_with_nulls():
    table = arrow_table("link_events", [{"t_s": 1.0, "event": "a", "x_flag": True}, {"t_s": 2.0, "event": "b"}])
    assert table.column("x_flag").to_pylist() == [True, None]
    assert table.to_pandas()["x_flag"].tolist() == [True, None]


@settings(max_examples=40, deadline=None)
@given(st.lists(rows_of("sessions"), min_size=1, max_size=4))
def test_concatenated_replications_equal_a_pandas_concat(parts):
    parts = [[{k: v for k, v in r.items() if k != "x_flag"} for r in p] for p in parts]
    tables = [arrow_table("sessions", p) for p in parts]
    order = list(dict.fromkeys(c for t in tables for c in t.column_names))
    known = [c for c, _, _ in SCHEMAS["sessions"]]
    order = known + sorted(c for c in order if c not in known)
    expected = pd.concat([pandas_reference("sessions", p) for p in parts], ignore_index=True)
    got = concat_tables(tables, order).to_pandas()
    pd.testing.assert_frame_equal(got, expected[order])


@settings(max_examples=40, deadline=None)
@given(rows_of("sessions"), rows_of("messages"), rows_of("commands"))
def test_summary_from_arrow_equals_summary_from_pandas(sessions, messages, commands):
    for rows in (sessions, messages, commands):
        for i, row in enumerate(rows):
            row["replication"] = i % 3
    arrow = {"sessions": arrow_table("sessions", sessions),
             "messages": arrow_table("messages", messages),
             "commands": arrow_table("commands", commands),
             "link_events": arrow_table("link_events", [])}
    frames = {k: t.to_pandas() for k, t in arrow.items()}
    extra = {"replications": 3}
    assert repr(summarize(arrow, dict(extra))) == repr(summarize(frames, dict(extra)))
    pd.testing.assert_frame_equal(per_replication_metrics(arrow, [0, 1, 2]),
                                  per_replication_metrics(frames, [0, 1, 2]))


def test_parquet_reads_back_with_the_schema_dtypes(tmp_path):
    table = arrow_table("messages", [{"uidl": "u1", "size_octets": 10, "duplicate": True},
                                     {"uidl": None, "t_retrieved_s": 3.5}])
    pq.write_table(table, tmp_path / "m.parquet")
    df = pd.read_parquet(tmp_path / "m.parquet")
    assert {c: str(df[c].dtype) for c, _, _ in SCHEMAS["messages"]} == {
        c: d for c, d, _ in SCHEMAS["messages"]}
    assert df["uidl"].isna().tolist() == [False, True]


def _same(got: float, want: float) -> bool:
    return got == want or (math.isnan(got) and math.isnan(want))


@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=40),
       st.sampled_from([0, 5, 25, 50, 75, 90, 95, 99, 100]))
@example([math.inf], 100)
@example([-math.inf, 1.0], 100)
@example([1.0, math.inf, math.inf], 95)
@example([1e308, 1e308], 50)
def test_median_and_percentile_are_numpys(values, q):
    import numpy as np

    v = np.asarray(values, dtype=float)
    s = np.sort(v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours print nothing (numpy warns on inf - inf)
        got = _median(s), _percentile(s, q)
    with np.errstate(all="ignore"):
        want = float(np.median(v)), float(np.percentile(v, q))
    assert _same(got[0], want[0])
    assert _same(got[1], want[1])


# What a quiet quickstart run (PPP, no outbox, no TLS) has no use for: pandas
# (half a second), numpy.ma (np.median's NaN check), rich (nothing is printed),
# SMTP, SLIP and the TLS certificate code (imported where they are used).
UNUSED_BY_QUICKSTART = ("pandas", "numpy.ma", "rich", "dialsim.proto.smtp",
                        "dialsim.proto.slip", "dialsim.hosts.tlscert")


def test_a_run_does_not_import_pandas(tmp_path):
    """``dialsim run -q`` of a single-line scenario writes its tables and summary
    with Arrow and numpy alone, and loads no module it does not use."""
    code = (
        "import sys\n"
        "from dialsim.cli import main\n"
        f"rc = main(['run', {str(ROOT / 'scenarios' / 'quickstart.yaml')!r}, '-q', "
        f"'--replications', '1', '--out', {str(tmp_path / 'out')!r}])\n"
        "assert rc == 0, rc\n"
        f"print([m for m in {UNUSED_BY_QUICKSTART!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    assert pa.types.is_large_string(
        pq.read_schema(tmp_path / "out" / "sessions.parquet").field("end_reason").type)
