"""`dialsim dial`: the subscriber's own story on a real port, measured in real time.

Through `dialsim modem` on a pty (two processes, as a user runs them) and through
the `dialsim://` pyserial URL: every message arrives byte-identical (its SHA-256
is one of the scenario's stored messages), the tables are marked measured and
line up with the simulation's columns.
"""

import json
import subprocess
import sys

import pandas as pd
import serial

from dialsim.experiment.run import run_scenario
from dialsim.results.tables import read_tables
from dialsim.scenario.load import load_scenario


def _dial(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "dialsim", "dial", *args, "-q"],
                          capture_output=True, text=True, timeout=timeout)


def _expected(scenario, tmp_path) -> set[str]:
    """The SHA-256 of every message the scenario's ISP holds (its seed makes them)."""
    sc = load_scenario(scenario).with_overrides(replications=1)
    return {m.sha256 for m in run_scenario(sc, tmp_path / "sim").outcomes[0].stored.values()}


def _check_measured(out, expected: set[str], n: int) -> pd.DataFrame:
    t = read_tables(out)
    msgs = t["messages"]
    assert len(msgs) == n and msgs["intact"].all() and set(msgs["sha256"]) == expected
    assert t["sessions"]["measured"].all() and t["commands"]["measured"].all()
    assert list(t["sessions"]["end_reason"]) == ["quit"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["measured"] is True
    summary = json.loads((out / "summary.json").read_text())
    assert summary["messages_lost"] is None  # not knowable from the subscriber's side
    return t["sessions"]


def test_dial_through_dialsim_modem_on_a_pty(fast_scenario, modem_on_pty, tmp_path):
    scenario = fast_scenario()
    _modem, path = modem_on_pty(scenario)
    r = _dial(str(scenario), "--port", str(path), "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    sessions = _check_measured(tmp_path / "m", _expected(scenario, tmp_path), 4)
    # A pty has no DCD: the call's end is our own hang-up, after QUIT.
    assert sessions["t_connect_s"].iloc[0] > 4.0  # S6, DTMF, a ring, the handshake


def test_dial_through_the_dialsim_url(fast_scenario, tmp_path):
    scenario = fast_scenario()
    r = _dial(str(scenario), "--port", f"dialsim://{scenario}", "--out", str(tmp_path / "u"))
    assert r.returncode == 0, r.stderr
    measured = _check_measured(tmp_path / "u", _expected(scenario, tmp_path), 4)
    # The same columns as a simulated run of the same scenario, row for row.
    sim = run_scenario(load_scenario(scenario).with_overrides(replications=1),
                       tmp_path / "s").tables["sessions"]
    assert list(measured.columns) == list(sim.columns)
    assert not sim["measured"].any()


def test_the_url_handler_has_modem_control_lines(fast_scenario):
    serial.protocol_handler_packages.append("dialsim.pyserial")
    scenario = fast_scenario()
    with serial.serial_for_url(f"dialsim://{scenario}", timeout=0.3) as port:
        port.write(b"AT\r")
        assert b"OK" in port.read(64)
        assert port.dsr and not port.cd
        port.write(b"ATDT5550123\r")
        got = b""
        while b"CONNECT" not in got:
            chunk = port.read(256)
            assert chunk or got, "no answer from the virtual modem"
            got += chunk
        assert port.cd  # DCD follows the carrier (&C1)
        port.dtr = False  # &D2: the modem hangs up
        tail = b""
        for _ in range(20):
            tail += port.read(256)
            if b"NO CARRIER" in tail:
                break
        assert b"NO CARRIER" in tail and not port.cd


def test_dial_refuses_a_bad_port_in_one_line(fast_scenario, tmp_path):
    r = _dial(str(fast_scenario()), "--port", str(tmp_path / "no-such-tty"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
