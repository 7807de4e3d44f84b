"""RFC 1662 async HDLC framing: FCS vectors, ACCM escaping, incremental decoding."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.hdlc import (  # the two C-speed paths
    DEFAULT_ACCM,
    IMPLEMENTATIONS,
    PPP_GOODFCS16,
    PPP_GOODFCS32,
    DecodedFrame,
    HdlcDecoder,
    _escape_numpy,
    _escape_tables,
    _unescape_numpy,
    fcs16,
    fcs32,
    fcs_bytes,
    hdlc_encode,
    hdlc_escape,
    hdlc_unescape,
    implementation,
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


# The counted losses and the receive ACCM, in both implementations (the compiled
# one is held equal to this module on any input by tests/unit/test_hdlc_c.py).


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_runt_abort_and_too_long_counted(impl):
    encode, Decoder = implementation(impl)
    dec = Decoder(max_frame=50)
    assert dec.receive(b"\x7e\x01\x02\x7e") == []
    assert dec.runts == 1
    assert dec.receive(b"\x7e\xff\x03\x00\x21ab\x7d\x7e") == []
    assert dec.aborts == 1
    assert dec.receive(encode(b"\xff\x03\x00\x21" + b"x" * 100, 0)) == []
    assert dec.too_long == 1
    assert dec.receive(b"\x7e\x7e\x7e") == []  # inter-frame fill is no error
    assert (dec.runts, dec.losses) == (1, 3)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_runaway_without_flag_is_discarded(impl):
    encode, Decoder = implementation(impl)
    dec = Decoder(accm=0, max_frame=20)
    assert dec.receive(b"\x7e" + b"a" * 100) == []
    assert dec.too_long == 1
    assert dec.pending == 0
    assert dec.octets_discarded == 100
    good = b"\xff\x03\x00\x21hi"
    assert dec.receive(b"more junk" + encode(good, 0)) == [good]
    assert dec.octets_discarded == 100 + len(b"more junk")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_receive_accm_drops_unescaped_controls(impl):
    encode, Decoder = implementation(impl)
    frame = b"\xff\x03\x00\x21\x11data"
    wire = encode(frame, 0)
    noisy = wire[:6] + b"\x13" + wire[6:]  # XOFF inserted by a modem
    assert Decoder(accm=1 << 0x13).receive(noisy) == [frame]
    assert Decoder(accm=0).receive(noisy) == []  # not in the ACCM: kept, FCS fails


@given(st.binary(max_size=200))
def test_decoder_never_raises_on_garbage(data):
    dec = HdlcDecoder()
    dec.receive(data)
    dec.receive(data[::-1])


# -- C-speed escaping: both paths against a per-octet reference ---------------------


def _escape_reference(data: bytes, accm: int) -> bytes:
    # RFC 1662 4.2, one octet at a time (test oracle only)
    out = bytearray()
    for c in data:
        if c in (0x7D, 0x7E) or (c < 32 and accm >> c & 1):
            out += bytes([0x7D, c ^ 0x20])
        else:
            out.append(c)
    return bytes(out)


def _unescape_reference(data: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for c in data:
        if escaped:
            out.append(c ^ 0x20)
            escaped = False
        elif c == 0x7D:
            escaped = True
        else:
            out.append(c)
    return bytes(out)  # a trailing lone 0x7D is dropped


ESCAPE_HEAVY = st.binary(max_size=400) | st.lists(
    st.sampled_from(b"\x7d\x7e\x00\x11\x13\x20\x5d\x5e\x41"), max_size=400
).map(bytes)


@settings(max_examples=300)
@given(ESCAPE_HEAVY, st.integers(0, 0xFFFFFFFF))
def test_escape_both_paths_match_the_reference(data, accm):
    want = _escape_reference(data, accm)
    assert hdlc_escape(data, accm) == want
    keep, mask = _escape_tables(accm)
    count = len(data.translate(None, keep))
    if count:
        assert _escape_numpy(data, mask, count) == want


@settings(max_examples=300)
@given(ESCAPE_HEAVY)
def test_unescape_both_paths_match_the_reference(data):
    want = _unescape_reference(data)
    assert hdlc_unescape(data) == want
    if b"\x7d" in data:
        assert _unescape_numpy(data) == want
    # and on real escaped data: many escapes (numpy) and few (re.split)
    assert hdlc_unescape(hdlc_escape(data)) == data
    assert hdlc_unescape(hdlc_escape(data, 0)) == data


def test_unescape_runs_of_control_escapes():
    for data, want in (
        (b"\x7d\x7d\x7d\x5d", b"\x5d\x7d"),
        (b"a\x7d\x7d\x7d\x7d\x41", b"a\x5d\x5dA"),
        (b"\x7d\x5e" * 100, b"\x7e" * 100),  # numpy path
        (b"\x7d\x7d" * 100 + b"\x7d\x5d", b"\x5d" * 100 + b"\x7d"),
    ):
        assert hdlc_unescape(data) == want
        assert _unescape_numpy(data) == want


# -- the decoder fed all at once, one byte at a time, and with trailing data ---------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=2, max_size=300) | ESCAPE_HEAVY.filter(lambda b: len(b) >= 2), max_size=5),
    st.binary(max_size=60),
    st.sampled_from([0, DEFAULT_ACCM, (1 << 0x11) | (1 << 0x13)]),
    st.sampled_from([16, 32]),
)
def test_decoder_any_bytes_all_at_once_byte_by_byte_and_trailing(frames, trailing, accm, fcs):
    wire = b"".join(hdlc_encode(f, accm, fcs_size=fcs) for f in frames)
    tail = hdlc_encode(trailing, accm, fcs_size=fcs)[:-1]  # its closing flag not yet arrived
    whole = HdlcDecoder(accm=accm, max_frame=400, fcs_size=fcs)
    got = whole.receive_frames(wire + tail)
    assert [f.frame for f in got] == frames
    assert sum(f.wire_octets for f in got) == len(wire) - len(frames)  # opening flags belong to no frame
    assert all(f.fcs_octets == fcs // 8 for f in got)
    single = HdlcDecoder(accm=accm, max_frame=400, fcs_size=fcs)
    one = []
    for i in range(len(wire) + len(tail)):
        one += single.receive((wire + tail)[i : i + 1])
    assert one == frames
    for dec in (whole, single):
        assert dec.receive(b"\x7e") == ([trailing] if len(trailing) >= 2 else [])
        assert dec.bad_fcs == 0 and dec.aborts == 0


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_fcs32_frames_and_the_lcp_fallback(impl):
    encode, Decoder = implementation(impl)
    ip = b"\xff\x03\x00\x21" + bytes(range(60))
    lcp = b"\xff\x03\xc0\x21\x05\x01\x00\x04"  # Terminate-Request
    dec = Decoder(accm=0, fcs_size=32)
    assert dec.receive(encode(ip, 0, fcs_size=32)) == [ip]
    assert dec.receive(encode(ip, 0)) == []  # a 16-bit FCS on data: bad
    assert dec.bad_fcs == 1
    # the peer's LCP went back to the default FCS before its Terminate-Request
    wire = encode(lcp, 0)
    assert dec.receive_frames(wire) == [DecodedFrame(lcp, len(wire) - 1, wire.count(b"\x7d"), 2)]
    assert dec.lcp_fcs16_accepted == 1
    dec.set_fcs_size(16)
    assert dec.receive(encode(ip, 0, fcs_size=32)) == []
    assert dec.bad_fcs == 2
