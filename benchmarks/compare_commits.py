"""Run one benchmark against two commits side by side, in one run, interleaved.

    python benchmarks/compare_commits.py BASE [HEAD] [--rounds 5] [--script bench_quickstart.py] [-- ARGS]

Each commit is checked out into a temporary git worktree (compiled extensions
built in place there), and the benchmark script *of the current checkout* runs
against each in turn with ``PYTHONPATH`` pointing at that worktree, alternating
BASE, HEAD, BASE, HEAD ... so that machine load drifts over both alike.  The
script's last line must hold a number followed by a unit word (bench_quickstart
prints "N simulated seconds per wall-clock second"); the medians and their ratio
are printed, with the machine's load average before and after.

The benchmark script must only use API that both commits have
(``dialsim.experiment.world.run_replication`` and ``load_scenario`` for the
quickstart benchmark).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _builder(into: Path) -> str:
    """A Python with the setuptools pyproject.toml asks for (>= 77), to build a
    commit's C extensions in place; the same interpreter version as ours."""
    venv = into / "build-venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "setuptools>=77"], check=True)
    return str(venv / "bin" / "python")


def _worktree(commit: str, into: Path) -> Path:
    path = into / commit.replace("/", "_")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), commit],
                   check=True)
    if (path / "setup.py").exists():
        subprocess.run([_builder(into), "setup.py", "-q", "build_ext", "--inplace"], cwd=path,
                       check=True, capture_output=True)
    return path


def _figure(output: str) -> float:
    """The first number followed by a unit word on the script's last line."""
    last = output.strip().splitlines()[-1]
    m = re.search(r"(\d[\d,]*(?:\.\d+)?)\s+[A-Za-z]", last)
    if m is None:
        raise SystemExit(f"compare_commits: no figure in the benchmark's last line: {last!r}")
    return float(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("head", nargs="?", default="HEAD")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--script", default="bench_quickstart.py")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    a = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    script = ROOT / "benchmarks" / a.script
    tmp = Path(tempfile.mkdtemp(prefix="dialsim-compare-"))
    trees = {}
    try:
        for name in (a.base, a.head):
            trees[name] = _worktree(name, tmp)
        results: dict[str, list[float]] = {a.base: [], a.head: []}
        print(f"load average before: {os.getloadavg()}")
        for r in range(a.rounds):
            for name, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=str(tree))
                out = subprocess.run([sys.executable, str(script), *extra], env=env,
                                     capture_output=True, text=True, check=True, cwd=tree)
                value = _figure(out.stdout)
                results[name].append(value)
                print(f"round {r}: {name[:12]:>12}: {value:,.1f}")
        print(f"load average after: {os.getloadavg()}")
        med = {k: statistics.median(v) for k, v in results.items()}
        for k, v in med.items():
            print(f"median {k[:12]:>12}: {v:,.1f}  (of {results[k]})")
        print(f"ratio head/base: {med[a.head] / med[a.base]:.2f}x")
    finally:
        for tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
