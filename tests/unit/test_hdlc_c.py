"""RFC 1662 async HDLC framing: the compiled twin (dialsim/proto/_hdlc.c) against
the pure-Python reference of dialsim/proto/hdlc.py -- the same wire bytes for any
frame, ACCM, FCS size and leading flag; the same DecodedFrame records and counters
for any line octets (good, corrupted, aborted, runt, too-long frames, garbage,
stray control characters, ACCM and FCS changes between frames); round trips; the
FCS check values; and that PPP frames with the compiled one, explicitly."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto import _hdlc, hdlc, ppp
from dialsim.proto.hdlc import (
    DEFAULT_ACCM,
    PPP_GOODFCS16,
    PPP_GOODFCS32,
    DecodedFrame,
    implementation,
)

IMPLS = list(hdlc.IMPLEMENTATIONS)
LCP_HEADER = b"\xff\x03\xc0\x21"
STATE = (
    "frames", "lcp_fcs16_accepted", "bad_fcs", "runts", "aborts", "too_long", "losses",
    "octets_discarded", "pending", "max_frame", "fcs_size", "accm",
)  # fmt: skip

c_encode, CDecoder = implementation("c")
py_encode, PyDecoder = implementation("python")

ACCMS = st.sampled_from([0, DEFAULT_ACCM, (1 << 0x11) | (1 << 0x13)]) | st.integers(0, 0xFFFFFFFF)
# Octets that need escaping, LCP's header and Control Escapes in runs, or anything.
OCTETS = st.binary(max_size=400) | st.lists(
    st.sampled_from(b"\x7d\x7e\x00\x11\x13\x1f\x20\x5d\x5e\x41\xff\x03\xc0\x21"), max_size=400
).map(bytes)
FCS_SIZES = st.sampled_from([16, 32])


def _state(dec) -> tuple:
    return tuple(getattr(dec, name) for name in STATE)


# -- the Frame Check Sequences ------------------------------------------------------


def test_fcs_check_values_rfc1662():
    for fcs16, fcs32 in ((_hdlc.fcs16, _hdlc.fcs32), (hdlc.fcs16, hdlc.fcs32)):
        assert fcs16(b"123456789") ^ 0xFFFF == 0x906E  # CRC-16/X-25
        assert fcs32(b"123456789") ^ 0xFFFFFFFF == 0xCBF43926  # CRC-32
        assert fcs16(b"") == 0xFFFF and fcs32(b"") == 0xFFFFFFFF


@settings(max_examples=300)
@given(st.binary(max_size=100), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_fcs_registers_match_the_reference(data, init16, init32):
    assert _hdlc.fcs16(data, init16) == hdlc.fcs16(data, init16)
    assert _hdlc.fcs32(data, init32) == hdlc.fcs32(data, init32)
    # a frame followed by its FCS leaves the good-FCS register
    assert _hdlc.fcs16(data + hdlc.fcs_bytes(data)) == PPP_GOODFCS16
    assert _hdlc.fcs32(data + hdlc.fcs_bytes(data, 32)) == PPP_GOODFCS32


# -- the encoder ----------------------------------------------------------------------


# Frames longer than the encoder's 4096-octet stack buffer can hold escaped.
LONG = st.binary(min_size=2040, max_size=6000) | st.integers(2040, 3000).map(lambda n: b"\x7e" * n)


@settings(max_examples=500)
@given(OCTETS | LONG, ACCMS, FCS_SIZES, st.booleans())
def test_encode_matches_the_reference(frame, accm, fcs_size, lead):
    want = py_encode(frame, accm, fcs_size=fcs_size, leading_flag=lead)
    assert c_encode(frame, accm, fcs_size=fcs_size, leading_flag=lead) == want
    assert c_encode(bytearray(frame), accm=accm, leading_flag=lead, fcs_size=fcs_size) == want


def test_encode_defaults_and_arguments():
    frame = b"\xff\x03\xc0\x21\x01\x01\x00\x04"
    assert c_encode(frame) == py_encode(frame)  # default ACCM, 16-bit FCS, leading flag
    assert c_encode(frame, 0, leading_flag=False) == py_encode(frame, 0, leading_flag=False)
    with pytest.raises(TypeError):
        c_encode(frame, 0, 16)  # fcs_size is keyword-only, as in hdlc_encode
    with pytest.raises(TypeError):
        c_encode(frame, fcs=32)
    with pytest.raises(TypeError):
        c_encode("text")


# -- the decoder, piece by piece --------------------------------------------------------


@st.composite
def line_pieces(draw) -> bytes:
    """What a decoder may get between two flags: a frame (good or not) or garbage."""
    kind = draw(st.sampled_from(["good", "bit error", "abort", "truncated", "noise", "garbage"]))
    if kind == "garbage":
        return draw(OCTETS)
    frame = draw(OCTETS)
    if draw(st.booleans()):
        frame = LCP_HEADER + frame  # 32-bit mode takes these with a 16-bit FCS
    body = py_encode(frame, draw(st.just(DEFAULT_ACCM) | ACCMS), fcs_size=draw(FCS_SIZES), leading_flag=False)[:-1]
    if kind == "bit error" and body:
        i = draw(st.integers(0, len(body) - 1))
        body = body[:i] + bytes([body[i] ^ 1 << draw(st.integers(0, 7))]) + body[i + 1 :]
    elif kind == "abort":
        body += b"\x7d" * draw(st.integers(1, 3))  # 0x7D before the flag (odd: an abort)
    elif kind == "truncated":
        body = body[: draw(st.integers(0, len(body)))]
    elif kind == "noise":  # control characters a modem inserted, escaped or not
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(body)))
            stray = bytes([draw(st.integers(0, 31))])  # un-escaped, or after a Control Escape
            body = body[:i] + draw(st.sampled_from([b"", b"\x7d"])) + stray + body[i:]
    return body


DECODERS = st.fixed_dictionaries(
    {"accm": ACCMS, "max_frame": st.integers(0, 300) | st.just(1508), "fcs_size": FCS_SIZES}
)
OPERATIONS = st.lists(
    st.tuples(st.just("frame_ended"), line_pieces())
    | st.tuples(st.just("feed"), line_pieces())
    | st.tuples(st.just("set_accm"), ACCMS)
    | st.tuples(st.just("set_fcs_size"), FCS_SIZES)
    | st.tuples(st.just("clear"), st.none()),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(DECODERS, OPERATIONS)
def test_decoder_matches_the_reference_piece_by_piece(kwargs, operations):
    c, ref = CDecoder(**kwargs), PyDecoder(**kwargs)
    assert _state(c) == _state(ref)
    for name, arg in operations:
        args = () if arg is None else (arg,)
        got, want = getattr(c, name)(*args), getattr(ref, name)(*args)
        assert got == want, (name, arg)
        assert type(got) is type(want)
        assert _state(c) == _state(ref), (name, arg)


@st.composite
def lines(draw) -> bytes:
    """A line's octets: pieces between flags, runs of flags, a partial frame at the end."""
    pieces = draw(st.lists(line_pieces(), max_size=8))
    flags = draw(st.lists(st.integers(1, 3), min_size=len(pieces), max_size=len(pieces)))
    return b"\x7e" + b"".join(p + b"\x7e" * n for p, n in zip(pieces, flags, strict=True)) + draw(
        line_pieces()
    )


@settings(max_examples=300, deadline=None)
@given(DECODERS, lines(), st.lists(st.integers(0, 4000), max_size=6))
def test_decoder_matches_the_reference_on_a_line_in_any_reads(kwargs, line, cuts):
    cuts = sorted({0, len(line), *(i for i in cuts if i < len(line))})
    reads = [line[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    c, ref = CDecoder(**kwargs), PyDecoder(**kwargs)
    c2, ref2 = CDecoder(**kwargs), PyDecoder(**kwargs)
    for data in reads:
        got = c.receive_frames(data)
        assert got == ref.receive_frames(data)
        assert all(type(f) is DecodedFrame for f in got)
        assert c2.receive(data) == ref2.receive(data)
        assert _state(c) == _state(ref) == _state(c2) == _state(ref2)


# -- round trips ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(OCTETS.filter(lambda f: len(f) >= 2), ACCMS, FCS_SIZES, st.booleans())
def test_round_trip_and_across_implementations(frame, accm, fcs_size, lead):
    wire = c_encode(frame, accm, fcs_size=fcs_size, leading_flag=lead)
    body = wire[1:-1] if lead else wire[:-1]
    escapes = body.count(b"\x7d")  # every 0x7D on the line is a Control Escape
    for Decoder in (CDecoder, PyDecoder):
        for w in (wire, py_encode(frame, accm, fcs_size=fcs_size, leading_flag=lead)):
            dec = Decoder(accm=accm, fcs_size=fcs_size)
            want = DecodedFrame(frame, len(w) - lead, escapes, fcs_size // 8)
            assert dec.receive_frames(w) == [want]
            assert dec.frames == 1 and dec.losses == 0


# -- the decoder's arguments, both implementations ------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_decoder_arguments(impl):
    _encode, Decoder = implementation(impl)
    dec = Decoder()
    assert (dec.accm, dec.max_frame, dec.fcs_size, dec.pending) == (DEFAULT_ACCM, 1508, 16, 0)
    with pytest.raises(ValueError, match="16 or 32"):
        Decoder(fcs_size=24)
    with pytest.raises(ValueError, match="16 or 32"):
        dec.set_fcs_size(8)
    with pytest.raises(TypeError):
        Decoder(0)  # keyword-only


def test_ppp_frames_with_the_compiled_implementation():
    assert (ppp.hdlc_encode, ppp.HdlcDecoder) == (_hdlc.encode, _hdlc.Decoder)
    assert implementation("python") == (hdlc.hdlc_encode, hdlc.HdlcDecoder)
    assert implementation("c") == (_hdlc.encode, _hdlc.Decoder)
    with pytest.raises(ValueError, match="implementation"):
        implementation("numpy")
