"""Benchmark: where a whole `dialsim run` spends its time, import by import.

    python benchmarks/startup_phases.py [SCENARIO] [--replications N]

Times, in one fresh process, each heavy import a run needs (numpy, pydantic,
the scenario schema, simpy, pyarrow and its Parquet module, the rest of
dialsim's run path), then reading the scenario and its replications, and
prints one line per step.  As ``dialsim run`` does (``dialsim.cli._start_up``),
the cyclic GC is off during the imports and the scenario's validation and then
frozen.  rich is not timed: ``dialsim run -q`` does not import it (printing the
summary does, some 30 ms).  Interpreter start-up and writing the results come
on top (``bench_run_process.py`` times the whole process).  Run it with the
bytecode cache writable (``PYTHONDONTWRITEBYTECODE`` unset), twice, and read
the second.
"""

import gc
import time

gc.disable()  # as dialsim.cli._start_up does around the imports and the scenario
T0 = time.perf_counter()
_marks: list[tuple[str, float]] = []


def _mark(name: str) -> None:
    _marks.append((name, time.perf_counter()))


import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

_mark("argparse, pathlib")
import numpy  # noqa: E402, F401

_mark("numpy")
import pydantic  # noqa: E402, F401
import pydantic.main  # noqa: E402, F401

_mark("pydantic")
import dialsim.scenario.load  # noqa: E402, F401

_mark("scenario schema, link modules, yaml")
import simpy  # noqa: E402, F401

_mark("simpy")
import pyarrow  # noqa: E402, F401
import pyarrow.parquet  # noqa: E402, F401

_mark("pyarrow, pyarrow.parquet")
import dialsim.cli  # noqa: E402, F401
import dialsim.experiment.run  # noqa: E402, F401

_mark("the rest of dialsim's run path")


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default=str(root / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--replications", type=int, default=None)
    a = ap.parse_args()
    from dialsim.experiment.world import run_replication
    from dialsim.scenario.load import load_scenario

    sc = load_scenario(a.scenario)
    _mark("reading and validating the scenario")
    gc.freeze()
    gc.enable()
    n = a.replications if a.replications is not None else sc.replications
    for r in range(n):
        run_replication(sc, r)
    _mark(f"{n} replications")
    prev = T0
    for name, t in _marks:
        print(f"{name:40s} {1000 * (t - prev):7.1f} ms")
        prev = t
    print(f"{'total (interpreter start and writing results not included)':40s} "
          f"{1000 * (prev - T0):7.1f} ms")


if __name__ == "__main__":
    main()
