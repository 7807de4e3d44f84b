"""Every public function of dialsim.analysis has a docstring example, and every
example runs and prints what it says (doctest), against real results folders."""

from __future__ import annotations

import doctest
import importlib
import inspect

import matplotlib
import pytest

import dialsim.analysis as da

MODULES = [importlib.import_module(f"dialsim.{name}") for name in (
    "analysis.capture", "analysis.compare", "analysis.load", "analysis.plots", "analysis.report",
    "analysis.timings", "results.stats")]


def _public_callables():
    for name in da.__all__:
        obj = getattr(da, name)
        if inspect.isfunction(obj):
            yield name, obj


@pytest.mark.parametrize(("name", "fn"), list(_public_callables()))
def test_every_public_function_has_an_example(name, fn):
    doc = inspect.getdoc(fn) or ""
    assert ">>> " in doc, f"dialsim.analysis.{name} has no docstring example"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module, results_dir, sweep_dir, tmp_path):
    matplotlib.use("Agg")
    globs = {**vars(module), **vars(da), "RESULTS": results_dir, "SWEEP": sweep_dir, "TMP": tmp_path}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module.__name__, globs=dict(globs)) if t.examples]
    assert tests, f"{module.__name__} has no examples"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {module.__name__} failed (output above)"
