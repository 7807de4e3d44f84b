"""Benchmark: a 16-point sweep on a Dask cluster with one worker, then two, side by side.

    python benchmarks/bench_cluster.py [SCENARIO] [--rounds 2] [--set KEY=VALUE ...]

e.g. the figure in docs/performance.md, 16 points of a 40-subscriber day:

    python benchmarks/bench_cluster.py scenarios/bench-reference.yaml \
        --set population.subscribers=40 --set population.lines=4

Starts a ``dask.distributed`` cluster of worker processes on loopback (one
thread each), and runs the same sweep (``seed=1..16``, one replication per
point) through ``dialsim sweep``'s engine with one worker and with two,
alternately, ``--rounds`` times; prints each time, the best of each, and the
speed-up.  Needs ``pip install 'dialsim[distributed]'`` and two free cores to
mean anything: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from dialsim.experiment.sweep import parse_vary, run_sweep
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?",
                    default=str(ROOT / "scenarios" / "store-and-forward.yaml"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a dotted scenario key set for every point (as --vary takes it)")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    sets = dict((k, v[0]) for k, v in map(parse_vary, args.set))
    sc = load_scenario(args.scenario).with_overrides(sets, replications=1)
    varies = [parse_vary("seed=" + ",".join(str(i) for i in range(1, args.points + 1)))]
    best = {1: float("inf"), 2: float("inf")}
    with (LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                       dashboard_address=None) as cluster,
          Client(cluster) as client, tempfile.TemporaryDirectory() as tmp):
        run_sweep(sc, [parse_vary("seed=1")], Path(tmp) / "warm",
                  scheduler=cluster.scheduler_address)  # imports done on the worker
        for r in range(args.rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                cluster.scale(n)
                client.wait_for_workers(n, timeout=120)
                while len(client.scheduler_info()["workers"]) != n:
                    time.sleep(0.1)
                if n == 2:  # the new worker imports dialsim before it counts
                    run_sweep(sc, [parse_vary("seed=1,2")], Path(tmp) / "warm2",
                              scheduler=cluster.scheduler_address)
                t0 = time.perf_counter()
                run_sweep(sc, varies, Path(tmp) / f"r{r}-{n}", scheduler=cluster.scheduler_address)
                wall = time.perf_counter() - t0
                best[n] = min(best[n], wall)
                print(f"round {r}: {n} worker(s): {args.points} points in {wall:6.2f} s "
                      f"(load average {os.getloadavg()[0]:.2f})")
    print(f"{sc.name}, {args.points} points: one worker {best[1]:.2f} s, two workers "
          f"{best[2]:.2f} s: {best[1] / best[2]:.2f}x (best of {args.rounds}; "
          f"{len(os.sched_getaffinity(0))} cores)")


if __name__ == "__main__":
    main()
