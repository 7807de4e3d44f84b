"""``dialsim report --html`` for a run and for a sweep, opened in headless Chromium:
the page renders with every plot decoded, no console error, no exception, and
nothing fetched from anywhere but the page itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.peers import require, require_module

from .browser import Chromium

ROOT = Path(__file__).resolve().parents[2]


def _report(folder: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "dialsim", "report", str(folder), "--html"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert (folder / "phases.png").exists() and (folder / "commands.png").exists()  # PNGs stay
    return folder / "report.html"


@pytest.fixture(scope="module")
def chromium():
    require("chromium", "Chromium is not installed (apt: chromium; scripts/install-peers.sh)")
    require_module("websocket", "websocket-client is not installed (pip install -e '.[test]')")
    with Chromium() as browser:
        yield browser


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_report_renders_in_chromium(kind, results_dir, sweep_dir, chromium, tmp_path):
    folder = {"run": results_dir, "sweep": sweep_dir}[kind]
    page = _report(folder)
    seen = chromium.visit(page.as_uri())
    assert seen.console_errors == [] and seen.exceptions == []
    assert seen.failed_requests == []
    assert all(u.startswith(("file:", "data:")) for u in seen.requests), seen.requests
    assert seen.title == "dialsim report: quickstart"
    # every plot is an embedded image that decoded
    expected = {"run": 4, "sweep": 3 + 4}[kind]
    assert seen.images >= expected and seen.images_decoded == seen.images
    for heading in ("Summary", "Phase breakdown", "Commands", "Goodput over time"):
        assert heading in seen.text
    if kind == "sweep":
        assert "Comparison of the sweep's points" in seen.text
        assert "No line capture" in seen.text  # sweeps write no pcap
    else:
        assert "95% CI of the mean" in seen.text and "line-rep0.pcap" in seen.text
    assert seen.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(seen.screenshot) > 50_000
    (tmp_path / f"{kind}.png").write_bytes(seen.screenshot)


def test_the_browser_check_sees_errors(chromium, tmp_path):
    """The harness itself: a page with a console error, an exception and a broken
    image is caught (so the clean reports above mean something)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body>'
                    '<img src="missing.png"><script>console.error("boom"); no_such()</script>'
                    "</body></html>")
    seen = chromium.visit(page.as_uri())
    assert any("boom" in e for e in seen.console_errors)
    assert seen.exceptions and seen.images == 1 and seen.images_decoded == 0
