"""A scenario file's ``sweep:`` block: validated point by point when the file is
loaded (errors name the block's line), combined with --vary, and run by
``dialsim run`` with the comparison table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dialsim.experiment.run import run_scenario
from dialsim.experiment.sweep import parse_vary, run_sweep
from dialsim.results.tables import read_tables
from dialsim.scenario.load import ScenarioError, load_scenario, scenario_from_text

ROOT = Path(__file__).resolve().parents[2]

BASE = """name: swept
seed: 2
duration: 1 h
framing: slip
link:
  profile: v32bis
  error_correction: false
subscriber:
  user: alice
  password: tanstaaf
isp:
  maildrop:
    messages: 3
    size: {distribution: fixed, median: 2 KiB}
"""


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialsim", *args], capture_output=True,
                          text=True)


def test_points_are_the_product_validated_as_the_file(tmp_path):
    sc = scenario_from_text(BASE + """sweep:
  subscriber.strategy: [{mode: delete}, {mode: keep, leave_for: 2 d}]
  link.connect_rate: [9600, 14.4k]
""")
    points = sc.sweep_points()
    assert [s for s, _ in points] == [
        {"subscriber.strategy": {"mode": "delete"}, "link.connect_rate": 9600},
        {"subscriber.strategy": {"mode": "delete"}, "link.connect_rate": "14.4k"},
        {"subscriber.strategy": {"mode": "keep", "leave_for": "2 d"}, "link.connect_rate": 9600},
        {"subscriber.strategy": {"mode": "keep", "leave_for": "2 d"}, "link.connect_rate": "14.4k"}]
    last = points[-1][1]
    assert last.link.connect_rate == 14400.0 and last.subscriber.strategy.leave_for == 172800.0
    assert last.sweep is None and "sweep" not in last.scenario_text
    # --vary adds keys and replaces the block's own
    more = sc.sweep_points([parse_vary("link.connect_rate=7200"), parse_vary("seed=1,2")])
    assert len(more) == 2 * 1 * 2 and {p.link.connect_rate for _s, p in more} == {7200.0}


@pytest.mark.parametrize("block, line, expect", [
    ("  link.profle: [v34]\n", 17, "sweep: link.profle: unknown key; did you mean profile?"),
    ("  link.connect_rate:\n    - 9600\n    - fast\n", 19, "sweep: link.connect_rate: bad rate"),
    # the file's connect rate is what the swept profile cannot reach: both lines named
    ("  link.profile: [v22bis]\n", 8, "line 17: sweep: link.connect_rate: 14400 bit/s is out"),
    ("  subscriber.strategy.leave_for: [1 d]\n", 17, "leave_for needs mode: keep"),
    ("  link.profile: []\n", 17, "sweep.link.profile: bad value []"),
])
def test_a_bad_point_is_blamed_on_its_line(tmp_path, block, line, expect):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("error_correction: false", "error_correction: false\n"
                                 "  connect_rate: 14.4k") + "sweep:\n" + block)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{line}:") and expect in msg, msg
    assert "\n" not in msg
    r = _cli("run", str(path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_point_equals_a_plain_run_of_its_settings(tmp_path):
    sc = scenario_from_text(BASE + "sweep:\n  link.connect_rate: [9600, 14.4k]\n")
    run_sweep(sc, [], tmp_path / "sw")
    swept = read_tables(tmp_path / "sw")["sessions"]
    plain = run_scenario(sc.sweep_points()[1][1], tmp_path / "one").tables["sessions"]
    got = swept[swept["point"] == 1].drop(columns=["point", "link.connect_rate"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), plain, check_dtype=False)


def test_dialsim_run_runs_the_shipped_sweep_and_prints_the_comparison(tmp_path):
    out = tmp_path / "o"
    r = _cli("run", str(ROOT / "scenarios" / "strategies-sweep.yaml"), "--out", str(out),
             "--replications", "1")
    assert r.returncode == 0, r.stderr
    assert "strategies-sweep: 9 point(s) x 1 replication(s)" in r.stdout
    points = pd.read_parquet(out / "points.parquet")
    assert len(points) == 9 and (points["messages_lost"] == 0).all()
    assert set(points["subscriber.strategy"]) == {
        "mode=delete use_uidl=False", "mode=delete use_uidl=False batch=5",
        "mode=delete use_uidl=True"}
    # the client that remembers UIDLs never gets a message twice
    uidl = points[points["subscriber.strategy"] == "mode=delete use_uidl=True"]
    assert (uidl["messages_duplicated"] == 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["varied"] == ["subscriber.strategy", "link.carrier_loss.mean_time_between"]
    assert "sweep:" in (out / "scenario.yaml").read_text()
    sessions = read_tables(out)["sessions"]
    assert set(sessions["point"]) == set(range(9)) and (sessions["phone_cost"] > 0).any()


def test_the_shipped_sweep_is_the_product_the_issue_asks_for():
    sc = load_scenario(ROOT / "scenarios" / "strategies-sweep.yaml")
    assert sc.replications >= 10
    sizes = [len(v) for v in sc.sweep.values()]
    assert len(sizes) == 2 and sizes[0] >= 3 and sizes[1] >= 3
