"""A population of subscribers on one modem pool: the hunt group never double-books
a line and blocks only when every line is held; the tables agree with each
other; same seed, same tables; a subscriber's own draws do not depend on how
many others there are; the holding-time mode holds the line for an exponential
time while the retrieval runs; the command line prints blocking per hour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dialsim.experiment.run import run_scenario
from dialsim.experiment.sweep import parse_vary, run_sweep
from dialsim.scenario.load import load_scenario, scenario_from_text

ROOT = Path(__file__).resolve().parents[2]

POOL = """
name: pool
seed: 4
duration: 6 h
subscriber:
  user: sub
  password: tanstaaf
  redial: {attempts: 3, delay: 30 s}
isp:
  maildrop: {messages: 1, size: {median: 2 KiB, sigma: 0.5}}
  incoming: {rate: 1 /h, size: {median: 2 KiB, sigma: 0.5}}
population:
  subscribers: 16
  lines: 2
  calls: {pattern: poisson, every: 40 min}
  holding: {mode: exponential, mean: 6 min}
  modems: {v34: 0.5, v90: 0.5}
  strategies:
    - {share: 0.5, mode: delete}
    - {share: 0.5, mode: keep, use_uidl: true}
"""


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    sc = scenario_from_text(POOL)
    return sc, run_scenario(sc, tmp_path_factory.mktemp("pool") / "out")


def test_the_hunt_group_blocks_only_when_every_line_is_held(pool):
    sc, res = pool
    s = res.tables["sessions"]
    held = s[s["line"] >= 0]
    blocked = s[s["line"] < 0]
    assert len(blocked) > 5 and len(held) > 30
    assert set(blocked["end_reason"]) == {"busy"}
    for _line, calls in held.groupby("line"):  # one call at a time per line
        calls = calls.sort_values("t_dial_s")
        assert (calls["t_dial_s"].to_numpy()[1:] >= calls["t_end_s"].to_numpy()[:-1]).all()
    for t in blocked["t_dial_s"]:  # every line was held when BUSY was heard
        busy = held[(held["t_dial_s"] <= t) & (held["t_end_s"] > t)]
        assert len(busy) == sc.population.lines
    assert res.summary["messages_lost"] == 0
    assert res.tables["messages"]["intact"].all()


def test_the_tables_agree(pool):
    sc, res = pool
    t = res.tables
    hours, lines, subs = t["hours"], t["lines"], t["subscribers"]
    assert len(hours) == 6 and len(lines) == 6 * sc.population.lines
    per_hour = lines.groupby("hour")["busy_s"].sum().to_numpy() / 3600.0
    assert np.allclose(per_hour, hours["carried_erlangs"])
    assert (lines["occupancy"].between(0.0, 1.0)).all()
    assert hours["attempts"].sum() == len(t["sessions"]) == subs["attempts"].sum()
    assert hours["blocked"].sum() == subs["blocked"].sum() == (t["sessions"]["line"] < 0).sum()
    assert res.summary["capacity"]["blocked"] == hours["blocked"].sum()
    # Every row of every table says whose it is.
    for name in ("sessions", "commands", "messages", "link_events"):
        assert list(t[name].columns[:2]) == ["replication", "subscriber"], name
        assert set(t[name]["subscriber"]) <= set(range(16))
    assert set(subs["profile"]) == {"v34", "v90"}
    assert set(subs["strategy"]) == {"delete+uidl", "keep+uidl"}


def test_holding_time_mode_holds_an_exponential_time_while_mail_is_fetched(pool):
    _sc, res = pool
    s = res.tables["sessions"]
    up = s[s["t_connect_s"].notna() & (s["t_end_s"] < 6 * 3600 - 1)]
    online = (up["t_end_s"] - up["t_connect_s"]).to_numpy()
    assert online.mean() == pytest.approx(360.0, rel=0.25)
    assert online.std() / online.mean() == pytest.approx(1.0, abs=0.3)
    assert set(up["end_reason"]) <= {"quit", "holding_time", "unfinished"}
    # The retrieval ran inside the call: logged in on nearly every call.
    assert up["t_logged_in_s"].notna().mean() > 0.9


def test_same_seed_same_tables_and_own_draws(tmp_path, pool):
    sc, res = pool
    again = run_scenario(sc, tmp_path / "again").tables
    for name, df in res.tables.items():
        pd.testing.assert_frame_equal(df, again[name], check_dtype=True)
    bigger = run_scenario(sc.with_overrides({"population.subscribers": 20,
                                             "population.lines": 20}), tmp_path / "b").tables
    # With lines for everyone, a subscriber's traits and first call are its own.
    a = res.tables["subscribers"].set_index("subscriber")[["profile", "strategy"]]
    b = bigger["subscribers"].set_index("subscriber")[["profile", "strategy"]]
    pd.testing.assert_frame_equal(a, b.loc[a.index])
    first = (bigger["sessions"].groupby("subscriber")["t_dial_s"].min())
    first_small = res.tables["sessions"].groupby("subscriber")["t_dial_s"].min()
    assert np.allclose(first.loc[first_small.index], first_small)


def test_sweep_over_lines_reports_blocking(tmp_path):
    sc = scenario_from_text(POOL).with_overrides({"duration": "3 h"})
    summary = run_sweep(sc, [parse_vary("population.lines=1,4")], tmp_path / "sw")
    points = pd.read_parquet(tmp_path / "sw" / "points.parquet")
    assert list(points["population.lines"]) == ["1", "4"]
    one, four = points["blocking_probability"]
    assert one > four and one > 0.2
    assert summary["points"][0]["blocking_probability"] == one
    hours = pd.read_parquet(tmp_path / "sw" / "hours.parquet")
    assert set(hours["point"]) == {0, 1}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialsim.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_cli_prints_blocking_per_hour_and_writes_the_pool_tables(tmp_path):
    data = yaml.safe_load((ROOT / "scenarios" / "isp-busy-hour.yaml").read_text())
    data["population"].update(subscribers=40, lines=2)
    small = tmp_path / "busy.yaml"
    small.write_text(yaml.safe_dump(data))
    r = _cli("run", str(small), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "40 subscribers on 2 lines" in r.stdout and "Erlang B" in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if ln.replace("│", " ").split()[:1] == ["20"]]
    assert rows, r.stdout  # the 20:00 row of the blocking table
    for name in ("lines", "hours", "subscribers", "sessions"):
        assert (tmp_path / "o" / f"{name}.parquet").exists()
    hours = pd.read_parquet(tmp_path / "o" / "hours.parquet")
    evening, night = hours.loc[18:22, "blocked"].sum(), hours.loc[1:6, "blocked"].sum()
    assert evening > night
    r = _cli("run", str(small), "--pcap", "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and "population has many" in r.stderr
    assert load_scenario(small).population.subscribers == 40
