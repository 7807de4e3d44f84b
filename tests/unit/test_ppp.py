"""PPP link end: RFC 1661 automaton table, LCP/PAP/CHAP/IPCP between two ends, crafted peers."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from dialsim.proto.events import FrameReceived, FrameSent, IpPacketReceived, LinkEvent
from dialsim.proto.hdlc import HdlcDecoder, hdlc_encode, parse_ppp_header, ppp_header
from dialsim.proto.ppp import (
    AuthFailed,
    AuthSucceeded,
    IpcpUp,
    LcpUp,
    LinkTerminated,
    PppConnection,
)
from dialsim.proto.ppp_fsm import (
    TIMER_STATES,
    TRANSITIONS,
    Action,
    FsmEvent,
    LayerAction,
    NegotiationAutomaton,
    PacketToSend,
    State,
    ThisLayerDown,
    ThisLayerFinished,
    ThisLayerStarted,
    ThisLayerUp,
    decode_options,
    decode_packet,
    encode_options,
    encode_packet,
)
from dialsim.proto.ppp_lcp import LcpPolicy

STATES = list(State)
EVENTS = list(FsmEvent)


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
        x, y = a.output(now), b.output(now)
        if not x and not y:
            return
        for frame in x:
            b.receive(frame, now)
        for frame in y:
            a.receive(frame, now)


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
    out = [e for e in events if not isinstance(e, FrameSent | FrameReceived | IpPacketReceived)]
    assert all(isinstance(e, LinkEvent) for e in out)
    return out


# -- the automaton table ----------------------------------------------------------

# RFC 1661 section 4.1, copied as the RFC prints it (the oracle for the tests:
# the module's table is written out separately).  "-" cannot happen; the
# r/p/x annotations are dropped by the parser.
RFC1661_TABLE = """
      | Initial   Starting  Closed    Stopped   Closing   Stopping
 Up   |    2     irc,scr/6     -         -         -         -
 Down |    -         -         0       tls/1       0         1
 Open |  tls/1       1     irc,scr/6     3r        5r        5r
 Close|    0       tlf/0       2         2         4         4
  TO+ |    -         -         -         -       str/4     str/5
  TO- |    -         -         -         -       tlf/2     tlf/3
 RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5
 RCR- |    -         -       sta/2 irc,scr,scn/6   4         5
 RCA  |    -         -       sta/2     sta/3       4         5
 RCN  |    -         -       sta/2     sta/3       4         5
 RTR  |    -         -       sta/2     sta/3     sta/4     sta/5
 RTA  |    -         -         2         3       tlf/2     tlf/3
 RUC  |    -         -       scj/2     scj/3     scj/4     scj/5
 RXJ+ |    -         -         2         3         4         5
 RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3
 RXR  |    -         -         2         3         4         5

      | Req-Sent  Ack-Rcvd  Ack-Sent    Opened
 Up   |    -         -         -           -
 Down |    1         1         1         tld/1
 Open |    6         7         8           9r
 Close|irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
  TO+ |  scr/6     scr/6     scr/8         -
  TO- |  tlf/3p    tlf/3p    tlf/3p        -
 RCR+ |  sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |  scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |  irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
 RTR  |  sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    6         6         8       tld,scr/6
 RUC  |  scj/6     scj/7     scj/8       scj/9
 RXJ+ |    6         6         8           9
 RXJ- |  tlf/3     tlf/3     tlf/3   tld,irc,str/5
 RXR  |    6         7         8       ser/9
"""


def _parse_rfc_table(text):
    """{state name: {event name: (actions, next state name) | None}} from the figure."""
    order = [s.value for s in State]
    table = {s: {} for s in order}
    columns: list[str] = []
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        left, _, right = line.partition("|")
        cells = right.split()
        if not left.strip():
            columns = cells
            continue
        for state, cell in zip(columns, cells, strict=True):
            if cell == "-":
                table[state][left.strip()] = None
                continue
            acts, _, nxt = cell.rpartition("/")
            table[state][left.strip()] = (tuple(a for a in acts.split(",") if a), order[int(nxt.rstrip("rpx"))])
    return table


RFC = _parse_rfc_table(RFC1661_TABLE)


def test_table_is_the_rfc_table():
    assert set(TRANSITIONS) == set(STATES) and len(STATES) == 10
    for s in STATES:
        assert set(TRANSITIONS[s]) == set(EVENTS) and len(EVENTS) == 16
        for e in EVENTS:
            cell = TRANSITIONS[s][e]
            assert cell == RFC[s.value][e.value], (s, e)
            if cell is not None:
                assert isinstance(cell[1], State) and all(isinstance(a, Action) for a in cell[0])


def test_some_rfc_cells():
    assert TRANSITIONS[State.INITIAL][FsmEvent.UP] == ((), State.CLOSED)
    assert TRANSITIONS["Starting"]["Up"] == (("irc", "scr"), "Req-Sent")
    assert TRANSITIONS["Ack-Rcvd"]["RCR+"] == (("sca", "tlu"), "Opened")
    assert TRANSITIONS["Opened"]["RTR"] == (("tld", "zrc", "sta"), "Stopping")
    assert TRANSITIONS["Stopped"]["RCR-"] == (("irc", "scr", "scn"), "Req-Sent")
    assert TRANSITIONS["Req-Sent"]["TO-"] == (("tlf",), "Stopped")
    assert TRANSITIONS["Opened"]["Up"] is None


# the action that sends each code (scn sends a Nak or a Reject)
_SENT_BY = {1: "scr", 2: "sca", 3: "scn", 4: "scn", 5: "str", 6: "sta", 7: "scj", 10: "ser"}
_LAYER = {ThisLayerUp: "tlu", ThisLayerDown: "tld", ThisLayerStarted: "tls", ThisLayerFinished: "tlf"}


def _observed(outputs):
    """The actions an automaton's outputs show: layer actions by class, packets by code."""
    seen = []
    for out in outputs:
        if isinstance(out, PacketToSend):
            seen.append(_SENT_BY[out.packet[0]])
        elif isinstance(out, LayerAction):
            seen.append(_LAYER[type(out)])
    return seen


def _automaton(**kw):
    return NegotiationAutomaton("t", LcpPolicy(random.Random(0)), rng=random.Random(0), **kw)


def _check_step(a, before, ev, outputs, count_before):
    """One applied event against the RFC: next state, visible actions, counter."""
    cell = RFC[before.value][ev.value]
    if cell is None:
        assert a.state == before and outputs == []
        return
    actions, nxt = cell
    assert a.state == nxt
    # ser only answers an Echo-Request; driven directly, RXR carries none
    assert _observed(outputs) == [x for x in actions if x not in ("irc", "zrc", "ser")]
    for out in outputs:
        if isinstance(out, LayerAction):
            assert (out.cause, out.previous) == (ev, before)
    if "zrc" in actions:
        assert a.restart_count == 0
    elif "irc" in actions:
        sent = ("scr" in actions) + ("str" in actions)
        assert a.restart_count == (a.max_terminate if "str" in actions else a.max_configure) - sent
    else:
        assert a.restart_count == count_before - ("scr" in actions) - ("str" in actions)


# a way into each state through real events
PATHS = {
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


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(list(PATHS.values())), st.sampled_from(EVENTS), st.lists(st.sampled_from(EVENTS), max_size=60))
def test_any_event_sequence_follows_the_rfc_table(path, first, events):
    """Arbitrary events, applied directly from any state: every step is the RFC's
    cell (next state, actions, restart counter, timer), nothing raises."""
    a = _automaton()
    layer = []
    for i, ev in enumerate([FsmEvent(p) for p in path] + [first] + events):
        before, count = a.state, a.restart_count
        illegal = a.counters["illegal_events"]
        a.event(ev, float(i))
        outputs = a.events()
        _check_step(a, before, ev, outputs, count)
        assert a.counters["illegal_events"] == illegal + (RFC[before.value][ev.value] is None)
        if a.state not in TIMER_STATES:
            assert a.next_deadline() is None
        elif {"scr", "str"} & set(_observed(outputs)):
            assert a.next_deadline() == float(i) + a.restart_timer
        for out in outputs:
            if isinstance(out, PacketToSend):
                assert decode_packet(out.packet) is not None
            if isinstance(out, ThisLayerUp | ThisLayerDown):
                layer.append(type(out))
    # this-layer-up and -down alternate, starting with up
    assert layer == [ThisLayerUp, ThisLayerDown] * (len(layer) // 2) + [ThisLayerUp] * (len(layer) % 2)


_PEER_PACKETS = [
    encode_packet(1, 7, b""),  # Configure-Request, no options: acceptable (RCR+)
    encode_packet(1, 8, encode_options([(1, b"\x00\x10")])),  # MRU 16: Nak'd (RCR-)
    encode_packet(1, 9, encode_options([(99, b"")])),  # unknown option: Rejected (RCR-)
    encode_packet(5, 3, b"bye"),  # Terminate-Request (RTR)
    encode_packet(6, 3, b""),  # Terminate-Ack (RTA)
    encode_packet(7, 4, encode_packet(1, 1, b"")),  # Code-Reject of Configure-Request (RXJ-)
    encode_packet(7, 4, encode_packet(12, 1, b"")),  # Code-Reject of code 12 (RXJ+)
    encode_packet(8, 5, b"\xc0\x21"),  # Protocol-Reject of LCP (RXJ-)
    encode_packet(8, 5, b"\x80\x21"),  # Protocol-Reject of IPCP (RXJ+)
    encode_packet(9, 6, b"\x00\x00\x00\x00hi"),  # Echo-Request (RXR)
    encode_packet(10, 6, b"\x00\x00\x00\x00"),  # Echo-Reply (RXR)
    encode_packet(42, 1, b"zz"),  # unknown code (RUC)
    b"\x01\x02",  # malformed
    encode_packet(1, 10, b"\x01"),  # bad option list: malformed
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(["up", "down", "open", "close", "timer", "ack", "nak", "reject"]),
    st.sampled_from(_PEER_PACKETS),
    st.binary(max_size=12),
), max_size=50))  # fmt: skip
def test_any_input_sequence_never_raises_and_moves_by_the_table(inputs):
    """Lower-layer and administrative events, timers, replies to our own requests,
    crafted and random packets: every transition taken is one of the RFC's cells."""
    a = _automaton(extended=True, protocol=0xC021)
    t = 0.0
    request = None  # our last Configure-Request, as sent
    for x in inputs:
        t += 0.5
        n = len(a.transitions)
        if isinstance(x, bytes):
            a.receive(x, t)
        elif x == "timer":
            t = a.next_deadline() or t
            a.on_timer(t)
        elif x in ("ack", "nak", "reject"):
            if request is not None:
                a.receive(_reply_to(request, x), t)
        else:
            getattr(a, x)(t)
        outputs = a.events()
        assert len(a.transitions) - n <= 1  # one event per input
        for prev, ev, nxt in a.transitions[n:]:
            cell = RFC[prev.value][ev.value]
            assert cell is not None and cell[1] == nxt
            shown = [y for y in cell[0] if y not in ("irc", "zrc")]
            got = _observed(outputs)
            if "ser" in shown:  # an Echo-Reply only answers an Echo-Request
                shown.remove("ser")
                got = [y for y in got if y != "ser"]
            assert got == shown
        for out in outputs:
            if isinstance(out, PacketToSend):
                assert decode_packet(out.packet) is not None
                if out.packet[0] == 1:
                    request = out.packet


def _reply_to(request, kind):
    """The peer's Configure-Ack (same options), -Nak (MRU 576) or -Reject (all) of ``request``."""
    _code, ident, options = decode_packet(request)
    code = {"ack": 2, "nak": 3, "reject": 4}[kind]
    return encode_packet(code, ident, options if kind != "nak" else encode_options([(1, b"\x02\x40")]))


def test_every_state_event_pair():
    """Reach every state through real events, then apply every event once."""
    assert set(PATHS) == {s.value for s in STATES}
    for state, path in PATHS.items():
        for ev in EVENTS:
            a = _automaton()
            for p in path:
                a.event(p, 0.0)
            if state == "Stopped":
                a.restart_count = 0
            assert a.state == state
            a.events()
            count = a.restart_count
            a.event(ev, 1.0)
            _check_step(a, State(state), ev, a.events(), count)
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
    (wire,) = sub.output(0.0)
    assert ev.wire_octets == len(wire)
    assert ev.header_octets + len(ev.frame) + ev.fcs_octets + ev.escape_octets + ev.flag_octets == len(wire)


def test_send_ip_before_network_is_dropped():
    sub, _ = make_pair()
    sub.send_ip(_tcp(1, b"x"), 0.0)
    assert sub.counters["ip_dropped_not_up"] == 1
    assert sub.output(0.0) == []


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
        sub.output(t)
    assert sub.phase in ("terminate", "dead")


# -- crafted peers -------------------------------------------------------------------


class RawPeer:
    """A hand-driven peer: decodes what the connection sends into (protocol, code, id, data)."""

    def __init__(self):
        self.dec = HdlcDecoder(accm=0)

    def read(self, conn):
        out = []
        for f in self.dec.receive(b"".join(conn.output(0.0))):
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
    sub.output(0.0)  # lost on the line
    isp.output(0.0)
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
        out = conn.output(t)
        if out:
            conn.receive(b"".join(out), t)
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
        conn.output(0.0)
    assert conn.counters["lcp_malformed"] > 0


# -- RFC 1570 FCS-Alternatives: the 32-bit FCS ----------------------------------------


def _fcs_of(events, kind, cls=FrameSent | FrameReceived):
    return {e.fcs_octets for e in events if isinstance(e, cls) and e.kind == kind}


def test_fcs32_negotiated_between_two_ends():
    sub, isp = make_pair("pap", fcs32=True)
    start(sub, isp)
    pump(sub, isp)
    assert sub.phase == isp.phase == "network"
    assert sub.fcs_size == isp.fcs_size == 32
    assert sub.lcp_policy.got_fcs == sub.lcp_policy.peer_fcs == 32
    se = sub.events()
    assert any(isinstance(e, IpcpUp) for e in se)
    # LCP negotiates with the default FCS; everything after LCP opened uses 32 bits
    first_lcp = next(e for e in se if isinstance(e, FrameSent) and e.kind == "lcp")
    assert first_lcp.fcs_octets == 2
    assert _fcs_of(se, "pap") == {4} and _fcs_of(se, "ipcp") == {4}
    isp.events()
    pkts = [_tcp(1000 + 10 * i, b"0123456789") for i in range(3)]
    for p in pkts:
        sub.send_ip(p, 1.0)
    wire = sub.output(1.0)
    # the frames on the line really end in a 32-bit FCS
    assert HdlcDecoder(accm=0, fcs_size=32).receive(b"".join(wire)) != []
    assert HdlcDecoder(accm=0).receive(b"".join(wire)) == []
    for w in wire:
        isp.receive(w, 1.0)
    ie = isp.events()
    assert [e.packet for e in ie if isinstance(e, IpPacketReceived)] == pkts
    assert _fcs_of(ie, "compressed_tcp") == {4}
    # closing still works: each LCP goes back to 16 bits before its Terminate packets
    sub.close(2.0)
    pump(sub, isp, 2.0)
    run(sub, isp, 20.0)
    assert any(isinstance(e, LinkTerminated) for e in sub.events())
    assert any(isinstance(e, LinkTerminated) for e in isp.events())
    assert sub.counters["bad_fcs"] == isp.counters["bad_fcs"] == 0
    assert isp.counters["lcp_fcs16_accepted"] == 1  # the Terminate-Request
    assert sub.fcs_size == isp.fcs_size == 16


def test_fcs32_asked_by_one_end_only_applies_to_what_it_receives():
    sub = PppConnection("subscriber", rng=random.Random(1), auth="none", fcs32=True)
    isp = PppConnection("isp", rng=random.Random(2), auth="none", peer_ip_pool="10.0.0.9")
    start(sub, isp)
    pump(sub, isp)
    assert sub.phase == isp.phase == "network"
    assert (sub.fcs_size, isp.fcs_size) == (16, 32)  # the ISP sends what the subscriber asked for
    ie, se = isp.events(), sub.events()
    assert _fcs_of(ie, "ipcp", FrameSent) == {4} == _fcs_of(se, "ipcp", FrameReceived)
    assert _fcs_of(se, "ipcp", FrameSent) == {2} == _fcs_of(ie, "ipcp", FrameReceived)
    assert sub.counters["bad_fcs"] == isp.counters["bad_fcs"] == 0


def test_fcs32_off_by_default_and_a_rejecting_peer_keeps_16_bits():
    sub, isp = make_pair("none")
    start(sub, isp)
    pump(sub, isp)
    assert sub.fcs_size == isp.fcs_size == 16
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none", fcs32=True)
    peer = RawPeer()
    start(conn)
    ((_, code, ident, data),) = peer.read(conn)
    assert (9, b"\x04") in decode_options(data)  # FCS-Alternatives: CCITT 32-bit
    conn.receive(peer.frame(0xC021, 4, ident, encode_options([(9, b"\x04")])), 0.1)
    ((_, code, _, data),) = peer.read(conn)
    assert code == 1 and 9 not in [t for t, _ in decode_options(data)]


def test_fcs_alternatives_from_a_peer():
    conn = PppConnection("subscriber", rng=random.Random(3), auth="none")
    peer = RawPeer()
    start(conn)
    peer.read(conn)
    conn.receive(peer.frame(0xC021, 1, 7, encode_options([(9, b"\x01")])), 0.0)  # Null FCS only
    ((_, code, ident, data),) = peer.read(conn)
    assert (code, ident) == (3, 7) and decode_options(data) == [(9, b"\x06")]  # Nak: 16 or 32
    conn.receive(peer.frame(0xC021, 1, 8, encode_options([(9, b"\x06")])), 0.0)
    ((_, code, ident, _),) = peer.read(conn)
    assert (code, ident) == (2, 8)
    assert conn.lcp_policy.peer_fcs == 32
    conn.receive(peer.frame(0xC021, 1, 9, encode_options([(9, b"\x01\x02")])), 0.0)  # bad length
    ((_, code, _, data),) = peer.read(conn)
    assert code == 4 and decode_options(data) == [(9, b"\x01\x02")]
