"""The host stack: IPv4 checks, ICMP echo and unreachables, TCP demux, RST for closed
ports, and the property that any byte streams cross a lossy, reordering,
duplicating path intact and both ends close."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialsim.proto import icmp
from dialsim.proto.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, build_packet, parse_packet
from dialsim.proto.netstack import ConnectionAccepted, EchoReplyReceived, NetStack
from dialsim.proto.tcp import Closed, Connected, ConnectionReset, DataReceived, PeerClosed
from dialsim.proto.tcp_segment import ACK, RST, SYN, build_segment, parse_segment

from .netloop import Impairments, pair

HOST, PEER = "10.0.0.2", "10.0.0.1"


def stack(**kw):
    return NetStack(HOST, rng=random.Random(7), **kw)


def only_packet(s, now=0.0):
    (p,) = s.output(now)
    return parse_packet(p)


def test_echo_request_is_answered():
    s = stack()
    s.receive(build_packet(PEER, HOST, PROTO_ICMP, icmp.build_echo_request(9, 3, b"abc")), 0.0)
    p = only_packet(s)
    assert (p.src, p.dst, p.protocol, p.ttl) == (HOST, PEER, PROTO_ICMP, 64)
    m = icmp.parse_icmp(p.payload)
    assert (m.type, m.ident, m.seq, m.data) == (icmp.ICMP_ECHO_REPLY, 9, 3, b"abc")
    assert s.counters["icmp_echo_replies_sent"] == 1


def test_ping_and_reply_event():
    lp = pair()
    lp.a.ping("10.0.0.2", 1, 1, b"hi")
    lp.run(limit=5)
    assert lp.a.events() == [EchoReplyReceived("10.0.0.2", 1, 1, b"hi")]


def test_bad_and_foreign_packets_are_counted_and_dropped():
    s = stack()
    good = build_packet(PEER, HOST, PROTO_ICMP, icmp.build_echo_request(1, 1))
    bad = bytearray(good)
    bad[8] ^= 1  # TTL changed, checksum not
    s.receive(bytes(bad), 0.0)
    s.receive(b"\x45\x00", 0.0)
    s.receive(build_packet(PEER, "10.9.9.9", PROTO_ICMP, icmp.build_echo_request(1, 1)), 0.0)
    frag = bytearray(good)
    frag[6] = 0x20  # MF
    frag[10:12] = b"\x00\x00"
    from dialsim.proto.ipv4 import internet_checksum

    frag[10:12] = internet_checksum(bytes(frag[:20])).to_bytes(2, "big")
    s.receive(bytes(frag), 0.0)
    c = s.counters
    assert (c["ip_bad_checksum"], c["ip_bad_header"], c["ip_not_for_us"], c["ip_fragments_dropped"]) == (1, 1, 1, 1)
    assert s.output(0.0) == []


def test_udp_and_unknown_protocol_get_unreachables():
    s = stack()
    udp = build_packet(PEER, HOST, PROTO_UDP, b"\x00\x35\x00\x35\x00\x0c\x00\x00data")
    s.receive(udp, 0.0)
    m = icmp.parse_icmp(only_packet(s).payload)
    assert (m.type, m.code) == (3, icmp.CODE_PORT_UNREACHABLE) and m.data == udp[:28]
    s.receive(build_packet(PEER, HOST, 47, b"gre!gre!gre!"), 0.0)
    m = icmp.parse_icmp(only_packet(s).payload)
    assert (m.type, m.code) == (3, icmp.CODE_PROTOCOL_UNREACHABLE)


def test_closed_port_gets_rst():
    s = stack()
    syn = build_segment(PEER, HOST, 40000, 25, 1000, 0, SYN, 8192, mss=536)
    s.receive(build_packet(PEER, HOST, PROTO_TCP, syn), 0.0)
    r = parse_segment(only_packet(s).payload)
    assert (r.flags, r.seq, r.ack, r.src_port, r.dst_port) == (RST | ACK, 0, 1001, 25, 40000)
    ack = build_segment(PEER, HOST, 40000, 25, 1000, 5555, ACK, 8192, b"xx")
    s.receive(build_packet(PEER, HOST, PROTO_TCP, ack), 0.0)
    r = parse_segment(only_packet(s).payload)
    assert (r.flags, r.seq) == (RST, 5555)
    # no RST for a RST, nor for a segment with a bad checksum
    s.receive(build_packet(PEER, HOST, PROTO_TCP, build_segment(PEER, HOST, 1, 25, 1, 0, RST, 0)), 0.0)
    bad = bytearray(syn)
    bad[-1] ^= 1
    s.receive(build_packet(PEER, HOST, PROTO_TCP, bytes(bad)), 0.0)
    assert s.output(0.0) == []
    assert s.counters["tcp_rst_sent"] == 2 and s.counters["tcp_bad_segments"] == 1


def test_connect_to_closed_port_is_reset():
    lp = pair()
    conn = lp.a.connect("10.0.0.2", 4242, 0.0)
    lp.run(limit=5)
    assert conn.state == "CLOSED" and [type(e) for e in conn.events()] == [ConnectionReset]
    assert lp.a.connections == {}


def test_listen_accept_mss_ident_and_reap():
    lp = pair(mtu=576)
    lp.b.listen(110)
    conn = lp.a.connect("10.0.0.2", 110, 0.0)
    assert 49152 <= conn.local_port <= 65535 and conn.mss == 536
    lp.step()
    lp.step()
    (ev,) = lp.b.events()
    assert isinstance(ev, ConnectionAccepted) and ev.conn.local_port == 110
    srv = ev.conn
    lp.run_until(lambda: srv.state == "ESTABLISHED")
    idents = [parse_packet(p).ident for t, who, p in lp.log if who == "a"]
    assert idents == [(idents[0] + i) & 0xFFFF for i in range(len(idents))]
    conn.close()
    srv.close()
    lp.run()
    assert lp.a.connections == {} and lp.b.connections == {}
    assert lp.a.counters["tcp_connections_reaped"] == 1


def test_address_can_be_assigned_later():
    s = NetStack("0.0.0.0", rng=random.Random(1))
    s.address = HOST
    s.receive(build_packet(PEER, HOST, PROTO_ICMP, icmp.build_echo_request(1, 1)), 0.0)
    assert only_packet(s).src == HOST


def exchange(lp, data_a: bytes, data_b: bytes, limit: float = 4000.0):
    """A connects to B:110; each side sends its data and closes; returns what arrived."""
    lp.b.listen(110)
    got = {"a": bytearray(), "b": bytearray()}
    evs = {"a": [], "b": []}
    ca = lp.a.connect("10.0.0.2", 110, 0.0)
    conns = {"a": ca}

    def wake(now):
        for ev in lp.b.events():
            conns["b"] = ev.conn
            ev.conn.send(data_b)
            ev.conn.close()
        for name, c in list(conns.items()):
            for ev in c.events():
                evs[name].append(type(ev))
                if isinstance(ev, DataReceived):
                    got[name] += ev.data
                elif isinstance(ev, Connected) and name == "a":
                    c.send(data_a)
                    c.close()

    lp.on_wake = wake
    lp.run(limit=limit)
    return got, evs, conns


def test_two_stacks_exchange_and_close():
    lp = pair()
    data_a, data_b = bytes(range(256)) * 40, b"+OK " * 3000
    got, evs, conns = exchange(lp, data_a, data_b)
    assert got["b"] == data_a and got["a"] == data_b
    for name in "ab":
        assert evs[name][0] is Connected and evs[name][-1] is Closed and PeerClosed in evs[name]
        assert conns[name].state == "CLOSED"
    assert lp.a.connections == {} and lp.b.connections == {}


# Streams up to 64 KiB: small ones as drawn, large ones as a drawn block repeated.
streams = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda b, n: (b * n)[:65536], st.binary(min_size=1, max_size=512), st.integers(1, 512)),
)


@given(
    data_a=streams,
    data_b=streams,
    drop=st.frozensets(st.integers(0, 150), max_size=30),
    dup=st.frozensets(st.integers(0, 150), max_size=20),
    reorder=st.frozensets(st.integers(0, 150), max_size=20),
    mtu=st.sampled_from([296, 576, 1006, 1500]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_streams_cross_a_lossy_path_intact(data_a, data_b, drop, dup, reorder, mtu, seed):
    lp = pair(
        seed,
        mtu=mtu,
        tcp_options={"max_retries": 30, "max_syn_retries": 30},
        imp=Impairments(drop=drop, duplicate=dup, reorder=reorder),
    )
    got, evs, conns = exchange(lp, data_a, data_b)
    assert bytes(got["b"]) == data_a
    assert bytes(got["a"]) == data_b
    for name in "ab":
        assert PeerClosed in evs[name] and Closed in evs[name], evs[name]
        assert ConnectionReset not in evs[name]
        assert conns[name].state == "CLOSED"
