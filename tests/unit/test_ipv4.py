"""IPv4 (RFC 791), the Internet checksum (RFC 1071) and ICMP (RFC 792)."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto import icmp
from dialsim.proto.ipv4 import (
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    IPv4Packet,
    build_packet,
    internet_checksum,
    parse_packet,
)


def reference_checksum(data: bytes) -> int:
    """RFC 1071 section 4.1 algorithm, word by word (test reference only)."""
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_rfc1071_example():
    # RFC 1071 1.(2) example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert internet_checksum(data) == (~0xDDF2) & 0xFFFF == 0x220D


def test_known_header():
    # A real IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) whose checksum is 0xb861.
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(hdr) == 0xB861
    with_sum = hdr[:10] + b"\xb8\x61" + hdr[12:]
    assert internet_checksum(with_sum) == 0


def test_checksum_edge_cases():
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\x00\x00") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0x0000  # sum is "negative zero"
    assert internet_checksum(b"\x01") == reference_checksum(b"\x01") == 0xFEFF


@given(st.binary(max_size=3000))
@settings(max_examples=200)
def test_checksum_matches_reference(data):
    assert internet_checksum(data) == reference_checksum(data)


def test_build_matches_known_bytes_and_round_trips():
    pkt = build_packet("192.168.0.1", "192.168.0.199", PROTO_UDP, b"\x00" * 95, ident=0, flags_df=True)
    assert pkt[:20] == bytes.fromhex("45000073000040004011b861c0a80001c0a800c7")
    p = parse_packet(pkt)
    assert p == IPv4Packet(
        "192.168.0.1", "192.168.0.199", PROTO_UDP, b"\x00" * 95, flags_df=True, ident=0
    )
    assert p.to_bytes() == pkt


@given(
    st.binary(max_size=1500),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(1, 255),
    st.booleans(),
)
@settings(max_examples=100)
def test_round_trip(payload, tos, ident, ttl, df):
    raw = build_packet("10.1.2.3", "172.16.254.1", PROTO_TCP, payload, ttl=ttl, ident=ident, tos=tos, flags_df=df)
    p = parse_packet(raw)
    assert p is not None
    assert (p.src, p.dst, p.protocol, p.payload, p.ttl, p.ident, p.tos, p.flags_df) == (
        "10.1.2.3", "172.16.254.1", PROTO_TCP, payload, ttl, ident, tos, df
    )
    assert not p.is_fragment
    # Trailing link padding is ignored.
    assert parse_packet(raw + b"\x00\x00\x00").payload == payload


def test_corrupted_packets_rejected():
    raw = build_packet("10.0.0.1", "10.0.0.2", PROTO_TCP, b"payload")
    assert parse_packet(raw) is not None
    for i in range(20):  # any single flipped header bit breaks the checksum
        bad = bytearray(raw)
        bad[i] ^= 0x10
        assert parse_packet(bytes(bad)) is None
    assert parse_packet(b"") is None
    assert parse_packet(raw[:19]) is None
    assert parse_packet(raw[:-1]) is None  # shorter than total length
    v6 = bytes([0x65]) + raw[1:]
    assert parse_packet(v6) is None
    ihl4 = bytes([0x44]) + raw[1:]
    assert parse_packet(ihl4) is None


@given(st.binary(max_size=80))
@settings(max_examples=300)
def test_parse_is_total(data):
    parse_packet(data)  # never raises
    icmp.parse_icmp(data)


def test_options_skipped_and_fragments_flagged():
    # IHL 6: one 4-octet option (NOPs + EOL); fragment offset 185*8, MF set.
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + 3, 7, 0x2000 | 185, 9, 6, 0,
                                bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    hdr += b"\x01\x01\x01\x00"
    hdr[10:12] = internet_checksum(bytes(hdr)).to_bytes(2, "big")
    p = parse_packet(bytes(hdr) + b"abc")
    assert p.header_length == 24 and p.payload == b"abc"
    assert p.more_fragments and p.fragment_offset == 1480 and p.is_fragment


def test_icmp_echo():
    req = icmp.build_echo_request(0x1234, 7, b"ping data")
    assert internet_checksum(req) == 0
    m = icmp.parse_icmp(req)
    assert (m.type, m.code, m.ident, m.seq, m.data) == (8, 0, 0x1234, 7, b"ping data")
    rep = icmp.parse_icmp(icmp.echo_reply_for(m))
    assert (rep.type, rep.ident, rep.seq, rep.data) == (0, 0x1234, 7, b"ping data")
    bad = bytearray(req)
    bad[-1] ^= 1
    assert icmp.parse_icmp(bytes(bad)) is None
    assert icmp.parse_icmp(req[:7]) is None


def test_icmp_unreachable_quotes_header_and_8_octets():
    dgram = build_packet("10.0.0.1", "10.0.0.2", PROTO_UDP, b"12345678EXTRA")
    msg = icmp.parse_icmp(icmp.build_port_unreachable(dgram))
    assert (msg.type, msg.code) == (icmp.ICMP_DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE)
    assert msg.data == dgram[:28]
    msg = icmp.parse_icmp(icmp.build_protocol_unreachable(dgram))
    assert msg.code == icmp.CODE_PROTOCOL_UNREACHABLE


def test_scapy_agrees():
    scapy = pytest.importorskip("scapy.all")
    raw = build_packet("10.0.0.1", "10.0.0.2", PROTO_ICMP, icmp.build_echo_request(1, 2, b"xyz"), ident=99)
    rebuilt = scapy.IP(src="10.0.0.1", dst="10.0.0.2", id=99, ttl=64, flags=0) / scapy.ICMP(type=8, id=1, seq=2) / b"xyz"
    assert bytes(rebuilt) == raw
