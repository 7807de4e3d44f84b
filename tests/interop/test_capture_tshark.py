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


def test_ppp_capture_puts_causes_before_effects(tmp_path):
    """A received frame is written before what is sent because of it, even at the
    same instant: an LCP Ack after the Request it acks, a CHAP Response after its
    Challenge, IPCP after CHAP Success (as tshark reads the file)."""
    sc = load_scenario(ROOT / "scenarios" / "ppp-chap-v90.yaml").with_overrides(replications=1)
    run_scenario(sc, tmp_path / "c", pcap=True)
    cap = tmp_path / "c" / "line-rep0.pcap"
    out = _tshark("-r", str(cap), "-Y", "lcp || chap || ipcp", "-T", "fields",
                  "-e", "frame.number", "-e", "ppp.direction", "-e", "ppp.protocol",
                  "-e", "ppp.code", "-e", "ppp.identifier", "-e", "chap.code",
                  "-E", "occurrence=f")
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    frames = [(int(n), d, int(p, 16), c, i, cc) for n, d, p, c, i, cc in rows]
    lcp = [(n, d, c, i) for n, d, p, c, i, _cc in frames if p == 0xC021]
    # LCP: every Configure-Ack (code 2) comes after the peer's Request (1) with its id.
    for n, d, c, i in lcp:
        if c == "2":
            req = next(n2 for n2, d2, c2, i2 in lcp if c2 == "1" and i2 == i and d2 != d)
            assert req < n, f"LCP Ack {i} in frame {n} before its Request in frame {req}"

    def first(pred):
        return next(n for n, d, p, c, i, cc in frames if pred(p, cc))

    challenge = first(lambda p, cc: cc == "1")
    response = first(lambda p, cc: cc == "2")
    success = first(lambda p, cc: cc == "3")
    ipcp = first(lambda p, cc: p == 0x8021)
    assert challenge < response < success < ipcp, (challenge, response, success, ipcp)
