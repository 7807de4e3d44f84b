"""Benchmark: instructions per replication (cachegrind), steadier than wall time.

    python benchmarks/instructions.py [--workload bulk|quick] [TREE ...]

Wall time on a shared machine moves by up to 2x between sittings (see
docs/performance.md); instruction counts do not.  For each TREE (a checkout
of dialsim with its compiled modules built; default: this one) this runs
Python under ``valgrind --tool=cachegrind --cache-sim=no`` twice -- once doing
the workload's warm-up replication only, once doing it and then two more --
and prints the difference halved: the instructions of one warm replication,
without interpreter start, imports or first-use caches.

Workloads: ``bulk`` is vs_ns3.py's replication (a 1 MiB message over V.34
28800, PPP, no V.42); ``quick`` is one replication of
scenarios/quickstart.yaml (seed 0, after a warm-up with another seed); ``population`` is one
replication of scenarios/bench-reference.yaml cut to 30 subscribers on 3
lines for one day (no warm-up: the process with it minus the process
without; a few minutes per tree).
Needs valgrind (``apt install valgrind``); without it, it says so and exits 0.
Each count takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

JOB = """
import sys
sys.path.insert(0, {bench!r})
from dialsim.experiment.world import run_replication
what, k = sys.argv[1], int(sys.argv[2])
if what == "bulk":
    import vs_ns3
    sc, seeds = vs_ns3.dialsim_scenario(1 << 20, 1500), [0] * (k + 1)
elif what == "population":
    from dialsim.experiment.engine import replicate as run_replication
    from dialsim.scenario.load import load_scenario
    sc = load_scenario({population!r}).with_overrides(
        {{"population.subscribers": 30, "population.lines": 3, "duration": "1.0 d"}})
    seeds = [0] * k
else:
    from dialsim.scenario.load import load_scenario
    sc, seeds = load_scenario({quick!r}), [999] + [0] * k
for s in seeds:
    run_replication(sc, s)
"""


def _job(tree: Path, workload: str, extra: int) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    scenarios = HERE.parent / "scenarios"
    job = JOB.format(bench=str(HERE), quick=str(scenarios / "quickstart.yaml"),
                     population=str(scenarios / "bench-reference.yaml"))
    return [sys.executable, "-c", job, workload, str(extra)], env


def count(tree: Path, workload: str, extra: int) -> int:
    """Instructions of a Python process running the workload's warm-up plus ``extra``."""
    cmd, env = _job(tree, workload, extra)
    # setarch -R: no address randomisation, which moves the counts by a few per cent
    got = subprocess.run(["setarch", "-R", "valgrind", "--tool=cachegrind", "--cache-sim=no",
                          "--cachegrind-out-file=/dev/null", *cmd],
                         env=env, capture_output=True, text=True, check=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", got.stderr)
    if m is None:
        raise SystemExit(f"instructions: no count in valgrind's output:\n{got.stderr[-1000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*", type=Path, default=[HERE.parent])
    ap.add_argument("--workload", choices=("bulk", "quick", "population"), default="bulk")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("instructions: skipped: valgrind is not installed (apt install valgrind)")
        return 0
    for tree in a.trees:
        tree = tree.resolve()
        # A first run writes the bytecode cache, so neither measured run compiles.
        cmd, env = _job(tree, a.workload, 0)
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        if a.workload == "population":  # one replication is minutes under valgrind: no warm-up
            base, more = count(tree, a.workload, 0), count(tree, a.workload, 1)
            print(f"{tree}: population: {(more - base) / 1e6:.1f} M instructions per replication")
            continue
        base, more = count(tree, a.workload, 0), count(tree, a.workload, 2)
        print(f"{tree}: {a.workload}: {(more - base) / 2e6:.1f} M instructions per warm replication")
    return 0


if __name__ == "__main__":
    sys.exit(main())
