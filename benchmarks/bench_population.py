"""Benchmark: a subscriber population's cost against its size (subscribers and days).

    python benchmarks/bench_population.py [--subscribers 50,100,200] [--days 1,2,3]
                                          [--days-at 50] [--scenario FILE]

Runs ``scenarios/bench-reference.yaml`` (the fixed workload: 200 subscribers,
one day, 20 lines) at three numbers of subscribers over one day, and at three
numbers of days for ``--days-at`` subscribers, with one line per ten
subscribers; each size in a fresh interpreter, one replication, on one core.
Prints per size the calls, wall and CPU seconds, CPU seconds per
subscriber-day and per call, and peak RSS; then how each series grows (cost
ratio over size ratio: 1.0 is linear).  Scratch maildrops go where
``TMPDIR`` says (a tmpfs keeps a busy disk out of the figures).
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
from dialsim.experiment.engine import replicate
from dialsim.scenario.load import load_scenario
sc = load_scenario(Path(sys.argv[1])).with_overrides(
    {"population.subscribers": int(sys.argv[2]), "population.lines": int(sys.argv[3]),
     "duration": f"{float(sys.argv[4])} d"})
t0, c0 = time.perf_counter(), time.process_time()
result = replicate(sc, 0)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
import pyarrow as pa
calls = pa.ipc.open_stream(result.tables["sessions"]).read_all().num_rows
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "calls": calls,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_one(scenario: str, subscribers: int, days: float) -> dict:
    lines = max(1, subscribers // 10)
    out = subprocess.run([sys.executable, "-c", ONE, scenario, str(subscribers), str(lines),
                          str(days)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"subscribers": subscribers, "days": days, "lines": lines, **r}


def show(series: str, rows: list[dict], size) -> None:
    base = rows[0]
    print(f"{series}:")
    for r in rows:
        growth = (r["cpu_s"] / base["cpu_s"]) / (size(r) / size(base))
        print(f"  {r['subscribers']:5d} subscribers x {r['days']:g} d on {r['lines']:3d} lines: "
              f"{r['calls']:6d} calls, {r['wall_s']:7.2f} s wall, {r['cpu_s']:7.2f} s CPU, "
              f"{r['cpu_s'] / (r['subscribers'] * r['days']):.3f} s/subscriber-day, "
              f"{1000 * r['cpu_s'] / max(1, r['calls']):5.1f} ms/call, "
              f"{r['rss_mib']:6.1f} MiB RSS; cost/size growth {growth:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "bench-reference.yaml"))
    ap.add_argument("--subscribers", default="50,100,200")
    ap.add_argument("--days", default="1,2,3")
    ap.add_argument("--days-at", type=int, default=50)
    args = ap.parse_args()
    subs = [run_one(args.scenario, int(n), 1.0) for n in args.subscribers.split(",")]
    show("subscribers (one day)", subs, lambda r: r["subscribers"])
    days = [run_one(args.scenario, args.days_at, float(d)) for d in args.days.split(",")]
    show(f"days ({args.days_at} subscribers)", days, lambda r: r["days"])
    print(f"load average {os.getloadavg()[0]:.2f} on {len(os.sched_getaffinity(0))} cores")


if __name__ == "__main__":
    main()
