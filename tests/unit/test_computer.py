"""The subscriber's computer (dialsim.hosts.subscriber.Computer) against the ISP's
NAS line (dialsim.hosts.isp.Isp), back to back in memory: no clock, no I/O.

SLIP is up at once with the configured address; PPP after LCP and IPCP, and the
address IPCP assigns becomes the stack's; a TCP exchange with the ISP's mail
host then works; the login chat runs before the link.
"""

from __future__ import annotations

import random

import pytest

from dialsim.hosts.endpoint import FrameLog, IpEndpoint
from dialsim.hosts.isp import Isp, IspSettings
from dialsim.hosts.network import ISP_ADDR
from dialsim.hosts.subscriber import Computer, SubscriberSettings
from dialsim.mail.accounts import Accounts
from dialsim.proto.netstack import NetStack
from dialsim.proto.ppp import AuthFailed, IpcpUp, LcpUp, PppConnection
from dialsim.proto.tcp import DataReceived

USER, PASSWORD = "alice", "tanstaaf"


def _isp(framing: str, prompts=()) -> Isp:
    settings = IspSettings(framing=framing, mtu=1006 if framing != "ppp" else 1500,
                           ppp_auth="pap", login_prompts=tuple(prompts))
    isp = Isp(settings, Accounts({USER: PASSWORD}), delivery=None, store=None,
              tcp_rng=random.Random(3), ppp_rng=random.Random(2))
    isp.mail.listen(7, lambda conn, now: _Echo(conn))
    return isp


class _Echo:
    """Binding that echoes what it receives (enough to prove a TCP path)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.closed = False
        self.data = b""

    def pump(self, now):
        moved = False
        for ev in self.conn.events():
            moved = True
            if isinstance(ev, DataReceived):
                self.data += ev.data
                self.conn.send(ev.data)
        return moved

    def next_deadline(self):
        return None

    def on_timer(self, now):
        pass


def _wire(pc: Computer, isp: Isp, now: float, rounds: int = 60) -> None:
    for _ in range(rounds):
        moved = False
        for chunk in pc.output(now):
            moved = True
            isp.receive(0, chunk, now)
        for _line, chunk in isp.output(now):
            moved = True
            pc.receive(chunk, now)
        if not moved:
            return


def _echo_roundtrip(pc: Computer, isp: Isp, payload: bytes) -> bytes:
    holder = {}
    pc.connect(ISP_ADDR, 7, 0.0, lambda conn, now: _Collector(conn, holder))
    now = 0.0
    for _ in range(80):
        _wire(pc, isp, now)
        c = holder["c"]
        if c.conn.state == "ESTABLISHED" and not holder.get("sent"):
            c.conn.send(payload)
            holder["sent"] = True
        if len(c.data) >= len(payload):
            break
        now += 0.25
        pc.on_timer(now)
        isp.on_timer(now)
    return holder["c"].data


class _Collector(_Echo):
    def __init__(self, conn, holder) -> None:
        super().__init__(conn)
        holder["c"] = self

    def pump(self, now):
        moved = False
        for ev in self.conn.events():
            moved = True
            if isinstance(ev, DataReceived):
                self.data += ev.data
        return moved


@pytest.mark.parametrize("framing", ["slip", "cslip"])
def test_slip_is_up_at_once_with_the_static_address(framing):
    log = FrameLog()
    pc = Computer(SubscriberSettings(framing=framing, mtu=1006, address="10.0.0.2"),
                  rng=random.Random(1), now=0.0, capture=log)
    st = pc.status
    assert st.up and st.t_up == 0.0
    assert (st.local_ip, st.peer_ip, st.vj) == ("10.0.0.2", ISP_ADDR, framing == "cslip")
    assert pc.stack.address == "10.0.0.2" and pc.framing.mtu == 1006
    assert pc.output(0.0) == []  # SLIP says nothing until there is IP to send
    isp = _isp(framing)
    isp.answer(0, 0.0)
    payload = bytes(range(256)) * 8  # every octet value, END and ESC included
    assert _echo_roundtrip(pc, isp, payload) == payload
    kinds = {k for _t, sent, _b, k in log.frames if sent}
    assert ("compressed_tcp" in kinds) is (framing == "cslip")


def test_ppp_comes_up_with_pap_and_takes_the_assigned_address():
    pc = Computer(SubscriberSettings(user=USER, password=PASSWORD, ppp_vj=True),
                  rng=random.Random(1), now=0.0)
    st = pc.status
    assert not st.up and pc.stack.address == "0.0.0.0"
    out = pc.output(0.0)
    assert out and out[0].startswith(b"\x7e\xff\x7d\x23\xc0\x21")  # LCP Configure-Request
    isp = _isp("ppp")
    isp.answer(0, 0.0)
    for chunk in out:
        isp.receive(0, chunk, 0.0)
    _wire(pc, isp, 0.0)
    assert st.up and st.local_ip == "10.0.0.2" == pc.stack.address
    assert st.peer_ip == ISP_ADDR and st.vj and st.dns == ("10.0.0.53", "10.0.0.54")
    seen = [e for _t, e in st.events]
    ups = [i for i, e in enumerate(seen) if isinstance(e, LcpUp)]
    ipcp = [i for i, e in enumerate(seen) if isinstance(e, IpcpUp)]
    assert ups and ipcp and ups[0] < ipcp[0]
    payload = b"hello over ppp\r\n" * 200
    assert _echo_roundtrip(pc, isp, payload) == payload
    # carrier loss takes the link down and says why
    pc.framing.lower_down(5.0)
    pc.output(5.0)
    assert not st.up and st.down_reason


def test_wrong_password_fails_pap():
    pc = Computer(SubscriberSettings(user=USER, password="wrong"), rng=random.Random(1), now=0.0)
    isp = _isp("ppp")
    isp.answer(0, 0.0)
    _wire(pc, isp, 0.0)
    assert not pc.status.up
    assert any(isinstance(e, AuthFailed) for _t, e in pc.status.events)


def test_login_chat_then_slip():
    chat = (("login:", USER, 10.0), ("Password:", PASSWORD, 10.0))
    pc = Computer(SubscriberSettings(framing="slip", mtu=1006, address="10.0.0.2",
                                     login_chat=chat), rng=random.Random(1), now=0.0)
    assert pc.chat is not None and pc.t_chat_done is None
    isp = _isp("slip", prompts=("login:", "Password:"))
    isp.answer(0, 0.0)
    _wire(pc, isp, 1.0)
    assert pc.t_chat_done == 1.0 and pc.chat_failed is None
    payload = b"after the chat\r\n" * 50
    assert _echo_roundtrip(pc, isp, payload) == payload


def test_ppp_naks_an_isp_asking_for_0_0_0_0_with_the_given_isp_address():
    # slirp's IPCP asks the subscriber for its own address: without an ISP
    # address the request is rejected (as pppd does); with it, Nak'd with it.
    for isp_address, want in (("0.0.0.0", None), ("10.0.0.1", "10.0.0.1")):
        pc = Computer(SubscriberSettings(ppp_auth="none", isp_address=isp_address,
                                         ppp_dns=False), rng=random.Random(1), now=0.0)
        # A far end that, like slirp, asks for 0.0.0.0 and assigns 10.0.0.2.
        far = PppConnection("subscriber", rng=random.Random(2), vj=False, dns=None,
                            peer_ip_pool="10.0.0.2")
        far.lower_up(0.0)
        far.open(0.0)
        other = IpEndpoint(far, NetStack("0.0.0.0", rng=random.Random(3)))
        for _ in range(60):
            moved = False
            for c in pc.output(0.0):
                moved = True
                other.receive(c, 0.0)
            for c in other.output(0.0):
                moved = True
                pc.receive(c, 0.0)
            if not moved:
                break
        assert pc.status.up and pc.status.local_ip == "10.0.0.2"
        assert far.ipcp_policy.got_address == want


def test_bad_settings():
    with pytest.raises(ValueError, match="framing"):
        SubscriberSettings(framing="x25")
    with pytest.raises(ValueError, match="address"):
        SubscriberSettings(framing="slip")  # no address for SLIP


def test_isp_routes_by_line_and_drops_for_lines_without_a_call():
    isp = Isp(IspSettings(framing="slip", mtu=1006), Accounts({USER: PASSWORD}), None, None,
              lines=2, tcp_rng=random.Random(1), ppp_rng=random.Random(2))
    assert isp.free_line() == 0
    isp.answer(1, 0.0)
    assert isp.free_line() == 0 and isp.ports[1].in_call
    pcs = [Computer(SubscriberSettings(framing="slip", mtu=1006, address=f"10.0.0.{2 + i}"),
                    rng=random.Random(i), now=0.0) for i in range(2)]
    isp.mail.listen(7, lambda conn, now: _Echo(conn))
    # The subscriber on line 1 reaches the mail host; replies go back on line 1 only.
    got = []
    pcs[1].connect(ISP_ADDR, 7, 0.0, lambda conn, now: _Collector(conn, {}))
    for _ in range(20):
        for c in pcs[1].output(0.0):
            isp.receive(1, c, 0.0)
        for line, c in isp.output(0.0):
            got.append(line)
            pcs[line].receive(c, 0.0)
    assert got and set(got) == {1}
    isp.hung_up(1, 1.0)
    assert not isp.ports[1].in_call and isp.free_line() == 0
