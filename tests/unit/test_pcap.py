"""pcap writer: record layout, simulated timestamps, and tshark's dissection down to POP.

The tshark test skips when tshark is absent, and fails instead when ``CI`` is set.
Wireshark before 4.2 has no dissector for LINKTYPE_SLIP, so for those versions the
test loads a ten-line Lua dissector (the libpcap pseudo-header: direction, type,
14 octets, then IP) that hands the datagram to Wireshark's own IP dissector.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess

import pytest
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import RawPcapReader

from dialsim.results.pcap import (
    LINKTYPE_PPP_WITH_DIR,
    LINKTYPE_SLIP,
    SLIP_TYPE_IP,
    SLIP_TYPE_UNCOMPRESSED_TCP,
    PcapWriter,
    ppp_record,
    slip_record,
)

CLIENT, SERVER = "10.0.0.2", "10.0.0.1"


def pop3_exchange() -> list[tuple[bool, bytes]]:
    """(sent by the subscriber?, IPv4 datagram): handshake, greeting, USER."""
    c, s = dict(src=CLIENT, dst=SERVER), dict(src=SERVER, dst=CLIENT)
    pkts = [
        (True, IP(id=1, **c) / TCP(sport=1025, dport=110, flags="S", seq=1000)),
        (False, IP(id=1, **s) / TCP(sport=110, dport=1025, flags="SA", seq=5000, ack=1001)),
        (True, IP(id=2, **c) / TCP(sport=1025, dport=110, flags="A", seq=1001, ack=5001)),
        (False, IP(id=2, **s) / TCP(sport=110, dport=1025, flags="PA", seq=5001, ack=1001)
         / Raw(b"+OK POP3 server ready\r\n")),
        (True, IP(id=3, **c) / TCP(sport=1025, dport=110, flags="PA", seq=1001, ack=5024)
         / Raw(b"USER alice\r\n")),
    ]
    return [(sent, bytes(p)) for sent, p in pkts]


def test_global_header_and_records():
    buf = io.BytesIO()
    w = PcapWriter(buf, LINKTYPE_SLIP)
    w.write(1.5, b"abc")
    w.write(2.0000004, b"de")
    w.write(3.9999999, b"")  # rounds up into the next second
    w.close()
    raw = buf.getvalue()
    assert raw[:24] == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 8)
    assert raw[24:40] == struct.pack("<IIII", 1, 500000, 3, 3) and raw[40:43] == b"abc"
    assert raw[43:59] == struct.pack("<IIII", 2, 0, 2, 2)
    assert raw[61:77] == struct.pack("<IIII", 4, 0, 0, 0)
    assert w.records == 3


def test_snaplen_truncates_but_keeps_orig_len(tmp_path):
    p = tmp_path / "t.pcap"
    with PcapWriter(p, LINKTYPE_PPP_WITH_DIR, snaplen=4) as w:
        w.write(0.0, b"123456")
    raw = p.read_bytes()
    assert raw[24:40] == struct.pack("<IIII", 0, 0, 4, 6) and raw[40:] == b"1234"


def test_negative_time_refused(tmp_path):
    with PcapWriter(tmp_path / "t.pcap", LINKTYPE_SLIP) as w, pytest.raises(ValueError):
        w.write(-1.0, b"x")


def test_slip_pseudo_header():
    rec = slip_record(True, b"DATAGRAM")
    assert rec[:16] == bytes([1, 0x40]) + bytes(14) and rec[16:] == b"DATAGRAM"
    rec = slip_record(False, b"D", SLIP_TYPE_UNCOMPRESSED_TCP, cslip_header=b"\x01\x02")
    assert rec[:4] == bytes([0, 0x70, 1, 2]) and len(rec) == 17
    with pytest.raises(ValueError):
        slip_record(True, b"", SLIP_TYPE_IP, cslip_header=bytes(15))


def test_ppp_with_dir_record():
    assert ppp_record(False, b"\xff\x03\xc0\x21") == b"\x00\xff\x03\xc0\x21"
    assert ppp_record(True, b"\x21E") == b"\x01\x21E"


def test_read_back(tmp_path):
    p = tmp_path / "t.pcap"
    with PcapWriter(p, LINKTYPE_SLIP) as w:
        for i, (sent, dgram) in enumerate(pop3_exchange()):
            w.write(10.25 * i, slip_record(sent, dgram))
    # Read back with an independent reader (scapy's), not one of our own.
    with RawPcapReader(str(p)) as reader:
        assert reader.linktype == LINKTYPE_SLIP
        recs = [(meta.sec + meta.usec / 1e6, data) for data, meta in reader]
    assert [t for t, _ in recs] == [0.0, 10.25, 20.5, 30.75, 41.0]
    assert [r[16:] for _, r in recs] == [d for _, d in pop3_exchange()]


# --- tshark ----------------------------------------------------------------------

SLIP_LUA = """
local slip = Proto("dialsim_slip", "SLIP pseudo-header (LINKTYPE_SLIP)")
local f_dir = ProtoField.uint8("dialsim_slip.dir", "Direction", base.DEC, {[0]="received", [1]="sent"})
local f_type = ProtoField.uint8("dialsim_slip.type", "Packet type", base.HEX)
slip.fields = {f_dir, f_type}
local ip = Dissector.get("ip")
function slip.dissector(tvb, pinfo, tree)
  local t = tree:add(slip, tvb(0, 16))
  t:add(f_dir, tvb(0, 1)); t:add(f_type, tvb(1, 1))
  if tvb(1, 1):uint() == 0x40 then ip:call(tvb(16):tvb(), pinfo, tree) end
end
DissectorTable.get("wtap_encap"):add(wtap_encaps.SLIP, slip)
"""


@pytest.fixture(scope="module")
def tshark(tmp_path_factory):
    exe = shutil.which("tshark")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed (apt-get install tshark) and CI is set")
        pytest.skip("tshark is not installed (apt-get install tshark)")
    protocols = subprocess.run([exe, "-G", "protocols"], capture_output=True, text=True, check=True).stdout
    has_slip = any(line.split("\t")[2:3] == ["slip"] for line in protocols.splitlines())
    extra: list[str] = []
    if not has_slip:
        lua = tmp_path_factory.mktemp("lua") / "slip.lua"
        lua.write_text(SLIP_LUA)
        extra = ["-X", f"lua_script:{lua}"]

    def run(path, *args):
        out = subprocess.run([exe, *extra, "-r", str(path), *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    return run


def _write(path, linktype, packets):
    with PcapWriter(path, linktype) as w:
        for i, (sent, dgram) in enumerate(packets):
            if linktype == LINKTYPE_SLIP:
                w.write(0.5 * i, slip_record(sent, dgram))
            else:
                w.write(0.5 * i, ppp_record(sent, b"\xff\x03\x00\x21" + dgram))


def _expert_problems(text: str) -> list[str]:
    # tshark -z expert lists sections "Errors (n)", "Warns (n)", "Notes (n)", "Chats (n)"
    return [line for line in text.splitlines() if line.startswith(("Errors", "Warns"))]


@pytest.mark.parametrize("linktype", [LINKTYPE_SLIP, LINKTYPE_PPP_WITH_DIR], ids=["slip", "ppp"])
def test_tshark_dissects_down_to_pop(tmp_path, tshark, linktype):
    path = tmp_path / "line.pcap"
    _write(path, linktype, pop3_exchange())
    verbose = tshark(path, "-V")
    assert "Internet Protocol Version 4, Src: 10.0.0.2, Dst: 10.0.0.1" in verbose
    assert "Post Office Protocol" in verbose and "USER alice" in verbose
    assert "Malformed" not in verbose
    summary = tshark(path)
    assert "POP" in summary and "C: USER alice" in summary
    assert _expert_problems(tshark(path, "-z", "expert", "-q")) == []
    if linktype == LINKTYPE_PPP_WITH_DIR:
        dirs = [ln.split(":")[1].split()[0] for ln in verbose.splitlines() if "Point-to-Point Direction:" in ln]
        assert dirs == ["Sent", "Received", "Sent", "Received", "Sent"]


def test_tshark_expert_catches_a_broken_packet(tmp_path, tshark):
    """The expert check above can fail: a truncated datagram is reported."""
    packets = pop3_exchange()
    sent, dgram = packets[-1]
    packets[-1] = (sent, dgram[:30])
    path = tmp_path / "bad.pcap"
    _write(path, LINKTYPE_SLIP, packets)
    assert _expert_problems(tshark(path, "-z", "expert", "-q")) != []
