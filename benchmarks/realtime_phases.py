"""Benchmark: a real-time session's time per phase against the simulation's prediction.

    python benchmarks/realtime_phases.py [SCENARIO] [--rounds 3]

Runs ``dialsim modem`` on a pty as its own process (the virtual modem, the
scenario's ISP and link model on the wall clock) and ``dialsim dial``'s
measured session against it, and the same scenario in virtual time; prints,
per phase, the simulated and the measured duration and the error:

- dialing: dial -> CONNECT (the AT dialogue, S6, DTMF, rings, the handshake);
- link: CONNECT -> PPP/SLIP up (LCP, authentication, IPCP);
- login: link up -> logged in (TCP handshake, greeting, USER/PASS);
- retrieval: logged in -> the end of the call (STAT/UIDL/RETR/DELE/QUIT).

The default scenario is small (a few tens of KiB at V.34 28800, a short dial).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from dialsim.commands.dial import open_port
from dialsim.experiment.measured import measure
from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario

SMALL = {
    "name": "realtime-phases",
    "seed": 7,
    "framing": "ppp",
    "ppp": {"auth": "pap", "vj": True},
    "link": {"profile": "v34", "connect_rate": "28.8k", "phone_number": "555-0123",
             "dial": {"dial_tone_wait": "2 s", "post_dial_delay": ["0.5 s", "0.5 s"]},
             "handshake": "3 s"},
    "subscriber": {"user": "alice", "password": "tanstaaf"},
    "isp": {"maildrop": {"messages": 6, "size": {"distribution": "fixed", "median": "6 KiB"}}},
}
PHASES = (("dialing", "t_dial_s", "t_connect_s"), ("link", "t_connect_s", "t_link_up_s"),
          ("login", "t_link_up_s", "t_logged_in_s"), ("retrieval", "t_logged_in_s", "t_end_s"))


def _durations(row) -> dict[str, float]:
    return {name: float(row[b] - row[a]) for name, a, b in PHASES}


def _measured(scenario: Path, tmp: Path) -> dict:
    tty = tmp / "ttyBench"
    modem = subprocess.Popen([sys.executable, "-m", "dialsim", "modem", str(scenario), "--pty",
                              str(tty), "-q"])
    try:
        while not tty.is_symlink():
            time.sleep(0.05)
        sc = load_scenario(scenario)
        ser = open_port(str(tty), 115200)
        try:
            call = asyncio.run(measure(sc, ser, timeout=300))
        finally:
            ser.close()
    finally:
        modem.terminate()
        modem.wait()
    return call.outcome.recorder.sessions[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scenario = Path(a.scenario) if a.scenario else tmp / "small.yaml"
        if not a.scenario:
            scenario.write_text(yaml.safe_dump(SMALL, sort_keys=False))
        sc = load_scenario(scenario).with_overrides(replications=1)
        sim = run_scenario(sc, tmp / "sim").tables["sessions"].iloc[0]
        octets = int(sim["octets_retrieved"])
        print(f"{sc.name}: {octets} octets of mail, V.34 {sim['connect_rate_bps']:.0f} bit/s; "
              f"load average {os.getloadavg()}")
        want = _durations(sim)
        print(f"{'phase':<10} {'simulated s':>12} " + " ".join(f"{'round ' + str(r):>16}"
                                                             for r in range(a.rounds)))
        rows = {name: [] for name, _a, _b in PHASES}
        for _ in range(a.rounds):
            got = _durations(_measured(scenario, tmp))
            for name in rows:
                rows[name].append(got[name])
        for name, values in rows.items():
            cells = " ".join(f"{v:8.3f} ({100 * (v / want[name] - 1):+5.1f}%)" for v in values)
            print(f"{name:<10} {want[name]:12.3f} {cells}")
        print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
