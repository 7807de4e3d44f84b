"""What a results folder promises, checked through the same paths `dialsim run` and
`dialsim sweep` take (run_scenario, the CLI), not through hand-fed inputs."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dialsim.experiment.run import run_scenario
from dialsim.results.tables import read_tables
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialsim", *args], capture_output=True,
                          text=True)


def test_no_time_to_retrieve_all_when_mail_was_left(tmp_path):
    # 90 s of a 2400 bps line fetches only some of the 8 messages.
    sc = load_scenario(ROOT / "scenarios" / "slow-2400.yaml").with_overrides(
        replications=1, duration="90 s")
    res = run_scenario(sc, tmp_path / "r")
    retrieved = int((~res.tables["messages"]["duplicate"]).sum())
    assert 0 < retrieved < len(res.outcomes[0].stored)
    assert res.summary["metrics"]["time_to_retrieve_all_s"]["mean"] is None
    assert res.summary["per_replication"][0]["time_to_retrieve_all_s"] is None
    # ... and it is there when everything came.
    full = run_scenario(sc.with_overrides(duration="2 h"), tmp_path / "f")
    assert full.summary["metrics"]["time_to_retrieve_all_s"]["mean"] > 0


@pytest.mark.parametrize("name", ["quickstart", "slow-2400", "cslip-login"])
def test_scenario_as_run_is_valid_yaml_masked_and_reruns(tmp_path, name):
    src = ROOT / "scenarios" / f"{name}.yaml"
    first = tmp_path / "first"
    r = _cli("run", str(src), "--replications", "1", "--out", str(first), "-q")
    assert r.returncode == 0, r.stderr
    written = (first / "scenario.yaml").read_text()
    password = load_scenario(src).subscriber.password
    assert password not in written
    assert yaml.safe_load(written)["subscriber"]["password"] == "*" * len(password)
    v = _cli("validate", str(first / "scenario.yaml"))
    assert v.returncode == 0, v.stderr
    again = tmp_path / "again"
    r = _cli("run", str(first / "scenario.yaml"), "--out", str(again), "-q")
    assert r.returncode == 0, r.stderr
    a, b = read_tables(first), read_tables(again)
    assert list(a["messages"]["sha256"]) == list(b["messages"]["sha256"])
    if name == "slow-2400":
        # No V.42bis on this line, and the mask keeps the password's length: the
        # same octets cross the line at the same times.  (With V.42bis a row of
        # '*' compresses better than the password did, so PAP's frame is shorter.)
        for table in ("sessions", "commands", "messages", "link_events"):
            pd.testing.assert_frame_equal(a[table], b[table])


def test_scenario_as_run_with_overrides_is_valid_yaml(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "slow-2400.yaml").with_overrides(
        {"link.profile": "v32bis", "subscriber.strategy.mode": "keep"}, replications=1)
    run_scenario(sc, tmp_path / "o")
    text = (tmp_path / "o" / "scenario.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["link"]["profile"] == "v32bis" and data["replications"] == 1
    assert data["subscriber"]["strategy"]["mode"] == "keep"
    assert _cli("validate", str(tmp_path / "o" / "scenario.yaml")).returncode == 0


def test_sweep_refuses_a_point_the_file_checks_would_refuse(tmp_path):
    # The README's example: quickstart fixes connect_rate 28.8k, which V.22bis cannot reach.
    out = tmp_path / "sweep"
    r = _cli("sweep", str(ROOT / "scenarios" / "quickstart.yaml"),
             "--vary", "link.profile=v22bis,v32bis,v34", "--out", str(out), "-q")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "sweep point 0 (link.profile=v22bis)" in lines[0]
    assert "link.connect_rate" in lines[0] and "out of reach for profile v22bis" in lines[0]
    assert "Traceback" not in r.stderr and not out.exists()


def test_sweep_example_without_fixed_rate_runs(tmp_path):
    # With the rate left to the profile, the README example is a valid sweep.
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(
        {"link.connect_rate": None}, replications=1)
    from dialsim.experiment.sweep import parse_vary, sweep_points

    points = sweep_points(sc, [parse_vary("link.profile=v22bis,v32bis,v34")])
    assert [p.link.profile for _s, p in points] == ["v22bis", "v32bis", "v34"]


def test_unknown_key_suggests_the_nearest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios" / "quickstart.yaml").read_text().replace(
        "connect_rate:", "conect_rate:"))
    r = _cli("validate", str(bad))
    assert r.returncode == 2
    assert "link.conect_rate: unknown key; did you mean connect_rate?" in r.stderr
