"""Every shipped scenario runs; same seed, same tables; bad input fails cleanly."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dialsim.experiment.run import run_scenario
from dialsim.results.tables import read_tables
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(path, tmp_path):
    sc = load_scenario(path).with_overrides(replications=1)
    if sc.population is not None:  # small sizes: a few subscribers on a few lines
        sc = sc.with_overrides({"population.subscribers": 12, "population.lines": 2})
    res = run_scenario(sc, tmp_path / "out")
    s = res.summary
    assert s["messages_lost"] == 0
    tables = read_tables(tmp_path / "out")
    sessions = tables["sessions"]
    assert len(sessions) >= 1
    msgs = tables["messages"]
    # Every message retrieved is byte-identical to one stored at the ISP.
    assert msgs["intact"].all()
    if sc.population is not None:
        assert {"lines", "hours", "subscribers"} <= set(res.tables)
        assert set(sessions["subscriber"]) <= set(range(12))
        assert set(sessions["end_reason"]) <= {"quit", "busy", "holding_time", "unfinished"}
    elif sc.link.carrier_loss is None:  # a clean line: every call ends with QUIT
        assert (sessions["end_reason"] == "quit").all()
        assert not msgs["duplicate"].any()
    assert (tmp_path / "out" / "summary.json").exists()


def test_same_seed_same_tables(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "noisy-line.yaml").with_overrides(replications=2)
    a = run_scenario(sc, tmp_path / "a").tables
    b = run_scenario(sc, tmp_path / "b").tables
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = run_scenario(sc.with_overrides(seed=sc.seed + 1), tmp_path / "c").tables
    assert not a["sessions"].equals(c["sessions"])


def test_quickstart_all_mail_intact(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(replications=1)
    res = run_scenario(sc, tmp_path / "q")
    msgs = res.tables["messages"]
    stored = res.outcomes[0].stored
    assert sorted(msgs["sha256"]) == sorted(m.sha256 for m in stored.values())
    assert len(msgs) == 20


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "dialsim.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_bad_scenario_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "seed: 1\nlink:\n  profile: v34\n  serial_rate: fast\nsubscriber: {user: a, password: b}\n"
        "isp: {maildrop: {messages: 1}}\n"
    )
    r = _cli("run", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{bad}:4: link.serial_rate:" in lines[0]
    assert not (tmp_path / "o").exists()


def test_cli_run_prints_summary_and_writes_tables(tmp_path):
    r = _cli("run", str(ROOT / "scenarios" / "slow-2400.yaml"), "--out", str(tmp_path / "o"),
             "--replications", "1", "--pcap")
    assert r.returncode == 0, r.stderr
    assert "messages lost" in r.stdout
    for name in ("sessions", "commands", "messages", "link_events"):
        assert (tmp_path / "o" / f"{name}.parquet").exists()
    assert list((tmp_path / "o").glob("line-rep0.pcap*"))


def test_store_and_forward_reports_latency_and_sends_outbox(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "store-and-forward.yaml").with_overrides(
        replications=1, duration=8 * 3600.0
    )
    res = run_scenario(sc, tmp_path / "sf")
    msgs = res.tables["messages"]
    got = msgs[msgs["direction"] == "retrieved"]
    sent = msgs[msgs["direction"] == "sent"]
    assert len(sent) == 3
    # Mail that arrived during the day waited for the next call: latency is
    # positive and below one call interval plus a call's length.
    arrived = got[got["t_arrived_s"] > 0]
    assert len(arrived) > 5
    assert (arrived["latency_s"] > 0).all()
    assert (arrived["latency_s"] < 2 * 3600 + 600).all()
    cmds = res.tables["commands"]
    smtp = cmds[cmds["protocol"] == "smtp"]
    assert {"EHLO", "MAIL", "RCPT", "DATA", "EOM", "QUIT"} <= set(smtp["command"])
    assert smtp["ok"].all()
    assert res.summary["messages_lost"] == 0


def test_cli_report_writes_plots(tmp_path):
    r = _cli("run", str(ROOT / "scenarios" / "slow-2400.yaml"), "--out", str(tmp_path / "o"),
             "--replications", "1", "-q")
    assert r.returncode == 0, r.stderr
    r = _cli("report", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    for name in ("phases.png", "commands.png"):
        png = (tmp_path / "o" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    r = _cli("report", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "not a results folder" in r.stderr


def test_password_never_in_results(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "cslip-login.yaml").with_overrides(replications=1)
    run_scenario(sc, tmp_path / "o", pcap=True, csv=True)
    secret = sc.subscriber.password.encode()
    files = [p for p in (tmp_path / "o").iterdir() if p.is_file()]
    assert any(p.suffix == ".pcapng" for p in files)
    for p in files:
        assert secret not in p.read_bytes(), p.name
    assert "****" in (tmp_path / "o" / "scenario.yaml").read_text()


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda d: d, "cannot read scenario"),
        (lambda d: d / "missing.yaml", "no such scenario file"),
    ],
)
def test_cli_unreadable_scenario_one_line(tmp_path, make, expect):
    r = _cli("run", str(make(tmp_path)))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and expect in r.stderr


def test_cli_unwritable_out_fails_before_simulating(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(blocker / "sub"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot write results there" in r.stderr


def test_user_name_cannot_be_a_path(tmp_path):
    bad = tmp_path / "u.yaml"
    bad.write_text('subscriber: {user: "../etc", password: b}\nisp: {maildrop: {messages: 1}}\n')
    r = _cli("validate", str(bad))
    assert r.returncode == 2 and f"{bad}:1: subscriber.user: bad user name" in r.stderr


def test_simulated_mail_stores_never_fsync(tmp_path, monkeypatch):
    """The ISP's maildrop, its relay queue and the subscriber's inbox of a
    simulated replication are scratch folders, thrown away afterwards: a
    replication (here with outbox mail and mail arriving mid-run) calls fsync
    not once, and its results are those of the durable store."""
    import os

    from dialsim.experiment.world import run_replication

    sc = load_scenario(ROOT / "scenarios" / "store-and-forward.yaml").with_overrides(replications=1)
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    out = run_replication(sc, 0, tmp_path / "rep")
    assert calls == []
    assert out.messages_lost == 0 and out.recorder.messages
