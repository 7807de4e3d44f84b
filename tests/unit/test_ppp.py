"""PPP link end: RFC 1661 automaton table, LCP/PAP/CHAP/IPCP between two ends, crafted peers."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from dialsim.proto.hdlc import HdlcDecoder, hdlc_encode, parse_ppp_header, ppp_header
from dialsim.proto.ppp import (
    AuthFailed,
    AuthSucceeded,
    FrameReceived,
    FrameSent,
    IpcpUp,
    IpPacketReceived,
    LcpUp,
    LinkTerminated,
    PppConnection,
)
from dialsim.proto.ppp_lcp import (
    EVENTS,
    STATES,
    TRANSITIONS,
    LcpPolicy,
    NegotiationAutomaton,
    decode_options,
    decode_packet,
    encode_options,
    encode_packet,
)


class Accounts:
    def check_password(self, user, pw):
        return (user, pw) == ("alice", "secret")

    def secret(self, user):
        return "secret" if user == "alice" else None


def make_pair(auth="pap", password="secret", **kw):
    sub = PppConnection("subscriber", rng=random.Random(1), auth=auth, username="alice", password=password, **kw)
    isp = PppConnection(
        "isp", rng=random.Random(2), auth=auth, authenticator=Accounts(), local_ip="10.0.0.1", peer_ip_pool=["10.0.0.100"], **kw
    )
    return sub, isp


def pump(a, b, now=0.0, rounds=100):
    for _ in range(rounds):
        x, y = a.data_to_send(), b.data_to_send()
        if not x and not y:
            return
        if x:
            b.receive(x, now)
        if y:
            a.receive(y, now)


def run(a, b, until):
    """Exchange bytes and fire timers (jumping time) until nothing is due before ``until``."""
    t = 0.0
    while True:
        pump(a, b, t)
        ds = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
        if not ds or min(ds) > until:
            return t
        t = min(ds)
        for c in (a, b):
            d = c.next_deadline()
            if d is not None and d <= t:
                c.on_timer(t)


def start(*conns, now=0.0):
    for c in conns:
        c.open(now)
        c.lower_up(now)


def control(events):
    return [e for e in events if not isinstance(e, FrameSent | FrameReceived)]


# -- the automaton table ----------------------------------------------------------


def test_table_is_complete_and_closed():
    assert set(TRANSITIONS) == set(STATES)
    for s in STATES:
        assert set(TRANSITIONS[s]) == set(EVENTS)
        for cell in TRANSITIONS[s].values():
            if cell is not None:
                assert cell[1] in STATES


def test_some_rfc_cells():
    assert TRANSITIONS["Initial"]["Up"] == ((), "Closed")
    assert TRANSITIONS["Starting"]["Up"] == (("irc", "scr"), "Req-Sent")
    assert TRANSITIONS["Ack-Rcvd"]["RCR+"] == (("sca", "tlu"), "Opened")
    assert TRANSITIONS["Opened"]["RTR"] == (("tld", "zrc", "sta"), "Stopping")
    assert TRANSITIONS["Stopped"]["RCR-"] == (("irc", "scr", "scn"), "Req-Sent")
    assert TRANSITIONS["Req-Sent"]["TO-"] == (("tlf",), "Stopped")
    assert TRANSITIONS["Opened"]["Up"] is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), max_size=40))
def test_every_event_sequence_stays_in_table(events):
    sent = []
    layer = []
    a = NegotiationAutomaton(
        "t",
        LcpPolicy(random.Random(0)),
        sent.append,
        rng=random.Random(0),
        tlu=lambda now: layer.append("up"),
        tld=lambda now: layer.append("down"),
    )
    for i, ev in enumerate(events):
        before = a.state
        cell = TRANSITIONS[before][ev]
        a.event(ev, float(i))
        assert a.state in STATES
        assert a.state == (cell[1] if cell else before)
        for p in sent:
            assert decode_packet(p) is not None
    # this-layer-up and -down alternate, starting with up
    for x, y in zip(layer[::2], layer[1::2], strict=False):
        assert (x, y) == ("up", "down")


def test_every_state_event_pair():
    """Reach every state through real events, then apply every event once."""
    paths = {
        "Initial": [],
        "Starting": ["Open"],
        "Closed": ["Up"],
        "Stopped": ["Open", "Up", "TO-"],
        "Closing": ["Up", "Open", "Close"],
        "Stopping": ["Open", "Up", "RCR+", "RCA", "RTR"],
        "Req-Sent": ["Open", "Up"],
        "Ack-Rcvd": ["Open", "Up", "RCA"],
        "Ack-Sent": ["Open", "Up", "RCR+"],
        "Opened": ["Open", "Up", "RCA", "RCR+"],
    }
    for state, path in paths.items():
        for ev in EVENTS:
            a = NegotiationAutomaton("t", LcpPolicy(random.Random(0)), lambda p: None, rng=random.Random(0))
            for p in path:
                a.event(p, 0.0)
            if state == "Stopped":
                a.restart_count = 0
            assert a.state == state
            a.event(ev, 1.0)
            cell = TRANSITIONS[state][ev]
            assert a.state == (cell[1] if cell else state)
            if cell is None:
                assert a.counters["illegal_events"] == 1


def test_options_codec():
    opts = [(1, b"\x05\xdc"), (7, b""), (5, b"\x01\x02\x03\x04")]
    assert decode_options(encode_options(opts)) == opts
    assert decode_options(b"\x01\x01") is None
    assert decode_options(b"\x01\x05\x00") is None
    assert decode_packet(encode_packet(1, 7, b"abc") + b"padding") == (1, 7, b"abc")
    assert decode_packet(b"\x01\x02\x00\x03") is None


# -- two ends ----------------------------------------------------------------------


def test_pap_chap_none_reach_ipcp_up():
    for auth in ("pap", "chap", "none"):
        sub, isp = make_pair(auth)
        start(sub, isp)
        pump(sub, isp)
        se, ie = control(sub.events()), control(isp.events())
        assert isinstance(se[0], LcpUp)
        up = [e for e in se if isinstance(e, IpcpUp)]
        assert up and up[0].local_ip == "10.0.0.100" and up[0].peer_ip == "10.0.0.1"
        assert up[0].dns == ("10.0.0.53", "10.0.0.54")
        iup = [e for e in ie if isinstance(e, IpcpUp)]
        assert iup[0].local_ip == "10.0.0.1" and iup[0].peer_ip == "10.0.0.100"
        assert sub.phase == isp.phase == "network"
        if auth != "none":
            assert AuthSucceeded("alice", 0.0) in se and AuthSucceeded("alice", 0.0) in ie
        else:
            assert not any(isinstance(e, AuthSucceeded) for e in se)


def _tcp(seq, data):
    return bytes(IP(src="10.0.0.100", dst="10.0.0.1", id=seq & 0xFFFF) / TCP(sport=1025, dport=110, seq=seq, ack=1, flags="PA") / Raw(data))


def test_ip_packets_flow_with_vj_and_header_compression():
    sub, isp = make_pair("chap")
    start(sub, isp)
    pump(sub, isp)
    sub.events(), isp.events()
    pkts = [_tcp(1000 + 10 * i, b"0123456789") for i in range(5)]
    for p in pkts:
        sub.send_ip(p, 1.0)
    pump(sub, isp, 1.0)
    sent = [e for e in sub.events() if isinstance(e, FrameSent)]
    assert [e.kind for e in sent] == ["uncompressed_tcp"] + ["compressed_tcp"] * 4
    assert sent[1].header_octets == 1  # ACFC + PFC
    assert len(sent[1].frame) < 20
    assert sent[0].capture.startswith(b"\x2f")  # PFC'd protocol 0x002F, no address/control
    got = [e.packet for e in isp.events() if isinstance(e, IpPacketReceived)]
    assert got == pkts


def test_without_vj_plain_ip():
    sub, isp = make_pair("none", vj=False, pfc=False, acfc=False)
    start(sub, isp)
    pump(sub, isp)
    sub.events()
    sub.send_ip(_tcp(1, b"x"), 0.0)
    (ev,) = [e for e in sub.events() if isinstance(e, FrameSent)]
    assert ev.kind == "ip" and ev.capture[:4] == b"\xff\x03\x00\x21"
    assert ev.wire_octets == len(sub.data_to_send())


def test_send_ip_before_network_is_dropped():
    sub, _ = make_pair()
    sub.send_ip(_tcp(1, b"x"), 0.0)
    assert sub.counters["ip_dropped_not_up"] == 1
    assert sub.data_to_send() == b""


def test_wrong_password_fails_and_terminates():
    for auth in ("pap", "chap"):
        sub, isp = make_pair(auth, password="wrong")
        start(sub, isp)
        pump(sub, isp)
        for t in (3.0, 6.0, 9.0):  # Terminate-Request/Ack exchange may need the timer
            for c in (sub, isp):
                d = c.next_deadline()
                if d is not None and d <= t:
                    c.on_timer(t)
            pump(sub, isp, t)
        se, ie = control(sub.events()), control(isp.events())
        assert any(isinstance(e, AuthFailed) for e in se)
        assert any(isinstance(e, AuthFailed) for e in ie)
        assert not any(isinstance(e, IpcpUp) for e in se + ie)
        assert any(isinstance(e, LinkTerminated) for e in ie)
        assert any(isinstance(e, LinkTerminated) for e in se)


def test_subscriber_without_auth_refuses_isp_demand():
    sub = PppConnection("subscriber", rng=random.Random(1), auth="none")
    isp = PppConnection("isp", rng=random.Random(2), auth="pap", authenticator=Accounts(), peer_ip_pool="10.0.0.9")
    start(sub, isp)
    pump(sub, isp)
    ie = control(isp.events())
    assert any(isinstance(e, AuthFailed) and "refused" in e.reason for e in ie)


def test_isp_switches_to_pap_when_subscriber_naks_chap():
    sub = PppConnection("subscriber", rng=random.Random(1), auth="pap", username="alice", password="secret")
    isp = PppConnection("isp", rng=random.Random(2), auth="chap", authenticator=Accounts(), peer_ip_pool="10.0.0.9")
    start(sub, isp)
    # The Nak'd CHAP is replaced by PAP within the same exchange: no restart
    # timer is needed (frames behind an LCP-opening frame are decoded with the
    # new ACCM, so the first Authenticate-Request is not lost).
    t = run(sub, isp, 10.0)
    assert t == 0.0
    assert any(isinstance(e, IpcpUp) for e in sub.events())
    assert isp.lcp_policy.got_auth == "pap"


def test_carrier_loss_and_redial():
    sub, isp = make_pair("pap")
    start(sub, isp)
    pump(sub, isp)
    sub.events()
    sub.lower_down(5.0)
    ev = control(sub.events())
    assert any(isinstance(e, LinkTerminated) and e.reason == "carrier lost" for e in ev)
    assert sub.phase == "dead"
    isp.lower_down(5.0)
    isp.events()
    sub.lower_up(10.0)
    isp.lower_up(10.0)
    pump(sub, isp, 10.0)
    assert any(isinstance(e, IpcpUp) for e in sub.events())


def test_echo_keepalive_answered_and_failure_closes():
    sub, isp = make_pair("none", echo_interval=10.0)
    start(sub, isp)
    pump(sub, isp)
    sub.on_timer(10.0)
    pump(sub, isp, 10.0)
    assert sub.counters["echo_replies_received"] == 1
    # the peer goes silent: after echo_failure unanswered requests, close
    t = 10.0
    for _ in range(6):
        t += 10.0
        sub.on_timer(t)
        sub.data_to_send()
    assert sub.phase in ("terminate", "dead")


# -- crafted peers -------------------------------------------------------------------


class RawPeer:
    """A hand-driven peer: decodes what the connection sends into (protocol, code, id, data)."""

    def __init__(self):
        self.dec = HdlcDecoder(accm=0)

    def read(self, conn):
        out = []
        for f in self.dec.receive(conn.data_to_send()):
            proto, off = parse_ppp_header(f)
            p = decode_packet(f[off:])
            out.append((proto,) + (p if p else (None, None, f[off:])))
        return out

    @staticmethod
    def frame(proto, code, ident, data=b""):
        return hdlc_encode(ppp_header(proto) + encode_packet(code, ident, data))


def test_peer_naks_mru_we_adopt_it():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    start(conn)
    ((proto, code, ident, data),) = peer.read(conn)
    assert proto == 0xC021 and code == 1
    conn.receive(peer.frame(0xC021, 3, ident, encode_options([(1, (576).to_bytes(2, "big"))])), 0.1)
    ((_, code2, ident2, data2),) = peer.read(conn)
    assert code2 == 1 and ident2 != ident
    assert (1, (576).to_bytes(2, "big")) in decode_options(data2)


def test_peer_rejects_pfc_we_stop_asking():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    start(conn)
    ((_, _, ident, _),) = peer.read(conn)
    conn.receive(peer.frame(0xC021, 4, ident, encode_options([(7, b"")])), 0.1)
    ((_, code, _, data),) = peer.read(conn)
    types = [t for t, _ in decode_options(data)]
    assert code == 1 and 7 not in types and 8 in types


def test_silent_peer_restart_timer_then_give_up():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none", max_configure=4, restart_timer=2.0)
    peer = RawPeer()
    start(conn)
    sent = len(peer.read(conn))
    t = 0.0
    while conn.next_deadline() is not None:
        t = conn.next_deadline()
        conn.on_timer(t)
        sent += len(peer.read(conn))
    assert sent == 4
    assert t == 8.0
    ev = control(conn.events())
    assert any(isinstance(e, LinkTerminated) and "no response" in e.reason for e in ev)
    assert conn.lcp.state == "Stopped"


def test_dropped_first_requests_then_success():
    sub, isp = make_pair("pap")
    start(sub, isp)
    sub.data_to_send()  # lost on the line
    isp.data_to_send()
    sub.on_timer(sub.next_deadline())
    isp.on_timer(isp.next_deadline())
    pump(sub, isp, 3.0)
    assert any(isinstance(e, IpcpUp) for e in sub.events())


def _open_lcp_with(conn, peer):
    start(conn)
    ((_, _, ident, data),) = peer.read(conn)
    conn.receive(peer.frame(0xC021, 2, ident, data), 0.0)  # Ack theirs
    conn.receive(peer.frame(0xC021, 1, 0x55, b""), 0.0)  # ours: no options
    peer.read(conn)
    assert conn.lcp.state == "Opened"


def test_unknown_protocol_gets_protocol_reject():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    _open_lcp_with(conn, peer)
    conn.receive(hdlc_encode(ppp_header(0x80FD) + b"\x01\x01\x00\x04"), 0.0)  # CCP
    out = [p for p in peer.read(conn) if p[1] == 8]
    assert out and out[0][3][:2] == b"\x80\xfd" and out[0][3][2:] == b"\x01\x01\x00\x04"


def test_unknown_code_gets_code_reject():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    _open_lcp_with(conn, peer)
    conn.receive(peer.frame(0xC021, 42, 9, b"zz"), 0.0)
    ((_, code, _, data),) = [p for p in peer.read(conn) if p[0] == 0xC021]
    assert code == 7 and data == encode_packet(42, 9, b"zz")
    assert conn.lcp.state == "Opened"


def test_echo_request_answered_with_magic():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    _open_lcp_with(conn, peer)
    conn.receive(peer.frame(0xC021, 9, 4, b"\x00\x00\x00\x00hi"), 0.0)
    ((_, code, ident, data),) = [p for p in peer.read(conn) if p[0] == 0xC021]
    assert (code, ident) == (10, 4)
    assert int.from_bytes(data[:4], "big") == conn.lcp_policy.magic and data[4:] == b"hi"


def test_same_magic_is_naked_with_a_new_one():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    start(conn)
    peer.read(conn)
    mine = conn.lcp_policy.magic.to_bytes(4, "big")
    conn.receive(peer.frame(0xC021, 1, 7, encode_options([(5, mine)])), 0.0)
    ((_, code, ident, data),) = peer.read(conn)
    assert (code, ident) == (3, 7)
    ((t, v),) = decode_options(data)
    assert t == 5 and v != mine and v != b"\x00\x00\x00\x00"


def test_looped_back_line_is_detected():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    start(conn)
    t = 0.0
    for _ in range(200):
        out = conn.data_to_send()
        if out:
            conn.receive(out, t)
            continue
        d = conn.next_deadline()
        if d is None:
            break
        t = d
        conn.on_timer(t)
    ev = control(conn.events())
    assert any(isinstance(e, LinkTerminated) and e.reason == "looped back" for e in ev)
    assert not any(isinstance(e, LcpUp) for e in ev)


def test_garbage_frames_never_raise():
    conn = PppConnection("isp", rng=random.Random(3), auth="chap", authenticator=Accounts())
    peer = RawPeer()
    _open_lcp_with(conn, peer)
    rnd = random.Random(5)
    for _ in range(300):
        proto = rnd.choice([0xC021, 0x8021, 0xC023, 0xC223, 0x0021, 0x002D, 0x002F, 0x1234])
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(12)))
        conn.receive(hdlc_encode(ppp_header(proto) + body), 0.0)
        conn.data_to_send()
    assert conn.counters["lcp_malformed"] > 0
