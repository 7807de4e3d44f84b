"""Tests for dialsim.hosts.dialup: the subscriber's SLIP / CSLIP / PPP line host.

The subscriber endpoint is joined back to back with an ISP-side endpoint in
memory (no clock, no I/O): SLIP is up at once, PPP after LCP and IPCP, the
address IPCP assigns becomes the stack's, and a TCP exchange then works.
"""

from __future__ import annotations

import random

import pytest

from dialsim.hosts.dialup import FRAMINGS, LinkStatus, link_status, subscriber_stack
from dialsim.hosts.endpoint import FrameLog, IpEndpoint
from dialsim.proto.netstack import NetStack
from dialsim.proto.ppp import IpcpUp, LcpUp, PppConnection
from dialsim.proto.slip import SlipLink


def _isp(framing: str, **ppp) -> IpEndpoint:
    if framing == "ppp":
        link = PppConnection("isp", rng=random.Random(2), auth="none", **ppp)
        link.lower_up(0.0)
        link.open(0.0)
    else:
        link = SlipLink(mtu=1006, vj=framing == "cslip")
    ep = IpEndpoint(link, NetStack("10.0.0.1", mtu=1006, rng=random.Random(3)))
    ep.listen(7, lambda conn, now: _Echo(conn))
    return ep


class _Echo:
    """Binding that echoes what it receives (enough to prove a TCP path)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.closed = False

    def pump(self, now):
        progressed = False
        for ev in self.conn.events():
            progressed = True
            if type(ev).__name__ == "DataReceived":
                self.conn.send(ev.data)
        return progressed

    def next_deadline(self):
        return None

    def on_timer(self, now):
        pass


def _wire(a: IpEndpoint, b: IpEndpoint, now: float, rounds: int = 50) -> None:
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for chunk in src.line_output(now):
                moved = True
                dst.receive_line(chunk, now)
        if not moved:
            return


class _Collector:
    def __init__(self, conn) -> None:
        self.conn = conn
        self.data = b""
        self.closed = False

    def pump(self, now):
        progressed = False
        for ev in self.conn.events():
            progressed = True
            if type(ev).__name__ == "DataReceived":
                self.data += ev.data
        return progressed

    def next_deadline(self):
        return None

    def on_timer(self, now):
        pass


def _echo_roundtrip(sub: IpEndpoint, isp: IpEndpoint, payload: bytes) -> bytes:
    holder = {}

    def make(conn, now):
        holder["b"] = _Collector(conn)
        return holder["b"]

    b = sub.connect("10.0.0.1", 7, 0.0, make)
    now = 0.0
    for _ in range(40):
        _wire(sub, isp, now)
        if b.conn.state == "ESTABLISHED" and not holder.get("sent"):
            b.conn.send(payload)
            holder["sent"] = True
        if len(b.data) >= len(payload):
            break
        now += 0.25
        for ep in (sub, isp):
            d = ep.next_deadline()
            if d is not None and d <= now:
                ep.on_timer(now)
    return b.data


@pytest.mark.parametrize("framing", ["slip", "cslip"])
def test_slip_is_up_at_once_with_the_static_address(framing):
    log = FrameLog()
    ep = subscriber_stack(
        framing, rng=random.Random(1), local_ip="10.0.0.2", peer_ip="10.0.0.1", capture=log
    )
    st = link_status(ep)
    assert isinstance(st, LinkStatus)
    assert st.up and ep.link_up and st.t_up == 0.0
    assert (st.local_ip, st.peer_ip, st.vj) == ("10.0.0.2", "10.0.0.1", framing == "cslip")
    assert ep.stack.address == "10.0.0.2" and ep.framing.mtu == 1006
    assert ep.line_output(0.0) == []  # SLIP says nothing until there is IP to send
    payload = bytes(range(256)) * 8  # every octet value, END and ESC included
    assert _echo_roundtrip(ep, _isp(framing), payload) == payload
    kinds = {k for _t, sent, _b, k in log.frames if sent}
    assert ("compressed_tcp" in kinds) is (framing == "cslip")


def test_ppp_comes_up_and_takes_the_assigned_address():
    seen = []
    ep = subscriber_stack(
        "ppp", rng=random.Random(1), vj=True, on_link_event=lambda ev, now: seen.append(ev)
    )
    st = link_status(ep)
    assert not st.up and not ep.link_up and ep.stack.address == "0.0.0.0"
    out = ep.line_output(0.0)
    assert out and out[0].startswith(b"\x7e\xff\x7d\x23\xc0\x21")  # LCP Configure-Request
    isp = _isp("ppp", peer_ip_pool="10.0.0.2", local_ip="10.0.0.1", vj=True)
    for chunk in out:
        isp.receive_line(chunk, 0.0)
    _wire(ep, isp, 0.0)
    assert st.up and ep.link_up
    assert st.local_ip == "10.0.0.2" == ep.stack.address
    assert st.peer_ip == "10.0.0.1" and st.vj
    ups = [i for i, e in enumerate(seen) if isinstance(e, LcpUp)]
    ipcp = [i for i, e in enumerate(seen) if isinstance(e, IpcpUp)]
    assert ups and ipcp and ups[0] < ipcp[0]
    assert [e for _t, e in st.events] == seen
    payload = b"hello over ppp\r\n" * 200
    assert _echo_roundtrip(ep, isp, payload) == payload
    # carrier loss takes the link down and says why
    ep.framing.lower_down(5.0)
    ep.line_output(5.0)
    assert not st.up and not ep.link_up and st.down_reason


def test_ppp_naks_an_isp_asking_for_0_0_0_0_with_the_given_peer_address():
    # slirp's IPCP asks the subscriber for its own address: without peer_ip the
    # request is rejected (as pppd does); with it, Nak'd with that address.
    for peer_ip, want in ((None, None), ("10.0.0.1", "10.0.0.1")):
        ep = subscriber_stack("ppp", rng=random.Random(1), peer_ip=peer_ip)
        # A far end that, like slirp, asks for 0.0.0.0 and assigns 10.0.0.2.
        far = PppConnection("subscriber", rng=random.Random(2), vj=False, dns=None,
                            peer_ip_pool="10.0.0.2")  # fmt: skip
        far.lower_up(0.0)
        far.open(0.0)
        isp = IpEndpoint(far, NetStack("0.0.0.0", rng=random.Random(3)))
        _wire(ep, isp, 0.0)
        st = link_status(ep)
        assert st.up and st.local_ip == "10.0.0.2"
        assert far.ipcp_policy.got_address == want


def test_bad_arguments():
    with pytest.raises(ValueError):
        subscriber_stack("x25", rng=random.Random(1))
    with pytest.raises(ValueError):
        subscriber_stack("slip", rng=random.Random(1))  # no address for SLIP
    with pytest.raises(TypeError):
        subscriber_stack("cslip", rng=random.Random(1), local_ip="10.0.0.2", auth="pap")
    with pytest.raises(TypeError):
        link_status(IpEndpoint(SlipLink(), NetStack("10.0.0.2", rng=random.Random(1))))
    assert FRAMINGS == ("slip", "cslip", "ppp")
