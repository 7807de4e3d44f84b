"""SLIP (RFC 1055) framing: RFC escapes, round trips, chunking, limits."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.slip import (
    SlipDecoder,
    SlipLink,
    slip_encode,
    slip_escape,
    slip_unescape,
)


def test_rfc1055_escapes():
    # RFC 1055: END -> ESC ESC_END, ESC -> ESC ESC_ESC; others unchanged.
    assert slip_escape(b"\xc0") == b"\xdb\xdc"
    assert slip_escape(b"\xdb") == b"\xdb\xdd"
    assert slip_escape(b"a\xc0b\xdbc") == b"a\xdb\xdcb\xdb\xddc"
    assert slip_encode(b"\x45\xc0") == b"\xc0\x45\xdb\xdc\xc0"
    # The tricky neighbours: ESC then ESC_END as data, and END then ESC_ESC.
    for raw in (b"\xdb\xdc", b"\xc0\xdd", b"\xdb\xdb\xc0\xc0", b"\xdd\xdc\xdb"):
        assert slip_unescape(slip_escape(raw)) == raw


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
@settings(max_examples=300)
def test_roundtrip_any_bytes_all_at_once(packets):
    wire = b"".join(slip_encode(p) for p in packets)
    assert SlipDecoder(max_frame=400).receive(wire) == packets


@given(st.lists(st.binary(min_size=1, max_size=200), max_size=5), st.data())
@settings(max_examples=200)
def test_roundtrip_any_chunking(packets, data):
    wire = b"".join(slip_encode(p) for p in packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    dec = SlipDecoder(max_frame=400)
    got = []
    prev = 0
    for c in [*cuts, len(wire)]:
        got += dec.receive(wire[prev:c])
        prev = c
    assert got == packets


def test_one_byte_at_a_time_and_trailing_data():
    packets = [b"\x45hello\xc0\xdb", b"\xdb\xdc\xdd", b"x" * 50]
    wire = b"".join(slip_encode(p) for p in packets) + b"\x45partial"
    dec = SlipDecoder()
    got = []
    for i in range(len(wire)):
        got += dec.receive(wire[i : i + 1])
    assert got == packets
    # The trailing partial frame is completed by the next END.
    assert dec.receive(b"\xc0") == [b"\x45partial"]


def test_too_long_frame_is_dropped_and_counted():
    dec = SlipDecoder(max_frame=10)
    assert dec.receive(slip_encode(b"y" * 11) + slip_encode(b"ok")) == [b"ok"]
    assert dec.frames_too_long == 1


def test_bad_escape_kept_and_counted():
    dec = SlipDecoder()
    assert dec.receive(b"\xc0a\xdbxb\xc0") == [b"a\xdbxb"]
    assert dec.bad_escapes == 1


def test_link_counts_bytes_per_layer():
    a, b = SlipLink(), SlipLink()
    pkt = bytes([0x45]) + b"\xc0" * 10 + b"z" * 9
    a.send_ip(pkt)
    wire = a.data_to_send()
    assert len(wire) == len(pkt) + 10 + 2
    b.receive(wire)
    evs = [e for e in b.events() if type(e).__name__ == "IpPacketReceived"]
    assert [e.packet for e in evs] == [pkt]
    assert a.counters.octets_wire_sent == len(wire)
    assert b.counters.octets_ip_received == len(pkt)
