"""Bytes per layer add up, and VJ header compression shrinks TCP/IP headers."""

import pytest

from dialsim.experiment.world import run_replication
from dialsim.scenario.load import scenario_from_text

TEMPLATE = """
seed: 9
duration: 1 h
framing: {framing}
ppp: {{auth: chap, vj: {vj}}}
link: {{profile: v34, connect_rate: 28.8k, error_correction: true, compression: false}}
subscriber: {{user: alice, password: tanstaaf}}
isp: {{maildrop: {{messages: 12, size: {{median: 8 KiB, sigma: 0.5}}}}}}
"""


def _session(tmp_path, framing, vj):
    sc = scenario_from_text(TEMPLATE.format(framing=framing, vj=vj))
    (s,) = run_replication(sc, 0, tmp_path / f"{framing}{vj}").recorder.sessions
    assert s["end_reason"] == "quit"
    return s


@pytest.mark.parametrize("framing", ["slip", "cslip"])
def test_slip_layers_sum_to_serial_octets(tmp_path, framing):
    s = _session(tmp_path, framing, "false")
    total = s["down_app_octets"] + s["down_tcpip_header_octets"] + s["down_framing_octets"]
    assert total == s["line_bytes_down"]


def test_vj_cuts_header_bytes(tmp_path):
    plain = _session(tmp_path, "ppp", "false")
    vj = _session(tmp_path, "ppp", "true")
    assert plain["down_app_octets"] == vj["down_app_octets"]
    # 20 + 20 octets per datagram, plus the MSS option on the SYN-ACK.
    assert plain["down_tcpip_header_octets"] == 40 * plain["down_packets"] + 4
    # RFC 1144: a typical compressed header is 3-5 octets instead of 40.
    assert vj["down_tcpip_header_octets"] < 0.15 * plain["down_tcpip_header_octets"]
    assert vj["line_bytes_down"] < plain["line_bytes_down"]
    for s in (plain, vj):
        parts = (s["down_app_octets"] + s["down_tcpip_header_octets"] + s["down_framing_octets"]
                 + s["down_link_control_octets"])
        assert abs(parts - s["line_bytes_down"]) <= 64
