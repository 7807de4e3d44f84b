"""Benchmark: a bulk download inside ``dialsim shell`` against the simulation's prediction.

    sudo python benchmarks/shell_throughput.py [--kib 200] [--rounds 3]

A 200 KiB file of random octets (nothing for V.42bis to compress) is served on
the host's loopback; ``dialsim shell`` runs a download of it through 10.0.2.2
with the kernel's own TCP over the simulated V.34 28800 line; the program times
the transfer from its first octet to its last.  The prediction is the same
scenario simulated: one message of the same size retrieved by POP3 with
dialsim's own TCP, timed from the reply's first octet to its last (the RETR
row of ``commands``).  Both are application octets per second; the ratio is
printed with the machine's load average.
"""

from __future__ import annotations

import argparse
import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario

SCENARIO = {
    "name": "shell-throughput",
    "seed": 1,
    "framing": "ppp",
    "ppp": {"auth": "pap", "vj": True},
    "link": {"profile": "v34", "connect_rate": "28.8k", "error_correction": True,
             "compression": False, "phone_number": "555-0123",
             "dial": {"post_dial_delay": ["0 s", "0 s"]}, "handshake": "1 s"},
    "subscriber": {"user": "alice", "password": "tanstaaf"},
    "isp": {"maildrop": {"messages": 1, "content": "random",
                         "size": {"distribution": "fixed", "median": "200 KiB"}}},
}

DOWNLOAD = """
import sys, time, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=300)
first = r.read(1)
t0 = time.monotonic()
rest = r.read()
print(len(first) + len(rest) - 1, time.monotonic() - t0)
"""


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kib", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        SCENARIO["isp"]["maildrop"]["size"]["median"] = f"{a.kib} KiB"
        scenario = tmp / "throughput.yaml"
        scenario.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
        sim = run_scenario(load_scenario(scenario).with_overrides(replications=1), tmp / "sim")
        retr = sim.tables["commands"].query("command.str.startswith('RETR')").iloc[0]
        predicted = (retr["bytes_down"]) / (retr["t_done_s"] - retr["t_first_byte_s"])
        (tmp / "www").mkdir()
        (tmp / "www" / "file.bin").write_bytes(os.urandom(a.kib * 1024))
        server, port = _serve(tmp / "www")
        print(f"{a.kib} KiB, V.34 28800 with V.42, no V.42bis; load average {os.getloadavg()}")
        print(f"simulation (dialsim's TCP, POP3 RETR): {predicted:,.1f} octets/s")
        for r in range(a.rounds):
            out = subprocess.run(
                [sys.executable, "-m", "dialsim", "shell", str(scenario), "-q", "--out",
                 str(tmp / f"shell{r}"), "--", sys.executable, "-c", DOWNLOAD,
                 f"http://10.0.2.2:{port}/file.bin"], capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise SystemExit(f"dialsim shell failed: {out.stderr}")
            octets, seconds = out.stdout.split()
            measured = int(octets) / float(seconds)
            print(f"round {r}: shell (the kernel's TCP, HTTP): {measured:,.1f} octets/s, "
                  f"ratio {measured / predicted:.4f} ({100 * (measured / predicted - 1):+.2f}%)")
        server.shutdown()
        print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
