"""The analysis notebook runs against a fresh results folder (its code cells, in order)."""

import json
from pathlib import Path

import matplotlib
import pandas as pd

from dialsim.experiment.run import run_scenario
from dialsim.results.tables import read_tables
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
    # The notebook read this run's folder (../results/noisy-line from notebooks/)
    # and computed from it: its tables are the run's, its counts follow from them.
    tables = read_tables(tmp_path / "results" / "noisy-line")
    pd.testing.assert_frame_equal(scope["sessions"], tables["sessions"])
    ends = scope["sessions"].groupby(["replication", "end_reason"]).size().unstack(fill_value=0)
    assert int(ends.to_numpy().sum()) == len(tables["sessions"])
    assert int(scope["retr"]["seconds"].gt(0).sum()) == len(scope["retr"]) > 0
