"""Results: recorder rows, table schemas and dtypes, the results folder, the summary
(plots: tests/analysis)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import dialsim
from dialsim.results.recorder import Recorder
from dialsim.results.summary import per_replication_metrics, render_summary, summarize
from dialsim.results.tables import SCHEMAS, build_tables, empty_table, read_tables, write_results


def _session(rec: Recorder, session: int, t0: float, **cols) -> None:
    row = dict(
        session=session,
        attempt=1,
        profile="v34",
        framing="slip",
        connect_rate_bps=28800.0,
        t_dial_s=t0,
        t_connect_s=t0 + 20,
        t_link_up_s=t0 + 21,
        t_pop3_greeting_s=t0 + 22,
        t_logged_in_s=t0 + 24,
        t_end_s=t0 + 120,
        end_reason="quit",
        messages_retrieved=0,
        octets_retrieved=0,
        line_bytes_down=0,
        line_bytes_up=0,
    )
    row.update(cols)
    rec.session(**row)


def hand_made() -> list[Recorder]:
    """Replication 0: a busy attempt, then a call that drops, then one that finishes.
    Replication 1: one clean call.  Replication 2: never connects."""
    r0 = Recorder(0)
    r0.session(session=1, attempt=1, profile="v34", framing="slip", t_dial_s=0.0, t_end_s=15.0, end_reason="busy")
    _session(r0, 2, 45.0, t_end_s=125.0, end_reason="carrier_lost", messages_retrieved=2,
             octets_retrieved=8000, line_bytes_down=9000, line_bytes_up=500)
    _session(r0, 3, 200.0, t_connect_s=230.0, t_logged_in_s=240.0, t_end_s=330.0, messages_retrieved=3,
             octets_retrieved=12000, line_bytes_down=13000, line_bytes_up=700)
    for i, (s, t, dup) in enumerate([(2, 80.0, False), (2, 100.0, False), (3, 260.0, True), (3, 290.0, False), (3, 310.0, False)]):
        r0.message(session=s, uidl=f"u{i}", size_octets=4000, sha256="0" * 64, t_retrieved_s=t, duplicate=dup)
    r0.command(session=2, protocol="pop3", command="USER alice", t_sent_s=67.0, t_first_byte_s=67.5,
               t_done_s=68.0, bytes_up=12, bytes_down=10, ok=True)
    r0.command(session=2, protocol="pop3", command="PASS ****", t_sent_s=68.0, t_first_byte_s=68.5,
               t_done_s=71.0, bytes_up=12, bytes_down=10, ok=True)
    r0.link_event(0.0, "dial", "555-0123")
    r0.link_event(15.0, "busy")

    r1 = Recorder(1)
    _session(r1, 1, 0.0, t_connect_s=10.0, t_logged_in_s=15.0, t_end_s=110.0, messages_retrieved=4,
             octets_retrieved=10000, line_bytes_down=11000, line_bytes_up=600)
    for i, t in enumerate((40.0, 60.0, 80.0, 100.0)):
        r1.message(session=1, uidl=f"v{i}", size_octets=2500, sha256="1" * 64, t_retrieved_s=t, duplicate=False)
    r1.command(session=1, protocol="pop3", command="STAT", t_sent_s=16.0, t_first_byte_s=16.5,
               t_done_s=17.0, bytes_up=6, bytes_down=12, ok=True)

    r2 = Recorder(2)
    r2.session(session=1, attempt=1, profile="v34", framing="slip", t_dial_s=0.0, t_end_s=60.0, end_reason="no_answer")
    return [r2, r0, r1]  # out of order on purpose


# --- recorder ------------------------------------------------------------------


def test_recorder_stamps_replication():
    r = Recorder(4)
    r.session(session=1)
    r.link_event(1.5, "carrier_lost", "scheduled")
    assert r.sessions == [{"replication": 4, "session": 1}]
    assert r.link_events == [{"replication": 4, "t_s": 1.5, "event": "carrier_lost", "detail": "scheduled"}]


def test_recorder_refuses_other_replication():
    with pytest.raises(ValueError):
        Recorder(1).message(replication=2, uidl="x")


# --- tables --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_empty_tables_keep_schema(name):
    df = build_tables([Recorder(0)])[name]
    assert list(df.columns) == [c for c, _, _ in SCHEMAS[name]]
    assert [str(t) for t in df.dtypes] == [str(pd.Series([], dtype=d).dtype) for _, d, _ in SCHEMAS[name]]
    assert len(df) == 0
    assert df.dtypes.equals(empty_table(name).dtypes)


def test_tables_order_fill_and_dtypes():
    t = build_tables(hand_made())
    s = t["sessions"]
    assert s["replication"].tolist() == [0, 0, 0, 1, 2]
    assert s["session"].tolist() == [1, 2, 3, 1, 1]
    busy = s.iloc[0]
    assert math.isnan(busy["t_connect_s"]) and busy["messages_retrieved"] == 0
    assert s["end_reason"].dtype == "string" and s["messages_retrieved"].dtype == "int64"
    assert t["messages"]["duplicate"].dtype == bool
    assert t["messages"]["duplicate"].sum() == 1
    assert t["link_events"]["event"].tolist() == ["dial", "busy"]
    assert t["link_events"]["detail"].tolist() == ["555-0123", ""]
    assert t["commands"]["ok"].all()


def test_extra_columns_follow_known_ones_sorted():
    r = Recorder(0)
    r.session(session=1, zeta_octets=5, alpha_frames=2)
    r.session(session=2, alpha_frames=3)
    s = build_tables([r])["sessions"]
    known = [c for c, _, _ in SCHEMAS["sessions"]]
    assert list(s.columns) == known + ["alpha_frames", "zeta_octets"]
    assert s["alpha_frames"].tolist() == [2, 3]


def test_write_results_round_trip(tmp_path):
    tables = build_tables(hand_made())
    summary = summarize(tables, {"replications": 3, "scenario": "t", "seeds": {"0": [1, 0]}})
    out = tmp_path / "results" / "t"
    write_results(out, tables, summary, "seed: 1\n", {"argv": ["dialsim", "run"]}, csv=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{n}.parquet" for n in SCHEMAS] + [f"{n}.csv" for n in SCHEMAS]
        + ["summary.json", "scenario.yaml", "meta.json"]
    )
    back = read_tables(out)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(back[name], df)
    meta = json.loads((out / "meta.json").read_text())
    assert meta == {"dialsim_version": dialsim.__version__, "argv": ["dialsim", "run"]}
    assert (out / "scenario.yaml").read_text() == "seed: 1\n"
    js = json.loads((out / "summary.json").read_text())  # strict JSON: NaN became null
    assert js["metrics"]["connect_time_s"]["n"] == 2
    assert js["per_replication"][2]["connect_time_s"] is None
    # nothing left behind but the folder itself
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["t"]


def test_write_results_empty_tables_round_trip(tmp_path):
    tables = build_tables([])
    write_results(tmp_path / "e", tables, summarize(tables, {}), "", {})
    back = read_tables(tmp_path / "e")
    for name, df in tables.items():
        pd.testing.assert_frame_equal(back[name], df)


def test_write_results_replaces_and_is_atomic(tmp_path):
    tables = build_tables(hand_made())
    out = tmp_path / "r"
    write_results(out, tables, {}, "first", {})

    def boom(tmp_dir):
        (tmp_dir / "line.pcap").write_bytes(b"x")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_results(out, tables, {}, "second", {}, before_commit=boom)
    assert (out / "scenario.yaml").read_text() == "first"  # old results untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temp folder left

    write_results(out, tables, {}, "third", {}, before_commit=lambda d: (d / "line.pcap").write_bytes(b"p"))
    assert (out / "scenario.yaml").read_text() == "third"
    assert (out / "line.pcap").read_bytes() == b"p"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


# --- summary -------------------------------------------------------------------


def test_per_replication_metrics_by_hand():
    t = build_tables(hand_made())
    per = per_replication_metrics(t, [0, 1, 2]).set_index("replication")
    r0, r1, r2 = per.loc[0], per.loc[1], per.loc[2]
    assert r0["sessions"] == 3 and r0["calls_connected"] == 2 and r0["carrier_losses"] == 1
    assert r0["connect_time_s"] == pytest.approx((20 + 30) / 2)
    assert r0["login_time_s"] == pytest.approx((4 + 10) / 2)
    assert r0["online_time_s"] == pytest.approx(60 + 100)
    assert r0["octets_retrieved"] == 20000
    assert r0["goodput_Bps"] == pytest.approx(20000 / 160)
    assert r0["messages_retrieved"] == 4 and r0["messages_duplicated"] == 1
    assert r0["time_to_retrieve_all_s"] == 310.0
    assert r0["command_time_s"] == pytest.approx((1.0 + 3.0) / 2)
    assert r0["line_bytes_down"] == 22000 and r0["line_bytes_up"] == 1200
    assert r1["time_to_retrieve_all_s"] == 100.0 and r1["goodput_Bps"] == pytest.approx(100.0)
    assert r2["sessions"] == 1 and r2["calls_connected"] == 0
    assert math.isnan(r2["connect_time_s"]) and math.isnan(r2["goodput_Bps"])
    assert math.isnan(r2["time_to_retrieve_all_s"])


def test_time_to_all_is_undefined_when_mail_was_left():
    t = build_tables(hand_made())
    per = per_replication_metrics(t, [0, 1], unretrieved={0: 0, 1: 1}).set_index("replication")
    assert per.loc[0, "time_to_retrieve_all_s"] == 310.0
    assert math.isnan(per.loc[1, "time_to_retrieve_all_s"])


def test_summarize_statistics():
    t = build_tables(hand_made())
    s = summarize(t, {"replications": 3, "messages_lost": 2, "scenario": "hand", "seeds": {"0": [1]}, "seed": 1})
    assert s["dialsim_version"] == dialsim.__version__
    assert s["scenario"] == "hand" and s["replications"] == 3 and s["seed"] == 1
    assert s["messages_lost"] == 2
    assert s["messages_duplicated"] == 1  # from the table when extra has none
    sessions = s["metrics"]["sessions"]
    assert sessions["mean"] == pytest.approx(5 / 3) and sessions["median"] == 1.0
    assert sessions["p95"] == pytest.approx(1 + 0.9 * 2)  # linear between 1 and 3
    assert (sessions["min"], sessions["max"], sessions["n"]) == (1.0, 3.0, 3)
    goodput = s["metrics"]["goodput_Bps"]  # replication 2 has none: left out
    assert goodput["n"] == 2 and goodput["mean"] == pytest.approx((125 + 100) / 2)
    t_all = s["metrics"]["time_to_retrieve_all_s"]
    assert t_all["median"] == pytest.approx(205.0)
    assert len(s["per_replication"]) == 3


def test_summarize_counts_replications_without_rows():
    t = build_tables([Recorder(0)])
    s = summarize(t, {"replications": 2, "messages_duplicated": 4})
    assert s["replications"] == 2 and s["messages_duplicated"] == 4
    assert s["metrics"]["sessions"]["mean"] == 0.0
    assert s["metrics"]["connect_time_s"] == {
        "mean": None, "median": None, "p95": None, "min": None, "max": None, "n": 0,
        "ci95_low": None, "ci95_high": None,
    }


def test_render_summary_table():
    from rich.console import Console

    t = build_tables(hand_made())
    table = render_summary(summarize(t, {"replications": 3, "scenario": "hand", "messages_lost": 1}))
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "hand: 3 replication(s)" in text
    assert "time to retrieve all mail" in text and "messages lost" in text
    assert "205.00 s" in text  # median time to all mail


def test_summary_confidence_interval_of_the_mean():
    """Two replications took 310 s and 100 s to retrieve all mail: the mean is 205 s and
    its 95% interval is 205 ± t(0.975, 1) · s/√2 = 205 ± 12.7062 · 105 s."""
    from rich.console import Console

    t = build_tables(hand_made())
    s = summarize(t, {"replications": 3, "scenario": "hand"})
    st = s["metrics"]["time_to_retrieve_all_s"]
    assert st["n"] == 2 and st["mean"] == 205.0
    assert st["ci95_low"] == pytest.approx(205.0 - 12.7062 * 105.0, rel=1e-5)
    assert st["ci95_high"] == pytest.approx(205.0 + 12.7062 * 105.0, rel=1e-5)
    one = summarize({k: v[v["replication"] == 1] for k, v in t.items()})
    assert one["metrics"]["time_to_retrieve_all_s"]["ci95_low"] is None  # one value: no spread
    console = Console(width=120, record=True)
    console.print(render_summary(s))
    text = console.export_text()
    assert "mean ± 95% CI" in text and "205.00 ± 1,334.15 s" in text
    console = Console(width=120, record=True)
    console.print(render_summary(one))
    assert "95% CI" not in console.export_text()  # one replication: no interval to show

