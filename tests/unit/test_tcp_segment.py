"""The TCP segment codec (RFC 9293 3.1): round trips, and the checksum computed
from summed fields agrees with RFC 1071 over the pseudo-header and segment."""

from hypothesis import given
from hypothesis import strategies as st

from dialsim.proto.ipv4 import PROTO_TCP, internet_checksum, ip_to_bytes
from dialsim.proto.tcp_segment import (
    build_segment,
    checksum_ok,
    encode_segment,
    parse_segment,
    pseudo_header_sum,
    tcp_checksum,
    verify_checksum,
)

addresses = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


def reference(src: str, dst: str, segment: bytes) -> int:
    """RFC 1071 over the RFC 9293 3.1 pseudo-header and the segment, as one buffer."""
    pseudo = ip_to_bytes(src) + ip_to_bytes(dst) + bytes((0, PROTO_TCP)) + len(segment).to_bytes(2, "big")
    return internet_checksum(pseudo + segment)


@given(addresses, addresses, u16, u16, u32, u32, st.integers(0, 0x3F), st.integers(-5, 70000),
       st.binary(max_size=1600), st.none() | u16)
def test_build_parse_round_trip_and_checksum(src, dst, sport, dport, seq, ack, flags, window, data, mss):
    seg = build_segment(src, dst, sport, dport, seq, ack, flags, window, data, mss=mss)
    assert reference(src, dst, seg) == 0 == tcp_checksum(src, dst, seg)
    assert verify_checksum(src, dst, seg) and verify_checksum(dst, src, seg)  # either way round
    p = parse_segment(seg)
    assert (p.src_port, p.dst_port, p.seq, p.ack, p.flags, p.window, p.data, p.mss) == (
        sport, dport, seq, ack, flags, max(0, min(window, 0xFFFF)), data, mss)
    assert p.header_length == (24 if mss is not None else 20)
    # The field written is RFC 1071's over the segment with a zero checksum field.
    zeroed = seg[:16] + b"\x00\x00" + seg[18:]
    assert int.from_bytes(seg[16:18], "big") == reference(src, dst, zeroed)
    assert encode_segment(pseudo_header_sum(src, dst), sport, dport, seq, ack, flags, window, data, mss) == seg


@given(addresses, addresses, st.binary(min_size=20, max_size=200), st.data())
def test_any_single_bit_error_is_caught(src, dst, data, draw):
    seg = build_segment(src, dst, 1, 2, 3, 4, 0x10, 100, data)
    bit = draw.draw(st.integers(0, len(seg) * 8 - 1))
    bad = bytearray(seg)
    bad[bit // 8] ^= 1 << (bit % 8)
    assert not checksum_ok(pseudo_header_sum(src, dst), bytes(bad))
    assert tcp_checksum(src, dst, bytes(bad)) == reference(src, dst, bytes(bad)) != 0


@given(st.binary(max_size=80))
def test_parse_is_total(raw):
    p = parse_segment(raw)  # never raises
    assert p is None or len(raw) >= p.header_length >= 20
    checksum_ok(0, raw)


def test_options_in_any_order_and_junk():
    base = build_segment("10.0.0.1", "10.0.0.2", 1, 2, 3, 4, 0x02, 100, b"data")

    def with_options(opts: bytes) -> bytes:
        hlen = 20 + len(opts)
        return base[:12] + bytes([hlen // 4 << 4]) + base[13:20] + opts + base[20:]

    assert parse_segment(with_options(b"\x02\x04\x05\xb4")).mss == 1460
    assert parse_segment(with_options(b"\x01\x02\x04\x02\x18\x00\x00\x00")).mss == 536
    assert parse_segment(with_options(b"\x00\x02\x04\x05\xb4\x00\x00\x00")).mss is None  # after EOL
    assert parse_segment(with_options(b"\x08\x01\x02\x04\x05\xb4\x00\x00")).mss is None  # bad length
    assert parse_segment(with_options(b"\x02\x03\x05\x00")).data == b"data"  # a bad MSS length
