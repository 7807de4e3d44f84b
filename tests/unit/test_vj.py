"""RFC 1144 Van Jacobson header compression: round trips, sizes, special cases, recovery."""

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from dialsim.proto.ipv4 import internet_checksum
from dialsim.proto.vj import (
    NEW_C,
    SPECIAL_D,
    SPECIAL_I,
    SPECIALS_MASK,
    TYPE_COMPRESSED_TCP,
    TYPE_ERROR,
    TYPE_IP,
    TYPE_UNCOMPRESSED_TCP,
    VjCompressor,
    VjDecompressor,
    cslip_decode,
    cslip_encode,
)


def seg(seq, ack, data=b"", *, ipid=1, flags="A", win=8192, sport=1025, dport=110, src="10.0.0.2", urg=0, opts=None):
    t = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win, urgptr=urg)
    if opts:
        t.options = opts
    p = IP(src=src, dst="10.0.0.1", id=ipid) / t
    if data:
        p = p / Raw(data)
    return bytes(p)


def roundtrip(c, d, pkt):
    kind, data = c.compress(pkt)
    assert d.decompress(kind, data) == pkt
    return kind, data


def test_data_transfer_compresses_to_a_few_octets():
    c, d = VjCompressor(), VjDecompressor()
    seq, ipid = 1000, 10
    kinds = []
    for n in (100, 200, 200, 300, 50):
        kind, data = roundtrip(c, d, seg(seq, 5000, b"x" * n, ipid=ipid, flags="PA"))
        kinds.append((kind, len(data) - n))
        seq += n
        ipid += 1
    assert kinds[0] == (TYPE_UNCOMPRESSED_TCP, 40)
    assert all(k == TYPE_COMPRESSED_TCP for k, _ in kinds[1:])
    assert all(3 <= h <= 5 for _, h in kinds[1:])


def test_special_d_unidirectional_data():
    c = VjCompressor()
    c.compress(seg(1000, 5000, b"a" * 100, ipid=1))
    kind, data = c.compress(seg(1100, 5000, b"b" * 100, ipid=2))
    assert kind == TYPE_COMPRESSED_TCP
    assert data[0] & SPECIALS_MASK == SPECIAL_D
    assert len(data) == 3 + 100  # changes + checksum


def test_special_i_echoed_interactive_traffic():
    c, d = VjCompressor(), VjDecompressor()
    roundtrip(c, d, seg(1000, 5000, b"k", ipid=1))
    kind, data = roundtrip(c, d, seg(1001, 5001, b"k", ipid=2))
    assert kind == TYPE_COMPRESSED_TCP and data[0] & SPECIALS_MASK == SPECIAL_I


def test_ack_only_stream_and_delta_encodings():
    c, d = VjCompressor(), VjDecompressor()
    roundtrip(c, d, seg(1000, 5000, ipid=1))
    kind, data = roundtrip(c, d, seg(1000, 5536, ipid=2))  # ack +536: 0 + two octets
    assert kind == TYPE_COMPRESSED_TCP and data[3:6] == b"\x00\x02\x18"
    kind, data = roundtrip(c, d, seg(1000, 5546, ipid=2))  # ip id delta 0: explicit 0 0 0
    assert data[-3:] == b"\x00\x00\x00"
    roundtrip(c, d, seg(1000, 5556, ipid=300, win=100))  # window shrinks (negative delta)


def test_must_send_uncompressed_or_ip():
    c = VjCompressor()
    assert c.compress(seg(1, 1, flags="S"))[0] == TYPE_IP
    assert c.compress(seg(1, 1, flags="FA"))[0] == TYPE_IP
    assert c.compress(seg(1, 1, flags="RA"))[0] == TYPE_IP
    assert c.compress(seg(1, 1, flags="P"))[0] == TYPE_IP  # no ACK
    frag = IP(bytes(IP(src="10.0.0.2", dst="10.0.0.1", flags="MF") / TCP(flags="A") / Raw(b"x" * 20)))
    assert c.compress(bytes(frag))[0] == TYPE_IP
    udp = bytes(IP(src="10.0.0.2", dst="10.0.0.1", proto=17) / Raw(b"x" * 30))
    assert c.compress(udp)[0] == TYPE_IP
    c.compress(seg(1000, 1, b"a", ipid=1))
    assert c.compress(seg(1001, 1, b"a", ipid=2))[0] == TYPE_COMPRESSED_TCP
    # TCP options change: uncompressed
    assert c.compress(seg(1002, 1, b"a", ipid=3, opts=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]))[0] == TYPE_UNCOMPRESSED_TCP
    # seq jump > 65535: uncompressed
    assert c.compress(seg(900000, 1, b"a", ipid=4, opts=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]))[0] == TYPE_UNCOMPRESSED_TCP
    # pure retransmission (nothing changed): uncompressed
    p = seg(900001, 1, b"a", ipid=5, opts=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
    c.compress(p)
    assert c.compress(p)[0] == TYPE_UNCOMPRESSED_TCP


def test_uncompressed_carries_slot_in_protocol_field():
    c = VjCompressor()
    kind, data = c.compress(seg(1, 1, b"x"))
    assert kind == TYPE_UNCOMPRESSED_TCP and data[9] < 16
    assert data[:9] == seg(1, 1, b"x")[:9]


def test_reconstructed_ip_checksum_is_valid():
    c, d = VjCompressor(), VjDecompressor()
    roundtrip(c, d, seg(1, 1, b"x" * 10, ipid=7))
    kind, data = c.compress(seg(11, 1, b"y" * 33, ipid=8))
    out = d.decompress(kind, data)
    assert internet_checksum(out[:20]) == 0


def test_several_connections_and_slot_reuse():
    c, d = VjCompressor(slots=2), VjDecompressor(slots=2)
    seqs = {1025: 0, 1026: 0, 1027: 0}

    def send(port, size):
        pkt = seg(seqs[port], 9, b"z" * size, ipid=seqs[port] + 1, sport=port)
        seqs[port] += size
        return roundtrip(c, d, pkt)

    # two connections fill the two slots, then compress, each naming its slot
    first = [send(1025, 5), send(1026, 5)]
    assert [k for k, _ in first] == [TYPE_UNCOMPRESSED_TCP] * 2
    assert {data[9] for _, data in first} == {0, 1}
    for _ in range(3):
        for port in (1025, 1026):
            kind, data = send(port, 6)
            assert kind == TYPE_COMPRESSED_TCP and data[0] & NEW_C  # the connection changes every time
    # a third connection takes the least recently used slot (1025's) ...
    kind, data = send(1027, 7)
    assert kind == TYPE_UNCOMPRESSED_TCP and data[9] == first[0][1][9]
    # ... 1026 keeps compressing, 1025 must start again uncompressed, in the slot 1026 did not use
    assert send(1026, 8)[0] == TYPE_COMPRESSED_TCP
    kind, data = send(1025, 8)
    assert kind == TYPE_UNCOMPRESSED_TCP and data[9] == first[0][1][9]
    assert send(1025, 9)[0] == TYPE_COMPRESSED_TCP


def test_connection_number_omitted_only_when_allowed():
    for allowed in (True, False):
        c = VjCompressor(compress_slot_id=allowed)
        c.compress(seg(1, 1, b"a", ipid=1))
        kind, data = c.compress(seg(2, 1, b"a", ipid=2))
        assert bool(data[0] & NEW_C) is (not allowed)


def test_lost_compressed_frame_tosses_until_uncompressed():
    c, d = VjCompressor(), VjDecompressor()
    roundtrip(c, d, seg(0, 1, b"a" * 10, ipid=1))
    c.compress(seg(10, 1, b"b" * 10, ipid=2))  # lost on the line
    d.toss()  # the framing layer saw the bad FCS
    kind, data = c.compress(seg(20, 1, b"c" * 10, ipid=3))
    assert kind == TYPE_COMPRESSED_TCP
    assert d.decompress(kind, data) is None
    assert d.tossed == 1
    # the TCP retransmission (nothing new) goes uncompressed and resynchronises
    pkt = seg(20, 1, b"c" * 10, ipid=4)
    k2, data2 = c.compress(pkt)
    assert k2 == TYPE_UNCOMPRESSED_TCP
    assert d.decompress(k2, data2) == pkt
    roundtrip(c, d, seg(30, 1, b"d" * 10, ipid=5))


def test_explicit_connection_number_resynchronises():
    c, d = VjCompressor(compress_slot_id=False), VjDecompressor()
    roundtrip(c, d, seg(0, 1, b"a" * 10, ipid=1))
    d.toss()
    roundtrip(c, d, seg(10, 1, b"b" * 10, ipid=2))


def test_garbage_never_raises_and_sets_toss():
    d = VjDecompressor()
    for kind, data in [(TYPE_COMPRESSED_TCP, b""), (TYPE_COMPRESSED_TCP, b"\x40\x99"), (TYPE_UNCOMPRESSED_TCP, b"\x45"), (TYPE_ERROR, b"")]:
        assert d.decompress(kind, data) is None
    assert d.errors == 4


def test_truncated_compressed_header_is_tossed():
    """A COMPRESSED_TCP packet that ends inside what its change mask announces is an
    error (counted, then tossing until resynchronised), not a delta of zero."""
    c = VjCompressor(compress_slot_id=False)
    first = seg(1000, 5000, b"x" * 10, ipid=1)
    bare_ack = seg(1010, 5300, ipid=6, win=4000)  # S, A, W and I deltas, no data
    c.compress(first)
    kind, data = c.compress(bare_ack)
    assert kind == TYPE_COMPRESSED_TCP and len(data) > 8
    for cut in range(len(data)):
        d = VjDecompressor()
        k0, d0 = VjCompressor(compress_slot_id=False).compress(first)
        assert d.decompress(k0, d0) == first
        assert d.decompress(kind, data[:cut]) is None, cut
        assert d.errors == 1 and d.tossing
    d = VjDecompressor()
    d.decompress(*VjCompressor(compress_slot_id=False).compress(first))
    assert d.decompress(kind, data) == bare_ack


KINDS = [TYPE_COMPRESSED_TCP, TYPE_UNCOMPRESSED_TCP, TYPE_IP, TYPE_ERROR]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.binary(max_size=80)), max_size=8), st.booleans())
def test_decompressor_fuzz(garbage, crafted_header):
    """Garbage never raises; what is not delivered is counted and tosses; while tossing
    every COMPRESSED_TCP without a connection number is discarded; an UNCOMPRESSED_TCP
    resynchronises and the stream round-trips again."""
    c, d = VjCompressor(), VjDecompressor()
    roundtrip(c, d, seg(0, 1, b"a", ipid=1))
    roundtrip(c, d, seg(1, 1, b"b", ipid=2))
    for kind, data in garbage:
        if crafted_header and kind == TYPE_COMPRESSED_TCP and data:
            data = bytes([data[0] & ~NEW_C & 0xFF]) + data[1:]  # aim at the saved header
        before = d.errors + d.tossed
        out = d.decompress(kind, data)
        if kind == TYPE_IP:
            assert out == data
        elif out is None:
            assert d.errors + d.tossed == before + 1 and d.tossing
        else:
            assert isinstance(out, bytes) and len(out) >= 40 and d.errors + d.tossed == before
    tossing = d.tossing
    kind, data = c.compress(seg(2, 1, b"c", ipid=3))
    assert kind == TYPE_COMPRESSED_TCP and not data[0] & NEW_C
    before = d.tossed
    out = d.decompress(kind, data)
    if tossing:
        assert out is None and d.tossed == before + 1 and d.tossing
    # the retransmission goes uncompressed (RFC 1144 4.1) and resynchronises
    pkt = seg(2, 1, b"c", ipid=4)
    kind, data = c.compress(pkt)
    assert kind == TYPE_UNCOMPRESSED_TCP
    assert d.decompress(kind, data) == pkt and not d.tossing
    for i in range(3):
        kind, _ = roundtrip(c, d, seg(3 + i, 1, b"d", ipid=5 + i))
        assert kind == TYPE_COMPRESSED_TCP


def _expected_kind(prev_size, size, ack_adv, win_changed):
    """RFC 1144 3.2.3 for one connection of pure ACK-bearing segments without
    options or URG: what the compressor must send for this segment."""
    if prev_size is None or ack_adv > 0xFFFF:
        return TYPE_UNCOMPRESSED_TCP  # a new connection; an ack delta the format cannot say
    if prev_size == 0 and ack_adv == 0 and not win_changed and size == 0:
        return TYPE_UNCOMPRESSED_TCP  # nothing changed: a retransmitted bare ACK or a window probe
    return TYPE_COMPRESSED_TCP


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1460), st.integers(0, 70000), st.integers(0, 3), st.booleans(), st.integers(-300, 300)),
        min_size=1,
        max_size=25,
    )
)
def test_round_trip_synthetic_conversation(steps):
    c, d = VjCompressor(), VjDecompressor()
    seq, ack, ipid, win = 1000, 2000, 1, 8760
    prev = None  # data size of the previous segment
    kinds, expected = [], []
    for size, ack_adv, id_adv, push, dwin in steps:
        new_win = max(0, min(65535, win + dwin))
        expected.append(_expected_kind(prev, size, ack_adv if prev is not None else 0, new_win != win))
        win = new_win
        ack = (ack + (ack_adv if prev is not None else 0)) & 0xFFFFFFFF
        pkt = seg(seq, ack, b"q" * size, ipid=ipid, flags="PA" if push else "A", win=win)
        kinds.append(roundtrip(c, d, pkt)[0])
        seq = (seq + size) & 0xFFFFFFFF
        ipid = (ipid + id_adv) & 0xFFFF
        prev = size
    assert kinds == expected
    assert c.compressed == expected.count(TYPE_COMPRESSED_TCP) and c.ip == 0


def test_cslip_type_bits():
    c = VjCompressor()
    for pkt in (seg(1, 1, flags="S"), seg(5, 1, b"a", ipid=1), seg(6, 1, b"a", ipid=2)):
        kind, data = c.compress(pkt)
        frame = cslip_encode(kind, data)
        if kind == TYPE_IP:
            assert frame[0] == 0x45
        elif kind == TYPE_UNCOMPRESSED_TCP:
            assert frame[0] == 0x75
        else:
            assert frame[0] & 0x80
        assert cslip_decode(frame) == (kind, data)
    assert cslip_decode(b"")[0] == TYPE_ERROR
    assert cslip_decode(b"\x10abc")[0] == TYPE_ERROR
