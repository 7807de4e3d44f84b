"""SLIP (RFC 1055) framing: RFC escapes, round trips, chunking, limits."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.events import FrameReceived, FrameSent, IpPacketReceived
from dialsim.proto.ipv4 import internet_checksum
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
    a.send_ip(pkt, 0.0)
    (wire,) = a.output(0.0)
    assert a.output(0.0) == []
    assert len(wire) == len(pkt) + 10 + 2
    (sent,) = a.events()
    assert isinstance(sent, FrameSent)
    assert (sent.protocol, sent.kind, sent.packet, sent.frame, sent.capture) == (0x21, "ip", pkt, pkt, pkt)
    assert (sent.wire_octets, sent.escape_octets, sent.flag_octets) == (len(wire), 10, 2)
    assert sent.header_octets == sent.fcs_octets == 0
    b.receive(wire, 0.0)
    got, ip = b.events()
    assert isinstance(got, FrameReceived) and isinstance(ip, IpPacketReceived)
    assert ip.packet == pkt
    assert (got.protocol, got.kind, got.packet, got.frame, got.capture) == (0x21, "ip", pkt, pkt, pkt)
    assert (got.wire_octets, got.escape_octets, got.flag_octets) == (len(wire), 10, 2)
    assert a.counters.octets_wire_sent == len(wire)
    assert b.counters.octets_ip_received == len(pkt)


def test_link_gives_one_output_item_per_frame():
    a = SlipLink()
    for n in (1, 2, 3):
        a.send_ip(bytes([0x45]) + bytes(19 + n), 0.0)
    out = a.output(0.0)
    assert [len(w) for w in out] == [20 + n + 2 for n in (1, 2, 3)]
    assert SlipDecoder().receive(b"".join(out)) == [bytes([0x45]) + bytes(19 + n) for n in (1, 2, 3)]


def test_cslip_events_carry_the_datagram_and_the_compressed_frame():
    a, b = SlipLink(vj=True), SlipLink(vj=True)
    pkts = [_tcp(1000 + 10 * i, i + 1) for i in range(3)]
    for p in pkts:
        a.send_ip(p, 0.0)
    sent = a.events()
    assert [e.kind for e in sent] == ["uncompressed_tcp", "compressed_tcp", "compressed_tcp"]
    assert [e.protocol for e in sent] == [0x2F, 0x2D, 0x2D]
    assert [e.capture for e in sent] == pkts and [e.packet for e in sent] == pkts
    assert len(sent[1].frame) < len(pkts[1]) - 30
    for w in a.output(0.0):
        b.receive(w, 0.0)
    got = b.events()
    frames = [e for e in got if isinstance(e, FrameReceived)]
    assert [e.kind for e in frames] == [e.kind for e in sent]
    assert [e.frame for e in frames] == [e.frame for e in sent]
    assert [e.capture for e in frames] == pkts
    assert [e.packet for e in got if isinstance(e, IpPacketReceived)] == pkts


def _tcp(seq, ipid):
    """A minimal IPv4/TCP ACK segment with 10 octets of data (TCP checksum left zero)."""
    ip = bytes([0x45, 0, 0, 50]) + ipid.to_bytes(2, "big") + b"\x40\x00\x40\x06\x00\x00"
    ip += bytes([10, 0, 0, 2, 10, 0, 0, 1])
    ip = ip[:10] + internet_checksum(ip).to_bytes(2, "big") + ip[12:]
    tcp = (1025).to_bytes(2, "big") + (110).to_bytes(2, "big") + seq.to_bytes(4, "big")
    tcp += (1).to_bytes(4, "big") + b"\x50\x10\x20\x00\x00\x00\x00\x00"
    return ip + tcp + b"0123456789"


# -- the decoder fed all at once, one byte at a time, and with trailing data


@given(st.lists(st.binary(max_size=300), max_size=6), st.binary(max_size=40))
@settings(max_examples=300)
def test_decoder_any_bytes_all_at_once_byte_by_byte_and_trailing(packets, trailing):
    packets = [p for p in packets if p]  # an empty frame is only inter-frame fill
    wire = b"".join(slip_encode(p) for p in packets)
    tail = slip_escape(trailing)
    whole = SlipDecoder(max_frame=400)
    assert whole.receive(wire + tail) == packets
    single = SlipDecoder(max_frame=400)
    got = []
    for i in range(len(wire) + len(tail)):
        got += single.receive((wire + tail)[i : i + 1])
    assert got == packets
    # the trailing, unterminated frame is held, and completed by the next END
    for dec in (whole, single):
        assert dec.receive(b"\xc0") == ([trailing] if trailing else [])
    assert whole.bad_escapes == single.bad_escapes == 0


@given(st.binary(max_size=300))
def test_unescape_is_the_inverse_of_escape(data):
    assert slip_unescape(slip_escape(data)) == data
    assert b"\xc0" not in slip_escape(data)
