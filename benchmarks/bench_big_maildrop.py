"""Benchmark: one call that fetches a maildrop of 10,000 messages at V.34, its
memory and its time.

    python benchmarks/bench_big_maildrop.py [--messages 10000] [--scenario FILE]

The quick-start scenario (V.34 28800 bps, V.42bis, PPP) with ``--messages``
messages waiting (the scenario's size distribution: lognormal, median 4 KiB,
one in ten with an attachment) and a long enough day for one call to fetch
them all, one replication, in a fresh interpreter.  Prints the messages
retrieved, the simulated and wall-clock time, simulated seconds per wall
second, and the process's peak RSS (``ru_maxrss``: everything, the
interpreter and its imports included).  The issue's bar is 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE = """
import json, resource, sys, time
from pathlib import Path
from dialsim.experiment.engine import from_arrow, replicate
from dialsim.scenario.load import load_scenario
sc = load_scenario(Path(sys.argv[1])).with_overrides(
    {"isp.maildrop.messages": int(sys.argv[2]), "duration": "2 d"}, replications=1)
t0 = time.perf_counter()
result = replicate(sc, 0)
wall = time.perf_counter() - t0
s = from_arrow(result.tables["sessions"])
print(json.dumps({"wall_s": wall, "retrieved": int(s["messages_retrieved"].sum()),
                  "octets": int(s["octets_retrieved"].sum()),
                  "sim_s": float((s["t_end_s"] - s["t_dial_s"]).sum()),
                  "unretrieved": result.totals["messages_unretrieved"],
                  "lost": result.totals["messages_lost"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--messages", type=int, default=10_000)
    args = ap.parse_args()
    out = subprocess.run([sys.executable, "-c", ONE, args.scenario, str(args.messages)],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.messages} messages waiting: {r['retrieved']} retrieved "
          f"({r['octets'] / 2**20:.1f} MiB), {r['unretrieved']} left, {r['lost']} lost")
    print(f"online {r['sim_s']:,.0f} simulated s in {r['wall_s']:.1f} s wall "
          f"({r['sim_s'] / r['wall_s']:,.0f} sim-s per wall-s)")
    print(f"peak RSS {r['rss_mib']:.1f} MiB (bar: 300 MB = {300e6 / 2**20:.0f} MiB)")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
