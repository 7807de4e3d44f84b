"""dialsim.analysis on hand-made tables (known answers) and on real results folders."""

from __future__ import annotations

import json
import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

import dialsim.analysis as da
from dialsim.results.tables import build_tables, read_tables, write_results
from tests.unit.test_results import hand_made

matplotlib.use("Agg")
UNIT = re.compile(r"\((s|B/s|bit/s|octets|bits|count|0-1)\)")


def _hand_tables():
    t = build_tables(hand_made())
    for df in t.values():
        df.insert(0, "run", "hand")
    return t


# --- phases, commands, layers -------------------------------------------------


def test_phases_of_hand_made_calls():
    s = _hand_tables()["sessions"]
    p = da.phases(s)
    call = p[(p.replication == 0) & (p.session == 2)]
    assert call.phase.tolist() == ["dialing", "link setup", "outbox, greeting", "login", "mail"]
    assert call.duration_s.tolist() == [20.0, 1.0, 1.0, 2.0, 125.0 - 69.0]
    assert call.completed.all()
    busy = p[(p.replication == 0) & (p.session == 1)]
    # the busy attempt spent its 15 s dialing and never got further
    assert busy.phase.tolist() == ["dialing"] and busy.duration_s.tolist() == [15.0]
    assert not busy.completed.any()
    # per call whose milestones are in order, the phases add up to the call's length
    cols = ["t_dial_s", "t_connect_s", "t_link_up_s", "t_pop3_greeting_s", "t_logged_in_s", "t_end_s"]
    ordered = s[s[cols].apply(lambda r: r.dropna().is_monotonic_increasing, axis=1)]
    assert len(ordered) >= 3
    total = p.groupby(["replication", "session"]).duration_s.sum()
    length = ordered.set_index(["replication", "session"]).eval("t_end_s - t_dial_s")
    assert total[length.index].tolist() == length.tolist()


def test_phase_cut_short_by_carrier_loss_ends_at_t_end():
    s = _hand_tables()["sessions"].iloc[[1]].copy()
    s["t_logged_in_s"] = np.nan
    s["t_pop3_greeting_s"] = np.nan
    p = da.phases(s)
    assert p.phase.tolist() == ["dialing", "link setup", "outbox, greeting"]
    last = p.iloc[-1]
    assert not last.completed and last.end_s == s.t_end_s.iloc[0]


def test_command_latency_by_hand():
    c = da.command_latency(_hand_tables()["commands"])
    first = c.iloc[:2]
    assert first.verb.tolist() == ["USER", "PASS"]
    assert first.wait_s.tolist() == [0.5, 0.5] and first.transfer_s.tolist() == [0.5, 2.5]
    assert first.reply_Bps.tolist() == [10.0, 10.0 / 3.0]


def test_layer_octets_add_up_to_the_line(results_dir):
    s = da.load(results_dir).sessions
    o = da.layer_octets(s)
    for direction in ("down", "up"):
        serial = o[(o.direction == direction) & (o.layer != "modem line coding")].octets.sum()
        # the layers of the serial octets: everything but HDLC flags and escapes
        assert 0.97 * s[f"line_bytes_{direction}"].sum() < serial <= s[f"line_bytes_{direction}"].sum()
        everything = o[o.direction == direction].octets.sum()
        assert everything == pytest.approx((s[f"line_bits_{direction}"] / 8).sum() - s[f"line_bytes_{direction}"].sum() + serial)


# --- comparisons ----------------------------------------------------------------


def test_compare_matches_hand_computed_interval():
    frame = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 2 + ["c"], "x_s": [1.0, 2.0, 3.0, 4.0, 10.0, 12.0, 5.0]})
    c = da.compare(frame, "x_s", by="g").set_index("g")
    sd = np.std([1, 2, 3, 4], ddof=1)
    assert c.loc["a", "mean"] == 2.5 and c.loc["a", "n"] == 4
    assert c.loc["a", "ci_high"] - 2.5 == pytest.approx(3.182446 * sd / 2, rel=1e-6)
    assert c.loc["b", "ci_low"] == pytest.approx(11.0 - 12.706205, rel=1e-6)
    assert math.isnan(c.loc["c", "ci_low"]) and c.loc["c", "n"] == 1


def test_cdf_steps():
    c = da.cdf(pd.DataFrame({"v_s": [3.0, 1.0, 2.0, np.nan]}), "v_s")
    assert c.v_s.tolist() == [1.0, 2.0, 3.0] and c.p.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_replication_metrics_agree_with_the_run_summary(results_dir):
    m = da.replication_metrics(da.load(results_dir))
    summary = json.loads((results_dir / "summary.json").read_text())
    for row in summary["per_replication"]:
        ours = m[m.replication == row["replication"]].iloc[0]
        for name in ("time_to_retrieve_all_s", "goodput_Bps", "messages_retrieved"):
            assert ours[name] == pytest.approx(row[name])


def test_sweep_points_compare_with_their_summary(sweep_dir):
    r = da.load(sweep_dir)
    c = da.compare(da.replication_metrics(r), "goodput_Bps", by="link.compression")
    summary = json.loads((sweep_dir / "summary.json").read_text())
    for p in summary["points"]:
        ours = c[c["link.compression"] == str(p["link.compression"])].iloc[0]
        st = p["metrics"]["goodput_Bps"]
        assert ours["mean"] == pytest.approx(st["mean"])
        assert ours["ci_low"] == pytest.approx(st["ci95_low"])
    # V.42bis on text: more mail octets per second online than without it
    means = c.set_index("link.compression")["mean"]
    assert means["True"] > means["False"]


# --- loading ----------------------------------------------------------------------


def test_load_marks_measured_sessions_and_reads_folders_of_folders(results_dir, tmp_path):
    t = read_tables(results_dir)
    for df in t.values():
        df["measured"] = True
    write_results(tmp_path / "all" / "measured", t, {"scenario": "quickstart"}, "name: quickstart\n",
                  {"measured": True})
    write_results(tmp_path / "all" / "simulated", read_tables(results_dir), {}, "name: other\n", {})
    r = da.load(tmp_path / "all")
    assert sorted(set(r.sessions.run)) == ["measured", "simulated"]
    by_run = r.sessions.groupby("run").measured.all().to_dict()
    assert by_run == {"measured": True, "simulated": False}
    assert set(r.sessions.scenario) == {"quickstart", "other"}  # summary.json, else scenario.yaml
    assert r.points.set_index("run").measured.to_dict() == by_run
    assert str(r.sessions.dtypes["measured"]) == "bool" and str(r.sessions.dtypes["point"]) == "int64"


def test_load_refuses_what_is_not_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a results folder"):
        da.load(tmp_path)


def test_load_types_numeric_sweep_values(sweep_dir, tmp_path):
    t = read_tables(sweep_dir)
    for df in t.values():
        df["link.bit_error_rate"] = df["point"].map({0: "1e-06", 1: "0.0001"})
    write_results(tmp_path / "ber", t, {"varied": ["link.bit_error_rate"]}, "name: x\n",
                  {"sweep": [["link.bit_error_rate", [1e-6, 1e-4]]]})
    r = da.load(tmp_path / "ber")
    assert r.sessions["link.bit_error_rate"].dtype == np.float64
    assert sorted(set(r.sessions["link.bit_error_rate"])) == [1e-6, 1e-4]


# --- plots ------------------------------------------------------------------------


def _numeric_axes_have_units(fig):
    for ax in fig.axes:
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            assert label, f"an axis of {ax.get_title()!r} has no label"
            if not axis.get_ticklabels() or all(t.get_text() == "" or _is_number(t.get_text())
                                                for t in axis.get_ticklabels()):
                assert UNIT.search(label), f"numeric axis {label!r} has no unit"


def _is_number(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-").replace(",", ""))
        return True
    except ValueError:
        return False


def test_every_plot_labels_its_axes_with_units(results_dir, sweep_dir, tmp_path):
    r = da.load(results_dir)
    rates = da.goodput(da.read_capture(results_dir / "line-rep0.pcap"))
    c = da.command_latency(r.commands)
    sweep = da.load(sweep_dir)
    figs = {
        "phases": da.plot_phases(r.sessions),
        "phases_by": da.plot_phases(sweep.sessions, by="link.compression"),
        "timeline": da.plot_command_timeline(r.commands, replication=1),
        "latency": da.plot_command_latency(sweep.commands, by="link.compression"),
        "goodput": da.plot_goodput(rates, commands=r.commands[r.commands.replication == 0]),
        "cdf": da.plot_cdf(da.cdf(c, "duration_s", by="verb"), "duration_s", by="verb"),
        "compare": da.plot_comparison(
            da.compare(da.replication_metrics(sweep), ["goodput_Bps", "messages_duplicated"],
                       by="link.compression"), x="link.compression"),
        "layers": da.plot_layer_octets(r.sessions),
    }
    for name, fig in figs.items():
        for ax in fig.axes:
            ax.figure.canvas.draw()  # tick labels exist once drawn
        _numeric_axes_have_units(fig)
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # phases: one bar per (call, phase); 2 calls x 5 phases
    assert len(figs["phases"].axes[0].patches) == 10
    # timeline of replication 1: two bars per command
    n = int((r.commands.replication == 1).sum())
    assert len(figs["timeline"].axes[0].patches) == 2 * n


def test_plots_of_empty_tables_do_not_fail(tmp_path):
    t = build_tables([])
    da.plot_phases(t["sessions"], path=tmp_path / "empty.png")
    da.plot_command_timeline(t["commands"], path=tmp_path / "empty2.png")
    assert (tmp_path / "empty.png").exists()
