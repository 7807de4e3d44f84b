"""Benchmark: simulated seconds per wall-clock second for the quick-start scenario.

    python benchmarks/bench_quickstart.py [SCENARIO] [--replications N] [--clock wall|cpu]

Simulated seconds are counted from the start of each replication to the end of
its last session (after that simpy only jumps to the time limit, which would
flatter the number).  One replication (seed index 999) runs first, untimed, so
that first-use costs (lazy imports, caches) do not land in replication 0.
Prints one line per replication, then the totals: simulated seconds per
wall-clock second, per CPU second of this process (steadier on a shared
machine), and line octets (both directions, through the serial ports) per
wall-clock second.  The last line holds the figure ``--clock`` names, which
``compare_commits.py`` reads.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="the figure on the last line: per wall-clock or per CPU second")
    args = ap.parse_args()
    sc = load_scenario(args.scenario)
    total_sim = total_wall = total_cpu = 0.0
    total_octets = 0
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        # The workdir argument keeps the script runnable against older commits.
        run_replication(sc, 999, Path(tmp) / "warm-up")
        for rep in range(args.replications):
            c0, t0 = time.process_time(), time.perf_counter()
            out = run_replication(sc, rep, Path(tmp) / f"rep{rep}")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            sim = max(s["t_end_s"] for s in out.recorder.sessions)
            octets = sum(s.get("line_bytes_down", 0) + s.get("line_bytes_up", 0) for s in out.recorder.sessions)
            total_sim += sim
            total_wall += wall
            total_cpu += cpu
            total_octets += octets
            print(f"replication {rep}: {sim:8.1f} simulated s in {wall:6.3f} wall s ({cpu:6.3f} cpu s) "
                  f"= {sim / wall:8.1f} sim-s/wall-s ({octets / wall / 1e3:7.1f} k line octets/wall-s)")
    print(f"load average after: {os.getloadavg()}")
    print(f"{sc.name}: {total_sim / total_cpu:.1f} simulated seconds per CPU second; "
          f"{total_octets / total_wall / 1e3:.1f} k line octets per wall-clock second")
    figure = total_sim / (total_wall if args.clock == "wall" else total_cpu)
    print(f"{sc.name}: {figure:.1f} simulated seconds per {args.clock}-clock second "
          f"({args.replications} replications, {total_octets} line octets, {total_wall:.2f} s wall, "
          f"{total_cpu:.2f} s cpu)")


if __name__ == "__main__":
    main()
