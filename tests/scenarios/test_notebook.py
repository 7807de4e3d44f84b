"""The analysis notebook runs against a fresh results folder (its code cells, in order)."""

import json
import os
from pathlib import Path

import matplotlib

from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_notebook_cells_run(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    sc = load_scenario(ROOT / "scenarios" / "noisy-line.yaml").with_overrides(replications=2)
    run_scenario(sc, tmp_path / "results" / "noisy-line")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    nb = json.loads((ROOT / "notebooks" / "explore-results.ipynb").read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), scope)  # noqa: S102 - our own notebook
    assert len(scope["sessions"]) >= 2
    assert os.getcwd().endswith("notebooks")
