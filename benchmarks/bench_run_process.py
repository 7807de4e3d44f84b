"""Benchmark: wall time of a whole ``dialsim run SCENARIO -q`` process, start to exit.

    python benchmarks/bench_run_process.py [SCENARIO] [--runs 10] [--tree DIR ...]

Runs ``python -m dialsim.cli run SCENARIO -q --out TMP`` as a fresh process
``--runs`` times (after one untimed run that writes the bytecode cache) and
prints the median, lowest and highest wall time, and the median CPU time
(user + system) of the process, which moves less with the machine's load.  This is what a user waits
for: interpreter start, imports, validating the scenario, the replications and
writing the results folder.  With several ``--tree`` (source trees, each put
first on ``PYTHONPATH``) the trees take turns run by run, in alternating order,
so that this shared machine's load, which moves run times by up to 2x between
sittings, weighs on all of them alike; compare the medians of one invocation,
never figures from different sittings.  Without ``--tree`` the dialsim on the
current ``PYTHONPATH`` runs, and the last line holds its median (what
``compare_commits.py --script bench_run_process.py`` reads).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(scenario: str, out: Path, tree: str | None) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if tree is not None:
        env["PYTHONPATH"] = tree
    c0, t0 = _cpu(), time.perf_counter()
    # cwd: ``python -m`` puts the current directory first on sys.path, before PYTHONPATH
    subprocess.run([sys.executable, "-m", "dialsim.cli", "run", scenario, "-q", "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=tree)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    shutil.rmtree(out, ignore_errors=True)
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    # (the scenario's path is made absolute: each tree runs in its own directory)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tree", action="append", help="a source tree to run (repeat to compare)")
    a = ap.parse_args()
    scenario = str(Path(a.scenario).resolve())
    trees: list[str | None] = a.tree or [None]
    times: dict[str | None, list[tuple[float, float]]] = {t: [] for t in trees}
    print(f"{time.strftime('%H:%M:%S')} load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="dialsim-bench-") as tmp:
        out = Path(tmp) / "out"
        for t in trees:
            _run(scenario, out, t)  # the bytecode cache
        for i in range(a.runs):
            for t in trees if i % 2 == 0 else trees[::-1]:
                times[t].append(_run(scenario, out, t))
    print(f"{time.strftime('%H:%M:%S')} load average after: {os.getloadavg()}")
    for t in trees:
        v = sorted(w for w, _ in times[t])
        cpu = statistics.median(c for _, c in times[t])
        print(f"{t or 'PYTHONPATH'}: median {1000 * statistics.median(v):.1f} ms "
              f"(lowest {1000 * v[0]:.1f}, highest {1000 * v[-1]:.1f}, {len(v)} runs); "
              f"CPU median {1000 * cpu:.1f} ms")
    if len(trees) == 1:
        v = [w for w, _ in times[trees[0]]]
        print(f"{1000 * statistics.median(v):.1f} ms per whole run (median)")


if __name__ == "__main__":
    main()
