"""Benchmark: simulated seconds per wall-clock second for the quick-start scenario.

    python benchmarks/bench_quickstart.py [SCENARIO] [--replications N]

Simulated seconds are counted from the start of each replication to the end of
its last session (after that simpy only jumps to the time limit, which would
flatter the number).  Prints one line per replication and the total.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dialsim.experiment.world import run_replication
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--replications", type=int, default=5)
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    total_sim = total_wall = 0.0
    total_octets = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.replications):
            t0 = time.perf_counter()
            out = run_replication(sc, rep, Path(tmp) / f"rep{rep}")
            wall = time.perf_counter() - t0
            sim = max(s["t_end_s"] for s in out.recorder.sessions)
            octets = sum(s.get("line_bytes_down", 0) + s.get("line_bytes_up", 0) for s in out.recorder.sessions)
            total_sim += sim
            total_wall += wall
            total_octets += octets
            print(f"replication {rep}: {sim:8.1f} simulated s in {wall:6.3f} wall s "
                  f"= {sim / wall:8.1f} sim-s/wall-s ({octets / wall / 1e3:7.1f} k line octets/wall-s)")
    print(f"{sc.name}: {total_sim / total_wall:.1f} simulated seconds per wall-clock second "
          f"({args.replications} replications, {total_octets} line octets, {total_wall:.2f} s wall)")


if __name__ == "__main__":
    main()
