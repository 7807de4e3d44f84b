"""The IPv4/TCP segment codec: the compiled twin (dialsim/proto/_tcpip.c) against
the pure-Python references of dialsim/proto/tcp_segment.py and dialsim/proto/ipv4.py
-- the same octets for any segment and datagram built, the same records (field for
field, type for type) or None for any octets parsed: good, truncated, with
malformed options, bad header lengths, bad checksums, fragments, trailing link
padding; and that TCP and the stack use the compiled one, explicitly."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto import ipv4, netstack, tcp, tcp_segment
from dialsim.proto.ipv4 import IPv4Packet, ip_to_bytes
from dialsim.proto.tcp_segment import TcpSegment, pseudo_header_sum

c_encode, c_parse, c_checked = tcp_segment.implementation("c")
py_encode, py_parse, py_checked = tcp_segment.implementation("python")
c_build, c_parse_packet = ipv4.implementation("c")
py_build, py_parse_packet = ipv4.implementation("python")

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ANY_INT = st.integers(-(1 << 70), 1 << 70) | u32
PSEUDO = st.integers(0, 0xFFFE) | u32
OCTETS4 = st.binary(min_size=4, max_size=4)
DATA = st.binary(max_size=1600) | st.binary(max_size=3).map(lambda b: b * 500)
OPTION = st.sampled_from([b"\x00", b"\x01", b"\x02\x04\x05\xb4", b"\x02\x04", b"\x02\x03\x00",
                          b"\x02\x00", b"\x03\x03\x07", b"\x08\x0a" + bytes(8), b"\x02\x05\x01\x02\x03",
                          b"\xff\x01", b"\x02\x04\x00\x00"])


def same_record(a, b) -> None:
    """Equal as tuples, and field for field of the same type (int is not bool)."""
    assert a == b
    if a is not None:
        assert type(a) is type(b)
        assert [type(x) for x in a] == [type(x) for x in b]


# -- TCP: encoding ---------------------------------------------------------------------


@settings(max_examples=500)
@given(PSEUDO, u16, u16, ANY_INT, ANY_INT, ANY_INT, st.integers(-(1 << 70), 1 << 70) | u16,
       DATA, st.none() | u16)
def test_encode_matches_the_reference(pseudo, sport, dport, seq, ack, flags, window, data, mss):
    want = py_encode(pseudo, sport, dport, seq, ack, flags, window, data, mss)
    assert c_encode(pseudo, sport, dport, seq, ack, flags, window, data, mss) == want
    assert c_encode(pseudo, sport, dport, seq, ack, flags, window, bytearray(data), mss) == want
    assert type(c_encode(pseudo, sport, dport, seq, ack, flags, window, bytearray(data), mss)) is bytes
    # the checksum of what either builds is right
    assert py_checked(pseudo, want) == c_checked(pseudo, want) == py_parse(want)


@settings(max_examples=300)
@given(st.integers(0, 3000), st.sampled_from([0x00, 0xFF, 0x80, 0x7F, 0x01]), PSEUDO, st.booleans())
def test_checksums_of_runs_of_one_octet(n, octet, pseudo, damage):
    # the compiled sum takes eight octets at a time with an end-around carry:
    # all-ones words carry at every step; all-zero ones sum to zero
    data = bytes([octet]) * n
    seg = py_encode(pseudo, 0xFFFF, 0xFFFF, -1, -1, 0x3F, 0xFFFF, data)
    assert c_encode(pseudo, 0xFFFF, 0xFFFF, -1, -1, 0x3F, 0xFFFF, data) == seg
    if damage:
        pseudo ^= 1
    same_record(c_checked(pseudo, seg), py_checked(pseudo, seg))
    datagram = py_build(b"\xff" * 4, b"\xff" * 4, 0xFF, data, 0xFF, 0xFFFF, 0xFF, True)
    assert c_build(b"\xff" * 4, b"\xff" * 4, 0xFF, data, 0xFF, 0xFFFF, 0xFF, True) == datagram
    same_record(c_parse_packet(datagram), py_parse_packet(datagram))


def test_encode_defaults():
    assert c_encode(7, 1, 2, 3, 4, 0x10, 100) == py_encode(7, 1, 2, 3, 4, 0x10, 100)
    assert c_encode(7, 1, 2, 3, 4, 0x10, 100, b"x") == py_encode(7, 1, 2, 3, 4, 0x10, 100, b"x")


@pytest.mark.parametrize("bad", [(-1, 1, 2), (0, 0x10000, 2), (0, 1, -1), (1 << 32, 1, 2)])
def test_encode_refuses_what_cannot_be_a_field(bad):
    pseudo, sport, dport = bad
    with pytest.raises(OverflowError):
        c_encode(pseudo, sport, dport, 0, 0, 0, 0)
    with pytest.raises(OverflowError):
        c_encode(0, 1, 2, 0, 0, 0, 0, b"", 0x10000)
    with pytest.raises(TypeError):
        c_encode(0, 1, 2)


# -- TCP: parsing ----------------------------------------------------------------------


def _segments():
    """Well-formed segments, with their options, then perhaps damaged."""
    built = st.builds(
        lambda pseudo, ports, seq, flags, opts, data: _with_options(
            py_encode(pseudo, ports[0], ports[1], seq, seq ^ 0x5A5A, flags, 4096, data), opts, pseudo),
        PSEUDO, st.tuples(u16, u16), u32, st.integers(0, 0x3F),
        st.lists(OPTION, max_size=6).map(b"".join), st.binary(max_size=64))
    return st.tuples(built, st.integers(0, 80), st.integers(0, 255), st.booleans()).map(_damage)


def _with_options(segment: bytes, opts: bytes, pseudo: int) -> tuple[int, bytes]:
    """``segment`` with option octets in its header (data offset set; checksum fixed)."""
    opts = opts + b"\x00" * (-len(opts) % 4)
    opts = opts[:40]
    word = int.from_bytes(segment[12:14], "big") & 0x0FFF | ((20 + len(opts)) // 4) << 12
    seg = segment[:12] + word.to_bytes(2, "big") + b"\x00\x00" + segment[16:20] + opts + segment[20:]
    csum = -(pseudo + len(seg) + _word_sum(seg)) % 0xFFFF
    return pseudo, seg[:16] + csum.to_bytes(2, "big") + seg[18:]


def _word_sum(octets: bytes) -> int:
    n = int.from_bytes(octets, "big")
    return n << 8 if len(octets) & 1 else n


def _damage(args):
    (pseudo, seg), cut, octet, flip = args
    if flip and seg:  # a changed octet: a bad checksum (or a changed data offset)
        i = cut % len(seg)
        seg = seg[:i] + bytes([seg[i] ^ (octet or 1)]) + seg[i + 1:]
    elif cut < 20:  # truncated
        seg = seg[:cut]
    return pseudo, seg


@settings(max_examples=800)
@given(_segments())
def test_parse_matches_the_reference(case):
    pseudo, seg = case
    same_record(c_parse(seg), py_parse(seg))
    same_record(c_parse(bytearray(seg)), py_parse(seg))
    same_record(c_checked(pseudo, seg), py_checked(pseudo, seg))


@settings(max_examples=500)
@given(st.binary(max_size=100), PSEUDO)
def test_parse_any_octets_matches_the_reference(octets, pseudo):
    same_record(c_parse(octets), py_parse(octets))
    same_record(c_checked(pseudo, octets), py_checked(pseudo, octets))


def test_parse_mss_option_cases():
    base = py_encode(0, 1, 2, 3, 4, 0x02, 100, b"data", 1460)
    assert c_parse(base).mss == 1460 == py_parse(base).mss
    assert c_parse(base[:19]) is None is py_parse(base[:19])
    for opts in (b"\x01\x01\x02\x04\x02\x00", b"\x02\x04\x01\x00\x02\x04\x02\x00", b"\x00\x02\x04\x01",
                 b"\x02\x01\x02\x04", b"\x03\x02\x02\x04\x05\xb4\x00\x00", b"\x02\x04\x05"):
        pseudo, seg = _with_options(base[:20] + b"body", opts, 99)
        same_record(c_parse(seg), py_parse(seg))
        same_record(c_checked(pseudo, seg), py_checked(pseudo, seg))


# -- IPv4 ------------------------------------------------------------------------------


@settings(max_examples=500)
@given(OCTETS4, OCTETS4, ANY_INT, DATA, ANY_INT, ANY_INT, ANY_INT, st.booleans())
def test_build_matches_the_reference(src, dst, proto, payload, ttl, ident, tos, df):
    want = py_build(src, dst, proto, payload, ttl, ident, tos, df)
    assert c_build(src, dst, proto, payload, ttl, ident, tos, df) == want
    assert c_build(src, dst, proto, bytearray(payload), ttl, ident, tos, df) == want
    same_record(c_parse_packet(want), py_parse_packet(want))


def test_build_packet_is_build_datagram():
    args = ("10.0.0.1", "192.168.7.200", 6, b"segment", 64, 513, 0, True)
    want = ipv4.build_packet(*args[:4], ttl=64, ident=513, tos=0, flags_df=True)
    assert c_build(ip_to_bytes(args[0]), ip_to_bytes(args[1]), *args[2:]) == want


def test_build_refuses_what_the_reference_refuses():
    for build in (c_build, py_build):
        with pytest.raises(ValueError):
            build(b"\x01\x02\x03\x04", b"\x01\x02\x03\x04", 6, bytes(65516), 64, 0, 0, False)
        with pytest.raises(ValueError):
            build(b"\x01\x02\x03", b"\x01\x02\x03\x04", 6, b"", 64, 0, 0, False)
    assert len(c_build(b"\x01\x02\x03\x04", b"\x01\x02\x03\x04", 6, bytes(65515), 64, 0, 0, False)) == 65535


def _datagrams():
    built = st.builds(
        lambda src, dst, payload, ident, df, frag, opts, pad: _ip_variant(
            py_build(src, dst, 6, payload, 64, ident, 0, df), frag, opts, pad),
        OCTETS4, OCTETS4, st.binary(max_size=80), u16, st.booleans(),
        st.integers(0, 0x3FFF), st.integers(0, 3), st.binary(max_size=3))
    return st.tuples(built, st.integers(0, 120), st.integers(0, 255), st.integers(0, 3)).map(_ip_damage)


def _ip_variant(datagram: bytes, frag: int, opt_words: int, pad: bytes) -> bytes:
    """``datagram`` with fragment bits, header options and link padding (checksum fixed)."""
    hlen = 20 + 4 * opt_words
    body = datagram[20:]
    header = bytearray(datagram[:20] + b"\x01" * (4 * opt_words))
    header[0] = 0x40 | hlen // 4
    header[2:4] = (hlen + len(body)).to_bytes(2, "big")
    header[6:8] = (int.from_bytes(header[6:8], "big") & 0x4000 | frag & 0xBFFF).to_bytes(2, "big")
    header[10:12] = b"\x00\x00"
    header[10:12] = ipv4.internet_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + body + pad


def _ip_damage(args):
    data, cut, octet, how = args
    if how == 1 and data:
        i = cut % len(data)
        data = data[:i] + bytes([data[i] ^ (octet or 1)]) + data[i + 1:]
    elif how == 2:
        data = data[:cut]
    return data


@settings(max_examples=800)
@given(_datagrams())
def test_parse_packet_matches_the_reference(data):
    same_record(c_parse_packet(data), py_parse_packet(data))
    same_record(c_parse_packet(bytearray(data)), py_parse_packet(data))


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_parse_packet_any_octets_matches_the_reference(data):
    same_record(c_parse_packet(data), py_parse_packet(data))


def test_dotted_quads_many_addresses():
    # more addresses than the compiled cache of dotted quads holds, twice round
    for _ in range(2):
        for i in range(300):
            src = bytes((10, i % 7, i // 7, i % 256))
            d = py_build(src, b"\xc0\xa8\x01\x02", 6, b"x", 64, i, 0, False)
            same_record(c_parse_packet(d), py_parse_packet(d))


# -- the choice is explicit ----------------------------------------------------------


def test_tcp_and_the_stack_use_the_compiled_codec():
    from dialsim.proto import _tcpip

    assert tcp.encode_segment is _tcpip.encode_segment
    assert tcp.checked_segment is _tcpip.checked_segment
    assert netstack.build_datagram is _tcpip.build_datagram
    assert netstack.parse_packet is _tcpip.parse_packet
    assert isinstance(c_parse(py_encode(0, 1, 2, 3, 4, 0x10, 9)), TcpSegment)
    assert isinstance(c_parse_packet(py_build(b"1234", b"5678", 6, b"", 64, 0, 0, False)), IPv4Packet)


def test_unknown_implementation_is_an_error():
    with pytest.raises(ValueError):
        tcp_segment.implementation("rust")
    with pytest.raises(ValueError):
        ipv4.implementation("rust")


def test_pseudo_header_sum_is_in_range():
    assert 0 <= pseudo_header_sum("255.255.255.255", "255.255.255.255") < 0xFFFF
