"""The capture reader: hand-built pcap/pcapng files with known contents, and real
captures checked against the per-layer byte accounting of the sessions table."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import dialsim.analysis as da
from dialsim.experiment.run import run_scenario
from dialsim.proto.ipv4 import PROTO_TCP, build_packet
from dialsim.proto.tcp_segment import ACK, PSH, build_segment
from dialsim.proto.vj import TYPE_COMPRESSED_TCP, TYPE_UNCOMPRESSED_TCP, VjCompressor
from dialsim.results.pcap import LINKTYPE_PPP_WITH_DIR, PcapngWriter, PcapWriter
from dialsim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
ISP, SUB = "10.0.0.1", "10.0.0.2"


def _segment(seq: int, data: bytes, src=ISP, dst=SUB, sport=110, dport=1025) -> bytes:
    seg = build_segment(src, dst, sport, dport, seq, 1, ACK | PSH, 8192, data)
    return build_packet(src, dst, PROTO_TCP, seg, ident=seq & 0xFFFF)


def _ppp(proto: int, info: bytes) -> bytes:
    return b"\xff\x03" + proto.to_bytes(2, "big") + info


def test_ppp_pcap_retransmission_is_not_goodput(tmp_path):
    path = tmp_path / "line.pcap"
    with PcapWriter(path, LINKTYPE_PPP_WITH_DIR) as w:
        w.write(0.5, b"\x00" + _ppp(0xC021, b"\x01\x01\x00\x04"))  # LCP Configure-Request
        w.write(1.0, b"\x00" + _ppp(0x0021, _segment(1000, b"a" * 100)))
        w.write(1.5, b"\x00" + _ppp(0x0021, _segment(1100, b"b" * 100)))
        w.write(2.5, b"\x00" + _ppp(0x0021, _segment(1050, b"c" * 100)))  # half old, half new
        w.write(3.0, b"\x01" + _ppp(0x0021, _segment(1, b"RETR 1\r\n", SUB, ISP, 1025, 110)))
    p = da.read_capture(path)
    assert p.protocol.tolist() == ["lcp", "ip", "ip", "ip", "ip"]
    assert p.direction.tolist() == ["down"] * 4 + ["up"]
    assert p.payload_octets.tolist() == [0, 100, 100, 100, 8]
    assert p.new_octets.tolist() == [0, 100, 100, 0, 8]  # 1050..1150 was all seen before
    assert p.t_s.tolist() == [0.5, 1.0, 1.5, 2.5, 3.0]
    assert p.frame_octets.tolist()[1] == 4 + 40 + 100
    g = da.goodput(p, bin_s=1.0)
    assert g.t_s.tolist() == [0.5, 1.5]
    assert g.goodput_Bps.tolist() == [100.0, 100.0]
    assert g.payload_Bps.tolist() == [100.0, 200.0]
    assert g.goodput_Bps.sum() * 1.0 == p[p.direction == "down"].new_octets.sum()


def test_sequence_numbers_wrap(tmp_path):
    path = tmp_path / "wrap.pcap"
    with PcapWriter(path, LINKTYPE_PPP_WITH_DIR) as w:
        w.write(0.0, b"\x00" + _ppp(0x0021, _segment(0xFFFFFFC0, b"x" * 100)))
        w.write(0.1, b"\x00" + _ppp(0x0021, _segment(0x24, b"y" * 100)))
    assert da.read_capture(path).new_octets.tolist() == [100, 100]


def test_vj_compressed_frames_are_expanded(tmp_path):
    comp = VjCompressor()
    path = tmp_path / "vj.pcap"
    proto = {TYPE_COMPRESSED_TCP: 0x002D, TYPE_UNCOMPRESSED_TCP: 0x002F}
    with PcapWriter(path, LINKTYPE_PPP_WITH_DIR) as w:
        for i in range(5):
            kind, data = comp.compress(_segment(5000 + 536 * i, bytes([i]) * 536))
            # protocol field compressed to one octet (PFC), no address/control (ACFC)
            w.write(float(i), b"\x00" + bytes([proto[kind] & 0xFF]) + data)
    p = da.read_capture(path)
    assert p.protocol.tolist() == ["uncompressed_tcp"] + ["compressed_tcp"] * 4
    assert p.seq.tolist() == [5000 + 536 * i for i in range(5)]
    assert p.src_port.tolist() == [110] * 5 and p.new_octets.tolist() == [536] * 5
    assert p.frame_octets.iloc[1:].max() < 536 + 10  # compressed headers: a few octets


def test_pcapng_with_directions(tmp_path):
    path = tmp_path / "slip.pcapng"
    with PcapngWriter(path) as w:
        w.write(1.25, _segment(7, b"+OK\r\n"), sent=False)
        w.write(2.0, _segment(1, b"QUIT\r\n", SUB, ISP, 1025, 110), sent=True)
    p = da.read_capture(path)
    assert p.direction.tolist() == ["down", "up"]
    assert p.t_s.tolist() == [1.25, 2.0]
    assert p.payload_octets.tolist() == [5, 6]


def test_big_endian_nanosecond_pcap(tmp_path):
    frame = b"\x00" + _ppp(0x0021, _segment(1, b"hello"))
    head = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_PPP_WITH_DIR)
    rec = struct.pack(">IIII", 3, 250_000_000, len(frame), len(frame)) + frame
    (tmp_path / "ns.pcap").write_bytes(head + rec)
    p = da.read_capture(tmp_path / "ns.pcap")
    assert p.t_s.tolist() == [3.25] and p.payload_octets.tolist() == [5]


def test_not_a_capture(tmp_path):
    (tmp_path / "x.pcap").write_bytes(b"hello world, not a capture at all")
    with pytest.raises(ValueError, match="not a pcap"):
        da.read_capture(tmp_path / "x.pcap")


@pytest.mark.parametrize("scenario", ["quickstart.yaml", "cslip-login.yaml"])
def test_real_capture_payload_equals_the_application_octets(scenario, tmp_path):
    """PPP+VJ and CSLIP on a clean line: the TCP data the reader finds in the capture
    is exactly what the layer accounting counted as application octets."""
    sc = load_scenario(ROOT / "scenarios" / scenario).with_overrides(
        {"replications": 1, "isp.maildrop.messages": 5}, origin="test")
    run = run_scenario(sc, tmp_path / "r", pcap=True)
    s = run.tables["sessions"]
    capture = next((tmp_path / "r").glob("line-rep0.pcap*"))
    p = da.read_capture(capture)
    for direction in ("down", "up"):
        part = p[p.direction == direction]
        assert part.payload_octets.sum() == s[f"{direction}_app_octets"].sum()
        assert part.new_octets.sum() == part.payload_octets.sum()  # nothing retransmitted
