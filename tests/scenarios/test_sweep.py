"""dialsim sweep: points equal single runs, parallel equals serial, bad keys fail cleanly."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from dialsim.experiment.run import run_scenario
from dialsim.experiment.sweep import parse_vary, run_sweep
from dialsim.results.tables import read_tables
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _sc():
    return load_scenario(ROOT / "scenarios" / "slow-2400.yaml").with_overrides(replications=1)


def test_sweep_points_equal_runs_and_parallel_equals_serial(tmp_path):
    sc = _sc()
    varies = [parse_vary("link.profile=v22bis,v32bis"), parse_vary("subscriber.strategy.mode=delete,keep")]
    serial = run_sweep(sc, varies, tmp_path / "serial", workers=1)
    run_sweep(sc, varies, tmp_path / "par", workers=2)
    a, b = read_tables(tmp_path / "serial"), read_tables(tmp_path / "par")
    for name in ("sessions", "commands", "messages", "link_events"):
        pd.testing.assert_frame_equal(a[name], b[name])
    assert len(serial["points"]) == 4 and serial["messages_lost"] == 0
    points = pd.read_parquet(tmp_path / "serial" / "points.parquet")
    assert list(points["link.profile"]) == ["v22bis", "v22bis", "v32bis", "v32bis"]
    # Point 2 is v32bis + delete: the same tables as a plain run of that scenario.
    single = run_scenario(sc.with_overrides({"link.profile": "v32bis",
                                             "subscriber.strategy.mode": "delete"}),
                          tmp_path / "one").tables
    got = a["sessions"][a["sessions"]["point"] == 2].drop(
        columns=["point", "link.profile", "subscriber.strategy.mode"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, single["sessions"], check_dtype=False)


def test_sweep_units_are_parsed_like_the_file(tmp_path):
    sc = _sc().with_overrides({"link.connect_rate": "1200"})
    assert sc.link.connect_rate == 1200.0
    sc = _sc().with_overrides({"link.carrier_loss": {"at": ["30 s"]}})
    assert sc.link.carrier_loss.at == [30.0]


def test_cli_bad_vary_one_line(tmp_path):
    for spec, expect in [("link.profle=v34", "link.profle: unknown key; did you mean profile?"),
                         ("link.profile=v99", "link.profile"),
                         ("nolink.x=1", "not a section"),
                         ("link.profile", "expected KEY=V1,V2")]:
        r = subprocess.run([sys.executable, "-m", "dialsim.cli", "sweep",
                            str(ROOT / "scenarios" / "slow-2400.yaml"), "--vary", spec,
                            "--out", str(tmp_path / "o")], capture_output=True, text=True)
        assert r.returncode == 2, (spec, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and expect in r.stderr, (spec, r.stderr)
    assert not (tmp_path / "o").exists()
