"""Results folders the analysis tests and the docstring examples read.

``RESULTS``: quickstart (V.34, PPP with VJ), 6 messages, 2 replications, with
line captures.  ``SWEEP``: the same over ``link.compression=true,false``.
Both are made once per test session, in folders named ``run`` and ``sweep``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dialsim.experiment.run import run_scenario
from dialsim.experiment.sweep import run_sweep
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def small_quickstart():
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    return sc.with_overrides({"replications": 2, "isp.maildrop.messages": 6}, origin="test")


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "run"
    run_scenario(small_quickstart(), out, pcap=True)
    return out


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "sweep"
    run_sweep(small_quickstart(), [("link.compression", [True, False])], out)
    return out
