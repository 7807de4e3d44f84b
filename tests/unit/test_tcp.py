"""TCP connection machine (RFC 9293, RFC 6298, RFC 5681, RFC 1122), segment by segment.

Two TcpConnection objects are joined by hand: each test decides which segments
reach the other side and when (a fake clock advanced with on_timer(next_deadline())).
"""

import copy

import pytest

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import ConnectionEvent
from dialsim.proto.machine import Machine
from dialsim.proto.tcp import (
    Closed,
    Connected,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    PeerClosed,
    TcpConnection,
)
from dialsim.proto.tcp_segment import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    build_segment,
    parse_segment,
    seq_add,
    seq_diff,
    seq_lt,
    tcp_checksum,
)

A, B = "10.0.0.1", "10.0.0.2"


def conn_pair(a_kw=None, b_kw=None, *, a_iss=1000, b_iss=0xFFFFFF00):
    a = TcpConnection(A, 40000, B, 110, iss=a_iss, **(a_kw or {}))
    b = TcpConnection(B, 110, A, 40000, iss=b_iss, **(b_kw or {}))
    return a, b


def names(conn):
    return [type(e).__name__ for e in conn.events()]


def data_of(events):
    return b"".join(e.data for e in events if isinstance(e, DataReceived))


def xfer(src, dst, now, keep=None):
    """Move src's segments to dst (``keep(i, seg)`` can drop some); return the segments."""
    segs = src.output(now)
    for i, s in enumerate(segs):
        if keep is None or keep(i, s):
            dst.receive(s, now)
    return segs


def handshake(a, b, now=0.0, rtt=0.0):
    a.connect(now)
    b.listen()
    xfer(a, b, now)
    xfer(b, a, now + rtt)
    xfer(a, b, now + rtt)
    assert a.state == b.state == "ESTABLISHED"
    assert names(a) == ["Connected"] and names(b) == ["Connected"]


def converse(a, b, now, rounds=50):
    """Exchange until quiet at time ``now`` (timers not fired)."""
    for _ in range(rounds):
        if not xfer(a, b, now) and not xfer(b, a, now):
            return


def settle(a, b, now, until=1000.0):
    """Exchange and fire timers until both are quiet; return the time reached."""
    while True:
        converse(a, b, now)
        ds = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
        if not ds or min(ds) > until:
            return now
        now = max(now, min(ds))
        for c in (a, b):
            d = c.next_deadline()
            if d is not None and d <= now:
                c.on_timer(now)


# ---------------------------------------------------------------- segments


def test_segment_build_parse_and_checksum():
    seg = build_segment(A, B, 1234, 80, 0xFFFFFFFF, 5, SYN | ACK, 8192, b"", mss=1460)
    assert len(seg) == 24 and seg[12] >> 4 == 6
    assert tcp_checksum(A, B, seg) == 0
    p = parse_segment(seg)
    assert (p.src_port, p.dst_port, p.seq, p.ack, p.flags, p.window, p.mss) == (
        1234, 80, 0xFFFFFFFF, 5, SYN | ACK, 8192, 1460)
    assert p.seg_len == 1
    # Options: NOP, NOP, a window-scale option we ignore, then MSS.
    raw = bytearray(build_segment(A, B, 1, 2, 3, 4, SYN, 100, b"xy"))
    opts = b"\x01\x01\x03\x03\x07\x02\x04\x02\x18\x00\x00\x00"
    raw = raw[:12] + bytes([(20 + len(opts)) // 4 << 4]) + raw[13:20] + opts + raw[20:]
    p = parse_segment(bytes(raw))
    assert p.mss == 536 and p.data == b"xy" and p.seg_len == 3
    assert parse_segment(b"\x00" * 19) is None
    bad_off = bytearray(seg)
    bad_off[12] = 0x40  # data offset 16 < 20
    assert parse_segment(bytes(bad_off)) is None


def test_scapy_agrees_on_checksum():
    scapy = pytest.importorskip("scapy.all")
    seg = build_segment(A, B, 40000, 110, 7, 9, ACK | PSH, 1000, b"USER x\r\n")
    ref = scapy.TCP(sport=40000, dport=110, seq=7, ack=9, flags="PA", window=1000) / b"USER x\r\n"
    pkt = scapy.IP(bytes(scapy.IP(src=A, dst=B) / ref))
    assert bytes(pkt[scapy.TCP]) == seg


def test_sequence_arithmetic_wraps():
    assert seq_lt(0xFFFFFFF0, 5) and not seq_lt(5, 0xFFFFFFF0)
    assert seq_diff(5, 0xFFFFFFF0) == 21 and seq_add(0xFFFFFFFF, 2) == 1


# ---------------------------------------------------------------- handshake


def test_three_way_handshake_and_mss():
    a, b = conn_pair({"mss": 1460}, {"mss": 536})
    a.connect(0.0)
    assert a.state == "SYN-SENT"
    (syn,) = a.output(0.0)
    s = parse_segment(syn)
    assert s.flags == SYN and s.seq == 1000 and s.mss == 1460
    b.listen()
    b.receive(syn, 0.0)
    assert b.state == "SYN-RECEIVED"
    (synack,) = b.output(0.0)
    s = parse_segment(synack)
    assert s.flags == SYN | ACK and s.ack == 1001 and s.seq == 0xFFFFFF00 and s.mss == 536
    a.receive(synack, 0.25)
    assert a.state == "ESTABLISHED" and names(a) == ["Connected"]
    assert a.snd_mss == 536  # peer's MSS respected
    assert a.rtt.srtt == pytest.approx(0.25) and a.rtt.rttvar == pytest.approx(0.125)
    assert a.rtt.rto == 1.0  # RFC 6298 minimum
    (ack,) = a.output(0.25)
    assert parse_segment(ack).flags == ACK and parse_segment(ack).ack == 0xFFFFFF01
    b.receive(ack, 0.25)
    assert b.state == "ESTABLISHED" and names(b) == ["Connected"]
    a.send(b"x" * 2000)
    segs = a.output(0.3)
    # Full segments go; Nagle holds the 392-octet tail while data is unacknowledged.
    assert [len(parse_segment(x).data) for x in segs] == [536, 536, 536]


def test_peer_without_mss_option_gets_536():
    b = TcpConnection(B, 110, A, 40000, iss=1, mss=1460)
    b.listen()
    b.receive(build_segment(A, B, 40000, 110, 77, 0, SYN, 8192), 0.0)
    assert b.snd_mss == 536


def test_simultaneous_open():
    a = TcpConnection(A, 5000, B, 6000, iss=100)
    b = TcpConnection(B, 6000, A, 5000, iss=300)
    a.connect(0.0)
    b.connect(0.0)
    sa, sb = a.output(0.0), b.output(0.0)
    for s in sa:
        b.receive(s, 0.1)
    for s in sb:
        a.receive(s, 0.1)
    assert a.state == b.state == "SYN-RECEIVED"
    settle(a, b, 0.1)
    assert a.state == b.state == "ESTABLISHED"
    assert "Connected" in names(a) and "Connected" in names(b)


def test_lost_syn_ack_is_retransmitted_and_rto_becomes_3s():
    a, b = conn_pair()
    a.connect(0.0)
    b.listen()
    xfer(a, b, 0.0)
    b.output(0.0)  # SYN-ACK lost
    assert a.next_deadline() == 1.0
    a.on_timer(1.0)
    (syn2,) = a.output(1.0)
    assert parse_segment(syn2).flags == SYN and a.counters["segments_retransmitted"] == 1
    b.receive(syn2, 1.0)  # a duplicate SYN: B answers with its SYN-ACK again
    (synack,) = b.output(1.0)
    assert parse_segment(synack).flags == SYN | ACK
    a.receive(synack, 1.1)
    assert a.state == "ESTABLISHED"
    assert a.rtt.srtt is None  # Karn: the retransmitted SYN gives no sample
    assert a.rtt.rto == 3.0  # RFC 6298 5.7


def test_syn_retries_give_up():
    a = TcpConnection(A, 1, B, 2, iss=5, max_syn_retries=3)
    a.connect(0.0)
    now, times = 0.0, []
    while a.state != "CLOSED":
        a.output(now)
        now = a.next_deadline()
        times.append(now)
        a.on_timer(now)
    assert times == [1.0, 3.0, 7.0, 15.0]  # backoff 1, 2, 4, 8
    assert names(a) == ["ConnectionTimedOut"]


# ---------------------------------------------------------------- data


def test_data_both_ways_and_delayed_ack():
    a, b = conn_pair({"mss": 536}, {"mss": 536})
    handshake(a, b)
    a.send(b"hello")
    (seg,) = a.output(1.0)
    assert parse_segment(seg).flags == ACK | PSH
    b.receive(seg, 1.0)
    assert data_of(b.events()) == b"hello"
    assert b.output(1.0) == []  # the ACK is delayed
    assert b.next_deadline() == pytest.approx(1.2)
    b.on_timer(1.2)
    (ack,) = b.output(1.2)
    assert parse_segment(ack).ack == 1006 and not parse_segment(ack).data
    a.receive(ack, 1.3)
    # A reply piggybacks the ACK instead.
    a.send(b"more")
    b.receive(a.output(2.0)[0], 2.0)
    b.send(b"+OK\r\n")
    (reply,) = b.output(2.05)
    assert parse_segment(reply).ack == 1010 and parse_segment(reply).data == b"+OK\r\n"
    assert b.next_deadline() is None or b.next_deadline() > 2.2
    a.receive(reply, 2.1)
    assert data_of(a.events()) == b"+OK\r\n"


def test_every_second_full_segment_is_acked_at_once():
    a, b = conn_pair()
    handshake(a, b)
    a.send(b"z" * 536 * 2)
    s1, s2 = a.output(1.0)
    b.receive(s1, 1.0)
    assert b.output(1.0) == []
    b.receive(s2, 1.0)
    (ack,) = b.output(1.0)
    assert parse_segment(ack).ack == 1001 + 1072


def test_nagle_holds_small_segments_until_acked():
    a, b = conn_pair()
    handshake(a, b)
    a.send(b"a")
    assert len(a.output(1.0)) == 1
    a.send(b"b")
    a.send(b"c")
    assert a.output(1.0) == []  # Nagle: small data while unacked data is out
    a.receive(build_segment(B, A, 110, 40000, b.snd_nxt, 1002, ACK, 16384), 1.1)
    (seg,) = a.output(1.1)
    assert parse_segment(seg).data == b"bc"


def test_nodelay_sends_small_segments_at_once():
    a, b = conn_pair({"nodelay": True})
    handshake(a, b)
    a.send(b"a")
    a.output(1.0)
    a.send(b"b")
    assert [parse_segment(s).data for s in a.output(1.0)] == [b"b"]


def test_out_of_order_segments_are_reassembled():
    a, b = conn_pair()
    handshake(a, b)
    payload = bytes(range(256)) * 10
    a.send(payload)
    segs = a.output(1.0)
    assert len(segs) == 4  # initial window: 4 * 536 (RFC 5681 3.1)
    for s in reversed(segs[1:]):
        b.receive(s, 1.0)
    assert data_of(b.events()) == b""
    assert b.counters["out_of_order_segments"] == 3
    dup_acks = b.output(1.0)
    assert {parse_segment(x).ack for x in dup_acks} == {1001}
    b.receive(segs[0], 1.0)
    b.receive(segs[2], 1.0)  # a duplicate changes nothing
    assert data_of(b.events()) == payload[: 4 * 536]
    settle(a, b, 1.0)
    assert data_of(b.events()) == payload[4 * 536 :]


def test_bad_checksum_is_counted_and_dropped():
    a, b = conn_pair()
    handshake(a, b)
    a.send(b"data")
    (seg,) = a.output(1.0)
    bad = bytearray(seg)
    bad[-1] ^= 0xFF
    b.receive(bytes(bad), 1.0)
    assert b.counters["bad_segments"] == 1 and b.events() == []
    b.receive(b"\x00\x01", 1.0)
    assert b.counters["bad_segments"] == 2


def test_data_across_sequence_wrap():
    a, b = conn_pair(a_iss=0xFFFFFF00, b_iss=0xFFFFFFF0)
    handshake(a, b)
    payload = bytes(range(256)) * 8
    a.send(payload)
    b.send(payload[::-1])
    settle(a, b, 1.0)
    assert data_of(b.events()) == payload
    assert data_of(a.events()) == payload[::-1]


# ---------------------------------------------------------------- closing


@pytest.mark.parametrize("first", ["client", "server"])
def test_close_from_either_side(first):
    a, b = conn_pair({"msl": 5.0}, {"msl": 5.0})
    handshake(a, b)
    closer, other = (a, b) if first == "client" else (b, a)
    closer.send(b"last words")
    closer.close()
    assert closer.state == "FIN-WAIT-1"
    (seg,) = closer.output(1.0)
    assert parse_segment(seg).flags & FIN and parse_segment(seg).data == b"last words"
    other.receive(seg, 1.0)
    assert other.state == "CLOSE-WAIT"
    evs = other.events()
    assert data_of(evs) == b"last words" and isinstance(evs[-1], PeerClosed)
    xfer(other, closer, 1.0)  # the FIN is ACKed at once
    assert closer.state == "FIN-WAIT-2" and closer.events() == []
    other.send(b"bye")  # CLOSE-WAIT may still send
    other.close()
    assert other.state == "LAST-ACK"
    xfer(other, closer, 1.1)
    assert closer.state == "TIME-WAIT"
    evs = closer.events()
    assert data_of(evs) == b"bye" and [type(e) for e in evs[-2:]] == [PeerClosed, Closed]
    xfer(closer, other, 1.1)
    assert other.state == "CLOSED" and names(other) == ["Closed"]
    assert closer.next_deadline() == pytest.approx(11.1)  # 2 * MSL
    closer.on_timer(11.1)
    assert closer.state == "CLOSED" and closer.events() == []
    with pytest.raises(LocalProtocolError):
        closer.send(b"x")


def test_simultaneous_close():
    a, b = conn_pair()
    handshake(a, b)
    a.close()
    b.close()
    fa, fb = a.output(1.0), b.output(1.0)
    for s in fa:
        b.receive(s, 1.0)
    for s in fb:
        a.receive(s, 1.0)
    assert a.state == b.state == "CLOSING"
    converse(a, b, 1.0)
    assert a.state == b.state == "TIME-WAIT"
    assert names(a) == ["PeerClosed", "Closed"] and names(b) == ["PeerClosed", "Closed"]


def test_time_wait_acks_a_retransmitted_fin():
    a, b = conn_pair()
    handshake(a, b)
    b.close()
    fin = b.output(1.0)[0]
    a.receive(fin, 1.0)
    a.close()
    xfer(a, b, 1.0)  # FIN+ACK; B -> TIME-WAIT... no: B was FIN-WAIT-1 and gets ACK+FIN
    assert b.state == "TIME-WAIT"
    b.output(1.0)  # B's last ACK is lost
    a.on_timer(a.next_deadline())
    (fin2,) = a.output(2.0)
    assert parse_segment(fin2).flags & FIN
    b.receive(fin2, 2.0)
    (ack,) = b.output(2.0)
    a.receive(ack, 2.0)
    assert a.state == "CLOSED" and b.state == "TIME-WAIT"


def test_close_in_fin_wait_1_when_fin_and_ack_come_together():
    a, b = conn_pair()
    handshake(a, b)
    a.close()
    b.receive(a.output(1.0)[0], 1.0)
    b.close()  # B's ACK of A's FIN and its own FIN in one segment
    (seg,) = b.output(1.0)
    assert parse_segment(seg).flags & (FIN | ACK) == FIN | ACK
    a.receive(seg, 1.0)
    assert a.state == "TIME-WAIT"


def test_close_before_established_and_abort():
    a = TcpConnection(A, 1, B, 2, iss=1)
    a.connect(0.0)
    a.close()
    assert a.state == "CLOSED" and names(a) == ["Closed"]
    a, b = conn_pair()
    handshake(a, b)
    a.abort()
    assert a.state == "CLOSED" and names(a) == ["Closed"]
    (rst,) = a.output(1.0)
    assert parse_segment(rst).flags == RST
    b.receive(rst, 1.0)
    assert b.state == "CLOSED" and names(b) == ["ConnectionReset"]


# ---------------------------------------------------------------- RST


def test_rst_must_match_rcv_nxt_else_challenge_ack():
    a, b = conn_pair()
    handshake(a, b)
    b.receive(build_segment(A, B, 40000, 110, seq_add(b.rcv_nxt, 10), 0, RST, 0), 1.0)
    assert b.state == "ESTABLISHED"
    (ch,) = b.output(1.0)
    assert parse_segment(ch).flags == ACK and parse_segment(ch).ack == b.rcv_nxt
    # out of window: ignored silently
    b.receive(build_segment(A, B, 40000, 110, seq_add(b.rcv_nxt, 100000), 0, RST, 0), 1.0)
    assert b.output(1.0) == [] and b.state == "ESTABLISHED"
    b.receive(build_segment(A, B, 40000, 110, b.rcv_nxt, 0, RST, 0), 1.0)
    assert b.state == "CLOSED" and names(b) == ["ConnectionReset"]


def test_rst_in_syn_sent_needs_acceptable_ack():
    a = TcpConnection(A, 40000, B, 110, iss=500)
    a.connect(0.0)
    a.output(0.0)
    a.receive(build_segment(B, A, 110, 40000, 0, 999, RST | ACK, 0), 0.1)
    assert a.state == "SYN-SENT"
    a.receive(build_segment(B, A, 110, 40000, 0, 501, RST | ACK, 0), 0.1)
    assert a.state == "CLOSED" and names(a) == ["ConnectionReset"]


def test_syn_sent_answers_bad_ack_with_rst():
    a = TcpConnection(A, 40000, B, 110, iss=500)
    a.connect(0.0)
    a.output(0.0)
    a.receive(build_segment(B, A, 110, 40000, 7, 12345, ACK, 0), 0.1)
    (rst,) = a.output(0.1)
    p = parse_segment(rst)
    assert p.flags == RST and p.seq == 12345 and a.state == "SYN-SENT"


def test_syn_in_established_gets_challenge_ack():
    a, b = conn_pair()
    handshake(a, b)
    b.receive(build_segment(A, B, 40000, 110, seq_add(b.rcv_nxt, 5), 0, SYN, 1000), 1.0)
    assert b.state == "ESTABLISHED"
    assert parse_segment(b.output(1.0)[0]).flags == ACK


# ---------------------------------------------------------------- retransmission


def test_rto_retransmission_doubling_and_karn():
    a, b = conn_pair()
    handshake(a, b, now=0.0, rtt=0.2)
    assert a.rtt.rto == 1.0
    a.send(b"R" * 100)
    (orig,) = a.output(1.0)
    assert a.next_deadline() == pytest.approx(2.0)
    a.on_timer(2.0)
    (r1,) = a.output(2.0)
    assert parse_segment(r1).data == parse_segment(orig).data and parse_segment(r1).seq == parse_segment(orig).seq
    assert a.rtt.rto == 2.0 and a.next_deadline() == pytest.approx(4.0)
    a.on_timer(4.0)
    (r2,) = a.output(4.0)
    assert a.rtt.rto == 4.0 and a.next_deadline() == pytest.approx(8.0)
    assert a.counters["rto_firings"] == 2
    assert a.counters["segments_retransmitted"] == 2 and a.counters["bytes_retransmitted"] == 200
    srtt = a.rtt.srtt
    b.receive(r2, 4.1)
    b.on_timer(b.next_deadline())
    a.receive(b.output(4.3)[0], 4.3)
    assert a.rtt.srtt == srtt  # Karn: no sample from a retransmitted segment
    assert a.rtt.rto == 4.0  # backed-off RTO kept until a fresh sample
    assert a.next_deadline() is None
    # a fresh segment gives a fresh sample and a fresh RTO
    a.send(b"new")
    xfer(a, b, 5.0)
    b.on_timer(b.next_deadline())
    xfer(b, a, 5.4)
    assert a.rtt.srtt == pytest.approx(0.875 * 0.2 + 0.125 * 0.4)
    assert a.rtt.rto == 1.0


def test_rto_estimator_follows_rfc6298():
    a, b = conn_pair()
    handshake(a, b, rtt=2.0)
    assert (a.rtt.srtt, a.rtt.rttvar, a.rtt.rto) == (2.0, 1.0, 6.0)
    a.send(b"x")
    xfer(a, b, 10.0)
    b.send(b"y")
    xfer(b, a, 11.0)  # R = 1.0
    assert a.rtt.rttvar == pytest.approx(0.75 * 1.0 + 0.25 * 1.0)
    assert a.rtt.srtt == pytest.approx(0.875 * 2.0 + 0.125 * 1.0)
    assert a.rtt.rto == pytest.approx(a.rtt.srtt + 4 * a.rtt.rttvar)


def test_retransmission_limit_gives_connection_timed_out():
    a, b = conn_pair({"max_retries": 4, "max_rto": 8.0})
    handshake(a, b)
    a.send(b"into the void")
    now = 1.0
    a.output(now)
    fired = []
    while a.state == "ESTABLISHED":
        now = a.next_deadline()
        fired.append(now)
        a.on_timer(now)
        a.output(now)
    assert fired == [2.0, 4.0, 8.0, 16.0, 24.0]  # 1, 2, 4, 8, 8 (capped)
    assert names(a) == ["ConnectionTimedOut"] and a.state == "CLOSED"


def test_rto_goes_back_n_and_collapses_cwnd():
    a, b = conn_pair()
    handshake(a, b)
    a.send(b"q" * 536 * 4)
    segs = a.output(1.0)
    assert len(segs) == 4
    a.on_timer(a.next_deadline())
    assert a.congestion.cwnd == a.snd_mss and a.congestion.ssthresh == 2 * 536
    (r,) = a.output(2.0)
    assert parse_segment(r).seq == parse_segment(segs[0]).seq


def test_fast_retransmit_on_three_dup_acks_and_recovery():
    a, b = conn_pair({"mss": 536}, {"mss": 536})
    handshake(a, b)
    payload = bytes(range(251)) * 40  # 10040 octets
    a.send(payload)
    segs = a.output(1.0)
    assert len(segs) == 4
    for s in segs[1:]:
        b.receive(s, 1.1)  # first one lost
    dups = b.output(1.1)
    assert len(dups) == 3
    for d in dups:
        a.receive(d, 1.2)
    assert a.counters["dup_acks"] == 3 and a.counters["fast_retransmits"] == 1
    assert a.congestion.ssthresh == 1072 and a.congestion.cwnd == 1072 + 3 * 536
    out = a.output(1.2)
    assert parse_segment(out[0]).seq == parse_segment(segs[0]).seq  # retransmitted before any RTO
    assert a.counters["rto_firings"] == 0
    for s in out:
        b.receive(s, 1.3)
    settle(a, b, 1.3)
    assert data_of(b.events()) == payload
    assert a.counters["rto_firings"] == 0
    assert not a.congestion.in_recovery


def test_slow_start_then_congestion_avoidance():
    a, b = conn_pair({"mss": 536}, {"mss": 536, "rcv_buffer": 65535})
    handshake(a, b)
    a.congestion.ssthresh = 4000
    a.send(b"s" * 40000)
    cw = [a.congestion.cwnd]
    now = 1.0
    for _ in range(8):
        xfer(a, b, now)
        b.events()
        now += 0.1
        b.on_timer(now) if b.next_deadline() and b.next_deadline() <= now else None
        xfer(b, a, now)
        cw.append(a.congestion.cwnd)
    assert cw[0] == 2144
    grow = [y - x for x, y in zip(cw, cw[1:], strict=False)]
    assert cw[1] > cw[0]
    # Above ssthresh growth is about one MSS per round trip, well below doubling.
    above = [g for g, c in zip(grow, cw, strict=False) if c >= 4000]
    assert above and all(g <= 536 + 1 for g in above)


# ---------------------------------------------------------------- flow control


def test_zero_window_persist_and_window_update():
    a, b = conn_pair({"mss": 536}, {"rcv_buffer": 1072})
    handshake(a, b)
    names(b)
    payload = b"w" * 3000
    a.send(payload)
    now = 1.0
    converse(a, b, now)  # B does not read: its window closes
    assert a.snd_wnd == 0
    assert b.counters["bytes_received"] == 1072
    d = a.next_deadline()
    assert d is not None
    a.on_timer(d)
    (probe,) = a.output(d)
    assert len(parse_segment(probe).data) == 1 and a.counters["persist_probes"] == 1
    b.receive(probe, d)
    (ack,) = b.output(d)  # zero-window ACK in answer
    assert parse_segment(ack).window == 0
    a.receive(ack, d)
    d2 = a.next_deadline()
    assert d2 - d > d - now  # persist interval backs off
    assert a.state == "ESTABLISHED" and a.counters["rto_firings"] == 0
    # B's application reads: a window update goes out and A resumes.
    got = data_of(b.events())
    assert got == payload[:1072]
    (upd,) = b.output(d)
    assert parse_segment(upd).window == 1072
    a.receive(upd, d)
    assert a.next_deadline() != d2 or a.snd_wnd == 1072
    for _ in range(20):
        converse(a, b, d)
        got += data_of(b.events())
        d = settle(a, b, d, until=d + 0.5)
    assert got == payload


def state_of(conn):
    """Every attribute of a connection and of its parts (as values), but its event queue."""
    out = {}
    for name, v in vars(conn).items():
        slots = getattr(type(v), "__slots__", None)
        if name != "_events":
            out[name] = tuple(copy.copy(getattr(v, s)) for s in slots) if slots else copy.copy(v)
    return out


def test_events_only_hand_out_the_queue_and_the_window_counts_unread_data():
    a, b = conn_pair({"mss": 536}, {"rcv_buffer": 1072})
    handshake(a, b)
    a.send(b"w" * 3000)
    converse(a, b, 1.0)
    # B's application has not taken its events: the data waiting in them fills the window.
    assert a.snd_wnd == 0 and b.counters["bytes_received"] == 1072
    before = state_of(b)
    deadline = b.next_deadline()
    got = data_of(b.events())
    assert got == b"w" * 1072 and b.events() == []
    # Nothing but the queue changed: the window update is output's decision (RFC 1122 4.2.3.3).
    assert state_of(b) == before
    assert b.next_deadline() == deadline
    (upd,) = b.output(1.0)
    assert parse_segment(upd).window == 1072 and parse_segment(upd).ack == b.rcv_nxt
    assert b.output(1.0) == []  # once


def test_no_window_update_for_a_small_read():
    # The window we offered is still large: reading a little sends nothing (SWS avoidance).
    a, b = conn_pair({"mss": 536, "nodelay": True}, {"rcv_buffer": 8192, "mss": 536})
    handshake(a, b)
    a.send(b"x" * 100)
    xfer(a, b, 1.0)
    assert b.output(1.0) == []  # delayed ACK pending
    assert data_of(b.events()) == b"x" * 100
    assert b.output(1.0) == []


def test_connection_has_the_machine_shape():
    a, _b = conn_pair()
    assert isinstance(a, Machine)
    assert all(isinstance(e, ConnectionEvent) for e in (Connected(), DataReceived(b""), PeerClosed(),
                                                        Closed(), ConnectionReset(), ConnectionTimedOut()))


def test_lost_window_update_recovered_by_persist_probe():
    a, b = conn_pair({"mss": 536}, {"rcv_buffer": 1072})
    handshake(a, b)
    names(b)
    a.send(b"p" * 2000)
    converse(a, b, 1.0)
    assert a.snd_wnd == 0
    assert len(data_of(b.events())) == 1072
    b.output(1.0)  # the window update is lost
    d = a.next_deadline()
    a.on_timer(d)
    xfer(a, b, d)  # the probe octet is accepted now; its ACK (delayed) opens the window
    assert data_of(b.events()) == b"p"
    b.on_timer(b.next_deadline())
    xfer(b, a, d + 0.2)
    assert a.snd_wnd > 0
    got = b""
    now = d + 0.2
    for _ in range(10):
        now = settle(a, b, now, until=now + 1)
        got += data_of(b.events())
    assert len(got) == 2000 - 1073


def test_send_queued_in_syn_sent_and_misuse_errors():
    a, b = conn_pair()
    a.connect(0.0)
    a.send(b"early")
    b.listen()
    settle(a, b, 0.0)
    assert data_of(b.events()) == b"early"
    with pytest.raises(LocalProtocolError):
        a.connect(1.0)
    c = TcpConnection(A, 1, B, 2, iss=0)
    c.listen()
    with pytest.raises(LocalProtocolError):
        c.listen()


def test_events_are_typed_and_frozen():
    ev = DataReceived(b"x")
    with pytest.raises(AttributeError):
        ev.data = b"y"
    assert Connected() == Connected() and ConnectionReset() != ConnectionTimedOut()


def test_rst_in_last_ack_just_closes():
    # RFC 9293: in CLOSING / LAST-ACK a RST means the peer already forgot us.
    a, b = conn_pair()
    handshake(a, b)
    a.close()
    xfer(a, b, 1.0)
    b.close()
    assert b.state == "LAST-ACK"
    b.output(1.0)
    names(b)
    b.receive(build_segment(A, B, 40000, 110, b.rcv_nxt, 0, RST, 0), 2.0)
    assert b.state == "CLOSED" and names(b) == ["Closed"]
