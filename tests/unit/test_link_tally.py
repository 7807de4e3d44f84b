"""A framing's own tally of its frames (dialsim.proto.octets) against the frame
events it queues otherwise: a LinkInterface without a capture has the framing add
its frames up itself; with a capture it counts the FrameSent / FrameReceived
events as before.  Both must give the same per-layer byte account, and the same
line octets, for PPP (with and without VJ, 16- and 32-bit FCS), SLIP and CSLIP,
over a clean line and over one that corrupts and cuts frames.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.hosts.endpoint import FrameLog, LinkInterface
from dialsim.proto.events import FrameEvent, IpPacketReceived
from dialsim.proto.hdlc import hdlc_encode
from dialsim.proto.ipv4 import build_packet
from dialsim.proto.octets import implementation, tcp_payload_length
from dialsim.proto.ppp import PppConnection
from dialsim.proto.slip import SlipLink


def _segment(i: int, payload: bytes, src: str, dst: str) -> bytes:
    """A TCP/IP datagram of one connection (VJ compresses the ones after the first)."""
    tcp = struct.pack("!HHIIBBHHH", 1100, 110, 1000 + 97 * i, 5000 + i, 5 << 4, 0x18, 4096, 0, 0)
    return build_packet(src, dst, 6, tcp + payload, ident=i)


def _framings(kind: str):
    if kind == "slip":
        return SlipLink(mtu=1006), SlipLink(mtu=1006)
    if kind == "cslip":
        return SlipLink(mtu=1006, vj=True), SlipLink(mtu=1006, vj=True)
    vj, fcs32 = kind in ("ppp-vj", "ppp-fcs32"), kind == "ppp-fcs32"
    a = PppConnection("subscriber", rng=random.Random(1), vj=vj, fcs32=fcs32, echo_interval=2.0)
    b = PppConnection("isp", rng=random.Random(2), vj=vj, fcs32=fcs32, local_ip="10.0.0.1",
                      peer_ip_pool="10.0.0.2")
    return a, b


class _Pair:
    """Two ends over LinkInterfaces; ``capture``: count by frame events."""

    def __init__(self, kind: str, capture: bool) -> None:
        a, b = _framings(kind)
        self.a = LinkInterface(a, capture=FrameLog() if capture else None)
        self.b = LinkInterface(b, capture=FrameLog() if capture else None)
        self.line: list[bytes] = []  # what went a -> b, as b got it
        self.delivered: list[bytes] = []
        for f in (a, b):
            if isinstance(f, PppConnection):
                f.lower_up(0.0)
                f.open(0.0)

    def step(self, now: float, mangle=None) -> None:
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            src.stamp(now)
            src.on_timer(now)
            for chunk in src.output(now):
                if mangle is not None and src is self.a:
                    chunk = mangle(chunk)
                    self.line.append(chunk)
                dst.stamp(now)
                dst.receive(chunk, now)
            for end in (self.a, self.b):
                for ev in end.events():
                    assert not isinstance(ev, FrameEvent)
                    if isinstance(ev, IpPacketReceived):
                        self.delivered.append(ev.packet)

    def account(self):
        return [x.as_dict(p) | {f"{p}_frame": x.frame_octets, f"{p}_wire": x.wire_octets}
                for end in (self.a, self.b) for x, p in ((end.sent, "up"), (end.received, "down"))]


def _junk(kind: str) -> bytes:
    """Frames the far end never sent: of no CSLIP type; of an unknown PPP protocol, an
    IP frame before IPCP is up would be, one with a bad FCS."""
    if "slip" in kind:
        return b"\xc0\x01\x02\x03\xc0\xc0\x45\x00\xc0"
    ip = hdlc_encode(b"\xff\x03\x00\x21" + _segment(0, b"x", "10.0.0.2", "10.0.0.1"))
    return hdlc_encode(b"\xff\x03\x80\x57\x01\x02") + ip + ip[:-3] + b"\x00\x00\x7e"


def _run(kind: str, capture: bool, packets: int, mangle=None) -> _Pair:
    pair = _Pair(kind, capture)
    now = 0.0
    pair.b.receive(_junk(kind), now)
    for _ in range(12):  # the link comes up (PPP: LCP, IPCP)
        pair.step(now)
        now += 0.5
    pair.b.receive(_junk(kind), now)
    for i in range(packets):
        payload = bytes((i * 7 + j) & 0xFF for j in range(40 + 37 * i % 500))  # 0x7e, 0x7d, 0xc0, 0xdb too
        pair.a.send_ip(_segment(i, payload, "10.0.0.2", "10.0.0.1"), now)
        pair.b.send_ip(_segment(i, payload[:3], "10.0.0.1", "10.0.0.2"), now)
        pair.step(now, mangle)
        now += 0.75  # PPP: an echo now and then
    return pair


@pytest.mark.parametrize("kind", ["ppp", "ppp-vj", "ppp-fcs32", "slip", "cslip"])
def test_the_tally_is_what_the_frame_events_add_up_to(kind):
    tallied, counted = _run(kind, False, 30), _run(kind, True, 30)
    assert tallied.a._tallying is tallied.a.framing and counted.a._tallying is None
    assert tallied.account() == counted.account()
    assert tallied.delivered == counted.delivered and len(tallied.delivered) >= 60
    up = tallied.a.sent
    assert up.packets == 30 and up.app == sum(40 + 37 * i % 500 for i in range(30))
    assert (up.control_octets > 0) is kind.startswith("ppp")


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["ppp-vj", "ppp", "cslip", "slip"]),
       cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.booleans()), max_size=12))
def test_the_tally_holds_on_a_line_that_corrupts_and_cuts(kind, cuts):
    def mangler():
        n = iter(range(10_000))

        def mangle(chunk: bytes) -> bytes:
            i = next(n)
            for at, value, cut in cuts:
                if at % 40 == i and chunk:
                    pos = at % len(chunk)
                    chunk = chunk[:pos] if cut else chunk[:pos] + bytes([value]) + chunk[pos + 1:]
            return chunk
        return mangle

    tallied, counted = _run(kind, False, 30, mangler()), _run(kind, True, 30, mangler())
    assert tallied.line == counted.line
    assert tallied.account() == counted.account()
    assert tallied.delivered == counted.delivered


@pytest.mark.parametrize("name", ["python", "c"])
def test_tcp_payload_length(name):
    length = implementation(name)
    p = _segment(0, b"x" * 123, "10.0.0.2", "10.0.0.1")
    assert length(p) == 123 and length(bytearray(p)) == 123
    assert length(p[:19]) == 0 and length(b"") == 0
    assert length(p[:-23]) == 100  # cut short: what arrived
    assert length(build_packet("10.0.0.2", "10.0.0.1", 17, b"u" * 30)) == 0
    with pytest.raises(ValueError, match="TCP payload length"):
        implementation("fortran")


_headers = st.builds(
    lambda vihl, total, proto, doff, rest: bytes([vihl, 0]) + total.to_bytes(2, "big") + bytes(5)
    + bytes([proto]) + rest[:2] + bytes([doff]) + rest[2:],
    st.sampled_from([0x45, 0x46, 0x4F, 0x40, 0x44, 0x65, 0x05]) | st.integers(0, 255),
    st.integers(0, 0xFFFF), st.sampled_from([6, 17]) | st.integers(0, 255),
    st.integers(0, 255), st.binary(max_size=120),
)


@settings(max_examples=500, deadline=None)
@given(packet=_headers | st.binary(max_size=80))
def test_the_compiled_tcp_payload_length_is_the_reference(packet):
    assert implementation("c")(packet) == tcp_payload_length(packet)
