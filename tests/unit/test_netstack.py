"""The host stack: IPv4 checks, ICMP echo and unreachables, TCP demux, RST for closed
ports, and the property that any byte streams cross a lossy, reordering,
duplicating path intact and both ends close."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialsim.proto import icmp
from dialsim.proto.events import NetworkEvent
from dialsim.proto.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, build_packet, parse_packet
from dialsim.proto.machine import Machine
from dialsim.proto.netstack import ConnectionAccepted, EchoReplyReceived, NetStack
from dialsim.proto.tcp import (
    Closed,
    Connected,
    ConnectionReset,
    DataReceived,
    PeerClosed,
    TcpConnection,
)
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


def exchange(lp, data_a: bytes, data_b: bytes, limit: float = 4000.0, read_every: float = 0.0):
    """A connects to B:110; each side sends its data and closes; returns what arrived.

    ``read_every``: the applications take their connection's events only that
    often (0: whenever anything happens), so undelivered data fills the
    receive window.
    """
    lp.b.listen(110)
    got = {"a": bytearray(), "b": bytearray()}
    evs = {"a": [], "b": []}
    ca = lp.a.connect("10.0.0.2", 110, 0.0)
    conns = {"a": ca}
    next_read = {"a": 0.0, "b": 0.0}

    def take(name, c):
        for ev in c.events():
            evs[name].append(type(ev))
            if isinstance(ev, DataReceived):
                got[name] += ev.data
            elif isinstance(ev, Connected) and name == "a":
                c.send(data_a)
                c.close()

    def wake(now):
        for ev in lp.b.events():
            conns["b"] = ev.conn
            ev.conn.send(data_b)
            ev.conn.close()
        for name, c in list(conns.items()):
            if now >= next_read[name]:
                next_read[name] = now + read_every
                take(name, c)

    def app_deadline():
        ds = [next_read[n] for n, c in conns.items() if read_every and c.state != "CLOSED"]
        return min(ds) if ds else None

    lp.on_wake = wake
    lp.app_deadline = app_deadline
    lp.run(limit=limit)
    for name, c in conns.items():
        take(name, c)  # what the applications had not read yet
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


def same_stream(got: bytes, sent: bytes) -> str:
    """'' if ``got`` is ``sent``; otherwise where they part (without dumping 64 KiB)."""
    if got == sent:
        return ""
    at = next((i for i, (x, y) in enumerate(zip(got, sent, strict=False)) if x != y), min(len(got), len(sent)))
    return f"{len(got)} of {len(sent)} octets arrived, first difference at octet {at}"


# Streams of up to 96 KiB each way (more than a 64 KiB window's worth at every
# MTU; half the examples carry 48 KiB or more): hypothesis draws the sizes, the
# octets come from a seed, so that any octet delivered twice, lost or out of
# place shows.  Every packet may be lost, duplicated or overtaken, at drawn
# rates; the applications may read late, so that windows close.
stream_sizes = st.one_of(st.integers(0, 4096), st.integers(48 * 1024, 96 * 1024))


@given(
    size_a=stream_sizes,
    size_b=stream_sizes,
    drop=st.floats(0.0, 0.25),
    dup=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.3),
    mtu=st.sampled_from([296, 576, 1006, 1500]),
    rcv_buffer=st.sampled_from([2048, 16384, 65535]),
    read_every=st.sampled_from([0.0, 0.0, 0.7, 3.0]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_streams_cross_a_lossy_path_intact(
    size_a, size_b, drop, dup, reorder, mtu, rcv_buffer, read_every, seed
):
    rng = random.Random(seed)
    data_a, data_b = rng.randbytes(size_a), rng.randbytes(size_b)
    lp = pair(
        seed,
        mtu=mtu,
        tcp_options={"max_retries": 30, "max_syn_retries": 30, "rcv_buffer": rcv_buffer},
        imp=Impairments(drop_rate=drop, duplicate_rate=dup, reorder_rate=reorder, seed=seed),
    )
    got, evs, conns = exchange(lp, data_a, data_b, limit=50_000.0, read_every=read_every)
    assert not same_stream(bytes(got["b"]), data_a), same_stream(bytes(got["b"]), data_a)
    assert not same_stream(bytes(got["a"]), data_b), same_stream(bytes(got["a"]), data_b)
    for name in "ab":
        assert PeerClosed in evs[name] and Closed in evs[name], evs[name]
        assert ConnectionReset not in evs[name]
        assert conns[name].state == "CLOSED"


@given(
    size=st.integers(0, 64 * 1024),
    drop=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.3),
    mtu=st.sampled_from([296, 1500]),
    read_every=st.sampled_from([0.0, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_header_prediction_changes_nothing_on_the_wire(size, drop, reorder, mtu, read_every, seed):
    """The same lossy exchange with and without header prediction: the same
    packets at the same times, and the same data."""

    def run():
        rng = random.Random(seed)
        data_a, data_b = rng.randbytes(size), rng.randbytes(size // 3)
        lp = pair(seed, mtu=mtu, imp=Impairments(drop_rate=drop, reorder_rate=reorder, seed=seed),
                  tcp_options={"max_retries": 30, "max_syn_retries": 30})
        got, _evs, conns = exchange(lp, data_a, data_b, limit=50_000.0, read_every=read_every)
        predicted = sum(c.counters["predicted_segments"] for c in conns.values())
        return lp.log, bytes(got["a"]), bytes(got["b"]), predicted

    log, got_a, got_b, predicted = run()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(TcpConnection, "_predicted", lambda self, seg, now: False)
        assert run()[:3] == (log, got_a, got_b)
    assert predicted or size < 16 * 1024  # a bulk transfer does take the prediction


def test_stack_and_connection_have_the_machine_shape():
    s = stack()
    assert isinstance(s, Machine)
    assert isinstance(s.connect(PEER, 110, 0.0), Machine)
    assert isinstance(EchoReplyReceived("x", 1, 1, b""), NetworkEvent)
    assert issubclass(ConnectionAccepted, NetworkEvent)
