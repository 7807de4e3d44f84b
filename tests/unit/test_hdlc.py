"""RFC 1662 async HDLC framing: FCS vectors, ACCM escaping, incremental decoding."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.hdlc import (
    PPP_GOODFCS16,
    PPP_GOODFCS32,
    HdlcDecoder,
    fcs16,
    fcs32,
    fcs_bytes,
    hdlc_encode,
    hdlc_escape,
    hdlc_unescape,
    parse_ppp_header,
    ppp_header,
)


def _fcs16_reference(data: bytes, fcs: int = 0xFFFF) -> int:
    # RFC 1662 C.2 bitwise definition (test oracle only).
    for b in data:
        fcs ^= b
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs


def test_fcs16_check_value_and_good_fcs():
    assert fcs16(b"123456789") ^ 0xFFFF == 0x906E
    frame = b"\xff\x03\xc0\x21\x01\x01\x00\x04"
    assert fcs16(frame + fcs_bytes(frame)) == PPP_GOODFCS16 == 0xF0B8


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_fcs16_matches_rfc_bitwise_algorithm(data, init):
    assert fcs16(data, init) == _fcs16_reference(data, init)


def test_fcs16_chains():
    assert fcs16(b"6789", fcs16(b"12345")) == fcs16(b"123456789")


def test_fcs32_check_value_and_good_fcs():
    assert fcs32(b"123456789") ^ 0xFFFFFFFF == 0xCBF43926
    frame = b"\xff\x03\x00\x21" + bytes(range(40))
    assert fcs32(frame + fcs_bytes(frame, 32)) == PPP_GOODFCS32 == 0xDEBB20E3


def test_escape_default_accm_escapes_all_controls_flag_and_escape():
    assert hdlc_escape(b"\x00\x1f\x20\x7e\x7d\x41") == b"\x7d\x20\x7d\x3f\x20\x7d\x5e\x7d\x5d\x41"


def test_escape_zero_accm_only_flag_and_escape():
    assert hdlc_escape(b"\x00\x11\x7e\x7d", 0) == b"\x00\x11\x7d\x5e\x7d\x5d"


def test_escape_xon_xoff_accm():
    accm = (1 << 0x11) | (1 << 0x13)
    assert hdlc_escape(b"\x11\x12\x13", accm) == b"\x7d\x31\x12\x7d\x33"


def test_unescape_accepts_any_escaped_octet():
    assert hdlc_unescape(b"\x7d\x7d\x5e") == b"\x5d\x5e"  # 0x5D escaped though not required


def test_ppp_header_compression():
    assert ppp_header(0x0021) == b"\xff\x03\x00\x21"
    assert ppp_header(0x0021, acfc=True, pfc=True) == b"\x21"
    assert ppp_header(0xC021, acfc=True, pfc=True) == b"\xc0\x21"
    assert parse_ppp_header(b"\xff\x03\xc0\x21xx") == (0xC021, 4)
    assert parse_ppp_header(b"\x21xx") == (0x21, 1)
    assert parse_ppp_header(b"\xff\x03") is None
    assert parse_ppp_header(b"\x00\x00") is None  # even second octet: not a protocol


def test_scapy_lcp_golden_bytes_inside_frame():
    from scapy.layers.ppp import HDLC, PPP, PPP_LCP_Configure, PPP_LCP_MRU_Option

    pkt = bytes(HDLC() / PPP(proto=0xC021) / PPP_LCP_Configure(id=1, options=[PPP_LCP_MRU_Option(max_recv_unit=1500)]))
    wire = hdlc_encode(pkt)
    assert HdlcDecoder().receive(wire) == [pkt]


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 0xFFFFFFFF))
def test_round_trip_any_bytes_any_accm(frame, accm):
    wire = hdlc_encode(frame, accm)
    body = wire[1:-1]
    assert b"\x7e" not in body
    for c in range(32):
        if accm >> c & 1:
            assert bytes([c]) not in body
    dec = HdlcDecoder(accm=accm, max_frame=1000)
    # with a receive ACCM equal to ours, stray flagged controls would be dropped;
    # the encoder never leaves any un-escaped, so the frame survives intact
    if len(frame) >= 2:
        assert dec.receive(wire) == [frame]


FRAMES = [b"\xff\x03\xc0\x21" + bytes(range(i, i + 30)) for i in (0, 60, 120, 200)]


def _wire():
    return b"".join(hdlc_encode(f, 0) for f in FRAMES)


def test_default_receive_accm_drops_unescaped_controls():
    # Until LCP negotiates otherwise every control char must arrive escaped.
    assert HdlcDecoder().receive(_wire()) != FRAMES
    assert HdlcDecoder().receive(b"".join(hdlc_encode(f) for f in FRAMES)) == FRAMES


def test_decoder_all_at_once():
    assert HdlcDecoder(accm=0).receive(_wire()) == FRAMES


def test_decoder_one_byte_at_a_time():
    dec = HdlcDecoder(accm=0)
    out = []
    for i in range(len(_wire())):
        out += dec.receive(_wire()[i : i + 1])
    assert out == FRAMES


def test_decoder_trailing_partial_frame_kept():
    dec = HdlcDecoder(accm=0)
    extra = hdlc_encode(b"\xff\x03\x00\x21hello", 0)
    assert dec.receive(_wire() + extra[:5]) == FRAMES
    assert dec.receive(extra[5:]) == [b"\xff\x03\x00\x21hello"]


def test_decoder_wire_accounting():
    frame = b"\xff\x03\x00\x21\x7e\x7d"
    wire = hdlc_encode(frame, 0)
    (f,) = HdlcDecoder(accm=0).receive_frames(wire)
    assert f.frame == frame
    assert f.escapes >= 2
    assert f.wire_octets == len(wire) - 1  # the opening flag belongs to no frame


def test_bad_fcs_discarded_and_counted():
    wire = bytearray(hdlc_encode(b"\xff\x03\x00\x21hello world", 0))
    wire[8] ^= 0x01
    dec = HdlcDecoder(accm=0)
    assert dec.receive(bytes(wire) + hdlc_encode(b"\xff\x03\x00\x21ok", 0)) == [b"\xff\x03\x00\x21ok"]
    assert dec.bad_fcs == 1


def test_runt_abort_and_too_long_counted():
    dec = HdlcDecoder(max_frame=50)
    assert dec.receive(b"\x7e\x01\x02\x7e") == []
    assert dec.runts == 1
    assert dec.receive(b"\x7e\xff\x03\x00\x21ab\x7d\x7e") == []
    assert dec.aborts == 1
    assert dec.receive(hdlc_encode(b"\xff\x03\x00\x21" + b"x" * 100, 0)) == []
    assert dec.too_long == 1
    assert dec.receive(b"\x7e\x7e\x7e") == []  # inter-frame fill is no error
    assert dec.runts == 1


def test_runaway_without_flag_is_discarded():
    dec = HdlcDecoder(accm=0, max_frame=20)
    assert dec.receive(b"\x7e" + b"a" * 100) == []
    assert dec.too_long == 1
    assert dec.pending == 0
    good = b"\xff\x03\x00\x21hi"
    assert dec.receive(b"more junk" + hdlc_encode(good, 0)) == [good]


def test_receive_accm_drops_unescaped_controls():
    frame = b"\xff\x03\x00\x21\x11data"
    wire = hdlc_encode(frame, 0)
    noisy = wire[:6] + b"\x13" + wire[6:]  # XOFF inserted by a modem
    assert HdlcDecoder(accm=1 << 0x13).receive(noisy) == [frame]
    assert HdlcDecoder(accm=0).receive(noisy) == []  # not in the ACCM: kept, FCS fails


@given(st.binary(max_size=200))
def test_decoder_never_raises_on_garbage(data):
    dec = HdlcDecoder()
    dec.receive(data)
    dec.receive(data[::-1])
