"""tshark (independent dissectors) reads dialsim's line captures: PPP negotiation,
then POP3, with no malformed packets; SLIP/CSLIP as pcapng with directions."""

import subprocess
from pathlib import Path

import pytest

from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario

from .peers import require_tshark

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.interop


def _tshark(*args):
    tshark = require_tshark()
    r = subprocess.run([tshark, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _expert_problems(path):
    out = _tshark("-r", str(path), "-q", "-z", "expert")
    bad = [line for line in out.splitlines() if "Malformed" in line]
    heads = [line for line in out.splitlines() if line.startswith(("Errors", "Warns"))]
    return bad, heads


def test_quickstart_ppp_capture_dissects(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(replications=1)
    run_scenario(sc, tmp_path / "q", pcap=True)
    cap = tmp_path / "q" / "line-rep0.pcap"
    summary = _tshark("-r", str(cap))
    lines = summary.splitlines()
    first_pop = next(i for i, line in enumerate(lines) if " POP " in line)
    negotiation = "\n".join(lines[:first_pop])
    for proto in ("LCP", "PAP", "IPCP"):
        assert proto in negotiation, proto
    assert "+OK" in summary and "RETR" in summary
    bad, heads = _expert_problems(cap)
    assert not bad and not heads, (bad, heads)
    # VJ-compressed TCP is there and dissected.
    vj = _tshark("-r", str(cap), "-Y", "ppp.protocol == 0x2d").splitlines()
    assert len(vj) > 50


@pytest.mark.parametrize("name", ["slow-2400", "cslip-login"])
def test_slip_capture_dissects_with_directions(tmp_path, name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml").with_overrides(replications=1)
    run_scenario(sc, tmp_path / "s", pcap=True)
    cap = tmp_path / "s" / "line-rep0.pcapng"
    summary = _tshark("-r", str(cap))
    assert "POP" in summary and "RETR" in summary
    detail = _tshark("-r", str(cap), "-V", "-c", "4")
    assert "Direction: Outbound" in detail and "Direction: Inbound" in detail
    bad, heads = _expert_problems(cap)
    assert not bad and not heads, (bad, heads)
